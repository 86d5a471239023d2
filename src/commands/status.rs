//! `mpwatch status [--json]`: the service and everything an operator checks — jobs,
//! running work, the queue, sources, credential sets (names only, never a secret),
//! cooldowns, alerts of the last 24 hours, the database.

use anyhow::Result;
use mpwatch_core::config::Config;
use mpwatch_service::jobs::jobs_of;
use mpwatch_service::lock::lock_holder_alive;
use serde::Serialize;
use serde_json::json;

use crate::context::AppContext;

#[derive(Debug, Serialize)]
struct JobStatus {
    name: String,
    kind: String,
    cron: String,
    timezone: String,
    last_fire_at: Option<i64>,
    last_result: Option<String>,
    last_finished_at: Option<i64>,
    last_message: Option<String>,
    last_run_id: Option<i64>,
    next_fire_at: Option<i64>,
}

/// Prints the status; `json` gives one object with the same content.
pub fn run(context: &AppContext, json_output: bool) -> Result<()> {
    let store = context.open_store_read_only()?;
    let now = mpwatch_core::time::now_unix();
    let config = &context.config;
    let lock = store.crawler_lock()?;
    let service = lock.as_ref().filter(|lock| lock.role == "service" && lock_holder_alive(lock, now));
    let crawl = lock.as_ref().filter(|lock| lock.role == "crawl" && lock_holder_alive(lock, now));
    let states = store.job_states()?;
    let jobs: Vec<JobStatus> = jobs_of(config)?
        .into_iter()
        .map(|job| {
            let state = states.iter().find(|s| s.name == job.entry.name);
            JobStatus {
                name: job.entry.name.clone(),
                kind: job.entry.job.as_str().to_string(),
                cron: job.entry.cron.clone(),
                timezone: config.job_timezone(&job.entry).to_string(),
                last_fire_at: state.and_then(|s| s.last_fire_at),
                last_result: state.and_then(|s| s.last_result.clone()),
                last_finished_at: state.and_then(|s| s.last_finished_at),
                last_message: state.and_then(|s| s.last_message.clone()),
                last_run_id: state.and_then(|s| s.last_run_id),
                next_fire_at: job.next_after(now),
            }
        })
        .collect();
    let running = store.running_runs()?;
    let queue = store.queue_depth()?;
    let requests = store.open_crawl_requests()?;
    let accounts = store.list_accounts(None)?;
    let credentials = store.credential_states()?;
    let cooldowns = store.active_cooldowns(now)?;
    let alerts = store.alerts_since(now - 86_400)?;
    let file_bytes = std::fs::metadata(&context.db_path).map(|m| m.len()).unwrap_or(0);
    let wal_bytes = std::fs::metadata(format!("{}-wal", context.db_path.display())).map(|m| m.len()).unwrap_or(0);
    let schema_version = store.schema_version()?;

    if json_output {
        let sources: Vec<_> = accounts
            .iter()
            .filter(|a| a.enabled)
            .flat_map(|a| {
                a.sources.iter().map(move |s| {
                    json!({
                        "account_id": a.id, "account": a.display_name(), "source_id": s.id, "kind": s.kind.as_str(),
                        "health": s.health.as_str(), "consecutive_failures": s.consecutive_failures,
                        "last_ok_at": s.last_ok_at, "last_error": s.last_error, "next_retry_at": s.next_retry_at,
                    })
                })
            })
            .collect();
        let value = json!({
            "now": now,
            "service": service.map(|l| json!({"running": true, "holder": l.holder, "since": l.acquired_at, "heartbeat_at": l.heartbeat_at, "status": l.status}))
                .unwrap_or_else(|| json!({"running": false})),
            "foreground_crawl": crawl.map(|l| json!({"holder": l.holder, "since": l.acquired_at})),
            "jobs": jobs,
            "running_runs": running,
            "queue": queue,
            "requests": requests,
            "sources": sources,
            "credentials": credentials,
            "cooldowns": cooldowns,
            "alerts_24h": alerts,
            "database": {"path": context.db_path.display().to_string(), "file_bytes": file_bytes, "wal_bytes": wal_bytes, "schema_version": schema_version},
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }

    let when = |t: Option<i64>| t.map(|t| local_time(config, t)).unwrap_or_else(|| "-".into());
    match service {
        Some(lock) => println!(
            "service: running ({}, since {}; heartbeat {} s ago): {}",
            lock.holder,
            local_time(config, lock.acquired_at),
            (now - lock.heartbeat_at).max(0),
            lock.status.as_deref().unwrap_or("")
        ),
        None => println!("service: not running"),
    }
    if let Some(lock) = crawl {
        println!("foreground crawl: {} since {}", lock.holder, local_time(config, lock.acquired_at));
    }
    println!("jobs (times {}):", config.timezone);
    for job in &jobs {
        println!(
            "  {:<12} {:<11} last {} {}{}; next {}",
            job.name,
            job.kind,
            when(job.last_fire_at),
            job.last_result.as_deref().unwrap_or("never run"),
            job.last_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(),
            when(job.next_fire_at)
        );
    }
    if !running.is_empty() {
        println!("running:");
        for run in &running {
            println!(
                "  #{} {} ({}) since {}: {} found, {} new, {} snapshots, {} failures",
                run.id,
                run.job,
                run.trigger,
                local_time(config, run.started_at),
                run.counts.articles_found,
                run.counts.articles_new,
                run.counts.snapshots,
                run.counts.failures
            );
        }
    }
    if !requests.is_empty() {
        println!("ad-hoc requests:");
        for request in &requests {
            println!(
                "  #{} {} (asked {} by {})",
                request.id,
                request.state,
                local_time(config, request.requested_at),
                request.requested_by.as_deref().unwrap_or("?")
            );
        }
    }
    let queue_line: Vec<String> = queue
        .iter()
        .map(|q| {
            let due = if q.state == "pending" { format!(", next due {}", when(q.next_due)) } else { String::new() };
            format!("{} {} {}{due}", q.kind, q.state, q.items)
        })
        .collect();
    println!("queue: {}", if queue_line.is_empty() { "empty".to_string() } else { queue_line.join("; ") });
    let unhealthy: Vec<String> = accounts
        .iter()
        .filter(|a| a.enabled)
        .flat_map(|a| a.sources.iter().map(move |s| (a, s)))
        .filter(|(_, s)| s.consecutive_failures > 0)
        .map(|(a, s)| {
            format!(
                "{} {} #{}: {} ({} in a row): {}",
                a.display_name(),
                s.kind.as_str(),
                s.id,
                s.health.as_str(),
                s.consecutive_failures,
                s.last_error.as_deref().unwrap_or("")
            )
        })
        .collect();
    let source_count: usize = accounts.iter().filter(|a| a.enabled).map(|a| a.sources.len()).sum();
    println!("sources: {source_count}, {} failing", unhealthy.len());
    for line in &unhealthy {
        println!("  {line}");
    }
    let credential_line: Vec<String> = credentials
        .iter()
        .map(|c| {
            let cooling = cooldowns.iter().find(|cd| cd.scope == "credential" && cd.target == c.name);
            match cooling {
                Some(cd) => format!("{} cooling down until {}", c.name, local_time(config, cd.until)),
                None => format!("{} {} since {}", c.name, c.state, local_time(config, c.since)),
            }
        })
        .collect();
    println!(
        "credential sets: {}",
        if credential_line.is_empty() { "none seen".to_string() } else { credential_line.join("; ") }
    );
    let host_cooldowns: Vec<String> = cooldowns
        .iter()
        .filter(|c| c.scope == "host")
        .map(|c| format!("{} until {} (level {})", c.target, local_time(config, c.until), c.level))
        .collect();
    println!("cooldowns: {}", if host_cooldowns.is_empty() { "none".to_string() } else { host_cooldowns.join("; ") });
    println!("alerts (24 h): {}", alerts.len());
    for alert in alerts.iter().take(20) {
        println!(
            "  {} {} {}: {}{}",
            local_time(config, alert.at),
            alert.kind,
            alert.subject,
            alert.message,
            if alert.suppressed { " (repeat, not sent)" } else { "" }
        );
    }
    println!(
        "database: {} ({:.1} MB, WAL {:.1} MB), schema version {schema_version}",
        context.db_path.display(),
        file_bytes as f64 / 1e6,
        wal_bytes as f64 / 1e6
    );
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` in the configured time zone.
fn local_time(config: &Config, at: i64) -> String {
    let zone = mpwatch_core::schedule::time_zone(&config.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_zoned_datetime(zone).strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| at.to_string())
}
