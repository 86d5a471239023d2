//! Article pages: classify what WeChat served and extract the article.
//!
//! A modern page is 2-4 MB, mostly inline JavaScript, with the metadata in a block of
//! `var name = "value" || "";` lines deep inside and the body in `#js_content`. Picture
//! and text messages keep their data in `window.cgiDataNew = {...}` instead. Rather than
//! building a DOM of the whole page, [`parse_page`] makes one pass over the `var `
//! statements, reads the `cgiDataNew` object, and finds the byte ranges of `#js_content`
//! and the few other elements it reads ([`crate::html`]); html5ever parses only those
//! fragments. Pages without article data are then checked for the verification page
//! (checked first: it must never pass for a deleted article), the deleted, blocked,
//! unavailable and expired pages; those pages are small and are parsed whole.

use std::cell::LazyCell;
use std::sync::LazyLock;

use memchr::memmem;
use mpwatch_core::{ArticleKey, ArticleKind, Biz, Copyright};
use scraper::Selector;
use serde::Serialize;

use crate::dom::{self, MetaTags, SmallPage};
use crate::html;
use crate::js::{self, JsValue};
use crate::text::{decode_entities, normalize_whitespace};
use crate::url::{ArticleUrl, canonical_url};

/// The title of a message page (deleted, blocked, parameter error, ...).
static MESSAGE_TITLE: LazyLock<Selector> = LazyLock::new(|| dom::selector(".weui-msg__title"));
/// The explanation under it: a blocked article's reason.
static MESSAGE_DESCRIPTION: LazyLock<Selector> = LazyLock::new(|| dom::selector(".weui-msg__desc"));
/// A repost's card: the original account's name.
static ORIGINAL_NICKNAME: LazyLock<Selector> = LazyLock::new(|| dom::selector(".original_primary_nickname"));
/// A repost's "read the original" link.
static SHARE_SOURCE: LazyLock<Selector> = LazyLock::new(|| dom::selector("#js_share_source[data-url]"));
/// Older pages' profile card: the value beside a label.
static PROFILE_META_VALUE: LazyLock<Selector> = LazyLock::new(|| dom::selector(".profile_meta_value"));

/// Repost cards tried before giving up: real pages have one.
const MAX_REPOST_CARDS: usize = 4;

/// What a fetched page turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageKind {
    /// A normal article (item_show_type 0).
    Article,
    /// A picture message (8).
    Picture,
    /// A text message (10).
    Text,
    /// A video message (5).
    Video,
    /// An audio message (7).
    Audio,
    /// An article shared from another account.
    Repost,
    /// Deleted by the publisher.
    Deleted,
    /// Removed for a violation.
    Blocked,
    /// Temporarily unavailable.
    Unavailable,
    /// An expired temporary link.
    Expired,
    /// The anti-crawl verification page: slow down, and record nothing about the article.
    Verification,
    /// Not a WeChat article page (or not HTML at all).
    Unknown,
}

impl PageKind {
    /// The name printed by `mpwatch parse`.
    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Article => "article",
            PageKind::Picture => "picture",
            PageKind::Text => "text",
            PageKind::Video => "video",
            PageKind::Audio => "audio",
            PageKind::Repost => "repost",
            PageKind::Deleted => "deleted",
            PageKind::Blocked => "blocked",
            PageKind::Unavailable => "unavailable",
            PageKind::Expired => "expired",
            PageKind::Verification => "verification",
            PageKind::Unknown => "unknown",
        }
    }

    /// Whether the page carries an article (as opposed to an error or a block).
    pub fn is_article(self) -> bool {
        matches!(
            self,
            PageKind::Article
                | PageKind::Picture
                | PageKind::Text
                | PageKind::Video
                | PageKind::Audio
                | PageKind::Repost
        )
    }
}

