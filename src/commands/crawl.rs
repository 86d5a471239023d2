//! `mpwatch crawl`: one run. With the service running (it holds the crawler lock), the
//! crawl is handed to it as a request and followed here; otherwise it runs in the
//! foreground under the crawler lock, so that two processes never both fetch.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mpwatch_core::CrawlTrigger;
use mpwatch_core::secrets::Secrets;
use mpwatch_core::time::SystemClock;
use mpwatch_crawl::holder::{holder_name, node_name};
use mpwatch_crawl::{CrawlOptions, CrawlSummary, Engine, Progress, Until};
use mpwatch_service::RequestOptions;
use mpwatch_service::lock::lock_holder_alive;
use mpwatch_store::Store;
use mpwatch_store::nodes::{CrawlerLock, LockOutcome, NodeClaim};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::Exit;
use crate::cli::CrawlArgs;
use crate::context::AppContext;

/// Runs one crawl, here or in the service.
pub fn run(context: &AppContext, args: &CrawlArgs) -> Result<()> {
    let mut store = context.open_store()?;
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
        let secrets = context.load_secrets()?.unwrap_or_default();
        return dry_run(&store, &accounts, &secrets, args);
    }
    // Canonical forms only: a link copied from a WeChat client carries its session
    // (key, uin, pass_ticket), which must reach neither the queue nor a log.
    let mut urls = Vec::new();
    for url in &args.urls {
        let parsed = mpwatch_wechat::url::ArticleUrl::parse(url)
            .map_err(|_| anyhow::anyhow!("--url {}: not a WeChat article URL", redact_query(url)))?;
        urls.push(parsed.canonical());
    }
    let request = RequestOptions {
        accounts,
        urls,
        pages: !args.metrics_only,
        metrics: !args.no_metrics,
        backfill: args.backfill,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let holder = holder_name();
        let node = node_name(&context.config, store.connection().is_postgres());
        let egress = context.config.egress();
        let mut waiting_said = false;
        loop {
            let now = mpwatch_core::time::now_unix();
            let claim = NodeClaim { node: &node, holder: &holder, role: "crawl", egress: &egress };
            let outcome = store.write(|tx| tx.take_crawler_lock(&claim, |lock| lock_holder_alive(lock, now), now))?;
            match outcome {
                LockOutcome::Taken => return foreground(context, store, request, args, NodeHolder { node, holder }).await,
                LockOutcome::Held(lock) if lock.role == "service" => {
                    return hand_over(&mut store, &request, args, &lock).await;
                }
                LockOutcome::Held(lock) => {
                    if !waiting_said {
                        let place = if node.is_empty() { String::new() } else { format!(" as node {node:?}") };
                        eprintln!(
                            "another `mpwatch crawl` ({}) is crawling this database{place}; waiting for it to finish (Ctrl-C gives up)",
                            lock.holder
                        );
                        waiting_said = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = tokio::signal::ctrl_c() => return Err(Exit(130).into()),
                    }
                }
            }
        }
    })
}

/// This process as the holder of its node's crawler lock.
#[derive(Debug, Clone)]
struct NodeHolder {
    node: String,
    holder: String,
}

/// The crawl in this process, holding the crawler lock (with a heartbeat) until the end.
/// SIGINT / SIGTERM stop it gracefully (a second Ctrl-C quits at once).
async fn foreground(
    context: &AppContext,
    store: Store,
    request: RequestOptions,
    args: &CrawlArgs,
    holder: NodeHolder,
) -> Result<()> {
    let secrets = context.load_secrets()?.unwrap_or_default();
    let options = CrawlOptions {
        accounts: request.accounts,
        urls: request.urls,
        pages: request.pages,
        metrics: request.metrics,
        backfill: request.backfill,
        trigger: CrawlTrigger::Adhoc,
        until: Until::Idle,
        ..CrawlOptions::default()
    };
    let heartbeat = spawn_heartbeat(context.open_store()?, holder.clone());
    let clock: Arc<dyn mpwatch_core::time::Clock> = Arc::new(SystemClock);
    let webhooks = secrets.webhook.clone();
    let (alerts, dispatcher) = mpwatch_service::alerts::spawn(
        context.config.alerts.clone(),
        webhooks,
        mpwatch_crawl::db::Db::new(context.open_store()?),
        clock.clone(),
    );
    // A foreground crawl stops within 5 s of Ctrl-C: in-flight work gets at most 4 s.
    let mut config = context.config.clone();
    config.service.stop_timeout = config.service.stop_timeout.min(Duration::from_secs(4));
    let engine = Arc::new(Engine::new(store, config, secrets, clock)?.with_alerts(alerts));
    let stop = CancellationToken::new();
    let signalled = spawn_stop_on_signals(stop.clone())?;
    let progress = Arc::new(Progress::default());
    let spinner = spawn_progress(progress.clone());
    let result = engine.run_with(&options, progress, &stop).await;
    spinner.abort();
    heartbeat.abort();
    // Let the dispatcher send what the run raised (it ends with its last sender).
    let expired = match Arc::try_unwrap(engine) {
        Ok(engine) => {
            let credentials = expired_credentials(&engine);
            drop(engine);
            let _ = tokio::time::timeout(Duration::from_secs(15), dispatcher).await;
            credentials
        }
        Err(engine) => expired_credentials(&engine),
    };
    let mut lock_store = context.open_store()?;
    let now = mpwatch_core::time::now_unix();
    lock_store.write(|tx| {
        // Items leased ahead whose lease ran out while they waited are still ours.
        tx.release_leases_of(&holder.holder, now)?;
        tx.release_crawler_lock(&holder.node, &holder.holder)
    })?;
    let summary = result?;
    print_summary(&summary, &expired);
    if let Some(code) = signalled.get() {
        return Err(Exit(*code).into());
    }
    did_something(&summary, args)
}

