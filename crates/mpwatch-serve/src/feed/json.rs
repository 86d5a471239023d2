//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>), counts under `_mpwatch`.

use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::Feed;
use super::content::item_html;

/// RFC 3339 in `tz`.
pub fn rfc3339(at: i64, tz: &TimeZone) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// The feed as JSON Feed.
pub fn write(feed: &Feed, tz: &TimeZone) -> String {
    let items: Vec<Value> = feed
        .items
        .iter()
        .map(|item| {
            let counts = item.counts.as_ref().map(|c| {
                json!({
                    "reads": c.reads, "reads_capped": c.reads_capped, "likes": c.likes, "wows": c.wows,
                    "shares": c.shares, "comments": c.comments, "observed_at": rfc3339(c.observed_at, tz),
                })
            });
            let mut value = json!({
                "id": item.url,
                "url": item.url,
                "title": item.title,
                "content_html": item_html(item, tz),
                "date_published": rfc3339(item.published_at, tz),
                "date_modified": rfc3339(item.updated_at.max(item.published_at), tz),
                "authors": [{"name": item.author.clone().unwrap_or_else(|| item.account.clone())}],
                "_mpwatch": {
                    "article_id": item.id, "account_id": item.account_id, "account": item.account,
                    "kind": item.kind, "copyright": item.copyright, "status": item.status, "counts": counts,
                },
            });
            if let Some(digest) = &item.digest {
                value["summary"] = json!(digest);
            }
            if let Some(cover) = &item.cover_url {
                value["image"] = json!(cover);
            }
            value
        })
        .collect();
    let document = json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed.title,
        "home_page_url": feed.home_url,
        "feed_url": feed.self_url,
        "description": feed.description,
        "language": "zh-CN",
        "items": items,
    });
    // A `Value` always serialises; `{:#}` is its pretty form.
    format!("{document:#}")
}