/// Everything extracted from one page. Fields a page does not have are `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArticlePage {
    /// What the page is.
    pub kind: PageKind,
    /// Title.
    pub title: Option<String>,
    /// Account display name.
    pub account_name: Option<String>,
    /// Account original id (`gh_...`, or `wxid_...` on some old accounts).
    pub account_username: Option<String>,
    /// Account 微信号.
    pub account_alias: Option<String>,
    /// Account biz.
    pub biz: Option<Biz>,
    /// Push id.
    pub mid: Option<u64>,
    /// Position in the push.
    pub idx: Option<u32>,
    /// Signature.
    pub sn: Option<String>,
    /// Publication instant, unix seconds UTC.
    pub published_at: Option<i64>,
    /// Author line.
    pub author: Option<String>,
    /// Summary.
    pub digest: Option<String>,
    /// Cover image.
    pub cover_url: Option<String>,
    /// Originality.
    pub copyright: Option<Copyright>,
    /// 阅读原文 link.
    pub source_url: Option<String>,
    /// Comment thread id.
    pub comment_id: Option<String>,
    /// WeChat's `item_show_type`.
    pub item_show_type: Option<i64>,
    /// The `/s/<token>` link of the page, when it names one.
    pub short_url: Option<String>,
    /// Body as clean text.
    pub content_text: Option<String>,
    /// Inner HTML of `#js_content` (images keep `data-src`).
    pub content_html: Option<String>,
    /// Image URLs of the body (picture messages: their pictures).
    pub image_urls: Vec<String>,
    /// The body as clean HTML: paragraphs, headings, lists, emphasis, links and the
    /// images as linked, nothing else ([`crate::dom::BodyText::html`]); picture and text
    /// messages: their text and pictures.
    pub body_html: Option<String>,
    /// Characters of the body text, whitespace excluded.
    pub text_chars: usize,
    /// The reason a blocked page states.
    pub reason: Option<String>,
    /// Reposts: the original account's name.
    pub original_account: Option<String>,
    /// Reposts: the original account's `gh_` id.
    pub original_username: Option<String>,
    /// Reposts: the original article (`__biz`, `mid`, `idx`; no `sn`).
    pub original_url: Option<String>,
}

impl ArticlePage {
    fn empty(kind: PageKind) -> Self {
        ArticlePage {
            kind,
            title: None,
            account_name: None,
            account_username: None,
            account_alias: None,
            biz: None,
            mid: None,
            idx: None,
            sn: None,
            published_at: None,
            author: None,
            digest: None,
            cover_url: None,
            copyright: None,
            source_url: None,
            comment_id: None,
            item_show_type: None,
            short_url: None,
            content_text: None,
            content_html: None,
            image_urls: Vec::new(),
            body_html: None,
            text_chars: 0,
            reason: None,
            original_account: None,
            original_username: None,
            original_url: None,
        }
    }

    /// The article's key, when the page gave biz, mid and idx.
    pub fn key(&self) -> Option<ArticleKey> {
        Some(ArticleKey { biz: self.biz.clone()?, mid: self.mid?, idx: self.idx? })
    }

    /// The canonical URL, when the key is known.
    pub fn canonical_url(&self) -> Option<String> {
        self.key().map(|key| canonical_url(&key, self.sn.as_deref()))
    }

    /// The stored kind of the article (a repost is stored as an article with
    /// copyright `repost`).
    pub fn article_kind(&self) -> Option<ArticleKind> {
        match self.kind {
            PageKind::Article | PageKind::Repost => Some(ArticleKind::Article),
            PageKind::Picture => Some(ArticleKind::Picture),
            PageKind::Text => Some(ArticleKind::Text),
            PageKind::Video => Some(ArticleKind::Video),
            PageKind::Audio => Some(ArticleKind::Audio),
            _ => None,
        }
    }
}

/// What WeChat's `item_show_type` (on pages and in article lists) says an item is:
/// 8 picture message, 10 text message, 5 video, 7 audio, anything else an article.
pub fn kind_of_item_show_type(item_show_type: i64) -> ArticleKind {
    match item_show_type {
        8 => ArticleKind::Picture,
        10 => ArticleKind::Text,
        5 => ArticleKind::Video,
        7 => ArticleKind::Audio,
        _ => ArticleKind::Article,
    }
}

/// The `var` names whose string-literal values the parser reads.
const WANTED_VARS: &[&str] = &[
    "biz",
    "__biz",
    "sn",
    "mid",
    "idx",
    "appmsgid",
    "msg_title",
    "msg_desc",
    "msg_cdn_url",
    "msg_link",
    "msg_source_url",
    "nickname",
    "user_name",
    "ct",
    "create_time",
    "copyright_stat",
    "_copyright_stat",
    "item_show_type",
    "comment_id",
    "author",
    "source_encode_biz",
    "source_username",
    "source_mid",
    "source_idx",
];

