//! JSON answers of WeChat's list and count endpoints.
//!
//! | endpoint | function |
//! |---|---|
//! | `mp/profile_ext?action=getmsg` | [`parse_profile_ext`] (`general_msg_list` is a JSON string) |
//! | `cgi-bin/appmsg?action=list_ex` | [`parse_appmsg_list`] |
//! | `cgi-bin/appmsgpublish?sub=list` | [`parse_appmsg_publish`] (JSON in JSON in JSON) |
//! | `mp/getappmsgext` | [`parse_appmsgext`] |
//! | `mp/appmsg_comment?action=getcomment` | [`parse_comments`] |
//!
//! Every answer first yields an [`ApiOutcome`] from `base_resp.ret` / `ret`: frequency
//! control, an expired session and bad arguments are outcomes the crawler acts on, not
//! parse errors. Fields are read leniently (numbers may come as strings and the reverse).

use mpwatch_core::{ArticleKey, Copyright};
use serde::Serialize;
use serde_json::Value;

use crate::url::{ArticleUrl, unescape};

/// What the server said about the request, from its `ret` code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ApiOutcome {
    /// `ret` 0.
    Ok,
    /// Frequency control: 200013 (backend), -6 (client APIs). Slow down.
    FrequencyControl {
        /// The code.
        code: i64,
    },
    /// The credentials expired: -3 ("no session"), 200003 (backend).
    SessionExpired {
        /// The code.
        code: i64,
    },
    /// 200002: the request's arguments were refused.
    InvalidArguments {
        /// The code.
        code: i64,
    },
    /// Any other code, with the server's message.
    Other {
        /// The code.
        code: i64,
        /// `errmsg` / `err_msg`.
        message: String,
    },
}

impl ApiOutcome {
    /// Maps a `ret` code (and message) to an outcome.
    pub fn from_ret(code: i64, message: &str) -> Self {
        match code {
            0 => ApiOutcome::Ok,
            200013 | -6 => ApiOutcome::FrequencyControl { code },
            -3 | 200003 => ApiOutcome::SessionExpired { code },
            200002 => ApiOutcome::InvalidArguments { code },
            _ => ApiOutcome::Other { code, message: message.to_string() },
        }
    }

    /// `true` for [`ApiOutcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, ApiOutcome::Ok)
    }
}

/// Why an answer could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Not JSON (an HTML error page, a truncated body...).
    #[error("not a JSON answer: {0}")]
    NotJson(String),
    /// JSON, but without the expected structure.
    #[error("unexpected answer: {0}")]
    Shape(String),
}

fn parse_json(body: &str) -> Result<Value, ApiError> {
    serde_json::from_str(body.trim_start_matches('\u{feff}')).map_err(|e| ApiError::NotJson(e.to_string()))
}

/// An integer from a number or a numeric string.
fn int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A non-empty string (numbers are printed).
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(crate::text::decode_entities(s.trim())),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The outcome of any answer: `base_resp.ret`, else top-level `ret`, else Ok.
pub fn outcome_of(value: &Value) -> ApiOutcome {
    let base = value.get("base_resp");
    let code = int(base.and_then(|b| b.get("ret"))).or_else(|| int(value.get("ret"))).unwrap_or(0);
    let message = text(base.and_then(|b| b.get("err_msg").or_else(|| b.get("errmsg"))))
        .or_else(|| text(value.get("errmsg")))
        .unwrap_or_default();
    ApiOutcome::from_ret(code, &message)
}

/// An article as a list or feed names it, before its page is fetched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedArticle {
    /// Canonical URL (or the URL as given, when it is not an article URL).
    pub url: String,
    /// The key, when the URL carries it.
    pub key: Option<ArticleKey>,
    /// Signature.
    pub sn: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub digest: Option<String>,
    /// Cover image.
    pub cover_url: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// 阅读原文.
    pub source_url: Option<String>,
    /// Publication (unix seconds).
    pub published_at: Option<i64>,
    /// Originality.
    pub copyright: Option<Copyright>,
    /// `item_show_type`.
    pub item_show_type: Option<i64>,
    /// The list marks it deleted.
    pub deleted: bool,
}

