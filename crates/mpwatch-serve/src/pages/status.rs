//! `/status`: the service's status, as `mpwatch status` shows it (credential sets by
//! name only: no secret is ever in the database, so none can reach a page).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use mpwatch_service::status::Status;
use serde_json::Value;

use super::format::local_time;
use super::{Section, layout, respond, wants_json};
use crate::SharedState;
use crate::error::RequestError;

async fn load(state: &SharedState) -> Result<(Value, Markup), RequestError> {
    let config = state.config.clone();
    let tz = state.rules.tz.clone();
    state
        .readers
        .read(move |store| {
            let status = Status::read(store, &config, mpwatch_core::time::now_unix())
                .map_err(|error| RequestError::Internal(error.to_string()))?;
            Ok((status.to_json(), render(&status, &tz)))
        })
        .await
}

/// `/status`.
pub async fn page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let json = wants_json(&headers, false);
    match load(&state).await {
        Ok((value, markup)) => respond(json, &value, |_| markup),
        Err(error) => error.respond(json),
    }
}

/// `/status.json`.
pub async fn json(State(state): State<SharedState>) -> Response {
    match load(&state).await {
        Ok((value, markup)) => respond(true, &value, |_| markup),
        Err(error) => error.respond(true),
    }
}

fn render(status: &Status, tz: &jiff::tz::TimeZone) -> Markup {
    let when = |t: Option<i64>| t.map(|t| local_time(t, tz)).unwrap_or_else(|| "–".into());
    let content = html! {
        h1 { "Status" }
        p {
            @match &status.service {
                Some(lock) => { "Service running (" (lock.holder) ", since " (local_time(lock.acquired_at, tz)) ", heartbeat "
                    ((status.now - lock.heartbeat_at).max(0)) " s ago)" @if let Some(s) = &lock.status { ": " (s) } }
                None => "Service not running.",
            }
            @if let Some(lock) = &status.foreground_crawl { " A foreground crawl (" (lock.holder) ") is running." }
        }
        @if status.nodes.iter().any(|n| !n.state.lock.node.is_empty()) {
            h2 { "Nodes" }
            div.scroll { table {
                thead { tr { th { "node" } th { "state" } th { "process" } th { "egress" } th.num { "heartbeat" }
                    th.num { "work items" } th { "credential sets" } th { "doing" } } }
                tbody { @for node in &status.nodes { tr {
                    td { (node.state.lock.node) }
                    td { @if node.alive { "live" } @else { "dead" } }
                    td { (node.state.lock.role) " " (node.state.lock.holder) }
                    td { (node.state.lock.egress.as_deref().unwrap_or("?")) }
                    td.num { ((status.now - node.state.lock.heartbeat_at).max(0)) " s ago" }
                    td.num { (node.state.work_leased) }
                    td { (node.state.credentials.join(", ")) }
                    td { (node.state.lock.status.as_deref().unwrap_or("")) }
                } } }
            } }
        }
        h2 { "Jobs" }
        div.scroll { table {
            thead { tr { th { "job" } th { "kind" } th { "schedule" } th { "last fire" } th { "result" } th { "next fire" } } }
            tbody { @for job in &status.jobs { tr {
                td { (job.name) } td { (job.kind) } td { code { (job.cron) } " (" (job.timezone) ")" }
                td { (when(job.last_fire_at)) }
                td { (job.last_result.as_deref().unwrap_or("never run")) @if let Some(m) = &job.last_message { " (" (m) ")" } }
                td { (when(job.next_fire_at)) }
            } } }
        } }
        @if !status.running.is_empty() {
            h2 { "Running" }
            ul { @for run in &status.running { li {
                "#" (run.id) " " (run.job) " (" (run.trigger) ") since " (local_time(run.started_at, tz)) ": "
                (run.counts.articles_found) " found, " (run.counts.articles_new) " new, " (run.counts.snapshots) " snapshots, "
                (run.counts.failures) " failures"
            } } }
        }
        h2 { "Queue" }
        @if status.queue.is_empty() { p { "Empty." } } @else {
            table { thead { tr { th { "kind" } th { "state" } th.num { "items" } th { "next due" } } }
                tbody { @for q in &status.queue { tr { td { (q.kind) } td { (q.state) } td.num { (q.items) } td { (when(q.next_due)) } } } } }
        }
        h2 { "Sources" }
        div.scroll { table {
            thead { tr { th { "account" } th { "source" } th { "health" } th.num { "failures in a row" } th { "last ok" } th { "last error" } } }
            tbody { @for (account, source) in status.sources() { tr {
                td { a href=(format!("/account/{}", account.id)) { (account.display_name()) } }
                td { (source.kind.as_str()) " #" (source.id) }
                td { span class=(format!("health {}", source.health.as_str())) { (source.health.as_str()) } }
                td.num { (source.consecutive_failures) }
                td { (when(source.last_ok_at)) }
                td { (source.last_error.as_deref().unwrap_or("")) }
            } } }
        } }
        h2 { "Credential sets" }
        @if status.credentials.is_empty() { p { "None seen." } } @else {
            ul { @for c in &status.credentials { li {
                (c.name) ": "
                @match status.cooldowns.iter().find(|cd| cd.scope == "credential" && cd.target == c.name) {
                    Some(cd) => { "cooling down until " (local_time(cd.until, tz)) }
                    None => { (c.state) " since " (local_time(c.since, tz)) }
                }
            } } }
        }
        h2 { "Cooldowns" }
        @let hosts: Vec<_> = status.cooldowns.iter().filter(|c| c.scope == "host").collect();
        @if hosts.is_empty() { p { "None." } } @else {
            ul { @for c in hosts { li { (c.target) " until " (local_time(c.until, tz)) " (level " (c.level) ")" } } }
        }
        h2 { "Alerts (24 h)" }
        @if status.alerts.is_empty() { p { "None." } } @else {
            ul { @for alert in status.alerts.iter().take(50) { li {
                (local_time(alert.at, tz)) " " (alert.kind) " " (alert.subject) ": " (alert.message)
                @if alert.suppressed { " (repeat, not sent)" }
            } } }
        }
        h2 { "Database" }
        p { (status.database.path) " · " (format!("{:.1}", status.database.file_bytes as f64 / 1e6)) " MB, WAL "
            (format!("{:.1}", status.database.wal_bytes as f64 / 1e6)) " MB · schema version " (status.database.schema_version)
            @if status.database.waiting_for_search_index > 0 {
                " · " (status.database.waiting_for_search_index) " articles waiting for the search index"
            } }
    };
    layout("Status", Section::Status, content)
}
