//! Article URLs in every form they are found in, and their canonical form.
//!
//! | form | example | identity |
//! |---|---|---|
//! | permanent | `https://mp.weixin.qq.com/s?__biz=B&mid=M&idx=I&sn=S&chksm=..#rd` | key (biz, mid, idx) + sn |
//! | legacy | `http://mp.weixin.qq.com/mp/appmsg/show?__biz=B&appmsgid=M&itemidx=I&sign=S` | key + sn |
//! | short | `https://mp.weixin.qq.com/s/<token>` | none until the page is fetched |
//! | temporary | `https://mp.weixin.qq.com/s?src=3&timestamp=..&signature=..` (Sogou) | none until fetched; expires |
//!
//! URLs copied out of HTML or JSON carry `&amp;` and `\/`; both are undone first.
//! Tracking and session parameters (`chksm`, `scene`, `key`, `pass_ticket`, ...) are
//! dropped, so the canonical URL never carries a credential.

use std::fmt;

use mpwatch_core::{ArticleKey, Biz};
use percent_encoding::percent_decode_str;

/// The host of every canonical URL.
pub const CANONICAL_HOST: &str = "mp.weixin.qq.com";

/// Why a text is not an article URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not a URL at all, or not http(s).
    #[error("`{0}` is not an http(s) URL")]
    NotUrl(String),
    /// A URL of another site.
    #[error("{0} is not a WeChat article URL (expected https://mp.weixin.qq.com/s?__biz=... or /s/<token>)")]
    NotWechat(String),
    /// A WeChat URL that is not an article (a profile page, say).
    #[error("{0} is a WeChat URL but not an article")]
    NotArticle(String),
    /// An article URL with a malformed parameter.
    #[error("{url}: {problem}")]
    BadParameter {
        /// The URL.
        url: String,
        /// What is wrong.
        problem: String,
    },
}

/// An article URL, classified.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArticleUrl {
    /// A URL that names the article: its key is known without fetching.
    Permanent {
        /// (biz, mid, idx).
        key: ArticleKey,
        /// The signature, when the URL has one.
        sn: Option<String>,
    },
    /// `/s/<token>`: the page reveals the key.
    Short {
        /// The token after `/s/`.
        token: String,
    },
    /// A Sogou temporary link: the page reveals the key, if it has not expired.
    Temporary {
        /// The link as given (decoded), needed to fetch it.
        url: String,
    },
}

impl ArticleUrl {
    /// Parses an article URL on mp.weixin.qq.com.
    pub fn parse(text: &str) -> Result<ArticleUrl, UrlError> {
        ArticleUrl::parse_with_hosts(text, &[])
    }

