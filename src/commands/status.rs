//! `mpwatch status [--json]`: the service and everything an operator checks — jobs,
//! running work, the queue, sources, credential sets (names only, never a secret),
//! cooldowns, alerts of the last 24 hours, the database.

use anyhow::Result;
use mpwatch_core::config::Config;
use mpwatch_service::status::{NodeStatus, Status};

use crate::context::AppContext;

/// Prints the status; `json` gives one object with the same content.
pub fn run(context: &AppContext, json_output: bool) -> Result<()> {
    let store = context.open_store_read_only()?;
    let config = &context.config;
    let status = Status::read(&store, config, mpwatch_core::time::now_unix())?;
    if json_output {
        println!("{}", serde_json::to_string_pretty(&status.to_json())?);
        return Ok(());
    }
    let Status {
        now,
        service,
        foreground_crawl: crawl,
        nodes,
        jobs,
        running,
        queue,
        requests,
        credentials,
        cooldowns,
        alerts,
        database,
        ..
    } = &status;
    let now = *now;
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
    // On SQLite there is one node, the machine: the lines above say it all.
    if nodes.iter().any(|n| !n.state.lock.node.is_empty()) {
        println!("nodes (this one: {}):", status.node);
        for NodeStatus { state, alive } in nodes {
            let lock = &state.lock;
            let credentials = if state.credentials.is_empty() { "-".to_string() } else { state.credentials.join(", ") };
            println!(
                "  {:<16} {:<5} {} {} via {}; heartbeat {} s ago; holds {} work items, credentials {}{}",
                lock.node,
                if *alive { "live" } else { "dead" },
                lock.role,
                lock.holder,
                lock.egress.as_deref().unwrap_or("?"),
                (now - lock.heartbeat_at).max(0),
                state.work_leased,
                credentials,
                lock.status.as_deref().map(|s| format!(": {s}")).unwrap_or_default(),
            );
        }
    }
    println!("jobs (times {}):", config.timezone);
    for job in jobs {
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
        for run in running {
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
        for request in requests {
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
    let unhealthy: Vec<String> = status
        .sources()
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
    let source_count = status.sources().count();
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
    // PostgreSQL keeps no write-ahead log per database: its size is all there is.
    let wal = if mpwatch_core::config::is_postgres_url(&database.path) {
        String::new()
    } else {
        format!(", WAL {:.1} MB", database.wal_bytes as f64 / 1e6)
    };
    let waiting = match database.waiting_for_search_index {
        0 => String::new(),
        n => format!("; {n} articles waiting for the search index"),
    };
    println!(
        "database: {} ({:.1} MB{wal}), schema version {}{waiting}",
        database.path,
        database.file_bytes as f64 / 1e6,
        database.schema_version
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