/// Values of the wanted `var`s: the first non-empty string literal assigned to each.
#[derive(Default)]
struct Vars {
    values: Vec<Option<String>>,
}

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        let index = WANTED_VARS.iter().position(|wanted| *wanted == name)?;
        self.values.get(index)?.as_deref().filter(|v| !v.is_empty())
    }
}

fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// One pass over every `var ` in the page.
fn scan_vars(page: &[u8]) -> Vars {
    let mut vars = Vars { values: vec![None; WANTED_VARS.len()] };
    // Matches inside a string already read (or a line that failed to read) are skipped,
    // which keeps the pass linear on hostile input.
    let mut resume_at = 0;
    for at in memmem::find_iter(page, b"var ") {
        if at < resume_at || (at > 0 && is_identifier_byte(page[at - 1])) {
            continue;
        }
        let mut i = at + 4;
        let name_start = i;
        while page.get(i).copied().is_some_and(is_identifier_byte) {
            i += 1;
        }
        let Some(index) = WANTED_VARS.iter().position(|wanted| wanted.as_bytes() == &page[name_start..i]) else {
            continue;
        };
        while page.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
            i += 1;
        }
        if page.get(i) != Some(&b'=') || page.get(i + 1) == Some(&b'=') {
            continue;
        }
        let rest = &page[i + 1..];
        match js::expression(rest) {
            Some((value, used)) => {
                resume_at = i + 1 + used;
                let slot = &mut vars.values[index];
                if slot.as_deref().is_none_or(str::is_empty) {
                    *slot = Some(value);
                }
            }
            None => {
                resume_at = i + 1 + memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            }
        }
    }
    vars
}

/// `window.cgiDataNew = {...}` (modern pages, and the only data of picture and text
/// messages), parsed as an object.
fn cgi_data(page: &[u8]) -> Option<JsValue> {
    let at = memmem::find(page, b"cgiDataNew = {")?;
    let start = at + b"cgiDataNew = ".len();
    js::object_literal(&page[start..]).map(|(value, _)| value)
}

/// Text fields: entities decoded, whitespace normalised, empty as `None`.
fn clean(value: Option<&str>) -> Option<String> {
    let value = value?;
    let decoded = decode_entities(value);
    let normalized = normalize_whitespace(&decoded);
    (!normalized.is_empty()).then_some(normalized)
}

/// URL fields: entities and `\x26`-style escapes undone, empty as `None`.
fn clean_url(value: Option<&str>) -> Option<String> {
    let value = crate::url::unescape(value?);
    let value = decode_entities(&value);
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// Text read from the DOM: the parser decoded its entities, so only whitespace is
/// normalised (decoding again would turn a written `&amp;lt;` into `<`).
fn dom_text(value: Option<&str>) -> Option<String> {
    let normalized = normalize_whitespace(value?);
    (!normalized.is_empty()).then_some(normalized)
}

/// A URL read from the DOM, trimmed; empty as `None`.
fn dom_url(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

fn first<T>(candidates: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    candidates.into_iter().flatten().next()
}

/// `YYYY-MM-DD HH:MM[:SS]` in Beijing time (UTC+8, as WeChat prints it) to unix seconds.
fn beijing_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once(' ').unwrap_or((text, "00:00"));
    let mut date_parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let mut time_parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let hour = time_parts.next()??;
    let minute = time_parts.next().flatten().unwrap_or(0);
    let second = time_parts.next().flatten().unwrap_or(0);
    if !(1970..=2200).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hour * 3600 + minute * 60 + second - 8 * 3600)
}

fn unix_seconds(text: Option<&str>) -> Option<i64> {
    let text = text?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().filter(|t| *t > 0);
    }
    beijing_datetime(text)
}

fn copyright_from_stat(stat: Option<&str>) -> Option<Copyright> {
    match stat?.trim() {
        "1" | "11" => Some(Copyright::Original),
        "2" | "12" => Some(Copyright::Repost),
        "0" | "" => Some(Copyright::None),
        _ => None,
    }
}

/// A value of at most `max` bytes that looks like an identifier token.
fn token(value: Option<String>, max: usize) -> Option<String> {
    value.filter(|v| {
        v.len() <= max && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'=')
    })
}

