//! Accounts as OPML, the format feed tools (wewe-rss, RSSHub, feed readers) exchange.
//!
//! Export: one `<outline type="rss">` per account with a feed (`xmlUrl`), its WeChat
//! profile page as `htmlUrl` when the biz is known; accounts with a biz but no feed get
//! an outline with only `htmlUrl`. Groups become folders (an account in two groups
//! appears in both). Import reads the same: folders are groups, `xmlUrl` a feed source,
//! a `__biz` in `htmlUrl` the account's biz. Importing an exported file changes nothing.

use anyhow::{Context as _, Result};
use mpwatch_core::SourceKind;
use mpwatch_store::accounts::{Account, NewAccount, NewSource};
use mpwatch_wechat::url::biz_from_url;
use opml::{Head, OPML, Outline};

/// Reads an OPML document into accounts to add.
pub fn parse(text: &str) -> Result<Vec<NewAccount>> {
    // The OPML parser recurses per level: refuse absurd nesting before it overflows.
    if nesting_depth(text)? > MAX_OPML_DEPTH {
        anyhow::bail!("OPML nested more than {MAX_OPML_DEPTH} levels deep");
    }
    let document = OPML::from_str(text).context("not a valid OPML document")?;
    let mut accounts = Vec::new();
    for outline in &document.body.outlines {
        collect(outline, &[], &mut accounts);
    }
    Ok(accounts)
}

/// Deepest OPML nesting accepted (real exports have a folder level or two).
const MAX_OPML_DEPTH: usize = 64;

