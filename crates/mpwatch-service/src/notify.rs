//! systemd's notification protocol (`Type=notify`), through the `sd-notify` crate:
//! READY=1 once the service can work, WATCHDOG=1 from the scheduler loop at half of
//! `WatchdogSec` (a stuck loop stops sending and systemd restarts it), STATUS= lines,
//! RELOADING=1 and STOPPING=1. Without `NOTIFY_SOCKET` (not under systemd) every call
//! does nothing.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::debug;

/// Notifications to the service manager.
#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog_every: Option<Duration>,
    last_watchdog: Option<Instant>,
    last_status: String,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Notifier {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            // Half the watchdog interval, as sd_watchdog_enabled(3) advises.
            watchdog_every: sd_notify::watchdog_enabled().map(|interval| interval / 2),
            last_watchdog: None,
            last_status: String::new(),
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        // A manager that went away is no reason to stop crawling.
        if let Err(error) = sd_notify::notify(states) {
            debug!(%error, "cannot notify the service manager");
        }
    }

    /// READY=1 with a first status line.
    pub fn ready(&mut self, status: &str) {
        self.last_status = status.to_string();
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        self.last_watchdog = Some(Instant::now());
    }

    /// STATUS=, when it changed.
    pub fn status(&mut self, status: &str) {
        if status != self.last_status {
            self.last_status = status.to_string();
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// WATCHDOG=1 if half the interval has passed since the last one.
    pub fn watchdog(&mut self) {
        let Some(every) = self.watchdog_every else { return };
        if self.last_watchdog.is_none_or(|last| last.elapsed() >= every) {
            self.send(&[NotifyState::Watchdog]);
            self.last_watchdog = Some(Instant::now());
        }
    }

    /// How often the loop must come round for the watchdog (None: no watchdog).
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog_every
    }

    /// RELOADING=1 (a READY=1 follows when the reload is done).
    pub fn reloading(&self) {
        self.send(&[NotifyState::Reloading, NotifyState::MonotonicUsec(monotonic_usec())]);
    }

    /// READY=1 after a reload.
    pub fn reloaded(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// STOPPING=1.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing work in flight")]);
    }
}

/// CLOCK_MONOTONIC in microseconds, which systemd wants with RELOADING=1.
fn monotonic_usec() -> i128 {
    sd_notify::NotifyState::monotonic_usec_now()
        .ok()
        .and_then(|state| match state {
            NotifyState::MonotonicUsec(usec) => Some(usec),
            _ => None,
        })
        .unwrap_or(0)
}
