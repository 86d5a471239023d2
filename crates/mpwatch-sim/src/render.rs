//! Pages and answers in the shapes WeChat serves them.
//!
//! Article pages follow the real 2025 structure (metadata in `var x = "v" || ""`
//! lines among unrelated script, `#js_content`, og tags, `window.cgiDataNew` for
//! picture and text messages), or the 2018 one for legacy accounts. Their bulk is
//! inline script: a shared filler built once per size and sent without copying, so a
//! 3 MB page costs a few kilobytes of fresh bytes per request.

use std::sync::Arc;

use bytes::Bytes;
use mpwatch_core::{ArticleKind, Copyright};

use crate::world::{SimAccount, SimArticle, World};

/// Escapes text for a JS string literal the way WeChat's pages do (`\x26` and friends).
pub fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\x27"),
            '"' => out.push_str("\\x22"),
            '<' => out.push_str("\\x3c"),
            '>' => out.push_str("\\x3e"),
            '&' => out.push_str("\\x26"),
            '\n' => out.push_str("\\x0a"),
            '\r' => out.push_str("\\x0d"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML content and attributes.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The inline-script bulk of a page: bundle-like code full of decoys a parser must
/// ignore (`var biz = null`, `var mid = start + end >> 1`, `var sn = opt.sn`).
const FILLER_UNIT: &str = r#"
        function getInteractionStatus(opt) {
            var biz = opt.biz || window.biz;
            var sn = opt.sn || window.sn;
            var mid = opt.mid || window.mid;
            var idx = opt.idx || window.idx;
            var interactionStatusKey = [biz, sn, mid, idx].join('_');
            return interactionStatusLS.get(interactionStatusKey) || {};
        }
        var biz = null;
        var lo = 0, hi = list.length - 1;
        while (lo <= hi) { var mid = start + end >> 1; if (list[mid] < x) { lo = mid + 1; } else { hi = mid - 1; } }
        var msg_title = document.getElementById('activity-name') && document.getElementById('activity-name').innerText;
        (function(e,t){"object"===typeof exports&&"object"===typeof module?module.exports=t():e["weEmoji"]=t()})(this,function(){return {"微笑":"/::)","撇嘴":"/::~"};});
        .rich_media_content{overflow:hidden;color:#333;font-size:17px;word-wrap:break-word;hyphens:auto;text-align:justify}
"#;

const FILLER_OPEN: &str = "<script type=\"text/javascript\" nonce=\"294092494\" reportloaderror>\n";
const FILLER_CLOSE: &str = "</script>\n";

/// The filler of every page: one buffer of repeated script, sliced per page (cloning
/// or slicing `Bytes` copies nothing).
#[derive(Debug, Default)]
pub struct Fillers {
    units: std::sync::RwLock<Bytes>,
}

impl Fillers {
    /// A `<script>` element of about `bytes` bytes (a whole number of filler units),
    /// as chunks.
    pub fn get(&self, bytes: usize) -> [Bytes; 3] {
        let units = bytes.saturating_sub(FILLER_OPEN.len() + FILLER_CLOSE.len()) / FILLER_UNIT.len();
        let wanted = units * FILLER_UNIT.len();
        let current = self.units.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let buffer = if current.len() >= wanted {
            current
        } else {
            let grown = Bytes::from(FILLER_UNIT.repeat(units.max(1)));
            *self.units.write().unwrap_or_else(std::sync::PoisonError::into_inner) = grown.clone();
            grown
        };
        [
            Bytes::from_static(FILLER_OPEN.as_bytes()),
            buffer.slice(..wanted),
            Bytes::from_static(FILLER_CLOSE.as_bytes()),
        ]
    }
}

/// A response body in pieces: fresh bytes plus shared fillers.
#[derive(Debug, Clone, Default)]
pub struct Chunks(pub Vec<Bytes>);

impl Chunks {
    fn push(&mut self, text: String) {
        self.0.push(Bytes::from(text));
    }

    /// Total length.
    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All pieces joined (for small bodies and transformations such as gzip).
    pub fn concat(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for chunk in &self.0 {
            out.extend_from_slice(chunk);
        }
        out
    }
}

/// Everything needed to render an article page.
pub struct PageContext<'a> {
    /// The world (for body text and images).
    pub world: &'a World,
    /// The account.
    pub account: &'a SimAccount,
    /// The article.
    pub article: &'a SimArticle,
    /// Short link of the article (`https://mp.weixin.qq.com/s/<token>`).
    pub short_url: String,
    /// Approximate page size.
    pub page_bytes: usize,
    /// Counts to embed (`appmsg_bar_data`), for credentialed requests.
    pub counts: Option<crate::world::SimCounts>,
}

/// Renders an article page.
pub fn article_page(context: &PageContext<'_>, fillers: &Fillers) -> Chunks {
    if context.account.legacy_layout { legacy_page(context, fillers) } else { modern_page(context, fillers) }
}

fn body_html(context: &PageContext<'_>) -> String {
    let mut body = String::new();
    let images = context.world.image_urls(context.article);
    for (i, paragraph) in context.world.paragraphs(context.article).iter().enumerate() {
        body.push_str(&format!(
            "<section style=\"margin-bottom: 16px;\"><p style=\"line-height: 1.75em;\"><span style=\"font-size: 15px;\">{}</span></p></section>\n",
            html_escape(paragraph)
        ));
        if let Some(url) = images.get(i) {
            body.push_str(&format!(
                "<p style=\"text-align: center;\"><img class=\"rich_pages wxw-img\" data-ratio=\"0.75\" data-src=\"{}\" data-type=\"jpeg\" data-w=\"1080\" style=\"width: 100%;\"></p>\n",
                html_escape(url)
            ));
        }
    }
    for url in images.iter().skip(context.world.paragraphs(context.article).len()) {
        body.push_str(&format!("<p><img data-src=\"{}\"></p>\n", html_escape(url)));
    }
    body
}

fn copyright_stat(article: &SimArticle) -> &'static str {
    match article.copyright {
        Copyright::Original => "1",
        Copyright::Repost => "2",
        Copyright::None => "0",
    }
}

