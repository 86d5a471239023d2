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

    /// Clock seconds per real second: 1 for the wall clock, more for an accelerated
    /// test clock, 0 for a stopped one. Waiting code divides by it.
    fn rate(&self) -> f64 {
        1.0
    }
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

/// An instant as RFC 3339 in UTC (`2026-11-28T22:38:42Z`), for messages; the number
/// itself when it is out of range.
pub fn rfc3339(at: UnixSeconds) -> String {
    jiff::Timestamp::from_second(at).map_or_else(|_| at.to_string(), |t| t.to_string())
}

/// How a [`ControlledClock`] runs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ClockMode {
    /// The wall clock.
    Real,
    /// Always this instant (unix seconds).
    Fixed {
        /// The instant.
        at: f64,
    },
    /// The wall clock shifted by `offset` seconds.
    Offset {
        /// Seconds added to the wall clock.
        offset: f64,
    },
    /// Starts at `at` when set and runs `scale` times faster than the wall clock
    /// (`scale` 3600: one simulated hour per second).
    Accelerated {
        /// The instant when the mode was set.
        at: f64,
        /// Simulated seconds per real second.
        scale: f64,
    },
}

#[derive(Debug)]
struct ControlledState {
    mode: ClockMode,
    /// Wall-clock instant (seconds) when the mode was set, for `Accelerated`.
    set_at_wall: f64,
}

/// A clock tests control: real, fixed, offset or accelerated, changeable at any time
/// from any thread. The simulator runs on one, and the crawler can be given the same
/// one so that days pass in seconds for both.
#[derive(Debug, Clone)]
pub struct ControlledClock {
    state: std::sync::Arc<std::sync::RwLock<ControlledState>>,
}

fn wall_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl ControlledClock {
    /// A clock in the given mode.
    pub fn new(mode: ClockMode) -> Self {
        ControlledClock {
            state: std::sync::Arc::new(std::sync::RwLock::new(ControlledState { mode, set_at_wall: wall_seconds() })),
        }
    }

    /// Changes the mode; `Accelerated` starts from its `at` now.
    pub fn set(&self, mode: ClockMode) {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *state = ControlledState { mode, set_at_wall: wall_seconds() };
    }

    /// The current mode.
    pub fn mode(&self) -> ClockMode {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).mode
    }

    /// The current instant with sub-second precision.
    pub fn now_f64(&self) -> f64 {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.mode {
            ClockMode::Real => wall_seconds(),
            ClockMode::Fixed { at } => at,
            ClockMode::Offset { offset } => wall_seconds() + offset,
            ClockMode::Accelerated { at, scale } => at + (wall_seconds() - state.set_at_wall) * scale,
        }
    }

    /// Simulated seconds per real second (0 for a fixed clock).
    pub fn rate(&self) -> f64 {
        match self.mode() {
            ClockMode::Real | ClockMode::Offset { .. } => 1.0,
            ClockMode::Fixed { .. } => 0.0,
            ClockMode::Accelerated { scale, .. } => scale,
        }
    }

    /// Moves the clock forward by `seconds` (any mode: fixed moves its instant, the
    /// others their offset).
    pub fn advance(&self, seconds: f64) {
        let mode = match self.mode() {
            ClockMode::Fixed { at } => ClockMode::Fixed { at: at + seconds },
            ClockMode::Real => ClockMode::Offset { offset: seconds },
            ClockMode::Offset { offset } => ClockMode::Offset { offset: offset + seconds },
            ClockMode::Accelerated { scale, .. } => ClockMode::Accelerated { at: self.now_f64() + seconds, scale },
        };
        self.set(mode);
    }
}

impl Clock for ControlledClock {
    fn now(&self) -> UnixSeconds {
        self.now_f64().floor() as UnixSeconds
    }

    fn rate(&self) -> f64 {
        ControlledClock::rate(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let clock = ControlledClock::new(ClockMode::Fixed { at: 1000.0 });
        assert_eq!(clock.now(), 1000);
        clock.advance(3600.0);
        assert_eq!(clock.now(), 4600);
        clock.set(ClockMode::Offset { offset: -10.0 });
        assert!((clock.now() - (now_unix() - 10)).abs() <= 1);
        clock.set(ClockMode::Accelerated { at: 0.0, scale: 3600.0 });
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = clock.now();
        assert!((60..3600).contains(&now), "{now}");
    }
}
