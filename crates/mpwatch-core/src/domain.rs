//! The nouns of mpwatch: accounts, articles and the closed vocabularies the database
//! stores as text (each enum's `as_str` is exactly the value in the column).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// An error turning text into a domain value; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseDomainError(pub String);

/// Defines a closed vocabulary stored as lowercase text, with `as_str`, `Display`,
/// `FromStr` and serde all agreeing on the spelling.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and printed to users.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseDomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(ParseDomainError(format!(
                        "`{other}` is not a valid {}; expected one of: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

text_enum! {
    /// What kind of message an article is (WeChat's `item_show_type`).
    ArticleKind {
        /// A normal article (图文, item_show_type 0).
        Article => "article",
        /// A picture message (图片消息, item_show_type 8).
        Picture => "picture",
        /// A text-only message (文本消息, item_show_type 10).
        Text => "text",
        /// A video message (item_show_type 5).
        Video => "video",
        /// An audio message (item_show_type 7).
        Audio => "audio",
    }
}

impl ArticleKind {
    /// Maps WeChat's `item_show_type` to a kind; unknown values are treated as articles
    /// because the page still has a title and a body.
    pub fn from_item_show_type(item_show_type: i64) -> Self {
        match item_show_type {
            5 => ArticleKind::Video,
            7 => ArticleKind::Audio,
            8 => ArticleKind::Picture,
            10 => ArticleKind::Text,
            _ => ArticleKind::Article,
        }
    }
}

text_enum! {
    /// Who wrote an article, as the page declares it.
    Copyright {
        /// Marked 原创 by the account (`copyright_stat` 11).
        Original => "original",
        /// Shared from another account (转载 / 文章分享).
        Repost => "repost",
        /// No declaration.
        None => "none",
    }
}

text_enum! {
    /// Whether an article can still be read, as last observed.
    ArticleStatus {
        /// Discovered (in a list or feed) but its page has not been fetched yet.
        Pending => "pending",
        /// The page was fetched and is an article.
        Ok => "ok",
        /// Deleted by the publisher (该内容已被发布者删除).
        Deleted => "deleted",
        /// Removed for a violation (此内容因违规无法查看).
        Blocked => "blocked",
        /// Temporarily unavailable (该内容暂时无法查看).
        Unavailable => "unavailable",
    }
}

impl Default for ArticleStatus {
    /// A record starts as discovered-but-not-fetched.
    fn default() -> Self {
        ArticleStatus::Pending
    }
}

text_enum! {
    /// A way of finding an account's articles.
    SourceKind {
        /// An RSS / Atom / JSON Feed URL from wewe-rss, RSSHub and the like.
        Feed => "feed",
        /// `mp/profile_ext?action=getmsg` with client credentials.
        ProfileExt => "profile_ext",
        /// The official-account backend (`cgi-bin/appmsg`, `appmsgpublish`).
        MpBackend => "mp_backend",
        /// Article URLs given by the user.
        Manual => "manual",
    }
}

text_enum! {
    /// The health of one source of one account.
    SourceHealth {
        /// Never tried yet.
        Unknown => "unknown",
        /// The last attempt worked.
        Ok => "ok",
        /// Recent attempts failed, but not many in a row.
        Degraded => "degraded",
        /// Many consecutive failures: retried only after `next_retry_at`.
        Failing => "failing",
        /// Switched off by the user or by mpwatch; never tried.
        Disabled => "disabled",
    }
}

text_enum! {
    /// What started a crawl run.
    CrawlTrigger {
        /// The service's scheduler.
        Schedule => "schedule",
        /// A person running `mpwatch crawl`.
        Adhoc => "adhoc",
        /// `mpwatch demo`.
        Demo => "demo",
    }
}

text_enum! {
    /// Where a work-queue item stands.
    QueueState {
        /// Waiting until `not_before`.
        Pending => "pending",
        /// Taken by a worker until `lease_until`; an expired lease is taken again.
        Leased => "leased",
        /// Finished.
        Done => "done",
        /// Gave up after the maximum number of attempts.
        Failed => "failed",
    }
}

/// An account's `__biz`: the base64 text of its numeric id, e.g. `MzA5MjkzMTA1Mw==`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Biz(String);

impl Biz {
    /// Validates a biz: standard base64 (padding optional) of an ASCII decimal number.
    pub fn parse(text: &str) -> Result<Self, ParseDomainError> {
        let text = text.trim();
        let invalid =
            || ParseDomainError(format!("`{text}` is not a WeChat biz (base64 of a number, like MzA5MjkzMTA1Mw==)"));
        if text.is_empty() || text.len() > 64 {
            return Err(invalid());
        }
        let unpadded = text.trim_end_matches('=');
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded).map_err(|_| invalid())?;
        if decoded.is_empty() || !decoded.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        // Store the canonical padded spelling so `MzA5...w` and `MzA5...w==` are one account.
        Ok(Biz(base64::engine::general_purpose::STANDARD.encode(&decoded)))
    }

    /// The biz as WeChat spells it (padded base64).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The biz that encodes an account's numeric id.
    pub fn from_numeric_id(id: u64) -> Self {
        Biz(base64::engine::general_purpose::STANDARD.encode(id.to_string()))
    }

    /// The account's numeric id (what the biz encodes).
    pub fn numeric_id(&self) -> u64 {
        let decoded = base64::engine::general_purpose::STANDARD.decode(&self.0).unwrap_or_default();
        std::str::from_utf8(&decoded).ok().and_then(|digits| digits.parse().ok()).unwrap_or(0)
    }
}