/// The deepest element nesting of an XML text, counted on XML tokens (so `>` or `/`
/// inside attribute values, and tags inside comments or CDATA, count as what they are).
/// A text that stops being well-formed XML gives an error before it can go deeper.
fn nesting_depth(text: &str) -> Result<usize> {
    use xmlparser::{ElementEnd, Token, Tokenizer};
    let (mut depth, mut deepest) = (0usize, 0usize);
    for token in Tokenizer::from(text) {
        match token.context("not a valid OPML document")? {
            Token::ElementEnd { end: ElementEnd::Open, .. } => {
                depth += 1;
                deepest = deepest.max(depth);
                // Stop counting as soon as the answer is known: the text may be huge.
                if deepest > MAX_OPML_DEPTH {
                    break;
                }
            }
            Token::ElementEnd { end: ElementEnd::Close(..), .. } => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(deepest)
}

fn collect(outline: &Outline, folders: &[String], accounts: &mut Vec<NewAccount>) {
    let feed = outline.xml_url.as_deref().map(str::trim).filter(|url| !url.is_empty());
    let biz = outline.html_url.as_deref().and_then(biz_from_url);
    if feed.is_some() || biz.is_some() {
        let name = outline.title.clone().filter(|t| !t.trim().is_empty()).or_else(|| {
            let text = outline.text.trim();
            (!text.is_empty()).then(|| text.to_string())
        });
        let mut sources = Vec::new();
        if let Some(feed) = feed {
            sources.push(NewSource { kind: SourceKind::Feed, locator: feed.to_string() });
        }
        if let Some(biz) = &biz {
            sources.push(NewSource { kind: SourceKind::ProfileExt, locator: biz.to_string() });
        }
        let mut groups = folders.to_vec();
        if let Some(categories) = &outline.category {
            // RSS category syntax: comma-separated, slash-delimited paths.
            groups.extend(
                categories
                    .split(',')
                    .filter_map(|c| c.trim().rsplit('/').next())
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
        }
        accounts.push(NewAccount { biz, nickname: name, groups, sources, ..NewAccount::default() });
    }
    if !outline.outlines.is_empty() {
        let mut nested = folders.to_vec();
        let folder = outline.title.as_deref().unwrap_or(&outline.text).trim();
        if !folder.is_empty() && feed.is_none() {
            nested.push(folder.to_string());
        }
        for child in &outline.outlines {
            collect(child, &nested, accounts);
        }
    }
}

/// Writes accounts as OPML; returns the document and how many accounts could not be
/// expressed (no feed and no biz).
pub fn render(accounts: &[Account]) -> Result<(String, usize)> {
    let mut document =
        OPML { head: Some(Head { title: Some("mpwatch accounts".into()), ..Head::default() }), ..OPML::default() };
    let mut skipped = 0;
    let mut folders: Vec<Outline> = Vec::new();
    for account in accounts {
        let Some(outline) = outline_of(account) else {
            skipped += 1;
            continue;
        };
        if account.groups.is_empty() {
            document.body.outlines.push(outline);
            continue;
        }
        for group in &account.groups {
            let position = match folders.iter().position(|f| &f.text == group) {
                Some(position) => position,
                None => {
                    folders.push(Outline { text: group.clone(), title: Some(group.clone()), ..Outline::default() });
                    folders.len() - 1
                }
            };
            folders[position].outlines.push(outline.clone());
        }
    }
    document.body.outlines.extend(folders);
    let xml = document.to_string().context("cannot write OPML")?;
    Ok((xml, skipped))
}

fn outline_of(account: &Account) -> Option<Outline> {
    let feed = account.sources.iter().find(|s| s.kind == SourceKind::Feed).map(|s| s.locator.clone());
    let profile = account
        .biz
        .as_ref()
        .map(|biz| format!("https://mp.weixin.qq.com/mp/profile_ext?action=home&__biz={biz}#wechat_redirect"));
    if feed.is_none() && profile.is_none() {
        return None;
    }
    let name = account.display_name();
    Some(Outline {
        text: name.clone(),
        title: Some(name),
        r#type: feed.as_ref().map(|_| "rss".to_string()),
        xml_url: feed,
        html_url: profile,
        ..Outline::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_nesting_is_refused_before_the_parser_recurses() {
        let deep = format!(
            "<opml version=\"2.0\"><head/><body>{}{}</body></opml>",
            "<outline text=\"x\">".repeat(10_000),
            "</outline>".repeat(10_000)
        );
        let error = parse(&deep).unwrap_err().to_string();
        assert_eq!(error, "OPML nested more than 64 levels deep");
        assert_eq!(nesting_depth("<a><b/><c><d></d></c></a>").unwrap(), 3);
    }

    #[test]
    fn nesting_hidden_in_attribute_values_or_comments_is_still_counted() {
        // Found by fuzzing: a scan for `<` and `>` took `text="/>"` for a self-closing
        // tag and `</x>` in a comment for a closing one, so 5,000 levels got through to
        // the recursive parser and overflowed the stack.
        for open in ["<outline text=\"/>\">", "<outline text=\"x\"><!-- ></x> -->"] {
            let deep = format!("<opml version=\"2.0\"><head/><body>{}</body></opml>", open.repeat(5_000));
            let error = parse(&deep).unwrap_err().to_string();
            assert!(
                error == "OPML nested more than 64 levels deep" || error.starts_with("not a valid OPML"),
                "{error}"
            );
        }
        assert_eq!(nesting_depth("<a x=\"/>\"><!-- <b> --><![CDATA[<c>]]></a>").unwrap(), 1);
    }

    use super::*;

    #[test]
    fn reads_folders_feeds_and_biz() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>wewe-rss</title></head><body>
  <outline text="科学" title="科学">
    <outline text="环球科学" type="rss" xmlUrl="https://rss.example.org/feeds/MP_WXS_1.atom"
             htmlUrl="https://mp.weixin.qq.com/mp/profile_ext?action=home&amp;__biz=MzA5MjkzMTA1Mw=="/>
  </outline>
  <outline text="科研圈" type="rss" xmlUrl="https://rss.example.org/feeds/MP_WXS_2.atom"/>
</body></opml>"#;
        let accounts = parse(text).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].groups, vec!["科学"]);
        assert_eq!(accounts[0].biz.as_ref().unwrap().as_str(), "MzA5MjkzMTA1Mw==");
        assert_eq!(accounts[0].nickname.as_deref(), Some("环球科学"));
        assert!(accounts[1].groups.is_empty());
        assert_eq!(accounts[1].sources[0].locator, "https://rss.example.org/feeds/MP_WXS_2.atom");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("not xml at all").is_err());
    }
}
