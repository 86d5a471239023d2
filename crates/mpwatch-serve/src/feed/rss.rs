//! RSS 2.0, written by the `rss` crate; the counts in `<mpwatch:counts>`, the full text
//! in `content:encoded`, the digest (or the text) in `description`.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use rss::extension::atom::{AtomExtension, Link};
use rss::extension::{Extension, ExtensionMap};
use rss::{Channel, Guid, Item};

use super::atom::extension_elements;
use super::content::item_html;
use super::items::FeedItem;
use super::{Feed, NAMESPACE};

/// RFC 2822 in `tz`, as RSS wants its dates.
fn date(at: i64, tz: &TimeZone) -> Option<String> {
    let zoned = jiff::Timestamp::from_second(at).ok()?.to_zoned_datetime(tz.clone());
    jiff::fmt::rfc2822::to_string(&zoned).ok()
}

fn extensions(item: &FeedItem, tz: &TimeZone) -> ExtensionMap {
    let mut by_name: BTreeMap<String, Vec<Extension>> = BTreeMap::new();
    for (name, attrs, value) in extension_elements(item, tz) {
        let extension = Extension { name: format!("mpwatch:{name}"), value, attrs, children: BTreeMap::new() };
        by_name.entry(name).or_default().push(extension);
    }
    BTreeMap::from([("mpwatch".to_string(), by_name)])
}

/// The feed as RSS.
pub fn write(feed: &Feed, tz: &TimeZone) -> String {
    let items = feed
        .items
        .iter()
        .map(|item| {
            let html = item_html(item, tz);
            Item {
                title: Some(item.title.clone()),
                link: Some(item.url.clone()),
                description: Some(item.digest.clone().unwrap_or_else(|| html.clone())),
                content: Some(html),
                guid: Some(Guid { value: item.url.clone(), permalink: true }),
                pub_date: date(item.published_at, tz),
                extensions: extensions(item, tz),
                dublin_core_ext: Some(rss::extension::dublincore::DublinCoreExtension {
                    creators: vec![item.author.clone().unwrap_or_else(|| item.account.clone())],
                    ..Default::default()
                }),
                ..Item::default()
            }
        })
        .collect();
    let channel = Channel {
        title: feed.title.clone(),
        link: feed.home_url.clone(),
        description: feed.description.clone(),
        language: Some("zh-CN".into()),
        last_build_date: date(feed.updated_at.max(1), tz),
        generator: Some(format!("mpwatch {}", env!("CARGO_PKG_VERSION"))),
        atom_ext: Some(AtomExtension {
            links: vec![Link {
                href: feed.self_url.clone(),
                rel: "self".into(),
                mime_type: Some("application/rss+xml".into()),
                ..Link::default()
            }],
        }),
        items,
        namespaces: BTreeMap::from([("mpwatch".to_string(), NAMESPACE.to_string())]),
        ..Channel::default()
    };
    channel.to_string()
}
