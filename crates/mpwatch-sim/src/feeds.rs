//! Per-account feeds shaped like the tools users run: Atom as wewe-rss writes it (short
//! links), RSS as RSSHub writes it (long links), and JSON Feed.

use crate::render::html_escape;
use crate::world::{SimAccount, SimArticle, World};

/// RFC 3339 UTC text of unix seconds.
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let seconds = t.rem_euclid(86_400);
    let date = crate::render::beijing_text(days * 86_400 - 8 * 3600);
    let date = date.split(' ').next().unwrap_or_default().to_string();
    format!("{date}T{:02}:{:02}:{:02}Z", seconds / 3600, seconds % 3600 / 60, seconds % 60)
}

/// RFC 2822 text of unix seconds (RSS `pubDate`).
fn rfc2822(t: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let iso = rfc3339(t);
    let (year, rest) = iso.split_at(4);
    let month: usize = rest[1..3].parse().unwrap_or(1);
    let day = &rest[4..6];
    let time = &rest[7..15];
    let weekday = DAYS[t.div_euclid(86_400).rem_euclid(7) as usize];
    format!("{weekday}, {day} {} {year} {time} GMT", MONTHS[month.saturating_sub(1).min(11)])
}

fn long_url(article: &SimArticle) -> String {
    format!(
        "https://mp.weixin.qq.com/s?__biz={}&mid={}&idx={}&sn={}",
        article.key.biz, article.key.mid, article.key.idx, article.sn
    )
}

/// wewe-rss style Atom: entry ids are short-link tokens, links are short links.
pub fn atom(base: &str, account: &SimAccount, articles: &[SimArticle], world: &World, updated: String) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n  <id>{base}/feeds/MP_WXS_{id}.atom</id>\n  <title>{name}</title>\n  <updated>{updated}</updated>\n  <generator>WeWe-RSS</generator>\n  <link rel=\"alternate\" href=\"{base}/feeds/MP_WXS_{id}.atom\"/>\n",
        id = account.numeric_id,
        name = html_escape(&account.nickname),
    );
    for article in articles {
        let token = world.short_token(article);
        out.push_str(&format!(
            "  <entry>\n    <title type=\"html\"><![CDATA[{title}]]></title>\n    <id>{token}</id>\n    <link href=\"https://mp.weixin.qq.com/s/{token}\"/>\n    <updated>{published}</updated>\n    <summary type=\"html\"><![CDATA[{digest}]]></summary>\n  </entry>\n",
            title = article.title,
            published = rfc3339(article.published_at),
            digest = article.digest,
        ));
    }
    out.push_str("</feed>\n");
    out
}

/// RSSHub style RSS 2.0 with long article links.
pub fn rss(base: &str, account: &SimAccount, articles: &[SimArticle]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss xmlns:atom=\"http://www.w3.org/2005/Atom\" version=\"2.0\">\n<channel>\n<title><![CDATA[{name}]]></title>\n<link>{base}/feeds/MP_WXS_{id}.rss</link>\n<description><![CDATA[{name} - Made with love by RSSHub]]></description>\n<generator>RSSHub</generator>\n",
        id = account.numeric_id,
        name = account.nickname,
    );
    for article in articles {
        let url = html_escape(&long_url(article));
        out.push_str(&format!(
            "<item>\n<title><![CDATA[{title}]]></title>\n<description><![CDATA[{digest}]]></description>\n<pubDate>{date}</pubDate>\n<guid isPermaLink=\"false\">{url}</guid>\n<link>{url}</link>\n<author><![CDATA[{author}]]></author>\n</item>\n",
            title = article.title,
            digest = article.digest,
            date = rfc2822(article.published_at),
            author = article.author,
        ));
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

/// JSON Feed 1.1 with long article links.
pub fn json_feed(base: &str, account: &SimAccount, articles: &[SimArticle]) -> String {
    let items: Vec<serde_json::Value> = articles
        .iter()
        .map(|article| {
            serde_json::json!({
                "id": long_url(article),
                "url": long_url(article),
                "title": article.title,
                "summary": article.digest,
                "date_published": rfc3339(article.published_at),
                "authors": [{"name": article.author}],
            })
        })
        .collect();
    serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": account.nickname,
        "feed_url": format!("{base}/feeds/MP_WXS_{}.json", account.numeric_id),
        "items": items,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(1_762_338_600), "2025-11-05T10:30:00Z");
        assert_eq!(rfc2822(1_762_650_000), "Sun, 09 Nov 2025 01:00:00 GMT");
    }
}