fn modern_page(context: &PageContext<'_>, fillers: &Fillers) -> Chunks {
    let PageContext { world, account, article, short_url, page_bytes, counts } = context;
    let key = &article.key;
    let title = html_escape(&article.title);
    let cover = format!("https://mmbiz.qpic.cn/sim_jpg/{}/{}_{}/0?wx_fmt=jpeg", account.numeric_id, key.mid, key.idx);
    let message = matches!(article.kind, ArticleKind::Picture | ArticleKind::Text);
    let head = format!(
        r#"<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1.0,maximum-scale=1.0,user-scalable=0,viewport-fit=cover">
<meta property="og:title" content="{title}" />
<meta property="og:url" content="{short_url}" />
<meta property="og:image" content="{cover}" />
<meta property="og:description" content="{digest}" />
<meta property="og:type" content="article" />
<meta name="author" content="{author}" />
<title>{title}</title>
<script type="text/javascript" nonce="294092494" reportloaderror>
    var biz = "{biz}" || "";
    var sn = "{sn}" || "" || "";
    var mid = "{mid}" || "" || "";
    var idx = "{idx}" || "" || "";
    window.__allowLoadResFromMp = true;
</script>
"#,
        digest = html_escape(&article.digest),
        author = html_escape(&article.author),
        biz = key.biz,
        sn = article.sn,
        mid = key.mid,
        idx = key.idx,
    );

    let repost_card = match (&article.original_account, article.copyright) {
        (Some(original), Copyright::Repost) => format!(
            r#"<div class="original_primary_card_wrp"><p role="option" class="original_primary_card_tips">以下文章来源于{name}</p>
<a class="weui-flex original_primary_card appmsg_card_context wx_tap_card js_wx_tap_highlight"><strong class="original_primary_nickname">{name}</strong></a></div>
"#,
            name = html_escape(original)
        ),
        _ => String::new(),
    };
    let body = if message { String::new() } else { body_html(context) };
    let middle = format!(
        r#"<div id="page-content" class="rich_media_area_primary"><div class="rich_media_area_primary_inner">
<h1 class="rich_media_title" id="activity-name">{title}</h1>
<div id="meta_content" class="rich_media_meta_list"><span class="rich_media_meta rich_media_meta_text">{author}</span>
<span class="rich_media_meta rich_media_meta_nickname" id="profileBt"><a href="javascript:void(0);" id="js_name">{nickname}</a></span></div>
{repost_card}<div class="rich_media_content js_underline_content autoTypeSetting24psection" id="js_content" style="visibility: hidden;">
{body}</div>
</div></div>
"#,
        author = html_escape(&article.author),
        nickname = html_escape(&account.nickname),
    );

    let published = article.published_at;
    let source = match (article.copyright, &article.original_account) {
        (Copyright::Repost, Some(name)) => {
            let original = world.accounts().iter().find(|a| &a.nickname == name).unwrap_or(account);
            format!(
                "var source_encode_biz = \"{}\";\n    var source_username = \"{}\";\n    var source_mid = \"{}\";\n    var source_idx = \"1\";\n",
                original.biz,
                original.username,
                key.mid + 3
            )
        }
        _ => "var source_encode_biz = \"\";\n    var source_username = \"\";\n    var source_mid = \"\";\n    var source_idx = \"\";\n".to_string(),
    };
    let metadata = if message {
        // Picture and text messages carry no var block; cgiDataNew has everything.
        format!("    window.item_show_type = '{}' || '';\n", article.item_show_type())
    } else {
        format!(
            r#"    var uin = '';
    var key = '';
    var pass_ticket = '';
    var item_show_type = "{show_type}";
    var appuin = "" || "{biz}";
    var create_time = "{published}" * 1;
    var _copyright_stat = "{copyright}";
    var nickname = htmlDecode("{nickname}");
    var appmsg_type = "9";
    var ct = "{published}";
    var user_name = "{username}";
    var msg_title = '{title_js}'.html(false);
    var msg_desc = htmlDecode("{digest_js}");
    var msg_cdn_url = "{cover}";
    var msg_link = "{short_url}";
    var msg_source_url = '';
    var appmsgid = "{mid}" || '' || '';
    var comment_id = '{comment_id}' || '0';
    {source}    var author = "{author_js}";
    var copyright_stat = "{copyright}" * 1;
"#,
            show_type = article.item_show_type(),
            biz = key.biz,
            copyright = copyright_stat(article),
            nickname = js_escape(&account.nickname),
            username = account.username,
            title_js = js_escape(&article.title),
            digest_js = js_escape(&article.digest),
            mid = key.mid,
            comment_id = article.comment_id,
            author_js = js_escape(&article.author),
        )
    };
    let bar = counts.map(|c| {
        format!(
            "appmsg_bar_data: {{ read_num: '{}' * 1, old_like_count: '{}' * 1, like_count: '{}' * 1, share_count: '{}' * 1, comment_count: '{}' * 1, }},",
            c.reads, c.likes, c.wows, c.shares, c.comments
        )
    });
    let pictures: String = if article.kind == ArticleKind::Picture {
        world
            .image_urls(article)
            .iter()
            .map(|url| {
                format!("{{ cdn_url: JsDecode('{}'), width: '1080' * 1, height: '1440' * 1, }},\n", js_escape(url))
            })
            .collect()
    } else {
        String::new()
    };
    let content = if message { js_escape(&world.paragraphs(article).join("\n")) } else { String::new() };
    let create_time_text = beijing_text(published);
    let tail = format!(
        r#"<script type="text/javascript" nonce="294092494" reportloaderror>
{metadata}</script>
<script type="text/javascript" h5only nonce="294092494" reportloaderror>
    (function() {{
        try {{
            window.cgiDataNew = {{
                base_resp: {{ ret: '0' * 1, errmsg: JsDecode('ok'), wxtoken: '777' * 1, }},
                user_name: JsDecode('{username}'),
                nick_name: JsDecode('{nickname}'),
                title: JsDecode('{title_js}'),
                desc: JsDecode('{digest_js}'),
                content_noencode: JsDecode('{content}'),
                create_time: JsDecode('{create_time_text}'),
                cdn_url: JsDecode('{cover}'),
                link: JsDecode('{short_url}'),
                source_url: JsDecode(''),
                alias: JsDecode('{alias}'),
                author: JsDecode('{author_js}'),
                ori_create_time: '{published}' * 1,
                comment_id: JsDecode('{comment_id}'),
                copyright_info: {{ copyright_stat: '{copyright}' * 1, is_cartoon_copyright: '0' * 1, }},
                bizuin: JsDecode('{biz}'),
                mid: '{mid}' * 1,
                idx: '{idx}' * 1,
                sn: JsDecode('{sn}'),
                item_show_type: '{show_type}' * 1,
                picture_page_info_list: [
{pictures}                ],
                text_page_info: {{ content: JsDecode('{content}'), }},
                user_info: {{ is_paid: '0' * 1, {bar} }},
                real_item_show_type: '{show_type}' * 1,
            }};
        }} catch (e) {{}}
    }})();
</script>
</body>
</html>
"#,
        username = account.username,
        nickname = js_escape(&account.nickname),
        title_js = js_escape(&article.title),
        digest_js = js_escape(&article.digest),
        alias = account.alias.as_deref().map(js_escape).unwrap_or_default(),
        author_js = js_escape(&article.author),
        comment_id = article.comment_id,
        copyright = copyright_stat(article),
        biz = key.biz,
        mid = key.mid,
        idx = key.idx,
        sn = article.sn,
        show_type = article.item_show_type(),
        bar = bar.unwrap_or_default(),
    );
    // The bulk goes where real pages have it: a little before the body, most after.
    let filler_bytes = page_bytes.saturating_sub(head.len() + middle.len() + tail.len());
    let mut chunks = Chunks::default();
    chunks.push(head);
    chunks.0.extend(fillers.get(filler_bytes / 8));
    chunks.push(middle);
    chunks.0.extend(fillers.get(filler_bytes - filler_bytes / 8));
    chunks.push(tail);
    chunks
}