/// Does the input look like HTML at all?
fn looks_like_html(page: &[u8]) -> bool {
    let head = &page[..page.len().min(4096)];
    memchr::memchr(b'<', head).is_some() && memchr::memchr(b'>', head).is_some()
}

/// Classifies a page and extracts everything it says about the article.
pub fn parse_page(page: &[u8]) -> ArticlePage {
    if page.iter().all(u8::is_ascii_whitespace) || !looks_like_html(page) {
        return ArticlePage::empty(PageKind::Unknown);
    }
    let vars = scan_vars(page);
    let cgi = cgi_data(page);
    let cgi_str = |key: &str| cgi.as_ref().and_then(|c| c.str_field(key)).filter(|v| !v.is_empty());

    // Read only when a `var` and `cgiDataNew` both lack a field.
    let meta = LazyCell::new(|| MetaTags::read(html::meta_tags(page).map(|range| &page[range])));

    let mut article = ArticlePage::empty(PageKind::Unknown);
    article.title =
        clean(vars.get("msg_title")).or_else(|| clean(cgi_str("title"))).or_else(|| dom_text(meta.get("og:title")));
    let link = first([clean_url(vars.get("msg_link")), clean_url(cgi_str("link"))]);
    let link_key = link.as_deref().and_then(|l| ArticleUrl::parse(l).ok());
    article.biz = first([
        vars.get("biz").and_then(|b| Biz::parse(b).ok()),
        vars.get("__biz").and_then(|b| Biz::parse(b).ok()),
        cgi_str("bizuin").and_then(|b| Biz::parse(b).ok()),
        link_key.as_ref().and_then(|u| u.key()).map(|k| k.biz.clone()),
    ]);
    article.mid =
        first([vars.get("mid"), vars.get("appmsgid"), cgi_str("mid")].map(|v| v.and_then(|m| m.trim().parse().ok())))
            .or_else(|| link_key.as_ref().and_then(|u| u.key()).map(|k| k.mid))
            .filter(|m| *m > 0);
    article.idx = first([vars.get("idx"), cgi_str("idx")].map(|v| v.and_then(|i| i.trim().parse().ok())))
        .or_else(|| link_key.as_ref().and_then(|u| u.key()).map(|k| k.idx))
        .filter(|i| (1..=64).contains(i));
    article.sn =
        token(first([vars.get("sn"), cgi_str("sn")].map(|v| v.map(str::to_string))), 64).or_else(|| match &link_key {
            Some(ArticleUrl::Permanent { sn, .. }) => sn.clone(),
            _ => None,
        });
    article.short_url = link
        .clone()
        .or_else(|| dom_url(meta.get("og:url")))
        .filter(|l| matches!(ArticleUrl::parse(l), Ok(ArticleUrl::Short { .. })))
        .map(|l| ArticleUrl::parse(&l).map(|u| u.canonical()).unwrap_or(l));

    let has_article_data = article.title.is_some() || (article.biz.is_some() && article.mid.is_some());
    if !has_article_data {
        return classify_non_article(page);
    }

    article.account_name = clean(vars.get("nickname")).or_else(|| clean(cgi_str("nick_name"))).or_else(|| {
        html::element_by_id(page, "js_name").map(|e| dom::fragment_text(&page[e.inner])).filter(|t| !t.is_empty())
    });
    article.account_username = token(first([clean(vars.get("user_name")), clean(cgi_str("user_name"))]), 64)
        .filter(|u| mpwatch_core::domain::is_username(u));
    // Modern pages state the alias in cgiDataNew (possibly empty); only older pages
    // show it in the profile card.
    let alias = if cgi.is_some() { clean(cgi_str("alias")) } else { profile_alias(page) };
    article.account_alias = token(alias, 32);
    article.published_at = first([
        unix_seconds(vars.get("ct")),
        unix_seconds(cgi_str("ori_create_time")),
        unix_seconds(vars.get("create_time")),
        unix_seconds(cgi_str("create_time")),
    ]);
    article.author =
        clean(vars.get("author")).or_else(|| clean(cgi_str("author"))).or_else(|| dom_text(meta.get("author")));
    article.digest =
        clean(vars.get("msg_desc")).or_else(|| clean(cgi_str("desc"))).or_else(|| dom_text(meta.get("og:description")));
    article.cover_url = clean_url(vars.get("msg_cdn_url"))
        .or_else(|| clean_url(cgi_str("cdn_url")))
        .or_else(|| dom_url(meta.get("og:image")));
    article.source_url = first([clean_url(vars.get("msg_source_url")), clean_url(cgi_str("source_url"))]);
    article.comment_id = first([vars.get("comment_id"), cgi_str("comment_id")])
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "0" && c.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string);
    article.item_show_type =
        first([vars.get("item_show_type"), cgi_str("item_show_type")].map(|v| v.and_then(|t| t.trim().parse().ok())));

    let cgi_copyright = cgi.as_ref().and_then(|c| c.get("copyright_info")).and_then(|c| c.str_field("copyright_stat"));
    article.copyright = first([
        copyright_from_stat(vars.get("copyright_stat")),
        copyright_from_stat(vars.get("_copyright_stat")),
        copyright_from_stat(cgi_copyright),
    ]);
    article.original_username = token(clean(vars.get("source_username")), 64);
    if article.original_username.is_some() {
        article.copyright = Some(Copyright::Repost);
    }
    if article.copyright == Some(Copyright::Repost) {
        article.original_account = html::elements_with_class(page, "original_primary_nickname")
            .take(MAX_REPOST_CARDS)
            .find_map(|card| dom::selected_text(&page[card.outer], &ORIGINAL_NICKNAME));
        let source_key = (|| {
            Some(ArticleKey {
                biz: Biz::parse(vars.get("source_encode_biz")?).ok()?,
                mid: vars.get("source_mid")?.trim().parse().ok()?,
                idx: vars.get("source_idx")?.trim().parse().ok()?,
            })
        })();
        // The "read the original" link carries the sn; the source_* vars do not.
        let share_link = html::element_by_id(page, "js_share_source")
            .and_then(|link| dom::selected_attribute(&page[link.outer], &SHARE_SOURCE, "data-url"))
            .and_then(|url| ArticleUrl::parse(&url).ok())
            .filter(|url| url.key().is_some())
            .map(|url| url.canonical());
        article.original_url = share_link.or_else(|| source_key.map(|key| canonical_url(&key, None)));
    }

    article.kind = match article.item_show_type.map(kind_of_item_show_type) {
        Some(ArticleKind::Picture) => PageKind::Picture,
        Some(ArticleKind::Text) => PageKind::Text,
        Some(ArticleKind::Video) => PageKind::Video,
        Some(ArticleKind::Audio) => PageKind::Audio,
        _ if article.copyright == Some(Copyright::Repost) => PageKind::Repost,
        _ => PageKind::Article,
    };
    extract_body(page, cgi.as_ref(), &mut article);
    article
}

