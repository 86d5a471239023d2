//! The pure part: calendars, which snapshot counts, per-account aggregates, rankings.

use jiff::ToSpan as _;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::formulas::Inputs;

/// Read counts shown as 10万+ count as this.
pub const READS_CAP: i64 = 100_001;

/// Kinds of period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    /// A calendar day.
    Day,
    /// Sunday to Saturday.
    Week,
    /// A calendar month.
    Month,
    /// Any range of whole days.
    Custom,
}

impl PeriodKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Day => "day",
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
            PeriodKind::Custom => "custom",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<PeriodKind> {
        [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month, PeriodKind::Custom]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A period of the calendar: `[start, end)` in unix seconds, its first local date, and
/// `d` as the rankers count it (1, 7, 30, else the real number of days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    /// Kind.
    pub kind: PeriodKind,
    /// First local day.
    pub first_day: Date,
    /// Start instant.
    pub start: i64,
    /// End instant (exclusive).
    pub end: i64,
    /// Days as the formulas count them.
    pub d: f64,
    /// Days counted inclusively (NRI).
    pub days: f64,
}

fn midnight(date: Date, tz: &TimeZone) -> i64 {
    date.to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_second()).unwrap_or(0)
}

impl Period {
    /// The period of `kind` containing local date `date`.
    pub fn containing(kind: PeriodKind, date: Date, tz: &TimeZone) -> Period {
        let (first, next) = match kind {
            PeriodKind::Day | PeriodKind::Custom => (date, date.tomorrow().unwrap_or(date)),
            PeriodKind::Week => {
                // Sunday-first weeks: Sunday is 0 days back.
                let back = i64::from(date.weekday().to_sunday_zero_offset());
                let first = date.checked_sub(back.days()).unwrap_or(date);
                (first, first.checked_add(7.days()).unwrap_or(first))
            }
            PeriodKind::Month => {
                let first = date.first_of_month();
                (first, first.checked_add(1.month()).unwrap_or(first))
            }
        };
        let days = (next - first).get_days().max(1) as f64;
        let d = match kind {
            PeriodKind::Day => 1.0,
            PeriodKind::Week => 7.0,
            PeriodKind::Month => 30.0,
            PeriodKind::Custom => days,
        };
        Period { kind, first_day: first, start: midnight(first, tz), end: midnight(next, tz), d, days }
    }

    /// A custom range of whole local days `[from, to]`.
    pub fn range(from: Date, to: Date, tz: &TimeZone) -> Period {
        let next = to.tomorrow().unwrap_or(to);
        let days = (next - from).get_days().max(1) as f64;
        Period {
            kind: PeriodKind::Custom,
            first_day: from,
            start: midnight(from, tz),
            end: midnight(next, tz),
            d: days,
            days,
        }
    }

    /// The period containing instant `t`.
    pub fn at(kind: PeriodKind, t: i64, tz: &TimeZone) -> Period {
        let date =
            jiff::Timestamp::from_second(t).map(|ts| ts.to_zoned_datetime(tz.clone()).date()).unwrap_or_default();
        Period::containing(kind, date, tz)
    }

    /// The period before this one.
    pub fn previous(&self, tz: &TimeZone) -> Period {
        let day_before = self.first_day.yesterday().unwrap_or(self.first_day);
        Period::containing(self.kind, day_before, tz)
    }
}

/// One snapshot as the index sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Seconds after publication.
    pub age: i64,
    /// When (unix seconds).
    pub observed_at: i64,
    /// 阅读 (100001 for 10万+).
    pub reads: i64,
    /// 点赞.
    pub likes: i64,
    /// 在看.
    pub wows: i64,
    /// Shares.
    pub shares: i64,
    /// Comments.
    pub comments: i64,
}

/// An article with its snapshots, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleData {
    /// Row id.
    pub id: i64,
    /// Account row id.
    pub account_id: i64,
    /// Push id.
    pub mid: u64,
    /// Position (1 = headline).
    pub idx: u32,
    /// Publication.
    pub published_at: i64,
    /// Snapshots by observation time.
    pub snapshots: Vec<Observation>,
}