impl ListedArticle {
    fn from_url(url: &str) -> Option<ListedArticle> {
        let mut cleaned = unescape(url);
        if cleaned.is_empty() {
            return None;
        }
        // The 2017 history page links relatively (`/s?timestamp=...`).
        if cleaned.starts_with('/') {
            cleaned = format!("https://{}{cleaned}", crate::url::CANONICAL_HOST);
        }
        let parsed = ArticleUrl::parse(&cleaned).ok();
        let (key, sn) = match &parsed {
            Some(ArticleUrl::Permanent { key, sn }) => (Some(key.clone()), sn.clone()),
            _ => (None, None),
        };
        Some(ListedArticle {
            url: parsed.map(|p| p.canonical()).unwrap_or(cleaned),
            key,
            sn,
            title: None,
            digest: None,
            cover_url: None,
            author: None,
            source_url: None,
            published_at: None,
            copyright: None,
            item_show_type: None,
            deleted: false,
        })
    }
}

/// `copyright_stat` / `copyright_type` as the list APIs use them (11 original, 100 none,
/// 101 repost; the page codes 0 / 1 / 2 too).
fn copyright_code(code: Option<i64>) -> Option<Copyright> {
    match code? {
        1 | 11 => Some(Copyright::Original),
        2 | 12 | 101 => Some(Copyright::Repost),
        0 | 100 => Some(Copyright::None),
        _ => None,
    }
}

/// A page of `profile_ext?action=getmsg`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileMsgPage {
    /// The server's verdict.
    pub outcome: ApiOutcome,
    /// More pages follow.
    pub can_msg_continue: bool,
    /// Offset of the next page.
    pub next_offset: Option<i64>,
    /// Articles, newest push first, positions in order.
    pub articles: Vec<ListedArticle>,
}

/// Reads a `profile_ext?action=getmsg` answer.
pub fn parse_profile_ext(body: &str) -> Result<ProfileMsgPage, ApiError> {
    let value = parse_json(body)?;
    let outcome = outcome_of(&value);
    let mut page = ProfileMsgPage {
        outcome,
        can_msg_continue: int(value.get("can_msg_continue")).unwrap_or(0) == 1,
        next_offset: int(value.get("next_offset")),
        articles: Vec::new(),
    };
    if !page.outcome.is_ok() {
        return Ok(page);
    }
    let list = match value.get("general_msg_list") {
        Some(Value::String(inner)) => parse_json(inner)?,
        Some(other @ Value::Object(_)) => other.clone(),
        _ => return Err(ApiError::Shape("no general_msg_list".into())),
    };
    let items = list
        .get("list")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::Shape("general_msg_list has no list".into()))?;
    page.articles = items.iter().flat_map(msg_list_item).collect();
    Ok(page)
}

/// The articles of one `general_msg_list.list` element (one push): the headline from
/// `app_msg_ext_info`, the others from its `multi_app_msg_item_list`. Also serves the
/// 2017 history page's `msgList`, which has the same shape.
pub fn msg_list_item(item: &Value) -> Vec<ListedArticle> {
    let published_at = int(item.get("comm_msg_info").and_then(|c| c.get("datetime")));
    let Some(ext) = item.get("app_msg_ext_info") else { return Vec::new() };
    let mut entries = vec![ext];
    if let Some(more) = ext.get("multi_app_msg_item_list").and_then(Value::as_array) {
        entries.extend(more.iter());
    }
    entries
        .into_iter()
        .filter_map(|entry| {
            let mut article = ListedArticle::from_url(&text(entry.get("content_url"))?)?;
            article.title = text(entry.get("title"));
            article.digest = text(entry.get("digest"));
            article.cover_url = text(entry.get("cover")).map(|c| unescape(&c));
            article.author = text(entry.get("author"));
            article.source_url = text(entry.get("source_url")).map(|s| unescape(&s));
            article.published_at = published_at;
            article.copyright = copyright_code(int(entry.get("copyright_stat")));
            article.item_show_type = int(entry.get("item_show_type"));
            // del_flag 1 is a live article; other values mark deletions.
            article.deleted = int(entry.get("del_flag")).is_some_and(|flag| flag != 1);
            Some(article)
        })
        .collect()
}

/// A page of a backend list (`appmsg list_ex` or `appmsgpublish`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendListPage {
    /// The server's verdict.
    pub outcome: ApiOutcome,
    /// Total items the server reports.
    pub total: Option<i64>,
    /// Articles on this page.
    pub articles: Vec<ListedArticle>,
}

fn backend_article(entry: &Value) -> Option<ListedArticle> {
    let mut article = ListedArticle::from_url(&text(entry.get("link"))?)?;
    article.title = text(entry.get("title"));
    article.digest = text(entry.get("digest"));
    article.cover_url = text(entry.get("cover")).map(|c| unescape(&c));
    article.author = text(entry.get("author_name")).or_else(|| text(entry.get("author")));
    article.published_at = int(entry.get("create_time")).or_else(|| int(entry.get("update_time")));
    article.copyright = copyright_code(int(entry.get("copyright_stat")).or_else(|| int(entry.get("copyright_type"))));
    article.item_show_type = int(entry.get("item_show_type"));
    article.deleted = int(entry.get("is_deleted")).unwrap_or(0) != 0;
    Some(article)
}

