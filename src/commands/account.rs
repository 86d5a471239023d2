//! `mpwatch account add | list | remove | import-opml | export-opml`.

use anyhow::{Context as _, Result, bail};
use mpwatch_core::{AccountRef, SourceKind};
use mpwatch_store::accounts::{Account, NewAccount, NewSource};
use mpwatch_wechat::url::{ArticleUrl, UrlError, biz_from_url};

use crate::cli::{AccountAddArgs, AccountCommand};
use crate::context::{AppContext, read_input};
use crate::opml_io;

/// Runs an `account` subcommand.
pub fn run(context: &AppContext, command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::Add(args) => add(context, &args),
        AccountCommand::List(args) => {
            let accounts = context.open_store_read_only()?.list_accounts(args.group.as_deref())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&accounts)?);
            } else {
                print_table(&accounts);
            }
            Ok(())
        }
        AccountCommand::Remove(args) => {
            let mut store = context.open_store()?;
            let account = store.resolve_account(&args.account)?;
            let name = account.display_name();
            if args.purge {
                let report = store.write(|tx| tx.purge_account(account.id))?;
                println!(
                    "deleted account #{} ({name}): {} articles, {} snapshots, {} sources",
                    account.id, report.articles, report.snapshots, report.sources
                );
            } else if store.write(|tx| tx.disable_account(account.id, context.now()))? {
                println!("disabled account #{} ({name}); its data is kept (--purge deletes it)", account.id);
            } else {
                println!("account #{} ({name}) was already disabled", account.id);
            }
            Ok(())
        }
        AccountCommand::ImportOpml(args) => {
            let text = read_input(&args.file)?;
            let entries = opml_io::parse(&text).with_context(|| format!("cannot import {}", args.file.display()))?;
            let mut store = context.open_store()?;
            let now = context.now();
            let (mut created, mut merged) = (0, 0);
            store.write(|tx| {
                for mut entry in entries {
                    entry.groups.extend(args.groups.iter().cloned());
                    if tx.add_account(&entry, now)?.created {
                        created += 1;
                    } else {
                        merged += 1;
                    }
                }
                Ok(())
            })?;
            println!("imported {} accounts: {created} new, {merged} already tracked", created + merged);
            Ok(())
        }
        AccountCommand::ExportOpml(args) => {
            let accounts = context.open_store_read_only()?.list_accounts(args.group.as_deref())?;
            let (xml, skipped) = opml_io::render(&accounts)?;
            match &args.output {
                Some(path) => std::fs::write(path, xml).with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{xml}"),
            }
            if skipped > 0 {
                eprintln!("note: {skipped} accounts have neither a feed nor a biz and were not exported");
            }
            Ok(())
        }
    }
}

fn add(context: &AppContext, args: &AccountAddArgs) -> Result<()> {
    let mut new = account_from_target(&args.target, args.feed, &context.config.wechat.base_url)?;
    new.nickname = args.name.clone();
    new.groups = args.groups.clone();
    let mut store = context.open_store()?;
    let added = store.write(|tx| tx.add_account(&new, context.now()))?;
    let account = store.resolve_account(&format!("#{}", added.id))?;
    let sources: Vec<String> = account.sources.iter().map(|s| s.kind.to_string()).collect();
    let name = if account.nickname.is_some() || account.alias.is_some() || account.username.is_some() {
        format!(" ({})", account.display_name())
    } else {
        String::new()
    };
    println!(
        "{} account #{}{name}{}; sources: {}",
        if added.created { "added" } else { "already tracked, merged into" },
        account.id,
        account.biz.as_ref().map(|b| format!(", biz {b}")).unwrap_or_default(),
        if sources.is_empty() { "none".to_string() } else { sources.join(", ") }
    );
    Ok(())
}