/// Writes the lock's heartbeat every 2 s, so that others see the crawl is alive.
fn spawn_heartbeat(store: Store, holder: NodeHolder) -> tokio::task::JoinHandle<()> {
    let store = Arc::new(std::sync::Mutex::new(store));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (store, holder) = (store.clone(), holder.clone());
            let beat = tokio::task::spawn_blocking(move || {
                let mut store = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = mpwatch_core::time::now_unix();
                store.write(|tx| tx.heartbeat_crawler_lock(&holder.node, &holder.holder, Some("foreground crawl"), now))
            })
            .await;
            if let Ok(Err(error)) = beat {
                tracing::warn!(%error, "cannot refresh the crawler lock");
            }
        }
    })
}

/// The first SIGINT / SIGTERM stops the run gracefully; a second SIGINT exits at once.
/// The returned cell holds the exit code once a signal came (130 / 143).
fn spawn_stop_on_signals(stop: CancellationToken) -> Result<Arc<std::sync::OnceLock<u8>>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let code = Arc::new(std::sync::OnceLock::new());
    let cell = code.clone();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        };
        let _ = cell.set(first);
        eprintln!("stopping… (work in flight finishes, the rest goes back to the queue; Ctrl-C again quits at once)");
        stop.cancel();
        if interrupt.recv().await.is_some() {
            std::process::exit(130);
        }
    });
    Ok(code)
}

/// Hands the crawl to the running service and follows it like a foreground run. Ctrl-C
/// detaches without cancelling.
async fn hand_over(store: &mut Store, request: &RequestOptions, args: &CrawlArgs, service: &CrawlerLock) -> Result<()> {
    let options = serde_json::to_string(request)?;
    let requested_by = format!(
        "{}@{} pid {}",
        std::env::var("USER").unwrap_or_else(|_| "?".into()),
        holder_name().split_once('@').map(|(_, host)| host.to_string()).unwrap_or_default(),
        std::process::id()
    );
    let now = mpwatch_core::time::now_unix();
    let id = store.write(|tx| tx.add_crawl_request(&options, Some(&requested_by), now))?;
    if args.enqueue {
        println!("handed to the running service ({}) as request #{id}", service.holder);
        return Ok(());
    }
    eprintln!(
        "the running service ({}) does the fetching: handed over as request #{id}; following it (Ctrl-C detaches, the crawl goes on)",
        service.holder
    );
    let bar = spinner();
    let started = tokio::time::Instant::now();
    let request = loop {
        let Some(request) = store.crawl_request(id)? else { bail!("request #{id} disappeared from the database") };
        match request.run_id.map(|run| store.crawl_run(run)).transpose()?.flatten() {
            Some(run) => bar.set_message(format!(
                "run #{}: {} articles found, {} new, {} snapshots",
                run.id, run.counts.articles_found, run.counts.articles_new, run.counts.snapshots
            )),
            None => bar.set_message(format!("request #{id} waiting for the service")),
        }
        bar.tick();
        if matches!(request.state.as_str(), "done" | "failed" | "cancelled") {
            break request;
        }
        if request.state == "pending" && started.elapsed() > Duration::from_secs(30) {
            let alive = store
                .crawler_lock(&service.node)?
                .is_some_and(|lock| lock_holder_alive(&lock, mpwatch_core::time::now_unix()));
            if !alive {
                bar.finish_and_clear();
                bail!("the service stopped before starting request #{id}; it stays queued for its next start");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.finish_and_clear();
                eprintln!("detached; the service goes on with request #{id} (`mpwatch status` shows it)");
                return Err(Exit(130).into());
            }
        }
    };
    bar.finish_and_clear();
    let Some(run) = request.run_id.map(|run| store.crawl_run(run)).transpose()?.flatten() else {
        bail!("request #{id} {}: {}", request.state, request.message.unwrap_or_default());
    };
    let summary = CrawlSummary {
        run_id: run.id,
        counts: run.counts,
        outcomes: store.run_outcomes(run.id)?,
        cooldowns: 0,
        queued: store.open_work()?,
        result: run.result.clone(),
        message: run.message.clone(),
        duration_ms: (run.finished_at.unwrap_or(run.started_at) - run.started_at).max(0) as u64 * 1000,
    };
    print_summary(&summary, &[]);
    if request.state != "done" {
        bail!("request #{id} {}: {}", request.state, request.message.or(run.message).unwrap_or_default());
    }
    did_something(&summary, args)
}

/// A URL without its query (which may hold a session), for messages.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

/// Exit 1 when the crawl could do nothing at all.
fn did_something(summary: &CrawlSummary, _args: &CrawlArgs) -> Result<()> {
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

fn expired_credentials(engine: &Engine) -> Vec<String> {
    engine
        .credentials()
        .states()
        .into_iter()
        .filter(|(_, state)| *state == mpwatch_crawl::credentials::CredentialState::Expired)
        .map(|(name, _)| name)
        .collect()
}

fn spinner() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar
}

/// A spinner on stderr while the run goes on; indicatif hides it when stderr is not a
/// terminal.
fn spawn_progress(progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = spinner();
        loop {
            let done = progress.processed.load(Ordering::Relaxed);
            let leased = progress.leased.load(Ordering::Relaxed);
            bar.set_message(format!("{done} of {leased} work items done"));
            bar.tick();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    })
}

fn print_summary(summary: &CrawlSummary, expired: &[String]) {
    let counts = &summary.counts;
    println!("crawl #{} {} in {:.1} s", summary.run_id, summary.result, summary.duration_ms as f64 / 1000.0);
    if let Some(message) = &summary.message {
        println!("           {message}");
    }
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
        println!("would fetch {}", redact_query(url));
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
