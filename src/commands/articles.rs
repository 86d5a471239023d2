//! `mpwatch articles [show]`.

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use mpwatch_core::ArticleKey;
use mpwatch_store::articles::ArticleFilter;
use mpwatch_wechat::url::ArticleUrl;

use crate::cli::{ArticlesArgs, ArticlesCommand};
use crate::context::AppContext;

/// Lists or shows articles.
pub fn run(context: &AppContext, args: &ArticlesArgs) -> Result<()> {
    let store = context.open_store_read_only()?;
    if let Some(ArticlesCommand::Show { article }) = &args.show {
        return show(context, &store, article, args.json);
    }
    let mut filter = ArticleFilter { limit: args.limit, ..ArticleFilter::default() };
    if let Some(account) = &args.account {
        filter.account_id = Some(store.resolve_account(account)?.id);
    }
    if let Some(since) = &args.since {
        filter.since = Some(local_midnight(since, &context.config.timezone)?);
    }
    if let Some(status) = &args.status {
        filter.status =
            Some(status.parse().map_err(|e: mpwatch_core::domain::ParseDomainError| anyhow::anyhow!("--status: {e}"))?);
    }
    if args.json {
        // A JSON array written row by row: the whole history never sits in memory.
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut first = true;
        out.write_all(b"[")?;
        store.each_article(&filter, |article| {
            let separator: &[u8] = if std::mem::take(&mut first) { b"\n  " } else { b",\n  " };
            out.write_all(separator)?;
            serde_json::to_writer(&mut out, &article)?;
            Ok::<(), anyhow::Error>(())
        })?;
        out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
        out.flush()?;
        return Ok(());
    }
    let articles = store.list_articles(&filter)?;
    if articles.is_empty() {
        println!("no articles");
        return Ok(());
    }
    let published = format!("published ({})", context.config.timezone);
    let mut table = crate::table::new(&[
        "account",
        "biz",
        "mid",
        "idx",
        "title",
        &published,
        "kind",
        "status",
        "reads",
        "赞",
        "在看",
        "shares",
        "comments",
        "snapshots",
    ]);
    for a in &articles {
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        table.add_row(vec![
            a.account_name.clone().unwrap_or_default(),
            a.biz.clone(),
            a.mid.to_string(),
            a.idx.to_string(),
            truncate(a.title.as_deref().unwrap_or(""), 24),
            a.published_at.map(|t| local_time(t, &context.config.timezone)).unwrap_or_default(),
            a.kind.clone(),
            a.status.clone(),
            number(a.reads),
            number(a.likes),
            number(a.wows),
            number(a.shares),
            number(a.comments),
            a.snapshot_count.to_string(),
        ]);
    }
    crate::table::right_align(&mut table, &[2, 3, 8, 9, 10, 11, 12, 13]);
    println!("{table}");
    Ok(())
}

fn show(context: &AppContext, store: &mpwatch_store::Store, text: &str, json: bool) -> Result<()> {
    let article = match ArticleUrl::parse(text) {
        Ok(short @ ArticleUrl::Short { .. }) => store.article_by_short_url(&short.canonical())?,
        Ok(url) => match url.key() {
            Some(key) => store.article_by_key(key)?,
            None => None,
        },
        Err(_) => {
            let key: ArticleKey =
                text.parse().map_err(|e: mpwatch_core::domain::ParseDomainError| anyhow::anyhow!("{e}"))?;
            store.article_by_key(&key)?
        }
    };
    let Some(article) = article else { bail!("no stored article matches {text}") };
    let snapshots = store.snapshots_of(article.id)?;
    if json {
        let value = serde_json::json!({ "article": article, "snapshots": snapshots });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let tz = &context.config.timezone;
    println!("{}", article.title.as_deref().unwrap_or("(no title)"));
    println!("url:       {}", article.url);
    println!("key:       {}", article.key());
    println!("published: {} ({tz})", article.published_at.map(|t| local_time(t, tz)).unwrap_or_default());
    println!("kind:      {} ({})", article.kind, article.copyright.map(|c| c.as_str()).unwrap_or("?"));
    println!(
        "status:    {}{}",
        article.status,
        article.status_changed_at.map(|t| format!(" since {}", local_time(t, tz))).unwrap_or_default()
    );
    let observed = format!("observed ({tz})");
    let mut table = crate::table::new(&[&observed, "age", "rung", "reads", "赞", "在看", "shares", "comments"]);
    for s in &snapshots {
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        table.add_row(vec![
            local_time(s.snapshot.observed_at, tz),
            s.age_seconds
                .map(|a| humantime::format_duration(std::time::Duration::from_secs(a.max(0) as u64)).to_string())
                .unwrap_or_default(),
            s.snapshot
                .rung_seconds
                .map(|r| humantime::format_duration(std::time::Duration::from_secs(r.max(0) as u64)).to_string())
                .unwrap_or_else(|| "ad hoc".into()),
            format!("{}{}", number(s.snapshot.reads), if s.snapshot.reads_capped { " (10万+)" } else { "" }),
            number(s.snapshot.likes),
            number(s.snapshot.wows),
            number(s.snapshot.shares),
            number(s.snapshot.comments),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(chars).collect::<String>())
    }
}

/// `YYYY-MM-DD HH:MM` in the configured zone.
pub fn local_time(t: i64, zone: &str) -> String {
    let Ok(timestamp) = jiff::Timestamp::from_second(t) else { return t.to_string() };
    match jiff::tz::TimeZone::get(zone) {
        Ok(tz) => timestamp.to_zoned_datetime(tz).strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => timestamp.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// Midnight of a date in the configured zone, as unix seconds.
fn local_midnight(date: &str, zone: &str) -> Result<i64> {
    let civil: jiff::civil::Date = date.parse().with_context(|| format!("--since {date}: expected YYYY-MM-DD"))?;
    let tz = jiff::tz::TimeZone::get(zone).with_context(|| format!("unknown time zone {zone}"))?;
    Ok(civil.to_zoned_datetime(tz).with_context(|| format!("--since {date}"))?.timestamp().as_second())
}