/// Understands what the user typed: an article URL (the biz comes from the long form;
/// a short link is kept as a manual source and resolved on the first crawl), a URL of
/// any WeChat page with a `__biz`, a feed URL (with `--feed`), a biz, a gh_ id or an alias.
pub fn account_from_target(target: &str, is_feed: bool, base_url: &url::Url) -> Result<NewAccount> {
    let target = target.trim();
    let looks_like_url = target.contains("://");
    if is_feed {
        let url = url::Url::parse(target).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
        let Some(url) = url else { bail!("`{target}` is not an http(s) feed URL") };
        return Ok(NewAccount {
            sources: vec![NewSource { kind: SourceKind::Feed, locator: url.to_string() }],
            ..NewAccount::default()
        });
    }
    if !looks_like_url {
        let reference = AccountRef::parse(target).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(match reference {
            AccountRef::Biz(biz) => NewAccount {
                sources: vec![NewSource { kind: SourceKind::ProfileExt, locator: biz.to_string() }],
                ..NewAccount::with_biz(biz)
            },
            AccountRef::Username(username) => NewAccount {
                sources: vec![NewSource { kind: SourceKind::MpBackend, locator: username.clone() }],
                username: Some(username),
                ..NewAccount::default()
            },
            AccountRef::Alias(alias) => NewAccount {
                sources: vec![NewSource { kind: SourceKind::MpBackend, locator: alias.clone() }],
                alias: Some(alias),
                ..NewAccount::default()
            },
        });
    }
    let host = base_url.host_str().map(|host| match base_url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    });
    let extra_hosts: Vec<&str> = host.as_deref().into_iter().collect();
    match ArticleUrl::parse_with_hosts(target, &extra_hosts) {
        Ok(url @ ArticleUrl::Permanent { .. }) => {
            let biz = url.key().map(|key| key.biz.clone()).context("permanent URL without a key")?;
            Ok(NewAccount {
                sources: vec![
                    NewSource { kind: SourceKind::ProfileExt, locator: biz.to_string() },
                    NewSource { kind: SourceKind::Manual, locator: url.canonical() },
                ],
                ..NewAccount::with_biz(biz)
            })
        }
        Ok(url @ ArticleUrl::Short { .. }) => Ok(NewAccount {
            sources: vec![NewSource { kind: SourceKind::Manual, locator: url.canonical() }],
            ..NewAccount::default()
        }),
        Ok(ArticleUrl::Temporary { .. }) => {
            bail!(
                "{target} is a temporary (Sogou) link that expires; open it and add the permanent article URL instead"
            )
        }
        Err(UrlError::NotArticle(_)) => match biz_from_url(target) {
            Some(biz) => Ok(NewAccount {
                sources: vec![NewSource { kind: SourceKind::ProfileExt, locator: biz.to_string() }],
                ..NewAccount::with_biz(biz)
            }),
            None => bail!("{target} is a WeChat URL without an account (__biz) in it"),
        },
        Err(UrlError::NotWechat(url)) => {
            bail!("{url} is neither a WeChat article URL nor a feed (for a feed URL, add --feed)")
        }
        Err(error) => Err(error.into()),
    }
}

fn print_table(accounts: &[Account]) {
    if accounts.is_empty() {
        println!("no accounts (add one with `mpwatch account add`)");
        return;
    }
    let mut table = crate::table::new(&["id", "name", "biz", "alias", "groups", "sources", "articles"]);
    for account in accounts {
        let sources: Vec<String> = account.sources.iter().map(|s| format!("{}:{}", s.kind, s.health)).collect();
        let mut name = account.display_name();
        if !account.enabled {
            name.push_str(" (disabled)");
        }
        table.add_row(vec![
            account.id.to_string(),
            name,
            account.biz.as_ref().map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
            account.alias.clone().unwrap_or_else(|| "-".into()),
            if account.groups.is_empty() { "-".to_string() } else { account.groups.join(",") },
            sources.join(" "),
            account.article_count.to_string(),
        ]);
    }
    crate::table::right_align(&mut table, &[0, 6]);
    println!("{table}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> url::Url {
        url::Url::parse("https://mp.weixin.qq.com").unwrap()
    }

    #[test]
    fn each_target_form_becomes_the_right_account() {
        let long = account_from_target(
            "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab&chksm=1#rd",
            false,
            &base(),
        )
        .unwrap();
        assert_eq!(long.biz.unwrap().as_str(), "MzA5MjkzMTA1Mw==");
        assert_eq!(
            long.sources[1].locator,
            "https://mp.weixin.qq.com/s?__biz=MzA5MjkzMTA1Mw==&mid=2653567890&idx=1&sn=ab"
        );

        let short = account_from_target("https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw", false, &base()).unwrap();
        assert!(short.biz.is_none());
        assert_eq!(
            short.sources,
            vec![NewSource {
                kind: SourceKind::Manual,
                locator: "https://mp.weixin.qq.com/s/KDWh_qGpFN5Vu1TR9t30Mw".into()
            }]
        );

        let alias = account_from_target("huanqiukexue", false, &base()).unwrap();
        assert_eq!(alias.alias.as_deref(), Some("huanqiukexue"));

        let feed = account_from_target("https://rss.example.org/feeds/MP_WXS_1.atom", true, &base()).unwrap();
        assert_eq!(feed.sources[0].kind, SourceKind::Feed);

        let profile = account_from_target(
            "https://mp.weixin.qq.com/mp/profile_ext?action=home&__biz=MzA5MjkzMTA1Mw==",
            false,
            &base(),
        )
        .unwrap();
        assert!(profile.biz.is_some());
    }

    #[test]
    fn other_urls_are_refused_with_one_line() {
        let error = account_from_target("https://example.com/blog/post", false, &base()).unwrap_err().to_string();
        assert!(error.contains("neither a WeChat article URL nor a feed"), "{error}");
        assert!(!error.contains('\n'));
    }
}