fn legacy_page(context: &PageContext<'_>, fillers: &Fillers) -> Chunks {
    let PageContext { account, article, page_bytes, .. } = context;
    let key = &article.key;
    let head = format!(
        r#"<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{title}</title>
<script nonce="1069837236" type="text/javascript">
    var biz = "{biz}"||"";
    var sn = "{sn}" || ""|| "";
    var mid = "{mid}" || ""|| "";
    var idx = "{idx}" || "" || "";
</script>
</head>
<body id="activity-detail" class="zh_CN mm_appmsg">
<div id="js_article" class="rich_media"><div class="rich_media_inner"><div id="page-content" class="rich_media_area_primary">
<h2 class="rich_media_title" id="activity-name">{title}</h2>
<div id="meta_content" class="rich_media_meta_list">{original}<em id="post-date" class="rich_media_meta rich_media_meta_text">{date}</em>
<a class="rich_media_meta rich_media_meta_link rich_media_meta_nickname" href="javascript:void(0);" id="post-user">{nickname}</a></div>
<div class="profile_inner"><strong class="profile_nickname">{nickname}</strong>
<p class="profile_meta"><label class="profile_meta_label">微信号</label><span class="profile_meta_value">{alias}</span></p></div>
<div class="rich_media_content " id="js_content">
{body}</div>
</div></div></div>
"#,
        title = html_escape(&article.title),
        biz = key.biz,
        sn = article.sn,
        mid = key.mid,
        idx = key.idx,
        original = if article.copyright == Copyright::Original {
            "<span id=\"copyright_logo\" class=\"rich_media_meta meta_original_tag\">原创</span>"
        } else {
            ""
        },
        date = beijing_text(article.published_at).split(' ').next().unwrap_or_default(),
        nickname = html_escape(&account.nickname),
        alias = account.alias.as_deref().map(html_escape).unwrap_or_default(),
        body = body_html(context),
    );
    let tail = format!(
        r#"<script nonce="1069837236" type="text/javascript">
    var _copyright_stat = "{copyright}";
    var nickname = "{nickname}";
    var ct = "{published}";
    var publish_time = "{date}" || "";
    var user_name = "{username}";
    var msg_title = "{title}";
    var msg_desc = "{digest}";
    var msg_cdn_url = "http://mmbiz.qpic.cn/sim_jpg/{numeric}/{mid}_{idx}/0?wx_fmt=jpeg";
    var msg_link = "http://mp.weixin.qq.com/s?__biz={biz}\x26amp;mid={mid}\x26amp;idx={idx}\x26amp;sn={sn}#rd";
    var msg_source_url = '';
    var appmsgid = '' || '{mid}'|| "";
    var comment_id = "{comment_id}" || "{comment_id}" * 1;
    var copyright_stat = "{copyright}" * 1;
</script>
</body>
</html>
"#,
        copyright = copyright_stat(article),
        nickname = js_escape(&account.nickname),
        published = article.published_at,
        date = beijing_text(article.published_at).split(' ').next().unwrap_or_default(),
        username = account.username,
        title = js_escape(&article.title),
        digest = js_escape(&article.digest),
        numeric = account.numeric_id,
        mid = key.mid,
        idx = key.idx,
        biz = key.biz,
        sn = article.sn,
        comment_id = article.comment_id,
    );
    // 2018 pages were about a tenth of today's size.
    let filler_bytes = (page_bytes / 10).saturating_sub(head.len() + tail.len());
    let mut chunks = Chunks::default();
    chunks.push(head);
    chunks.0.extend(fillers.get(filler_bytes));
    chunks.push(tail);
    chunks
}

