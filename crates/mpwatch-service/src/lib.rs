//! `mpwatch run`: the service. Alerts to webhooks (`alerts`), jobs on cron schedules (`jobs`), systemd's notification
//! protocol (`notify`), Prometheus metrics (`metrics`), and the scheduler loop with the crawler lock, ad-hoc requests,
//! reload and graceful stop (`service`).
#![deny(missing_docs)]

pub mod alerts;
pub mod jobs;
pub mod lock;
pub mod metrics;
pub mod notify;
pub mod runs;
pub mod service;
pub mod status;

pub use runs::RequestOptions;
pub use service::{Control, ServiceError, ServiceSetup, run};