/// The body: `#js_content` for articles; the message's own data for picture and text
/// messages.
fn extract_body(page: &[u8], cgi: Option<&JsValue>, article: &mut ArticlePage) {
    let cgi_text = cgi.and_then(|c| {
        first([
            c.str_field("content_noencode").filter(|t| !t.trim().is_empty()),
            c.get("text_page_info").and_then(|t| t.str_field("content")).filter(|t| !t.trim().is_empty()),
        ])
    });
    match article.kind {
        PageKind::Picture | PageKind::Text => {
            article.content_text = cgi_text.and_then(|t| clean(Some(t)));
            if let Some(list) = cgi.and_then(|c| c.get("picture_page_info_list")) {
                article.image_urls = list.items().iter().filter_map(|p| clean_url(p.str_field("cdn_url"))).collect();
            }
            if let Some(body) = html::element_by_id(page, "js_content") {
                article.content_html = Some(String::from_utf8_lossy(&page[body.inner]).into_owned());
            }
            article.body_html = message_html(article.content_text.as_deref(), &article.image_urls);
        }
        _ => {
            if let Some(body) = html::element_by_id(page, "js_content") {
                let fragment = String::from_utf8_lossy(&page[body.inner]).into_owned();
                let read = dom::body(&fragment);
                article.content_text = (!read.text.is_empty()).then_some(read.text);
                article.image_urls = read.images;
                article.body_html = (!read.html.is_empty()).then_some(read.html);
                article.content_html = Some(fragment);
            }
        }
    }
    article.text_chars =
        article.content_text.as_deref().map(|t| t.chars().filter(|c| !c.is_whitespace()).count()).unwrap_or(0);
}