/// `YYYY-MM-DD HH:MM` in Beijing time.
pub fn beijing_text(t: i64) -> String {
    let local = t + 8 * 3600;
    let days = local.div_euclid(86_400);
    let seconds = local.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

fn weui_page(body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1.0,maximum-scale=1.0,user-scalable=0,viewport-fit=cover">
<title></title>
<link rel="stylesheet" href="//res.wx.qq.com/open/libs/weui/2.4.4/weui.min.css">
</head>
<body>
<div class="weui-msg">
{body}
</div>
</body>
</html>
"#
    )
}

/// The page for an article its publisher deleted.
pub fn deleted_page() -> String {
    weui_page(
        r#"    <div class="weui-msg__icon-area"><i class="weui-icon-warn weui-icon_msg"></i></div>
    <div class="weui-msg__text-area">
        <div class="weui-msg__title warn">该内容已被发布者删除</div>
    </div>"#,
    )
}

/// The page for an article removed for a violation.
pub fn blocked_page(reason: &str) -> String {
    weui_page(&format!(
        r#"    <div class="weui-msg__icon-area"><i class="weui-icon-warn weui-icon_msg"></i></div>
    <div class="weui-msg__text-area">
        <h2 class='weui-msg__title title'>此内容因违规无法查看</h2>
        <p class="weui-msg__desc">由用户投诉并经平台审核，{}，查看对应规则</p>
    </div>"#,
        html_escape(reason)
    ))
}

