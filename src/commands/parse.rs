//! `mpwatch parse FILE|- [--url URL] [--json] [--text]`.

use anyhow::{Context as _, Result};
use mpwatch_wechat::page::{ArticlePage, parse_page};
use mpwatch_wechat::url::ArticleUrl;
use serde_json::{Value, json};

use crate::cli::ParseArgs;

/// Parses one saved page and prints what was extracted.
pub fn run(args: &ParseArgs) -> Result<()> {
    let bytes = if args.file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("cannot read standard input")?;
        bytes
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let mut page = parse_page(&bytes);
    if let Some(url) = &args.url {
        fill_from_url(&mut page, url)?;
    }
    let value = to_json(&page, args.text);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_text(&value);
    }
    Ok(())
}

/// The page's own values win; the URL fills in what the page lacks (temporary links
/// and short links have no key of their own).
fn fill_from_url(page: &mut ArticlePage, url: &str) -> Result<()> {
    match ArticleUrl::parse(url)? {
        ArticleUrl::Permanent { key, sn } => {
            page.biz.get_or_insert(key.biz);
            page.mid.get_or_insert(key.mid);
            page.idx.get_or_insert(key.idx);
            if page.sn.is_none() {
                page.sn = sn;
            }
        }
        short @ ArticleUrl::Short { .. } => {
            page.short_url.get_or_insert(short.canonical());
        }
        ArticleUrl::Temporary { .. } => {}
    }
    Ok(())
}

/// Exactly the documented keys, `null` when absent.
fn to_json(page: &ArticlePage, with_text: bool) -> Value {
    let published_at = page
        .published_at
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    let article = page.kind.is_article();
    let mut value = json!({
        "kind": page.kind.as_str(),
        "title": page.title,
        "account_name": page.account_name,
        "account_username": page.account_username,
        "account_alias": page.account_alias,
        "biz": page.biz.as_ref().map(|b| b.to_string()),
        "mid": page.mid.map(|m| m.to_string()),
        "idx": page.idx,
        "sn": page.sn,
        "canonical_url": page.canonical_url(),
        "published_at": published_at,
        "author": page.author,
        "digest": page.digest,
        "cover_url": page.cover_url,
        "copyright": page.copyright.map(|c| c.as_str()),
        "source_url": page.source_url,
        "comment_id": page.comment_id,
        "item_show_type": page.item_show_type,
        "text_chars": article.then_some(page.text_chars),
        "image_count": article.then_some(page.image_urls.len()),
        "reason": page.reason,
    });
    if with_text && let Value::Object(map) = &mut value {
        map.insert("content_text".into(), json!(page.content_text));
    }
    value
}

fn print_text(value: &Value) {
    let Value::Object(map) = value else { return };
    for (key, field) in map {
        let shown = match field {
            Value::Null => continue,
            Value::String(text) if key == "content_text" => format!("\n{text}"),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        println!("{key}: {shown}");
    }
}
