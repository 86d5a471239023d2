//! `mpwatch crawl`: one run in the foreground with a progress bar and a summary.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mpwatch_core::CrawlTrigger;
use mpwatch_core::secrets::Secrets;
use mpwatch_core::time::SystemClock;
use mpwatch_crawl::{CrawlOptions, CrawlSummary, Engine, Until};

use crate::cli::CrawlArgs;
use crate::context::AppContext;

/// Runs one crawl.
pub fn run(context: &AppContext, args: &CrawlArgs) -> Result<()> {
    let store = context.open_store()?;
    let secrets = context.load_secrets()?.unwrap_or_default();
    let mut accounts = Vec::new();
    for name in &args.accounts {
        accounts.push(store.resolve_account(name)?.id);
    }
    if let Some(group) = &args.group {
        let members = store.list_accounts(Some(group))?;
        if members.is_empty() {
            bail!("no account in group {group}");
        }
        accounts.extend(members.iter().map(|a| a.id));
    }
    let enabled = store
        .list_accounts(None)?
        .iter()
        .filter(|a| a.enabled && (accounts.is_empty() || accounts.contains(&a.id)))
        .count();
    if enabled == 0 && args.urls.is_empty() {
        bail!("no accounts to crawl (add one with `mpwatch account add`)");
    }
    if args.dry_run {
        return dry_run(&store, &accounts, &secrets, args);
    }
    let options = CrawlOptions {
        accounts,
        urls: args.urls.clone(),
        pages: !args.metrics_only,
        metrics: !args.no_metrics,
        backfill: args.backfill,
        trigger: CrawlTrigger::Adhoc,
        until: Until::Idle,
        ..CrawlOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let engine = Arc::new(Engine::new(store, context.config.clone(), secrets, Arc::new(SystemClock))?);
    let summary = runtime.block_on(async {
        let progress = spawn_progress(engine.clone());
        let result = engine.run(&options).await;
        progress.abort();
        result
    })?;
    print_summary(&summary, &engine);
    let did_nothing = summary.counts.articles_found == 0
        && summary.counts.articles_new == 0
        && summary.counts.articles_updated == 0
        && summary.counts.snapshots == 0
        && summary.outcomes.get("ok").is_none_or(|ok| *ok == 0);
    if did_nothing && summary.counts.failures > 0 {
        bail!(
            "the crawl could do nothing: no source was reachable ({} failures; see `mpwatch account list` for source health)",
            summary.counts.failures
        );
    }
    Ok(())
}

/// A spinner on stderr while the run goes on; indicatif hides it when stderr is not a
/// terminal.
fn spawn_progress(engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        loop {
            let done = engine.progress.processed.load(Ordering::Relaxed);
            let leased = engine.progress.leased.load(Ordering::Relaxed);
            bar.set_message(format!("{done} of {leased} work items done"));
            bar.tick();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    })
}

fn print_summary(summary: &CrawlSummary, engine: &Engine) {
    let counts = &summary.counts;
    println!("crawl #{} {} in {:.1} s", summary.run_id, summary.result, summary.duration_ms as f64 / 1000.0);
    println!("accounts:  {}", counts.accounts);
    println!(
        "articles:  {} found, {} new, {} updated",
        counts.articles_found, counts.articles_new, counts.articles_updated
    );
    println!("snapshots: {}", counts.snapshots);
    let outcomes: Vec<String> = summary.outcomes.iter().map(|(class, n)| format!("{class} {n}")).collect();
    println!("requests:  {}", if outcomes.is_empty() { "none".to_string() } else { outcomes.join(", ") });
    println!("cooldowns: {}", summary.cooldowns);
    println!("failures:  {} (queued for retry or given up)", counts.failures);
    println!("waiting:   {} work items (future ladder rungs, retries, pending credentials)", summary.queued);
    let expired: Vec<String> = engine
        .credentials()
        .states()
        .into_iter()
        .filter(|(_, state)| *state == mpwatch_crawl::credentials::CredentialState::Expired)
        .map(|(name, _)| name)
        .collect();
    if !expired.is_empty() {
        println!("expired credential sets: {} (add fresh ones to the secrets file)", expired.join(", "));
    }
}

fn dry_run(store: &mpwatch_store::Store, accounts: &[i64], secrets: &Secrets, args: &CrawlArgs) -> Result<()> {
    let sources = store.active_sources(accounts)?;
    println!("would ask {} sources:", sources.len());
    for (source, biz) in &sources {
        println!(
            "  #{} {} {} (account #{}, health {}{})",
            source.id,
            source.kind,
            source.locator,
            source.account_id,
            source.health,
            biz.as_ref().map(|b| format!(", biz {b}")).unwrap_or_default()
        );
    }
    for url in &args.urls {
        println!("would fetch {url}");
    }
    let now = mpwatch_core::time::now_unix();
    let candidates = store.metrics_candidates(now, 31 * 86_400)?;
    println!(
        "{} live articles within the snapshot ladder; {} client credential sets",
        candidates.len(),
        secrets.client.len()
    );
    println!("{} work items already queued", store.open_work()?);
    Ok(())
}
