//! Time as mpwatch stores it: integer unix seconds in UTC, read through a [`Clock`] so
//! that tests and the simulator can let days pass in seconds.

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds (UTC), the unit of every time column in the database.
pub type UnixSeconds = i64;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current instant in unix seconds.
    fn now(&self) -> UnixSeconds;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        now_unix()
    }
}

/// The wall clock in unix seconds; a clock before 1970 reads as 0.
pub fn now_unix() -> UnixSeconds {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs() as i64).unwrap_or(0)
}