/// Reads a `cgi-bin/appmsg?action=list_ex` answer.
pub fn parse_appmsg_list(body: &str) -> Result<BackendListPage, ApiError> {
    let value = parse_json(body)?;
    let outcome = outcome_of(&value);
    let mut page = BackendListPage { outcome, total: int(value.get("app_msg_cnt")), articles: Vec::new() };
    if page.outcome.is_ok() {
        let list = value
            .get("app_msg_list")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::Shape("no app_msg_list".into()))?;
        page.articles = list.iter().filter_map(backend_article).collect();
    }
    Ok(page)
}

/// Reads a `cgi-bin/appmsgpublish?sub=list` answer: `publish_page` is a JSON string
/// whose `publish_list[].publish_info` are JSON strings again.
pub fn parse_appmsg_publish(body: &str) -> Result<BackendListPage, ApiError> {
    let value = parse_json(body)?;
    let outcome = outcome_of(&value);
    let mut page = BackendListPage { outcome, total: None, articles: Vec::new() };
    if !page.outcome.is_ok() {
        return Ok(page);
    }
    let publish_page = match value.get("publish_page") {
        Some(Value::String(inner)) => parse_json(inner)?,
        Some(other @ Value::Object(_)) => other.clone(),
        _ => return Err(ApiError::Shape("no publish_page".into())),
    };
    page.total = int(publish_page.get("total_count"));
    let list = publish_page
        .get("publish_list")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::Shape("no publish_list".into()))?;
    for entry in list {
        let info = match entry.get("publish_info") {
            Some(Value::String(inner)) if !inner.is_empty() => parse_json(inner)?,
            Some(other @ Value::Object(_)) => other.clone(),
            _ => continue,
        };
        if let Some(items) = info.get("appmsgex").and_then(Value::as_array) {
            page.articles.extend(items.iter().filter_map(backend_article));
        }
    }
    Ok(page)
}

/// An article's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// 阅读; 100001 when WeChat shows "10万+".
    pub reads: Option<i64>,
    /// The read count was capped ("10万+").
    pub reads_capped: bool,
    /// 赞 (`old_like_num`).
    pub likes: Option<i64>,
    /// 在看 (`like_num`).
    pub wows: Option<i64>,
    /// Shares, when given.
    pub shares: Option<i64>,
    /// Comments.
    pub comments: Option<i64>,
}

/// The display cap of read counts ("10万+").
pub const READS_CAP: i64 = 100_001;

/// A `getappmsgext` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppMsgExt {
    /// The server's verdict.
    pub outcome: ApiOutcome,
    /// The counts, when the answer had them.
    pub counts: Option<Counts>,
}

/// Reads a `mp/getappmsgext` answer.
pub fn parse_appmsgext(body: &str) -> Result<AppMsgExt, ApiError> {
    let value = parse_json(body)?;
    let mut outcome = outcome_of(&value);
    let stat = value.get("appmsgstat");
    if outcome.is_ok()
        && let Some(code) = int(stat.and_then(|s| s.get("ret"))).filter(|code| *code != 0)
    {
        outcome = ApiOutcome::from_ret(code, "appmsgstat.ret");
    }
    let counts = match (outcome.is_ok(), stat) {
        (true, Some(stat)) => {
            let reads = int(stat.get("read_num"));
            Some(Counts {
                reads: reads.map(|r| r.min(READS_CAP)),
                reads_capped: reads.is_some_and(|r| r >= READS_CAP),
                likes: int(stat.get("old_like_num")),
                wows: int(stat.get("like_num")),
                shares: int(stat.get("share_num")).or_else(|| int(value.get("share_num"))),
                comments: int(value.get("comment_count")).or_else(|| int(stat.get("comment_count"))),
            })
        }
        (true, None) => return Err(ApiError::Shape("no appmsgstat".into())),
        _ => None,
    };
    Ok(AppMsgExt { outcome, counts })
}

/// One comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// Commenter's nickname.
    pub nickname: Option<String>,
    /// The text.
    pub content: Option<String>,
    /// When (unix seconds).
    pub created_at: Option<i64>,
    /// Likes of the comment.
    pub likes: Option<i64>,
}

/// An `appmsg_comment` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommentPage {
    /// The server's verdict.
    pub outcome: ApiOutcome,
    /// `elected_comment_total_cnt`.
    pub total: Option<i64>,
    /// The comments shown (elected by the account).
    pub comments: Vec<Comment>,
}