impl fmt::Display for Biz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Biz {
    type Err = ParseDomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Biz::parse(s)
    }
}

impl TryFrom<String> for Biz {
    type Error = ParseDomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Biz::parse(&value)
    }
}

impl From<Biz> for String {
    fn from(biz: Biz) -> String {
        biz.0
    }
}

/// The identity of an article: account, push (`mid`) and position in the push (`idx`,
/// 1 = headline). `sn` only validates it and is not part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ArticleKey {
    /// The account.
    pub biz: Biz,
    /// The push (群发) id.
    pub mid: u64,
    /// Position in the push, from 1.
    pub idx: u32,
}

impl fmt::Display for ArticleKey {
    /// `biz/mid/idx`, the form `mpwatch articles show` accepts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.biz, self.mid, self.idx)
    }
}

impl FromStr for ArticleKey {
    type Err = ParseDomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseDomainError(format!("`{s}` is not an article key (biz/mid/idx)"));
        let mut parts = s.rsplitn(3, '/');
        let idx = parts.next().and_then(|p| p.parse().ok()).ok_or_else(invalid)?;
        let mid = parts.next().and_then(|p| p.parse().ok()).ok_or_else(invalid)?;
        let biz = Biz::parse(parts.next().ok_or_else(invalid)?)?;
        Ok(ArticleKey { biz, mid, idx })
    }
}

/// The ways a user may name an account on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountRef {
    /// The account's `__biz`.
    Biz(Biz),
    /// The original id, `gh_` followed by hex digits (or a legacy `wxid_`).
    Username(String),
    /// The 微信号 chosen by the account, e.g. `huanqiukexue`.
    Alias(String),
}

impl AccountRef {
    /// Recognises a biz, a `gh_`/`wxid_` username or an alias, in that order.
    pub fn parse(text: &str) -> Result<Self, ParseDomainError> {
        let text = text.trim();
        if let Ok(biz) = Biz::parse(text) {
            return Ok(AccountRef::Biz(biz));
        }
        if is_username(text) {
            return Ok(AccountRef::Username(text.to_string()));
        }
        if is_alias(text) {
            return Ok(AccountRef::Alias(text.to_string()));
        }
        Err(ParseDomainError(format!(
            "`{text}` is not a WeChat account: expected a biz (MzA5MjkzMTA1Mw==), a gh_ id or an alias (微信号)"
        )))
    }
}

/// `gh_` + 12 hex digits as WeChat issues them, or a personal-style `wxid_` id.
pub fn is_username(text: &str) -> bool {
    let rest = text.strip_prefix("gh_").or_else(|| text.strip_prefix("wxid_"));
    match rest {
        Some(rest) => !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric()),
        None => false,
    }
}

/// WeChat's rule for a 微信号: 6-20 characters, a letter first, then letters, digits,
/// `_` or `-`.
pub fn is_alias(text: &str) -> bool {
    let bytes = text.as_bytes();
    (6..=20).contains(&bytes.len())
        && bytes[0].is_ascii_alphabetic()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biz_accepts_padded_and_unpadded_and_normalises() {
        let padded = Biz::parse("MzA5MjkzMTA1Mw==").unwrap();
        let unpadded = Biz::parse("MzA5MjkzMTA1Mw").unwrap();
        assert_eq!(padded, unpadded);
        assert_eq!(padded.as_str(), "MzA5MjkzMTA1Mw==");
        assert_eq!(padded.numeric_id(), 3092931053);
        assert_eq!(Biz::parse("ODUzMjkwMzYx").unwrap().numeric_id(), 853290361);
        assert_eq!(Biz::from_numeric_id(853290361), Biz::parse("ODUzMjkwMzYx").unwrap());
    }

    #[test]
    fn biz_rejects_non_numeric_payloads() {
        for bad in ["", "huanqiukexue", "aGVsbG8=", "!!!", "MzA5MjkzMTA1Mw==x"] {
            assert!(Biz::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn account_ref_recognises_each_form() {
        assert!(matches!(AccountRef::parse("MzA5MjkzMTA1Mw==").unwrap(), AccountRef::Biz(_)));
        assert_eq!(AccountRef::parse("gh_49da5cc9fe18").unwrap(), AccountRef::Username("gh_49da5cc9fe18".into()));
        assert_eq!(AccountRef::parse("huanqiukexue").unwrap(), AccountRef::Alias("huanqiukexue".into()));
        assert!(AccountRef::parse("环球科学").is_err());
        assert!(AccountRef::parse("ab").is_err());
    }

    #[test]
    fn text_enums_round_trip() {
        for kind in ArticleKind::ALL {
            assert_eq!(kind.as_str().parse::<ArticleKind>().unwrap(), *kind);
        }
        for status in ArticleStatus::ALL {
            assert_eq!(status.as_str().parse::<ArticleStatus>().unwrap(), *status);
        }
        let error = "sideways".parse::<SourceKind>().unwrap_err();
        assert!(error.0.contains("profile_ext"), "{error}");
    }

    #[test]
    fn article_key_round_trips_through_text() {
        let key = ArticleKey { biz: Biz::parse("MzA5MjkzMTA1Mw==").unwrap(), mid: 2650735236, idx: 2 };
        assert_eq!(key.to_string().parse::<ArticleKey>().unwrap(), key);
        assert!("MzA5MjkzMTA1Mw==/x/1".parse::<ArticleKey>().is_err());
    }
}
