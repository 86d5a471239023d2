//! mpwatch's crawl engine.
//!
//! # Architecture
//!
//! All work goes through the persistent queue in SQLite (`work_queue`): `discover`
//! items ask a source for article URLs, `page` items fetch and parse an article page,
//! `metrics` items take one count snapshot of the ladder. [`Engine::run`] leases due
//! items, processes them concurrently under the politeness limits, and commits each
//! item's effect together with its acknowledgement, so a crash loses nothing and
//! duplicates nothing: an expired lease (or one held by a dead process) is simply
//! taken again.
//!
//! Each module answers one question:
//! - `engine`: what the engine is made of and its options; `error`: what stops a run.
//! - `run`: the run loop (leasing, dispatch, retries, the run's record);
//!   `worker_slot`: how many items a run works on at once.
//! - `work`: one handler per work kind (`discover`, `page`, `metrics`).
//! - `sources`: the ways of finding articles (feed, profile_ext, mp_backend, manual);
//!   they see only a `SourceContext` (fetching, cooldowns, credentials), not the engine.
//! - `http`: sending requests politely and the fetch log.
//! - [`breaker`]: per-host circuit breakers (is this host reachable, or should its
//!   work wait?).
//! - [`rate_limit`]: request-rate limits per class and key (governor), with jitter.
//! - [`fetch`]: the HTTP client (timeouts, body cap, redirects, charset, Retry-After).
//! - `cooldown`: anti-crawl cooldowns of hosts and credentials, kept in the database.
//! - [`alerts`]: what the crawler raises for operators (webhooks via the service).
//! - [`credentials`]: the pool of client credential sets (rotation, expiry alert).
//! - [`ladder`]: which snapshot rungs an article gets, and when.
//! - [`reparse`]: re-deriving articles from archived raw pages.
//! - [`holder`]: `<pid>@<host>` of leases, runs and the crawler lock, and liveness.
//!
//! Dependencies point one way: `run` → `work` → `sources` → `http`, `cooldown` →
//! `rate_limit`, `fetch`, `db`, `error`.
#![deny(missing_docs)]

pub mod alerts;
pub mod breaker;
mod cooldown;
mod credential_leases;
pub mod credentials;
pub mod db;
pub mod engine;
mod error;
pub mod fetch;
pub mod holder;
mod http;
pub mod ladder;
mod progress;
pub mod rate_limit;
pub mod reparse;
mod run;
mod sources;
mod work;
mod worker_slot;

pub use engine::{CrawlError, CrawlOptions, CrawlSummary, Engine, Until};
pub use http::RequestTotals;
pub use progress::Progress;