/// Which snapshot of each article counts.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Calendar zone.
    pub tz: TimeZone,
    /// Target age for day and week periods (the day after publication).
    pub day_age: i64,
    /// Target age for month periods (the 7th day).
    pub month_age: i64,
    /// A value observed later than `target × late_factor` is flagged late.
    pub late_factor: f64,
    /// The snapshot ladder's last age (`crawl.snapshot_ages`): past it, an article gets
    /// no more counts (deleted, blocked, or never counted), so its missing value is
    /// missing for good, not pending.
    pub ladder_end: i64,
    /// The instant the data is judged at ([`crate::update`] and [`crate::store_period`]
    /// set it); `i64::MIN`: nothing is settled.
    pub now: i64,
}

impl Rules {
    /// The rules a configuration sets: its `timezone` and `[index]` ages.
    pub fn from_config(config: &mpwatch_core::config::Config) -> Result<Rules, jiff::Error> {
        Ok(Rules {
            tz: TimeZone::get(&config.timezone)?,
            day_age: config.index.day_observation_age.as_secs() as i64,
            month_age: config.index.month_observation_age.as_secs() as i64,
            late_factor: config.index.late_factor,
            ladder_end: config.crawl.snapshot_ages.iter().map(|age| age.as_secs() as i64).max().unwrap_or(0),
            now: i64::MIN,
        })
    }

    /// Asia/Shanghai calendar, +24 h and +7 d, late beyond 1.25 × the target.
    pub fn shanghai() -> Rules {
        Rules {
            tz: TimeZone::get("Asia/Shanghai").unwrap_or(TimeZone::UTC),
            day_age: 86_400,
            month_age: 7 * 86_400,
            late_factor: 1.25,
            ladder_end: 30 * 86_400,
            now: i64::MIN,
        }
    }

    /// Whether an article published at `published_at` gets no more counts: the ladder
    /// ended before [`Rules::now`].
    pub fn settled(&self, published_at: i64) -> bool {
        self.now >= published_at.saturating_add(self.ladder_end)
    }

    /// The target age for a period kind.
    pub fn target(&self, kind: PeriodKind) -> i64 {
        match kind {
            PeriodKind::Month => self.month_age,
            _ => self.day_age,
        }
    }
}

/// The counts of one article that enter a period's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The values (zeros when nothing was observed yet).
    pub values: Observation,
    /// The first snapshot at or after the target age came much later.
    pub late: bool,
    /// No snapshot at or after the target age exists yet.
    pub provisional: bool,
    /// No snapshot at or after the target age exists, and none will: the ladder ended.
    pub missing: bool,
}

/// The value of an article at `target` age: the first snapshot at or after it (late
/// when much after); when none exists, the latest earlier one: provisional while the
/// article may still be counted, missing (and final) once it is `settled`.
pub fn take(article: &ArticleData, target: i64, late_factor: f64, settled: bool) -> Taken {
    let empty =
        Observation { age: 0, observed_at: article.published_at, reads: 0, likes: 0, wows: 0, shares: 0, comments: 0 };
    match article.snapshots.iter().filter(|s| s.age >= target).min_by_key(|s| s.age) {
        Some(snapshot) => Taken {
            values: *snapshot,
            late: snapshot.age as f64 > target as f64 * late_factor,
            provisional: false,
            missing: false,
        },
        None => Taken {
            values: article.snapshots.iter().max_by_key(|s| s.age).copied().unwrap_or(empty),
            late: false,
            provisional: !settled,
            missing: settled,
        },
    }
}

/// Everything computed for one account over one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountPeriod {
    /// Account row id.
    pub account_id: i64,
    /// The period.
    pub period: Period,
    /// The WCI symbols.
    pub inputs: Inputs,
    /// Distinct pushes.
    pub pushes: i64,
    /// Headline articles.
    pub headlines: i64,
    /// Comments: sum, headline sum, max.
    pub comments: (i64, i64, i64),
    /// (Z + L) / R.
    pub engagement_rate: f64,
    /// R / d.
    pub read_rate: f64,
    /// Reads gained per day by all the account's articles, from snapshot differences.
    pub reads_gained_per_day: Option<f64>,
    /// Articles whose value was observed late.
    pub late: i64,
    /// Articles with no value at their target age that will get none (the ladder
    /// ended): they enter with their last earlier counts, and the period is final.
    pub missing: i64,
    /// Some article has no value at its target age yet.
    pub provisional: bool,
}

