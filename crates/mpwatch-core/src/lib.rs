//! Domain types, configuration and secrets shared by every mpwatch crate.
//!
//! - [`domain`]: what mpwatch talks about: accounts ([`domain::Biz`]), articles
//!   ([`domain::ArticleKey`]) and the closed vocabularies stored in the database
//!   (article kind, status, source kind, health, ...).
//! - [`config`]: the TOML configuration, validated at load, with defaults.
//! - [`files`]: small text files read with a size limit.
//! - [`secrets`]: credentials, kept in their own file and redacted everywhere.
//! - [`schedule`]: cron expressions in a time zone, each local wall time fired once.
//! - [`time`]: the one place that reads the wall clock.
//!
//! ```
//! use mpwatch_core::config::Config;
//! let config = Config::from_toml_str("[store]\nbusy_timeout = \"5s\"\n", "inline.toml").unwrap();
//! assert_eq!(config.store.busy_timeout.as_secs(), 5);
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod domain;
pub mod files;
pub mod schedule;
pub mod secrets;
pub mod time;

pub use domain::{
    AccountRef, ArticleKey, ArticleKind, ArticleStatus, Biz, Copyright, CrawlTrigger, QueueState, SourceHealth,
    SourceKind,
};
