//! Sending requests politely and logging them: the clients, the per-host connection cap,
//! the rate limits, quick in-task retries of transient failures, and the fetch log.
//! Sources and work handlers fetch only through [`Http`]; it knows nothing of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpwatch_core::config::Config;
use mpwatch_core::secrets::ClientCredential;
use mpwatch_core::time::{Clock, UnixSeconds};
use mpwatch_store::runs::FetchRecord;
use rand::Rng as _;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::breaker::Breakers;
use crate::db::Db;
use crate::error::CrawlError;
use crate::fetch::{self, Fetched};
use crate::rate_limit::{RateLimiters, RequestClass};
use crate::run::RunScope;

/// `host[:port]` of a URL (empty when it has none).
pub(crate) fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_default()
}

/// Requests made by outcome, per request class (`article_page`, `count_api`, ...), over
/// the life of a process (for metrics). Shared by the engines a service builds on reload.
#[derive(Debug, Default)]
pub struct RequestTotals(Mutex<std::collections::BTreeMap<(String, String), u64>>);

impl RequestTotals {
    fn add(&self, class: &str, outcome: &str) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((class.to_string(), outcome.to_string()))
            .or_default() += 1;
    }

    /// `((class, outcome), requests)` so far.
    pub fn snapshot(&self) -> Vec<((String, String), u64)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Why a send gave no answer to use.
#[derive(Debug)]
pub(crate) struct SendFailure {
    /// When to try again.
    pub(crate) retry_at: UnixSeconds,
    /// What went wrong, one line.
    pub(crate) message: String,
    /// The host's breaker is open: its work waits, without using an attempt.
    pub(crate) host_down: bool,
}

impl SendFailure {
    fn new(retry_at: UnixSeconds, message: String) -> SendFailure {
        SendFailure { retry_at, message, host_down: false }
    }

    fn host_down(host: &str, until: UnixSeconds) -> SendFailure {
        SendFailure { retry_at: until, message: format!("{host} is unreachable; its work waits"), host_down: true }
    }
}

/// The crawler's HTTP side.
#[derive(Debug)]
pub(crate) struct Http {
    pub(crate) config: Arc<Config>,
    clock: Arc<dyn Clock>,
    db: Db,
    /// The client for requests without credentials.
    pub(crate) anonymous: reqwest::Client,
    credential_clients: Mutex<HashMap<String, reqwest::Client>>,
    /// Request-rate limits.
    pub(crate) limiters: Arc<RateLimiters>,
    host_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Requests by class and outcome.
    pub(crate) totals: Arc<RequestTotals>,
    /// Hosts already reported for declaring a charset their bytes contradict.
    charset_reported: Mutex<std::collections::HashSet<String>>,
    /// Per-host circuit breakers.
    pub(crate) breakers: Breakers,
    /// Fetch-log rows not written yet (see [`Http::flush_fetch_log`]).
    pending_log: Mutex<Vec<LoggedFetch>>,
}

/// Fetch-log rows are written this many at a time (and every few seconds, and at the
/// end of each run): one commit per request was most of a crawl's disk writes, and
/// batches of 100 still rewrote the log's last pages (and its two indexes') hundreds of
/// times a crawl.
const FETCH_LOG_BATCH: usize = 1000;

/// A fetch-log row waiting to be written.
#[derive(Debug)]
struct LoggedFetch {
    run: i64,
    at: UnixSeconds,
    class: String,
    target: String,
    status: Option<u16>,
    outcome: String,
    bytes: Option<u64>,
    elapsed: Option<Duration>,
}

impl Http {
    /// The HTTP side of an engine.
    pub(crate) fn new(config: Arc<Config>, clock: Arc<dyn Clock>, db: Db) -> Result<Http, CrawlError> {
        let anonymous = fetch::build_client(&config.http, None, true).map_err(CrawlError::Client)?;
        Ok(Http {
            limiters: Arc::new(RateLimiters::new(&config.rate_limits)),
            config,
            clock,
            db,
            anonymous,
            credential_clients: Mutex::new(HashMap::new()),
            host_slots: Mutex::new(HashMap::new()),
            totals: Arc::default(),
            charset_reported: Mutex::default(),
            breakers: Breakers::default(),
            pending_log: Mutex::default(),
        })
    }