/// Reads a `mp/appmsg_comment?action=getcomment` answer.
pub fn parse_comments(body: &str) -> Result<CommentPage, ApiError> {
    let value = parse_json(body)?;
    let outcome = outcome_of(&value);
    let comments = value
        .get("elected_comment")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|c| Comment {
                    nickname: text(c.get("nick_name")),
                    content: text(c.get("content")),
                    created_at: int(c.get("create_time")),
                    likes: int(c.get("like_num")),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CommentPage { outcome, total: int(value.get("elected_comment_total_cnt")), comments })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ret_codes_map_to_outcomes() {
        assert_eq!(ApiOutcome::from_ret(200013, ""), ApiOutcome::FrequencyControl { code: 200013 });
        assert_eq!(ApiOutcome::from_ret(-6, ""), ApiOutcome::FrequencyControl { code: -6 });
        assert_eq!(ApiOutcome::from_ret(-3, "no session"), ApiOutcome::SessionExpired { code: -3 });
        assert_eq!(ApiOutcome::from_ret(200003, ""), ApiOutcome::SessionExpired { code: 200003 });
        assert_eq!(ApiOutcome::from_ret(200002, ""), ApiOutcome::InvalidArguments { code: 200002 });
        assert_eq!(ApiOutcome::from_ret(42, "odd"), ApiOutcome::Other { code: 42, message: "odd".into() });
    }

    #[test]
    fn appmsgext_counts_and_errors() {
        let body = r#"{"advertisement_info":[],"appmsgstat":{"show":true,"is_login":true,"liked":false,"read_num":5387,"like_num":46,"old_like_num":120,"ret":0,"real_read_num":0},"comment_count":12,"base_resp":{"ret":0}}"#;
        let parsed = parse_appmsgext(body).unwrap();
        assert_eq!(
            parsed.counts,
            Some(Counts {
                reads: Some(5387),
                reads_capped: false,
                likes: Some(120),
                wows: Some(46),
                shares: None,
                comments: Some(12)
            })
        );
        let capped = parse_appmsgext(r#"{"appmsgstat":{"read_num":100001,"like_num":3}}"#).unwrap();
        assert!(capped.counts.unwrap().reads_capped);
        let expired = r#"{"base_resp":{"ret":-3,"errmsg":"no session","cookie_count":0},"ret":-3,"errmsg":"no session","cookie_count":0}"#;
        let parsed = parse_appmsgext(expired).unwrap();
        assert_eq!(parsed.outcome, ApiOutcome::SessionExpired { code: -3 });
        assert_eq!(parsed.counts, None);
        assert!(matches!(parse_appmsgext("<html>"), Err(ApiError::NotJson(_))));
    }

    #[test]
    fn appmsgpublish_three_layers() {
        let info = serde_json::json!({"appmsgex": [{"aid": "1_1", "title": "T", "link": "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=7&idx=1&sn=aa", "create_time": 1700000000, "copyright_stat": 1, "is_deleted": 0, "item_show_type": 0, "author_name": "A"}]});
        let page = serde_json::json!({"total_count": 1, "publish_list": [{"publish_type": 101, "publish_info": info.to_string()}]});
        let body =
            serde_json::json!({"base_resp": {"ret": 0, "err_msg": "ok"}, "publish_page": page.to_string()}).to_string();
        let parsed = parse_appmsg_publish(&body).unwrap();
        assert_eq!(parsed.total, Some(1));
        assert_eq!(parsed.articles.len(), 1);
        let article = &parsed.articles[0];
        assert_eq!(article.key.as_ref().unwrap().mid, 7);
        assert_eq!(article.author.as_deref(), Some("A"));
        assert_eq!(article.copyright, Some(Copyright::Original));
        let throttled = parse_appmsg_publish(r#"{"base_resp":{"ret":200013,"err_msg":"freq control"}}"#).unwrap();
        assert_eq!(throttled.outcome, ApiOutcome::FrequencyControl { code: 200013 });
    }

    #[test]
    fn comments() {
        let body = r#"{"base_resp":{"ret":0},"elected_comment_total_cnt":2,"elected_comment":[{"nick_name":"甲","content":"好文","create_time":1700000100,"like_num":3},{"nick_name":"乙","content":"&lt;3","create_time":"1700000200","like_num":"0"}]}"#;
        let parsed = parse_comments(body).unwrap();
        assert_eq!(parsed.total, Some(2));
        assert_eq!(parsed.comments[1].content.as_deref(), Some("<3"));
        assert_eq!(parsed.comments[1].created_at, Some(1700000200));
    }
}
