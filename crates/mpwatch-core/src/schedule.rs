//! Cron schedules in a time zone, with the semantics a service needs: each scheduled
//! local wall time fires exactly once.
//!
//! Expressions are standard 5-field crontab lines (`*/5 * * * *`) or 6 fields with
//! seconds first (`*/10 * * * * *`), parsed by the `cron` crate. The `cron` crate walks
//! local times and, in a repeated daylight-saving hour, yields the same wall time twice
//! and skips wall times that do not exist. So the wall times are walked on a clock
//! without daylight saving (the wall time read as UTC), and each one is placed in the
//! zone afterwards:
//! - a wall time in the repeated hour (clocks go back) fires once, at its first
//!   occurrence;
//! - a wall time that does not exist (clocks go forward) fires at the first instant
//!   after the jump (02:30 becomes 03:00 in Europe/Berlin), so it is never lost; the
//!   wall times of the gap and the one at its end share that one fire.

use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::DateTime as CivilDateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// Why an expression or a time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not 5 or 6 fields.
    #[error("must have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, not {0}")]
    FieldCount(usize),
    /// The cron crate refused it.
    #[error("is not a valid cron expression: {0}")]
    Cron(String),
    /// Not an IANA time zone.
    #[error("is not an IANA time zone name such as Asia/Shanghai")]
    TimeZone,
}

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    source: String,
    cron: cron::Schedule,
    zone: TimeZone,
}

/// An IANA time zone by name.
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    if name.is_empty() {
        return Err(ScheduleError::TimeZone);
    }
    TimeZone::get(name).map_err(|_| ScheduleError::TimeZone)
}

impl CronSchedule {
    /// Parses `expression` (5 fields, or 6 with seconds first) in the zone `zone_name`.
    pub fn parse(expression: &str, zone_name: &str) -> Result<CronSchedule, ScheduleError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let with_seconds = match fields.len() {
            5 => format!("0 {}", fields.join(" ")),
            6 => fields.join(" "),
            n => return Err(ScheduleError::FieldCount(n)),
        };
        let cron = cron::Schedule::from_str(&with_seconds).map_err(|e| ScheduleError::Cron(e.to_string()))?;
        Ok(CronSchedule { source: expression.trim().to_string(), cron, zone: time_zone(zone_name)? })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first fire strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.fires_after(after).next()
    }

    /// The fires strictly after `after`, in order, each scheduled wall time once.
    pub fn fires_after(&self, after: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        let start = wall_as_utc(self.zone.to_datetime(after));
        self.cron
            .after_owned(start)
            .filter_map(move |wall| self.place(wall))
            // Wall times already passed (the second pass of a repeated hour) were fired
            // at their first occurrence; wall times of a gap share the instant after it.
            .scan(after, |last, instant| {
                let fresh = instant > *last;
                if fresh {
                    *last = instant;
                }
                Some(fresh.then_some(instant))
            })
            .flatten()
    }

    /// The fires in `(from, to]`.
    pub fn fires_between(&self, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        self.fires_after(from).take_while(|t| *t <= to).collect()
    }

    /// A wall time (read as UTC) placed in the zone: the first occurrence of a repeated
    /// time, a time in a gap shifted forward by the gap.
    fn place(&self, wall: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
        use chrono::{Datelike as _, Timelike as _};
        let civil = CivilDateTime::new(
            i16::try_from(wall.year()).ok()?,
            i8::try_from(wall.month()).ok()?,
            i8::try_from(wall.day()).ok()?,
            i8::try_from(wall.hour()).ok()?,
            i8::try_from(wall.minute()).ok()?,
            i8::try_from(wall.second()).ok()?,
            0,
        )
        .ok()?;
        match self.zone.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).ok(),
            // The first occurrence: with the offset in force before the clocks went back.
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(civil).ok(),
            // Does not exist: the first instant after the jump. With the offset after the
            // jump, the wall time lies just before it.
            AmbiguousOffset::Gap { after, .. } => {
                let before_the_jump = after.to_timestamp(civil).ok()?;
                self.zone.following(before_the_jump).next().map(|transition| transition.timestamp())
            }
        }
    }
}