    /// The crawl clock's current time.
    pub(crate) fn now(&self) -> UnixSeconds {
        self.clock.now()
    }

    /// The WeChat host (`host[:port]`) requests go to.
    pub(crate) fn wechat_host(&self) -> String {
        host_of(self.config.wechat.base_url.as_str())
    }

    /// The URL to request for a path and query on the configured WeChat base URL.
    pub(crate) fn wechat_url(&self, path_and_query: &str) -> String {
        let base = self.config.wechat.base_url.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }

    /// The path and query of an article URL, to request on the configured base URL.
    pub(crate) fn path_of(url: &str) -> String {
        match url::Url::parse(url) {
            Ok(parsed) => match parsed.query() {
                Some(query) => format!("{}?{query}", parsed.path()),
                None => parsed.path().to_string(),
            },
            Err(_) => url.to_string(),
        }
    }

    /// The client of a credential set: its own cookie jar and user agent.
    pub(crate) fn client_for(&self, credential: &ClientCredential) -> reqwest::Client {
        let mut clients = self.credential_clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(credential.name.clone())
            .or_insert_with(|| {
                let agent = credential.user_agent.as_deref().unwrap_or(fetch::MICROMESSENGER_UA);
                fetch::build_client(&self.config.http, Some(agent), true).unwrap_or_else(|_| self.anonymous.clone())
            })
            .clone()
    }