/// Running sums of one account's articles in one period: the definition of every
/// column but reads gained, shared by [`aggregate`] and the one-pass computation.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeriodSums {
    inputs: Inputs,
    pushes: Vec<u64>,
    headlines: i64,
    comments: (i64, i64, i64),
    late: i64,
    missing: i64,
    provisional: bool,
}

impl PeriodSums {
    /// Adds an article published in the period, with its value at `target` age.
    pub(crate) fn add(&mut self, article: &ArticleData, target: i64, rules: &Rules) {
        let taken = take(article, target, rules.late_factor, rules.settled(article.published_at));
        let v = taken.values;
        let reads = v.reads.min(READS_CAP) as f64;
        let inputs = &mut self.inputs;
        inputs.n += 1.0;
        inputs.R += reads;
        inputs.Rmax = inputs.Rmax.max(reads);
        inputs.Z += v.wows as f64;
        inputs.Zmax = inputs.Zmax.max(v.wows as f64);
        inputs.L += v.likes as f64;
        inputs.Lmax = inputs.Lmax.max(v.likes as f64);
        inputs.RE += v.shares as f64;
        inputs.REmax = inputs.REmax.max(v.shares as f64);
        self.comments.0 += v.comments;
        self.comments.2 = self.comments.2.max(v.comments);
        if article.idx == 1 {
            self.headlines += 1;
            inputs.Rt += reads;
            inputs.Zt += v.wows as f64;
            inputs.Lt += v.likes as f64;
            inputs.REt += v.shares as f64;
            self.comments.1 += v.comments;
        }
        self.pushes.push(article.mid);
        self.late += i64::from(taken.late);
        self.missing += i64::from(taken.missing);
        self.provisional |= taken.provisional;
    }

    /// The account's row for the period.
    pub(crate) fn finish(
        mut self,
        account_id: i64,
        period: &Period,
        reads_gained_per_day: Option<f64>,
    ) -> AccountPeriod {
        self.pushes.sort_unstable();
        self.pushes.dedup();
        let inputs = Inputs { d: period.d, ..self.inputs };
        AccountPeriod {
            account_id,
            period: period.clone(),
            pushes: self.pushes.len() as i64,
            headlines: self.headlines,
            comments: self.comments,
            engagement_rate: if inputs.R > 0.0 { (inputs.Z + inputs.L) / inputs.R } else { 0.0 },
            read_rate: inputs.R / period.d,
            reads_gained_per_day,
            late: self.late,
            missing: self.missing,
            provisional: self.provisional,
            inputs,
        }
    }
}

/// Aggregates the articles of one account published in `period`. `all_articles` (the
/// account's articles of any date) feed the reads-gained measure.
pub fn aggregate(
    account_id: i64,
    period: &Period,
    articles: &[&ArticleData],
    all_articles: &[&ArticleData],
    rules: &Rules,
) -> AccountPeriod {
    let mut sums = PeriodSums::default();
    for article in articles.iter().filter(|a| a.published_at >= period.start && a.published_at < period.end) {
        sums.add(article, rules.target(period.kind), rules);
    }
    sums.finish(account_id, period, reads_gained(all_articles, period))
}

/// Reads gained per day across all the account's articles: for each article, its reads
/// last observed before the period's end minus those last observed before its start (0
/// for articles published inside the period). Articles older than the period without a
/// snapshot before its start are left out (their gain cannot be split); so are those
/// never observed after it began. `None` when no article qualifies.
pub fn reads_gained(articles: &[&ArticleData], period: &Period) -> Option<f64> {
    let mut total = 0i64;
    let mut any = false;
    for article in articles.iter().filter(|a| a.published_at < period.end) {
        let last_before = |t: i64| {
            article.snapshots.iter().filter(|s| s.observed_at < t).max_by_key(|s| s.observed_at).map(|s| s.reads)
        };
        let Some(at_end) = last_before(period.end) else { continue };
        let at_start = if article.published_at >= period.start { Some(0) } else { last_before(period.start) };
        let Some(at_start) = at_start else { continue };
        total += (at_end - at_start).max(0);
        any = true;
    }
    any.then(|| total as f64 / period.d)
}