/// A civil time read as if it were UTC (a clock without daylight saving).
fn wall_as_utc(wall: CivilDateTime) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone as _;
    chrono::Utc
        .with_ymd_and_hms(
            i32::from(wall.year()),
            wall.month() as u32,
            wall.day() as u32,
            wall.hour() as u32,
            wall.minute() as u32,
            wall.second() as u32,
        )
        .single()
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone: &str, civil: &str) -> Timestamp {
        let civil: CivilDateTime = civil.parse().unwrap();
        civil.to_zoned_datetime(TimeZone::get(zone).unwrap()).unwrap().timestamp()
    }

    fn local(zone: &str, instants: &[Timestamp]) -> Vec<String> {
        let zone = TimeZone::get(zone).unwrap();
        instants.iter().map(|t| t.to_zoned_datetime(zone.clone()).strftime("%m-%d %H:%M:%S %Z").to_string()).collect()
    }

    #[test]
    fn five_fields_fire_on_the_minute_and_six_on_the_second() {
        let every_5_min = CronSchedule::parse("*/5 * * * *", "Asia/Shanghai").unwrap();
        let start = at("Asia/Shanghai", "2026-11-28T14:03:10");
        let fires: Vec<_> = every_5_min.fires_after(start).take(3).collect();
        assert_eq!(local("Asia/Shanghai", &fires), ["11-28 14:05:00 CST", "11-28 14:10:00 CST", "11-28 14:15:00 CST"]);
        let every_10_s = CronSchedule::parse("*/10 * * * * *", "Asia/Shanghai").unwrap();
        let fires: Vec<_> = every_10_s.fires_after(start).take(2).collect();
        assert_eq!(local("Asia/Shanghai", &fires), ["11-28 14:03:20 CST", "11-28 14:03:30 CST"]);
        // Strictly after: a fire time itself is not fired again.
        assert_eq!(
            every_5_min.next_after(fires[0]).map(|t| local("Asia/Shanghai", &[t])[0].clone()).unwrap(),
            "11-28 14:05:00 CST"
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert_eq!(CronSchedule::parse("* * *", "UTC").unwrap_err(), ScheduleError::FieldCount(3));
        assert!(matches!(CronSchedule::parse("61 * * * *", "UTC"), Err(ScheduleError::Cron(_))));
        assert_eq!(CronSchedule::parse("* * * * *", "Mars/Olympus").unwrap_err(), ScheduleError::TimeZone);
        assert_eq!(CronSchedule::parse("* * * * *", "").unwrap_err(), ScheduleError::TimeZone);
    }

    #[test]
    fn shanghai_has_no_daylight_saving_every_day_fires_once() {
        let daily = CronSchedule::parse("30 2 * * *", "Asia/Shanghai").unwrap();
        let fires =
            daily.fires_between(at("Asia/Shanghai", "2026-03-01T00:00"), at("Asia/Shanghai", "2026-12-31T00:00"));
        assert_eq!(fires.len(), 305);
        assert!(fires.windows(2).all(|w| w[1].duration_since(w[0]).as_secs() == 86_400));
    }

    #[test]
    fn berlin_fall_back_fires_a_repeated_wall_time_once() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:00-02:59 happens twice.
        let daily = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires =
            daily.fires_between(at("Europe/Berlin", "2026-10-24T00:00"), at("Europe/Berlin", "2026-10-27T00:00"));
        assert_eq!(
            local("Europe/Berlin", &fires),
            ["10-24 02:30:00 CEST", "10-25 02:30:00 CEST", "10-26 02:30:00 CET"]
        );
        // Every 15 minutes through the night: each wall time once, none in the repeat.
        let quarterly = CronSchedule::parse("*/15 * * * *", "Europe/Berlin").unwrap();
        let night =
            quarterly.fires_between(at("Europe/Berlin", "2026-10-25T01:50"), at("Europe/Berlin", "2026-10-25T03:10"));
        assert_eq!(
            local("Europe/Berlin", &night),
            [
                "10-25 02:00:00 CEST",
                "10-25 02:15:00 CEST",
                "10-25 02:30:00 CEST",
                "10-25 02:45:00 CEST",
                "10-25 03:00:00 CET",
            ]
        );
        // Started in the second pass of the hour: what was fired in the first is not
        // fired again.
        let second_pass =
            at("Europe/Berlin", "2026-10-25T02:50").checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
        assert_eq!(local("Europe/Berlin", &[second_pass]), ["10-25 02:50:00 CET"]);
        assert_eq!(local("Europe/Berlin", &[quarterly.next_after(second_pass).unwrap()]), ["10-25 03:00:00 CET"]);
    }

    #[test]
    fn berlin_spring_forward_loses_no_fire() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
        let daily = CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fires =
            daily.fires_between(at("Europe/Berlin", "2026-03-28T00:00"), at("Europe/Berlin", "2026-03-31T00:00"));
        assert_eq!(
            local("Europe/Berlin", &fires),
            ["03-28 02:30:00 CET", "03-29 03:00:00 CEST", "03-30 02:30:00 CEST"]
        );
        let quarterly = CronSchedule::parse("*/15 * * * *", "Europe/Berlin").unwrap();
        let night =
            quarterly.fires_between(at("Europe/Berlin", "2026-03-29T01:40"), at("Europe/Berlin", "2026-03-29T03:20"));
        // The missing hour's wall times fire once, at the jump.
        assert_eq!(
            local("Europe/Berlin", &night),
            ["03-29 01:45:00 CET", "03-29 03:00:00 CEST", "03-29 03:15:00 CEST"]
        );
    }
}