/// A picture or text message as clean HTML: its text's lines as paragraphs, then its
/// pictures.
fn message_html(text: Option<&str>, images: &[String]) -> Option<String> {
    let mut html = String::new();
    for line in text.unwrap_or_default().lines().map(str::trim).filter(|line| !line.is_empty()) {
        html.push_str("<p>");
        dom::escape_html(line, &mut html);
        html.push_str("</p>");
    }
    for image in images {
        html.push_str("<p><img src=\"");
        dom::escape_html(image, &mut html);
        html.push_str("\" alt=\"\"></p>");
    }
    (!html.is_empty()).then_some(html)
}

/// The 微信号 shown on older pages: `<span class="profile_meta_label">微信号</span>
/// <span class="profile_meta_value">road5858</span>`. The label is found in the bytes;
/// the 512 bytes after it are read as a fragment.
fn profile_alias(page: &[u8]) -> Option<String> {
    let label = memmem::find(page, "微信号</".as_bytes())?;
    let window = &page[label..page.len().min(label + 512)];
    dom::selected_text(window, &PROFILE_META_VALUE)
}

const VERIFICATION_MARKERS: &[&str] =
    &["secitptpage/verify", "wappoc_appmsgcaptcha", "TCaptcha", "环境异常", "完成验证后即可继续访问", "/mp/captcha"];

