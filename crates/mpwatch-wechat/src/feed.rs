//! RSS, Atom and JSON Feed documents as wewe-rss, RSSHub and similar tools publish them
//! per account: each item links to an article.

use serde::Serialize;

use crate::url::ArticleUrl;

/// Why a feed could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a readable RSS, Atom or JSON feed: {0}")]
pub struct FeedError(String);

/// One item of a feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedEntry {
    /// The item's link, canonicalised when it is a WeChat article URL.
    pub url: String,
    /// The item's link as an article URL, when it is one.
    #[serde(skip)]
    pub article: Option<ArticleUrl>,
    /// Title.
    pub title: Option<String>,
    /// Publication (else update) time, unix seconds.
    pub published_at: Option<i64>,
}

/// A parsed feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedFeed {
    /// The feed's title (usually the account name).
    pub title: Option<String>,
    /// Its items, in document order.
    pub entries: Vec<FeedEntry>,
}

/// Parses an RSS 0.9x/1.0/2.0, Atom or JSON Feed document.
pub fn parse_feed(bytes: &[u8]) -> Result<ParsedFeed, FeedError> {
    let feed = feed_rs::parser::parse(bytes).map_err(|e| FeedError(e.to_string()))?;
    let entries = feed
        .entries
        .into_iter()
        .filter_map(|entry| {
            // Some generators put the article URL only in the id (guid).
            let link = entry
                .links
                .iter()
                .map(|l| l.href.trim().to_string())
                .find(|href| href.starts_with("http"))
                .or_else(|| entry.id.starts_with("http").then(|| entry.id.trim().to_string()))?;
            let article = ArticleUrl::parse(&link).ok();
            Some(FeedEntry {
                url: article.as_ref().map(ArticleUrl::canonical).unwrap_or(link),
                article,
                title: entry
                    .title
                    .map(|t| crate::text::normalize_whitespace(&crate::text::decode_entities(&t.content))),
                published_at: entry.published.or(entry.updated).map(|t| t.timestamp()),
            })
        })
        .collect();
    Ok(ParsedFeed { title: feed.title.map(|t| t.content), entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&amp;mid=2653567890&amp;idx=1&amp;sn=ab12";

    #[test]
    fn atom_as_wewe_rss_writes_it() {
        let atom = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>https://rss.example.org/feeds/MP_WXS_1.atom</id><title>环球科学</title><updated>2025-11-10T04:00:10.000Z</updated>
  <entry><title type="html">黑洞 &amp;amp; 引力波</title><id>KDWh_qGpFN5Vu1TR9t30Mw</id>
    <link href="https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw"/><updated>2025-11-10T04:00:10.000Z</updated></entry>
  <entry><title>长链接</title><id>x2</id><link href="{ARTICLE}"/><published>2025-11-09T01:00:00Z</published></entry>
</feed>"#
        );
        let feed = parse_feed(atom.as_bytes()).unwrap();
        assert_eq!(feed.title.as_deref(), Some("环球科学"));
        assert_eq!(feed.entries.len(), 2);
        assert_eq!(feed.entries[0].url, "https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw");
        assert_eq!(feed.entries[0].title.as_deref(), Some("黑洞 & 引力波"));
        assert_eq!(feed.entries[0].published_at, Some(1762747210));
        assert_eq!(
            feed.entries[1].url,
            "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab12"
        );
        assert!(feed.entries[1].article.as_ref().unwrap().key().is_some());
    }

    #[test]
    fn rss_as_rsshub_writes_it() {
        let rss = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>科研圈</title><link>https://rsshub.example/wechat</link>
<item><title><![CDATA[今日推送]]></title><link>{ARTICLE}</link><guid isPermaLink="false">{ARTICLE}</guid><pubDate>Sun, 09 Nov 2025 01:00:00 GMT</pubDate></item>
</channel></rss>"#
        );
        let feed = parse_feed(rss.as_bytes()).unwrap();
        assert_eq!(feed.entries[0].title.as_deref(), Some("今日推送"));
        assert_eq!(feed.entries[0].published_at, Some(1762650000));
    }

    #[test]
    fn json_feed() {
        let json = format!(
            r#"{{"version":"https://jsonfeed.org/version/1.1","title":"中科院之声","items":[{{"id":"1","url":"{}","title":"新闻","date_published":"2025-11-09T01:00:00Z"}}]}}"#,
            ARTICLE.replace("&amp;", "&")
        );
        let feed = parse_feed(json.as_bytes()).unwrap();
        assert_eq!(feed.entries.len(), 1);
        assert!(feed.entries[0].article.as_ref().unwrap().key().is_some());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_feed(b"<html><body>not a feed</body></html>").is_err());
        assert!(parse_feed(b"").is_err());
    }
}