/// Standard competition ranking ("1224"): equal values share a rank, the next rank
/// skips. Higher values rank first; the order of the input does not matter.
pub fn competition_ranks(values: &[(i64, f64)]) -> Vec<(i64, i64)> {
    let mut sorted: Vec<(i64, f64)> = values.to_vec();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut ranks = Vec::with_capacity(sorted.len());
    for (position, (account, value)) in sorted.iter().enumerate() {
        let rank = match position {
            0 => 1,
            _ if sorted[position - 1].1 == *value => ranks.last().map_or(1, |(_, r): &(i64, i64)| *r),
            _ => position as i64 + 1,
        };
        ranks.push((*account, rank));
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn weeks_run_sunday_to_saturday_and_months_count_thirty() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let week = Period::containing(PeriodKind::Week, date("2025-11-12"), &tz);
        assert_eq!(week.first_day, date("2025-11-09"), "a Wednesday's week starts on Sunday");
        assert_eq!(week.end - week.start, 7 * 86_400);
        let sunday = Period::containing(PeriodKind::Week, date("2025-11-09"), &tz);
        assert_eq!(sunday.first_day, date("2025-11-09"));
        let month = Period::containing(PeriodKind::Month, date("2025-02-14"), &tz);
        assert_eq!((month.first_day, month.d, month.days), (date("2025-02-01"), 30.0, 28.0));
        assert_eq!(Period::containing(PeriodKind::Day, date("2025-11-12"), &tz).d, 1.0);
        assert_eq!(week.previous(&tz).first_day, date("2025-11-02"));
    }

    #[test]
    fn late_evening_in_beijing_belongs_to_that_day() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        // 2025-11-01 23:30 in Beijing is 15:30 UTC the same day.
        let t = 1_762_011_000;
        let day = Period::at(PeriodKind::Day, t, &tz);
        assert_eq!(day.first_day, date("2025-11-01"));
        assert!(day.start <= t && t < day.end);
        let utc_day = Period::at(PeriodKind::Day, t + 3600, &TimeZone::UTC);
        assert_eq!(utc_day.first_day, date("2025-11-01"));
        // 00:30 on the 2nd in Beijing is still the 1st in UTC.
        let after_midnight = t + 3600;
        assert_eq!(Period::at(PeriodKind::Day, after_midnight, &tz).first_day, date("2025-11-02"));
    }

    #[test]
    fn competition_ranking_shares_ranks() {
        let ranks = competition_ranks(&[(1, 5.0), (2, 9.0), (3, 5.0), (4, 1.0)]);
        assert_eq!(ranks, vec![(2, 1), (1, 2), (3, 2), (4, 4)]);
    }

    #[test]
    fn take_uses_the_first_snapshot_at_the_target_and_flags_the_rest() {
        let snapshot = |age: i64, reads: i64| Observation {
            age,
            observed_at: age,
            reads,
            likes: 0,
            wows: 0,
            shares: 0,
            comments: 0,
        };
        let article = |snapshots: Vec<Observation>| ArticleData {
            id: 1,
            account_id: 1,
            mid: 1,
            idx: 1,
            published_at: 0,
            snapshots,
        };
        let on_time =
            take(&article(vec![snapshot(3600, 10), snapshot(90_000, 50), snapshot(200_000, 80)]), 86_400, 1.25, false);
        assert_eq!((on_time.values.reads, on_time.late, on_time.provisional), (50, false, false));
        let late = take(&article(vec![snapshot(3600, 10), snapshot(200_000, 80)]), 86_400, 1.25, false);
        assert_eq!((late.values.reads, late.late, late.provisional), (80, true, false));
        let early = take(&article(vec![snapshot(3600, 10)]), 86_400, 1.25, false);
        assert_eq!((early.values.reads, early.provisional, early.missing), (10, true, false));
        // Deleted after its first count: once the ladder ended, the value is missing for
        // good and the period is final.
        let gone = take(&article(vec![snapshot(3600, 10)]), 86_400, 1.25, true);
        assert_eq!((gone.values.reads, gone.provisional, gone.missing), (10, false, true));
    }
}
