//! Prometheus metrics over HTTP (`[service] metrics_listen`, off by default), in the
//! OpenMetrics text format of `prometheus-client`. Each scrape reads the state from the
//! database (queue, articles, credentials, cooldowns, jobs) and the request counters
//! from the process, so the numbers agree with `mpwatch status`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mpwatch_core::time::Clock;
use mpwatch_crawl::RequestTotals;
use mpwatch_crawl::db::Db;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

type Labels = Vec<(String, String)>;

/// What a scrape reads.
#[derive(Clone)]
struct Sources {
    db: Db,
    totals: Arc<RequestTotals>,
    clock: Arc<dyn Clock>,
}

/// Serves `/metrics` on `listen` until `stop`.
pub async fn serve(
    listen: SocketAddr,
    db: Db,
    totals: Arc<RequestTotals>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    info!("serving Prometheus metrics at http://{}/metrics", listener.local_addr()?);
    let app = axum::Router::new().route("/metrics", get(scrape)).with_state(Sources { db, totals, clock });
    Ok(tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(error) = server.await {
            warn!(%error, "the metrics server stopped");
        }
    }))
}

async fn scrape(State(sources): State<Sources>) -> Response {
    match render(&sources).await {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(error) => {
            warn!(%error, "cannot read the metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the database\n").into_response()
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The metrics text of one scrape.
async fn render(sources: &Sources) -> Result<String, mpwatch_crawl::CrawlError> {
    let now = sources.clock.now();
    let state = sources
        .db
        .call(move |store| {
            Ok((
                store.queue_depth()?,
                store.articles_by_status()?,
                store.snapshots_taken()?,
                store.credential_states()?,
                store.active_cooldowns(now)?,
                store.job_states()?,
            ))
        })
        .await?;
    let (queue, articles, snapshots, credentials, cooldowns, jobs) = state;
    let mut registry = Registry::with_prefix("mpwatch");

    let requests = Family::<Labels, Counter>::default();
    for ((class, outcome), n) in sources.totals.snapshot() {
        requests.get_or_create(&labels(&[("class", &class), ("outcome", &outcome)])).inc_by(n);
    }
    registry.register("requests", "Requests made by this process, by request class and outcome", requests);

    let queue_items = Family::<Labels, Gauge>::default();
    for depth in &queue {
        queue_items.get_or_create(&labels(&[("kind", &depth.kind), ("state", &depth.state)])).set(depth.items);
    }
    registry.register("queue_items", "Work items not done, by kind and state", queue_items);

    let snapshots_total = Counter::<u64>::default();
    snapshots_total.inc_by(snapshots.max(0) as u64);
    registry.register("snapshots", "Count snapshots taken (the highest snapshot id)", snapshots_total);

    let articles_gauge = Family::<Labels, Gauge>::default();
    for (status, n) in &articles {
        articles_gauge.get_or_create(&labels(&[("status", status)])).set(*n);
    }
    registry.register("articles", "Stored articles by status", articles_gauge);

    let credential_sets = Family::<Labels, Gauge>::default();
    for credential in &credentials {
        let cooling = cooldowns.iter().any(|c| c.scope == "credential" && c.target == credential.name);
        let state = if cooling && credential.state == "valid" { "cooling" } else { credential.state.as_str() };
        credential_sets.get_or_create(&labels(&[("state", state)])).inc();
    }
    for state in ["valid", "expired", "cooling"] {
        credential_sets.get_or_create(&labels(&[("state", state)])).inc_by(0);
    }
    registry.register("credential_sets", "Client credential sets by state", credential_sets);

    let active_cooldowns = Family::<Labels, Gauge>::default();
    for scope in ["host", "credential"] {
        active_cooldowns.get_or_create(&labels(&[("scope", scope)])).inc_by(0);
    }
    for cooldown in &cooldowns {
        active_cooldowns.get_or_create(&labels(&[("scope", &cooldown.scope)])).inc();
    }
    registry.register("cooldowns_active", "Hosts and credentials resting after an anti-crawl signal", active_cooldowns);

    let duration = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let last_success = Family::<Labels, Gauge>::default();
    let last_ok = Family::<Labels, Gauge>::default();
    for job in &jobs {
        let job_labels = labels(&[("job", &job.name), ("kind", &job.kind)]);
        if let (Some(started), Some(finished)) = (job.last_started_at, job.last_finished_at) {
            duration.get_or_create(&job_labels).set((finished - started).max(0) as f64);
        }
        if let Some(at) = job.last_success_at {
            last_success.get_or_create(&job_labels).set(at);
        }
        if let Some(result) = &job.last_result {
            last_ok.get_or_create(&job_labels).set(i64::from(matches!(result.as_str(), "ok" | "partial")));
        }
    }
    registry.register("job_last_duration_seconds", "Duration of each job's last run", duration);
    registry.register(
        "job_last_success_timestamp_seconds",
        "When each job's last run ended ok or partial",
        last_success,
    );
    registry.register("job_last_run_ok", "1 when each job's last run ended ok or partial, 0 otherwise", last_ok);

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    Ok(text)
}