    fn host_slot(&self, host: &str) -> Arc<Semaphore> {
        self.host_slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.crawl.concurrency_per_host.max(1) as usize)))
            .clone()
    }

    /// Sends a request under the host's concurrency cap and the rate limit of
    /// `(class, key)`, with quick in-task retries of transient failures (full-jitter
    /// backoff, `Retry-After` honoured). Every attempt takes a rate slot, failed ones
    /// too. Long waits come back as a [`SendFailure`] for the queue. Connection failures
    /// in a row open the host's breaker ([`crate::breaker`]): while it is open, sends to
    /// the host return at once with `host_down`, and the run is told.
    pub(crate) async fn send(
        &self,
        run: &RunScope,
        log_class: &str,
        target: &str,
        host: &str,
        limit: (RequestClass, &str),
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Fetched, SendFailure> {
        const QUICK_ATTEMPTS: u32 = 3;
        // A longer wait (a server's Retry-After) goes back to the queue: a task asleep
        // holds the host's connection slot and the item's lease for nothing.
        const LONGEST_WAIT_IN_TASK: Duration = Duration::from_secs(5);
        let slot = self.host_slot(host);
        let mut attempt = 0;
        loop {
            let (started, result) = {
                // The connection slot first, then the rate slot: a request never waits
                // for a connection after its rate slot came, so it leaves on time.
                let _permit =
                    slot.acquire().await.map_err(|_| SendFailure::new(self.now(), "shutting down".to_string()))?;
                self.limiters.acquire(limit.0, limit.1).await;
                // After the rate slot: the breaker may have opened while this waited.
                if let Some(until) = self.breakers.open_until(host, self.now()) {
                    run.progress.host_down(host, until);
                    return Err(SendFailure::host_down(host, until));
                }
                (self.now(), fetch::fetch(build(), self.config.http.max_body_bytes).await)
            };
            match &result {
                Ok(_) => self.breakers.answered(host),
                Err(error) if error.is_transient() => {
                    if let Some(until) = self.breakers.failed(host, self.now()) {
                        warn!(
                            host,
                            until,
                            "{host}: {} connection failures in a row ({error}); leaving it alone until then",
                            crate::breaker::OPEN_AFTER
                        );
                        run.progress.host_down(host, until);
                    }
                }
                Err(_) => {}
            }
            if let Ok(fetched) = &result
                && let Some(label) = &fetched.ignored_charset
                && self
                    .charset_reported
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(host.to_string())
            {
                warn!(host, declared = %label, "{host} declares charset {label} for UTF-8 bytes; reading them as UTF-8");
            }
            // Answers the caller classifies (an article page, a list) are logged by the
            // caller with that class; failures are logged here.
            let result = result.map(|mut fetched| {
                fetched.sent_at = started;
                fetched
            });
            match &result {
                Ok(fetched) if fetched.status == 429 || fetched.status >= 500 => {
                    run.progress.outcome("http_error");
                    let bytes = Some(fetched.body.len() as u64);
                    let elapsed = Some(fetched.elapsed);
                    self.log_fetch(run, log_class, target, started, Some(fetched.status), "http_error", bytes, elapsed)
                        .await;
                }
                Ok(_) => {}
                Err(error) => {
                    run.progress.outcome(error.outcome());
                    self.log_fetch(run, log_class, target, started, None, error.outcome(), None, None).await;
                }
            }
            let backoff = fetch::backoff(
                attempt,
                Duration::from_millis(250),
                Duration::from_secs(8),
                rand::rng().random::<f64>(),
            );
            let (delay, reason) = match result {
                Ok(fetched) if fetched.status == 429 || fetched.status >= 500 => {
                    (fetched.retry_after.unwrap_or(backoff), format!("HTTP {}", fetched.status))
                }
                Ok(fetched) => return Ok(fetched),
                Err(error) if error.is_transient() => (backoff, error.to_string()),
                // Size caps and redirect loops will not change in a few seconds.
                Err(error) => return Err(SendFailure::new(self.now() + 3600, error.to_string())),
            };
            if let Some(until) = self.breakers.open_until(host, self.now()) {
                return Err(SendFailure::host_down(host, until));
            }
            attempt += 1;
            if attempt >= QUICK_ATTEMPTS || delay > LONGEST_WAIT_IN_TASK {
                return Err(SendFailure::new(self.now() + delay.as_secs().max(1) as i64, reason));
            }
            debug!(class = log_class, target, attempt, delay_ms = delay.as_millis() as u64, "retrying after {reason}");
            tokio::time::sleep(delay).await;
        }
    }

    /// Logs an answer with the outcome class the caller found in it.
    pub(crate) async fn log_answer(
        &self,
        run: &RunScope,
        log_class: &str,
        target: &str,
        fetched: &Fetched,
        outcome: &str,
    ) {
        run.progress.outcome(outcome);
        let bytes = Some(fetched.body.len() as u64);
        self.log_fetch(
            run,
            log_class,
            target,
            fetched.sent_at,
            Some(fetched.status),
            outcome,
            bytes,
            Some(fetched.elapsed),
        )
        .await;
    }

    /// Queues one fetch-log row, writing the queue when it is full.
    #[allow(clippy::too_many_arguments)]
    async fn log_fetch(
        &self,
        run: &RunScope,
        log_class: &str,
        target: &str,
        at: UnixSeconds,
        status: Option<u16>,
        outcome: &str,
        bytes: Option<u64>,
        elapsed: Option<Duration>,
    ) {
        self.totals.add(log_class, outcome);
        let row = LoggedFetch {
            run: run.id,
            at,
            class: log_class.to_string(),
            target: target.to_string(),
            status,
            outcome: outcome.to_string(),
            bytes,
            elapsed,
        };
        let full = {
            let mut pending = self.pending_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.push(row);
            pending.len() >= FETCH_LOG_BATCH
        };
        if full {
            self.flush_fetch_log().await;
        }
    }

    /// Writes the queued fetch-log rows in one transaction (the run loop calls it every
    /// few seconds and when a run ends). A failure to write them is logged, not fatal:
    /// the log is a record of requests, not of data.
    pub(crate) async fn flush_fetch_log(&self) {
        let rows = std::mem::take(&mut *self.pending_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if rows.is_empty() {
            return;
        }
        let count = rows.len();
        let result = self
            .db
            .write_along(move |tx| {
                for row in &rows {
                    tx.log_fetch(&FetchRecord {
                        crawl_run_id: Some(row.run),
                        at: row.at,
                        url_class: &row.class,
                        target: Some(&row.target),
                        http_status: row.status,
                        outcome: &row.outcome,
                        bytes: row.bytes,
                        duration_ms: row.elapsed.map(|e| e.as_millis() as u64),
                    })?;
                }
                Ok(())
            })
            .await;
        if let Err(error) = result {
            warn!(%error, rows = count, "cannot write the fetch log");
        }
    }
}
