//! The service's jobs and when each fires: the `[[schedule]]` entries (or the
//! defaults) with their cron schedules, the catch-up rule at start, and the rule that
//! a job never overlaps itself. Pure: times in, decisions out.

use jiff::Timestamp;
use mpwatch_core::config::{CatchUp, Config, ScheduleEntry};
use mpwatch_core::schedule::{CronSchedule, ScheduleError};
use mpwatch_core::time::UnixSeconds;

/// A job: its config entry and its parsed schedule.
#[derive(Debug, Clone)]
pub struct Job {
    /// The `[[schedule]]` entry.
    pub entry: ScheduleEntry,
    /// When it fires.
    pub schedule: CronSchedule,
}

/// The jobs of a configuration.
pub fn jobs_of(config: &Config) -> Result<Vec<Job>, ScheduleError> {
    config
        .jobs()
        .into_iter()
        .map(|entry| {
            let schedule = CronSchedule::parse(&entry.cron, config.job_timezone(&entry))?;
            Ok(Job { entry, schedule })
        })
        .collect()
}

fn to_timestamp(at: UnixSeconds) -> Timestamp {
    Timestamp::from_second(at).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Job {
    /// The first fire strictly after `after`.
    pub fn next_after(&self, after: UnixSeconds) -> Option<UnixSeconds> {
        self.schedule.next_after(to_timestamp(after)).map(|t| t.as_second())
    }

    /// The fires in `(from, to]`, at most `limit` of them (the latest ones matter).
    pub fn fires_between(&self, from: UnixSeconds, to: UnixSeconds) -> Vec<UnixSeconds> {
        self.schedule.fires_between(to_timestamp(from), to_timestamp(to)).into_iter().map(|t| t.as_second()).collect()
    }

    /// What to do at start, given the fire last handled (from the database).
    pub fn at_start(&self, last_fire: Option<UnixSeconds>, now: UnixSeconds) -> StartPlan {
        let next = self.next_after(now);
        let Some(last) = last_fire else {
            // Never ran on this database: a first start does the job's work at once
            // (a new tracker should not wait half an hour for its first discovery),
            // unless catch-up is off.
            let catch_up = (self.entry.catch_up == CatchUp::Once).then_some(now);
            return StartPlan { catch_up, skipped: None, next };
        };
        let missed =
            self.schedule.fires_after(to_timestamp(last)).map(|t| t.as_second()).take_while(|t| *t <= now).last();
        match (missed, self.entry.catch_up) {
            (Some(fire), CatchUp::Once) => StartPlan { catch_up: Some(fire), skipped: None, next },
            (Some(fire), CatchUp::None) => StartPlan { catch_up: None, skipped: Some(fire), next },
            (None, _) => StartPlan { catch_up: None, skipped: None, next },
        }
    }
}

/// A job's plan at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartPlan {
    /// Run once now for this missed fire (`catch_up = "once"`).
    pub catch_up: Option<UnixSeconds>,
    /// A missed fire not run (`catch_up = "none"`): recorded as skipped.
    pub skipped: Option<UnixSeconds>,
    /// The next scheduled fire.
    pub next: Option<UnixSeconds>,
}

/// What to do when a job's fire comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireDecision {
    /// Start it.
    Start,
    /// The previous run is ending (it served until this fire): wait for it a little.
    WaitForPrevious,
    /// The previous run is still busy: skip this fire (and log it).
    Skip,
}

/// A job never overlaps itself. A fire that finds the previous run still going waits
/// up to `grace` for it (a metrics run serves the ladder until the next fire and then
/// finishes its requests in flight), and is skipped after that.
pub fn decide(previous_running: bool, fire_at: UnixSeconds, now: UnixSeconds, grace: i64) -> FireDecision {
    match (previous_running, now - fire_at <= grace) {
        (false, _) => FireDecision::Start,
        (true, true) => FireDecision::WaitForPrevious,
        (true, false) => FireDecision::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpwatch_core::config::JobKind;

    fn job(cron: &str, catch_up: CatchUp) -> Job {
        let config = Config {
            schedule: vec![ScheduleEntry {
                name: "j".into(),
                cron: cron.into(),
                job: JobKind::Metrics,
                timezone: None,
                account: None,
                group: None,
                catch_up,
                jitter: std::time::Duration::ZERO,
            }],
            ..Config::default()
        };
        jobs_of(&config).unwrap().remove(0)
    }

    /// 2026-11-28 14:03:10 in Shanghai.
    const NOW: UnixSeconds = 1_795_845_790;

    #[test]
    fn a_fire_missed_while_down_runs_once_at_start() {
        let hourly = job("0 * * * *", CatchUp::Once);
        // Down for five hours: five fires missed, one catch-up run for the latest.
        let plan = hourly.at_start(Some(NOW - 5 * 3600), NOW);
        assert_eq!(plan.catch_up, Some(NOW - 190));
        assert_eq!(plan.next, Some(NOW - 190 + 3600));
        assert_eq!(plan.skipped, None);
        // Nothing missed: wait for the next fire.
        let plan = hourly.at_start(Some(NOW - 190), NOW);
        assert_eq!((plan.catch_up, plan.skipped), (None, None));
        // Never ran on this database: it runs at once, unless catch-up is off.
        assert_eq!(hourly.at_start(None, NOW).catch_up, Some(NOW));
        assert_eq!(job("0 * * * *", CatchUp::None).at_start(None, NOW).catch_up, None);
        // catch_up = "none": the missed fire is recorded as skipped, not run.
        let plan = job("0 * * * *", CatchUp::None).at_start(Some(NOW - 5 * 3600), NOW);
        assert_eq!((plan.catch_up, plan.skipped), (None, Some(NOW - 190)));
    }

    #[test]
    fn a_job_never_overlaps_itself() {
        assert_eq!(decide(false, NOW, NOW + 500, 60), FireDecision::Start);
        assert_eq!(decide(true, NOW, NOW + 10, 60), FireDecision::WaitForPrevious);
        assert_eq!(decide(true, NOW, NOW + 61, 60), FireDecision::Skip);
    }

    #[test]
    fn fires_between_and_seconds_fields() {
        let every_ten_seconds = job("*/10 * * * * *", CatchUp::Once);
        assert_eq!(every_ten_seconds.fires_between(NOW, NOW + 30), vec![NOW + 10, NOW + 20, NOW + 30]);
    }
}