/// The page for a temporarily unavailable article.
pub fn unavailable_page() -> String {
    "<!DOCTYPE html>\n<html>\n<head>\n    <meta http-equiv=\"content-type\" content=\"text/html;charset=utf8\">\n    <title>该内容暂时无法查看</title>\n</head>\n<body>\n<div class=\"panel\">\n    <div class=\"mesg-block\">\n        <p>该内容暂时无法查看</p>\n    </div>\n</div>\n</body>\n</html>\n".to_string()
}

/// WeChat's error page for a wrong `sn` or unknown article.
pub fn parameter_error_page() -> String {
    weui_page(
        r#"    <div class="weui-msg__icon-area"><i class="weui-icon-info weui-icon_msg"></i></div>
    <div class="weui-msg__text-area">
        <h2 class="weui-msg__title">参数错误</h2>
    </div>"#,
    )
}

/// The anti-crawl verification page, in the structure of the real one
/// (`secitptpage/verify`, TCaptcha, an empty `.weui-msg`, `window.cgiData`).
pub fn verification_page(target_url: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title></title>
<script type="text/javascript">var PAGE_MID='mmbizwap:secitptpage/verify.html';</script>
<link rel="stylesheet" type="text/css" href="//res.wx.qq.com/mmbizwap/zh_CN/htmledition/style/page/secitptpage/verify80b352.css">
</head>
<body>
<div class="weui-msg"></div>
<script src="https://turing.captcha.qcloud.com/TCaptcha.js"></script>
<script type="text/javascript">
    window.cgiData = {{
        target_url: '{target}',
        cap_appid: '2000000000',
        cap_sid: '',
        poc_sid: '',
        timeout_ms: '60000' * 1,
    }};
</script>
</body>
</html>
"#,
        target = js_escape(target_url)
    )
}

/// `robots.txt` of the simulated hosts.
pub const ROBOTS_TXT: &str = "User-agent: *\nDisallow: /private/\nAllow: /\n";

/// Shared fillers for the whole server.
pub type SharedFillers = Arc<Fillers>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_text_formats() {
        assert_eq!(beijing_text(1_762_338_600), "2025-11-05 18:30");
        assert_eq!(beijing_text(0), "1970-01-01 08:00");
    }

    #[test]
    fn js_escape_round_trips_through_the_parser_rules() {
        assert_eq!(js_escape("a'b\"c<d>&\n"), "a\\x27b\\x22c\\x3cd\\x3e\\x26\\x0a");
    }

    #[test]
    fn fillers_are_shared_and_sized() {
        let fillers = Fillers::default();
        let a = fillers.get(1_000_000);
        let b = fillers.get(700_000);
        assert_eq!(a[1].as_ptr(), b[1].as_ptr(), "one buffer, sliced");
        let total = |chunks: &[Bytes; 3]| chunks.iter().map(Bytes::len).sum::<usize>();
        assert!(total(&a) > 998_000 && total(&a) <= 1_000_000, "{}", total(&a));
        assert!(total(&b) > 698_000 && total(&b) <= 700_000, "{}", total(&b));
        assert!(b[0].starts_with(b"<script") && b[2].starts_with(b"</script>"));
    }
}