    /// Parses an article URL on mp.weixin.qq.com or on one of `extra_hosts`
    /// (`host` or `host:port`, e.g. the simulator's address).
    pub fn parse_with_hosts(text: &str, extra_hosts: &[&str]) -> Result<ArticleUrl, UrlError> {
        let cleaned = unescape(text);
        let url = url::Url::parse(&cleaned).map_err(|_| UrlError::NotUrl(text.trim().to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::NotUrl(text.trim().to_string()));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let host_port = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let is_wechat = host == CANONICAL_HOST || host == "weixin.qq.com";
        if !is_wechat
            && !extra_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host_port) || h.eq_ignore_ascii_case(&host))
        {
            return Err(UrlError::NotWechat(cleaned));
        }
        let path = url.path();
        if let Some(token) = path.strip_prefix("/s/") {
            let token = token.trim_end_matches('/');
            if token.is_empty()
                || token.len() > 64
                || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(UrlError::BadParameter { url: cleaned, problem: "malformed short-link token".into() });
            }
            return Ok(ArticleUrl::Short { token: token.to_string() });
        }
        let params = Params::new(url.query().unwrap_or_default());
        let (mid_name, idx_name, sn_name) = match path {
            "/s" | "/s/" => ("mid", "idx", "sn"),
            "/mp/appmsg/show" | "/mp/rumor" => ("appmsgid", "itemidx", "sign"),
            _ => return Err(UrlError::NotArticle(cleaned)),
        };
        let Some(biz_text) = params.get("__biz") else {
            if params.get("signature").is_some() || params.get("src").is_some() {
                return Ok(ArticleUrl::Temporary { url: cleaned });
            }
            return Err(UrlError::NotArticle(cleaned));
        };
        let bad = |problem: String| UrlError::BadParameter { url: cleaned.clone(), problem };
        let biz = Biz::parse(&biz_text).map_err(|e| bad(e.0))?;
        let mid =
            params.get(mid_name).or_else(|| params.get("mid")).ok_or_else(|| bad(format!("missing `{mid_name}`")))?;
        let mid: u64 =
            mid.parse().ok().filter(|m| *m > 0).ok_or_else(|| bad(format!("`{mid_name}` is not a positive number")))?;
        let idx = params.get(idx_name).or_else(|| params.get("idx")).unwrap_or_else(|| "1".to_string());
        let idx: u32 = idx
            .parse()
            .ok()
            .filter(|i| (1..=64).contains(i))
            .ok_or_else(|| bad(format!("`{idx_name}` is not a position 1-64")))?;
        let sn = params
            .get(sn_name)
            .or_else(|| params.get("sn"))
            .filter(|sn| !sn.is_empty() && sn.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        Ok(ArticleUrl::Permanent { key: ArticleKey { biz, mid, idx }, sn })
    }

    /// The key, when the URL carries it.
    pub fn key(&self) -> Option<&ArticleKey> {
        match self {
            ArticleUrl::Permanent { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The canonical URL: `https://mp.weixin.qq.com/s?__biz=..&mid=..&idx=..&sn=..` for
    /// permanent URLs, `https://mp.weixin.qq.com/s/<token>` for short ones, the link
    /// itself for temporary ones.
    pub fn canonical(&self) -> String {
        match self {
            ArticleUrl::Permanent { key, sn } => canonical_url(key, sn.as_deref()),
            ArticleUrl::Short { token } => format!("https://{CANONICAL_HOST}/s/{token}"),
            ArticleUrl::Temporary { url } => url.clone(),
        }
    }
}

impl fmt::Display for ArticleUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The canonical URL of a key (with its `sn` when known).
pub fn canonical_url(key: &ArticleKey, sn: Option<&str>) -> String {
    let mut url = format!("https://{CANONICAL_HOST}/s?__biz={}&mid={}&idx={}", key.biz, key.mid, key.idx);
    if let Some(sn) = sn {
        url.push_str("&sn=");
        url.push_str(sn);
    }
    url
}

/// The `__biz` of any WeChat URL that carries one (article, profile, album, ...).
pub fn biz_from_url(text: &str) -> Option<Biz> {
    let cleaned = unescape(text);
    let url = url::Url::parse(&cleaned).ok()?;
    Params::new(url.query()?).get("__biz").and_then(|biz| Biz::parse(&biz).ok())
}

/// Undoes the escaping URLs pick up in HTML and JSON: `&amp;` (repeatedly), `\/`,
/// `\x26`, `\u0026`, and surrounding whitespace or quotes.
pub fn unescape(text: &str) -> String {
    let mut text = text.trim().trim_matches(|c| c == '"' || c == '\'').replace("\\/", "/");
    for (from, to) in [("\\x26", "&"), ("\\u0026", "&"), ("\\x3d", "="), ("\\u003d", "=")] {
        if text.contains(from) {
            text = text.replace(from, to);
        }
    }
    while text.contains("&amp;") {
        text = text.replace("&amp;", "&");
    }
    text
}

/// A query string's parameters, percent-decoded, `+` kept literally (it never means a
/// space in these URLs), first occurrence wins.
struct Params<'a> {
    query: &'a str,
}

impl<'a> Params<'a> {
    fn new(query: &'a str) -> Self {
        Params { query }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode_str(value).decode_utf8_lossy().trim().to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LONG: &str = "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=2&sn=0123abcd&chksm=8b0e1234&scene=21#wechat_redirect";

    fn key_of(text: &str) -> ArticleKey {
        ArticleUrl::parse(text).unwrap().key().cloned().unwrap()
    }

    #[test]
    fn long_form_is_canonicalised() {
        let url = ArticleUrl::parse(LONG).unwrap();
        assert_eq!(
            url.canonical(),
            "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=2&sn=0123abcd"
        );
        let key = url.key().unwrap();
        assert_eq!((key.biz.as_str(), key.mid, key.idx), ("MzA5MjkzMTA1Mw==", 2653567890, 2));
    }

    #[test]
    fn escaped_forms_give_the_same_key() {
        let expected = key_of(LONG);
        for variant in [
            LONG.replace('&', "&amp;"),
            LONG.replace('&', "&amp;amp;"),
            LONG.replace('/', "\\/"),
            LONG.replace("https://", "http://"),
            LONG.replace("==", "%3D%3D"),
            LONG.replace('&', "\\x26"),
            format!("  \"{LONG}\"  "),
            LONG.replace("#wechat_redirect", "#rd"),
            "http://mp.weixin.qq.com/s?mid=2653567890&__biz=MzA5MjkzMTA1Mw==&sn=0123abcd&idx=2&key=secretkey&pass_ticket=tkt".into(),
        ] {
            assert_eq!(key_of(&variant), expected, "{variant}");
        }
    }

    #[test]
    fn credentials_never_reach_the_canonical_url() {
        let url =
            "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=1&idx=1&sn=ab&key=SECRET&pass_ticket=TICKET&uin=UIN";
        let canonical = ArticleUrl::parse(url).unwrap().canonical();
        assert!(!canonical.contains("SECRET") && !canonical.contains("TICKET") && !canonical.contains("UIN"));
    }

    #[test]
    fn legacy_form_is_understood() {
        let key = key_of(
            "http://mp.weixin.qq.com/mp/appmsg/show?__biz=MjM5MjAzODU2MA==&appmsgid=10000382&itemidx=1&sign=b5e0f9a1",
        );
        assert_eq!((key.mid, key.idx), (10000382, 1));
    }

    #[test]
    fn short_links_have_no_key_until_fetched() {
        let url = ArticleUrl::parse("https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw?scene=1#rd").unwrap();
        assert_eq!(url, ArticleUrl::Short { token: "KDWh_qGpFN5Vu1TR9t30Mw".into() });
        assert_eq!(url.key(), None);
        assert_eq!(url.canonical(), "https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw");
    }

    #[test]
    fn sogou_temporary_links_are_recognised() {
        let url = "https://mp.weixin.qq.com/s?src=3&timestamp=1521513236&ver=1&signature=abc*def";
        assert!(matches!(ArticleUrl::parse(url).unwrap(), ArticleUrl::Temporary { .. }));
    }

    #[test]
    fn other_urls_are_refused_with_a_reason() {
        assert!(matches!(
            ArticleUrl::parse("https://example.com/s?__biz=MzA5MjkzMTA1Mw==&mid=1"),
            Err(UrlError::NotWechat(_))
        ));
        assert!(matches!(
            ArticleUrl::parse("https://mp.weixin.qq.com/mp/profile_ext?action=home&__biz=MzA5MjkzMTA1Mw=="),
            Err(UrlError::NotArticle(_))
        ));
        assert!(matches!(ArticleUrl::parse("not a url"), Err(UrlError::NotUrl(_))));
        assert!(matches!(ArticleUrl::parse("ftp://mp.weixin.qq.com/s/abc"), Err(UrlError::NotUrl(_))));
        assert!(matches!(
            ArticleUrl::parse("https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=x&idx=1"),
            Err(UrlError::BadParameter { .. })
        ));
    }

    #[test]
    fn extra_hosts_allow_the_simulator() {
        let url = "http://127.0.0.1:8080/s?__biz=MzA5MjkzMTA1Mw==&mid=5&idx=1&sn=ff";
        assert!(ArticleUrl::parse(url).is_err());
        let parsed = ArticleUrl::parse_with_hosts(url, &["127.0.0.1:8080"]).unwrap();
        assert_eq!(parsed.canonical(), "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=5&idx=1&sn=ff");
    }

    #[test]
    fn biz_is_found_in_any_wechat_url() {
        let biz = biz_from_url(
            "https://mp.weixin.qq.com/mp/profile_ext?action=home&amp;__biz=MzA5MjkzMTA1Mw==#wechat_redirect",
        );
        assert_eq!(biz.unwrap().as_str(), "MzA5MjkzMTA1Mw==");
    }

    fn arb_biz() -> impl Strategy<Value = Biz> {
        (1u64..=u64::MAX / 2).prop_map(|n| {
            use base64::Engine as _;
            Biz::parse(&base64::engine::general_purpose::STANDARD.encode(n.to_string())).unwrap()
        })
    }

    const TRACKING: &[&str] = &[
        "chksm",
        "scene",
        "srcid",
        "sharer_sharetime",
        "key",
        "ascene",
        "devicetype",
        "pass_ticket",
        "from",
        "ver",
        "version",
    ];

    proptest! {
        #[test]
        fn canonicalisation_is_idempotent(biz in arb_biz(), mid in 1u64..u64::MAX / 2, idx in 1u32..=8, sn in "[0-9a-f]{32}") {
            let key = ArticleKey { biz, mid, idx };
            let once = canonical_url(&key, Some(&sn));
            let twice = ArticleUrl::parse(&once).unwrap().canonical();
            prop_assert_eq!(&once, &twice);
            let reparsed = ArticleUrl::parse(&twice).unwrap();
            prop_assert_eq!(reparsed.key(), Some(&key));
        }

        #[test]
        fn order_tracking_and_escaping_never_change_the_key(
            biz in arb_biz(), mid in 1u64..u64::MAX / 2, idx in 1u32..=8, sn in "[0-9a-f]{32}",
            extra in proptest::collection::vec((0..TRACKING.len(), "[a-zA-Z0-9_*]{0,12}"), 0..5),
            order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
            amp in 0usize..3, fragment in prop_oneof![Just(""), Just("#rd"), Just("#wechat_redirect")],
            scheme in prop_oneof![Just("http"), Just("https")],
        ) {
            let key = ArticleKey { biz: biz.clone(), mid, idx };
            let mut params = vec![
                format!("__biz={biz}"), format!("mid={mid}"), format!("idx={idx}"), format!("sn={sn}"),
            ];
            params.extend(extra.iter().map(|(name, value)| format!("{}={value}", TRACKING[*name])));
            // A deterministic shuffle from the generated seed.
            let mut seed = order;
            for i in (1..params.len()).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                params.swap(i, (seed >> 33) as usize % (i + 1));
            }
            let separator = ["&", "&amp;", "&amp;amp;"][amp];
            let url = format!("{scheme}://mp.weixin.qq.com/s?{}{fragment}", params.join(separator));
            let parsed = ArticleUrl::parse(&url).unwrap();
            prop_assert_eq!(parsed.key(), Some(&key));
            prop_assert_eq!(parsed.canonical(), canonical_url(&key, Some(&sn)));
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,200}") {
            let _ = ArticleUrl::parse(&text);
            let _ = biz_from_url(&text);
        }
    }
}
