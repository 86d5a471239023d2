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
//! - [`limiter`]: sliding-window rate limits per host and request class, and per
//!   credential, with jitter.
//! - [`fetch`]: the HTTP client (timeouts, body cap, redirects, charset, backoff).
//! - [`credentials`]: the pool of client credential sets (rotation, expiry alert,
//!   cooldowns).
//! - [`engine`]: sources (feed, profile_ext, mp_backend, manual) with health, anti-crawl
//!   cooldowns that double, the snapshot ladder, and the run loop.
#![deny(missing_docs)]

pub mod credentials;
pub mod engine;
pub mod fetch;
pub mod limiter;
pub mod reparse;
mod sources;

pub use engine::{CrawlError, CrawlOptions, CrawlSummary, Engine, Until};
