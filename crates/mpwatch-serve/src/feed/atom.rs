//! Atom 1.0 (RFC 4287), written by `atom_syndication`; the counts in `<mpwatch:counts>`.

use std::collections::BTreeMap;

use atom_syndication::extension::{Extension, ExtensionMap};
use atom_syndication::{Content, Entry, FixedDateTime, Generator, Link, Person, Text};
use jiff::tz::TimeZone;

use super::content::item_html;
use super::items::FeedItem;
use super::{Feed, NAMESPACE};

/// A time as Atom's date type, with the zone's offset at that instant.
fn date(at: i64, tz: &TimeZone) -> FixedDateTime {
    let offset = jiff::Timestamp::from_second(at).map(|t| tz.to_offset(t).seconds()).unwrap_or(0);
    let utc = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default();
    chrono::FixedOffset::east_opt(offset).map(|offset| utc.with_timezone(&offset)).unwrap_or_else(|| utc.fixed_offset())
}

/// The `mpwatch:` elements of an item (shared with RSS, whose extension type has the
/// same shape).
pub fn extension_elements(item: &FeedItem, tz: &TimeZone) -> Vec<(String, BTreeMap<String, String>, Option<String>)> {
    let mut elements = Vec::new();
    let account = BTreeMap::from([("id".to_string(), item.account_id.to_string())]);
    elements.push(("account".to_string(), account, Some(item.account.clone())));
    if let Some(counts) = &item.counts {
        let mut attrs = BTreeMap::new();
        let mut put = |name: &str, value: Option<i64>| {
            if let Some(value) = value {
                attrs.insert(name.to_string(), value.to_string());
            }
        };
        put("reads", counts.reads);
        put("likes", counts.likes);
        put("wows", counts.wows);
        put("shares", counts.shares);
        put("comments", counts.comments);
        attrs.insert("readsCapped".into(), counts.reads_capped.to_string());
        attrs.insert("observed".into(), super::json::rfc3339(counts.observed_at, tz));
        elements.push(("counts".to_string(), attrs, None));
    }
    elements
}

fn extensions(item: &FeedItem, tz: &TimeZone) -> ExtensionMap {
    let mut by_name: BTreeMap<String, Vec<Extension>> = BTreeMap::new();
    for (name, attrs, value) in extension_elements(item, tz) {
        let extension = Extension { name: format!("mpwatch:{name}"), value, attrs, children: BTreeMap::new() };
        by_name.entry(name).or_default().push(extension);
    }
    BTreeMap::from([("mpwatch".to_string(), by_name)])
}

/// The feed as Atom.
pub fn write(feed: &Feed, tz: &TimeZone) -> String {
    let entries = feed
        .items
        .iter()
        .map(|item| Entry {
            title: Text::plain(item.title.clone()),
            id: item.url.clone(),
            updated: date(item.updated_at.max(item.published_at), tz),
            published: Some(date(item.published_at, tz)),
            authors: vec![Person {
                name: item.author.clone().unwrap_or_else(|| item.account.clone()),
                ..Person::default()
            }],
            links: vec![Link { href: item.url.clone(), rel: "alternate".into(), ..Link::default() }],
            summary: item.digest.clone().map(Text::plain),
            content: Some(Content {
                value: Some(item_html(item, tz)),
                content_type: Some("html".into()),
                ..Content::default()
            }),
            extensions: extensions(item, tz),
            ..Entry::default()
        })
        .collect();
    let document = atom_syndication::Feed {
        title: Text::plain(feed.title.clone()),
        id: feed.self_url.clone(),
        updated: date(feed.updated_at, tz),
        authors: vec![Person { name: "mpwatch".into(), ..Person::default() }],
        generator: Some(Generator {
            value: "mpwatch".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            ..Generator::default()
        }),
        links: vec![
            Link {
                href: feed.self_url.clone(),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Link::default()
            },
            Link { href: feed.home_url.clone(), rel: "alternate".into(), ..Link::default() },
        ],
        subtitle: Some(Text::plain(feed.description.clone())),
        entries,
        namespaces: BTreeMap::from([("mpwatch".to_string(), NAMESPACE.to_string())]),
        lang: Some("zh-CN".into()),
        ..atom_syndication::Feed::default()
    };
    document.to_string()
}