/// A page without article data: verification first (never to be taken for a deleted
/// article), then WeChat's message pages.
fn classify_non_article(page: &[u8]) -> ArticlePage {
    let contains = |needle: &str| memmem::find(page, needle.as_bytes()).is_some();
    if VERIFICATION_MARKERS.iter().any(|marker| contains(marker)) {
        return ArticlePage::empty(PageKind::Verification);
    }
    // Message pages are small; anything bigger is judged by its bytes alone.
    let small_page = SmallPage::parse(page);
    let message = small_page.as_ref().and_then(|p| p.text(&MESSAGE_TITLE)).unwrap_or_default();
    let says = |needle: &str| message.contains(needle) || contains(needle);
    if says("该内容已被发布者删除") || says("has been deleted by the author") || says("已被发布者删除")
    {
        return ArticlePage::empty(PageKind::Deleted);
    }
    if says("此内容因违规无法查看") || says("违规无法查看") || says("violat") && contains("weui-msg") {
        let mut blocked = ArticlePage::empty(PageKind::Blocked);
        blocked.reason = small_page.as_ref().and_then(|p| p.text(&MESSAGE_DESCRIPTION));
        return blocked;
    }
    if says("该内容暂时无法查看") || says("temporarily unavailable") {
        return ArticlePage::empty(PageKind::Unavailable);
    }
    if says("链接已过期") || says("link has expired") {
        return ArticlePage::empty(PageKind::Expired);
    }
    ArticlePage::empty(PageKind::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_times_convert_to_utc() {
        assert_eq!(beijing_datetime("2025-11-05 18:30"), Some(1762338600));
        assert_eq!(beijing_datetime("1970-01-01 08:00:00"), Some(0));
        assert_eq!(beijing_datetime("2025-13-01 00:00"), None);
        assert_eq!(beijing_datetime("garbage"), None);
    }

    #[test]
    fn only_string_literal_assignments_count() {
        let page = br#"<html><script>
            var biz = null;
            var mid = start + end >> 1;
            var biz = opt.biz || window.biz;
            var biz = "" || "MzA5MjkzMTA1Mw==";
            var mid = "2651688808" || "";
            var idx = "" || "" || "5";
            var msg_title = 'A &amp; B'.html(false);
            var avar biz = "ignored";
        </script></html>"#;
        let article = parse_page(page);
        assert_eq!(article.kind, PageKind::Article);
        assert_eq!(article.biz.unwrap().as_str(), "MzA5MjkzMTA1Mw==");
        assert_eq!(article.mid, Some(2651688808));
        assert_eq!(article.idx, Some(5));
        assert_eq!(article.title.as_deref(), Some("A & B"));
    }

    #[test]
    fn item_show_type_decides_the_message_kind() {
        for (show_type, kind) in [
            ("0", PageKind::Article),
            ("5", PageKind::Video),
            ("7", PageKind::Audio),
            ("8", PageKind::Picture),
            ("10", PageKind::Text),
        ] {
            let page = format!(
                "<html><script>var msg_title = 'T';\nvar biz = \"MzA5MjkzMTA1Mw==\";\nvar mid = \"1\";\nvar idx = \"1\";\nvar item_show_type = \"{show_type}\";\n</script></html>"
            );
            let parsed = parse_page(page.as_bytes());
            assert_eq!(parsed.kind, kind, "{show_type}");
            assert_eq!(parsed.item_show_type, show_type.parse().ok());
        }
    }

    #[test]
    fn not_html_is_unknown() {
        for input in [&b""[..], b"   ", b"{\"ret\":0}", b"\xff\xfe\x00garbage"] {
            assert_eq!(parse_page(input).kind, PageKind::Unknown);
        }
    }

    #[test]
    fn every_selector_is_valid() {
        for selector in [&MESSAGE_TITLE, &MESSAGE_DESCRIPTION, &ORIGINAL_NICKNAME, &SHARE_SOURCE, &PROFILE_META_VALUE] {
            LazyLock::force(selector);
        }
    }

    #[test]
    fn reposts_and_old_profile_cards_are_read_from_their_elements() {
        let page = r#"<html><head><meta property="og:title" content="Meta &amp; title &amp;lt;"><meta name="author" content="Ann"></head>
            <script>var biz = "MzA5MjkzMTA1Mw==";
            var mid = "1";
            var idx = "1";
            var copyright_stat = "2";
            var nickname = "";
            </script>
            <span class="profile_meta_label">微信号</span>
            <span class="profile_meta_value">road&#95;5858</span>
            <a id="js_name">
                The &amp; Account
            </a>
            <i data-x="original_primary_nickname">not a card</i>
            <div class="original_primary_card"><strong class="original_primary_nickname"> Original&nbsp;One </strong></div>
            <span data-url="http://mp.weixin.qq.com/s?__biz=MjM5ODMzMDMyMw%3D%3D&amp;mid=2654868330&amp;idx=1&amp;sn=ab12#rd" id="js_share_source">read</span>
            <div id="js_content"><p>Body <img data-src="https://mmbiz.qpic.cn/1.png"></p></div></html>"#;
        let article = parse_page(page.as_bytes());
        assert_eq!(article.kind, PageKind::Repost);
        assert_eq!(article.title.as_deref(), Some("Meta & title &lt;"));
        assert_eq!(article.author.as_deref(), Some("Ann"));
        assert_eq!(article.account_name.as_deref(), Some("The & Account"));
        assert_eq!(article.account_alias.as_deref(), Some("road_5858"));
        assert_eq!(article.original_account.as_deref(), Some("Original One"));
        assert_eq!(
            article.original_url.as_deref(),
            Some("https://mp.weixin.qq.com/s?__biz=MjM5ODMzMDMyMw==&mid=2654868330&idx=1&sn=ab12")
        );
        assert_eq!(article.content_text.as_deref(), Some("Body"));
        assert_eq!(article.image_urls, ["https://mmbiz.qpic.cn/1.png"]);
    }

    #[test]
    fn message_pages_are_read_whole() {
        let blocked = r#"<html><body><div class="weui-msg"><h2 class="weui-msg__title">此内容因违规无法查看</h2>
            <div class="weui-msg__desc"><p>由用户投诉并经平台审核，涉嫌过度营销&#xff0c;查看<a href="x">对应规则</a></p></div></div></body></html>"#;
        let page = parse_page(blocked.as_bytes());
        assert_eq!(page.kind, PageKind::Blocked);
        assert_eq!(page.reason.as_deref(), Some("由用户投诉并经平台审核，涉嫌过度营销，查看对应规则"));
        // The wording is found in the text, entities decoded.
        let deleted = "<html><div class=\"weui-msg__title\">&#x8be5;&#x5185;&#x5bb9;&#x5df2;&#x88ab;&#x53d1;&#x5e03;&#x8005;&#x5220;&#x9664;</div></html>";
        assert_eq!(parse_page(deleted.as_bytes()).kind, PageKind::Deleted);
    }

    #[test]
    fn verification_wins_over_deletion_wording() {
        let page = "<html><div class=\"weui-msg\"><h2 class=\"weui-msg__title\">该内容已被发布者删除</h2></div><script src=\"https://turing.captcha.qcloud.com/TCaptcha.js\"></script></html>";
        assert_eq!(parse_page(page.as_bytes()).kind, PageKind::Verification);
    }
}
