//! Many periods in one pass over the articles: what [`aggregate`] and [`reads_gained`]
//! define for one period, computed for every period of a list at the cost of one visit
//! per article and snapshot (and a binary search for its period), instead of one visit
//! per article and period.
//!
//! [`aggregate`]: crate::compute::aggregate
//! [`reads_gained`]: crate::compute::reads_gained

use std::collections::{BTreeSet, HashMap};

use crate::compute::{AccountPeriod, ArticleData, Period, PeriodKind, PeriodSums, Rules};

/// What [`compute_periods`] needs to know about data it was not given.
#[derive(Debug, Clone, Default)]
pub struct Outside {
    /// Accounts with a snapshot observed before the first period (of articles not
    /// passed in). Such an article adds nothing to a later period's reads gained, but
    /// it makes the measure defined (0 rather than none).
    pub observed_before: BTreeSet<i64>,
}

/// Running sums of one account in one period.
#[derive(Debug, Clone, Default)]
struct Sums {
    articles: PeriodSums,
    gained: i64,
    gained_defined: bool,
}

/// The periods of one kind, sorted and disjoint, for finding an instant's period.
struct Calendar {
    /// (start, end, index into the caller's list), sorted by start.
    spans: Vec<(i64, i64, usize)>,
}

impl Calendar {
    fn new(periods: &[Period], kind: PeriodKind) -> Calendar {
        let mut spans: Vec<(i64, i64, usize)> =
            periods.iter().enumerate().filter(|(_, p)| p.kind == kind).map(|(i, p)| (p.start, p.end, i)).collect();
        spans.sort_unstable();
        Calendar { spans }
    }

    /// The caller's index of the period containing `t`.
    fn find(&self, t: i64) -> Option<usize> {
        let after = self.spans.partition_point(|(start, _, _)| *start <= t);
        let (_, end, index) = *self.spans.get(after.checked_sub(1)?)?;
        (t < end).then_some(index)
    }
}

/// Computes every period of `periods` for every account of `accounts`: the same rows
/// as [`aggregate`](crate::compute::aggregate) gives period by period, returned period
/// by period in the order of `periods`, accounts in the order given.
///
/// `articles` must hold every article published inside the periods, and for any other
/// article every snapshot observed inside them plus its last one before the first
/// period (articles of accounts not listed are ignored). Periods of one kind must not
/// overlap.
pub fn compute_periods(
    accounts: &[i64],
    articles: &[ArticleData],
    periods: &[Period],
    outside: &Outside,
    rules: &Rules,
) -> Vec<Vec<AccountPeriod>> {
    let column: HashMap<i64, usize> = accounts.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let mut sums: Vec<Vec<Sums>> = periods.iter().map(|_| vec![Sums::default(); accounts.len()]).collect();
    // The earliest observation of each account, for the periods its articles have no
    // snapshot in.
    let mut first_observed: Vec<i64> =
        accounts.iter().map(|a| if outside.observed_before.contains(a) { i64::MIN } else { i64::MAX }).collect();
    let kinds: BTreeSet<PeriodKind> = periods.iter().map(|p| p.kind).collect();
    let calendars: Vec<(PeriodKind, Calendar)> = kinds.into_iter().map(|k| (k, Calendar::new(periods, k))).collect();
    for article in articles {
        let Some(&col) = column.get(&article.account_id) else { continue };
        if let Some(first) = article.snapshots.iter().map(|s| s.observed_at).min() {
            first_observed[col] = first_observed[col].min(first);
        }
        for (kind, calendar) in &calendars {
            if let Some(p) = calendar.find(article.published_at) {
                sums[p][col].articles.add(article, rules.target(*kind), rules);
            }
            add_gains(&mut sums, col, article, calendar, periods);
        }
    }
    periods
        .iter()
        .zip(sums)
        .map(|(period, row)| {
            accounts
                .iter()
                .zip(row)
                .enumerate()
                .map(|(col, (account, sums))| finish(*account, period, sums, first_observed[col]))
                .collect()
        })
        .collect()
}

/// Adds an article's reads gained to each period its snapshots fall in: the last
/// reads observed in the period minus the last before it (0 when it was published in
/// the period; left out when it was published earlier and never observed before).
fn add_gains(sums: &mut [Vec<Sums>], col: usize, article: &ArticleData, calendar: &Calendar, periods: &[Period]) {
    let mut before: Option<i64> = None;
    // The period being summed: (index, reads at its start, reads last seen in it).
    let mut open: Option<(usize, Option<i64>, i64)> = None;
    let close = |open: Option<(usize, Option<i64>, i64)>, sums: &mut [Vec<Sums>]| {
        if let Some((p, Some(start), last)) = open {
            let cell = &mut sums[p][col];
            cell.gained += (last - start).max(0);
            cell.gained_defined = true;
        }
    };
    for snapshot in &article.snapshots {
        // Observations of a period that ended before the article was published (a clock
        // ahead of WeChat's) do not count for it, as in `reads_gained`.
        let period = calendar.find(snapshot.observed_at).filter(|p| article.published_at < periods[*p].end);
        if open.is_some_and(|(p, _, _)| Some(p) != period) {
            close(open.take(), sums);
        }
        if let Some(p) = period {
            let (_, _, last) = open.get_or_insert_with(|| {
                let start = if article.published_at >= periods[p].start { Some(0) } else { before };
                (p, start, 0)
            });
            *last = snapshot.reads;
        }
        before = Some(snapshot.reads);
    }
    close(open, sums);
}

fn finish(account_id: i64, period: &Period, sums: Sums, first_observed: i64) -> AccountPeriod {
    let gained_defined = sums.gained_defined || first_observed < period.start;
    sums.articles.finish(account_id, period, gained_defined.then(|| sums.gained as f64 / period.d))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::compute::{Observation, aggregate};

    const DAY: i64 = 86_400;
    /// 2025-11-01 00:00 in Beijing.
    const START: i64 = 1_761_926_400;

    fn article_strategy() -> impl Strategy<Value = ArticleData> {
        (
            1i64..4,
            0i64..40 * DAY,
            1u32..4,
            0u64..3,
            prop::collection::vec((0i64..20 * DAY, 0i64..200_000, 0i64..500), 0..6),
        )
            .prop_map(|(account, offset, idx, push, observed)| {
                let published_at = START + offset;
                let mut snapshots: Vec<Observation> = observed
                    .into_iter()
                    .map(|(age, reads, likes)| Observation {
                        age,
                        observed_at: published_at + age,
                        reads,
                        likes,
                        wows: likes / 2,
                        shares: likes / 3,
                        comments: likes / 5,
                    })
                    .collect();
                snapshots.sort_by_key(|s| s.observed_at);
                ArticleData {
                    id: 0,
                    account_id: account,
                    mid: (offset / DAY) as u64 * 4 + push,
                    idx,
                    published_at,
                    snapshots,
                }
            })
    }

    proptest! {
        /// One pass gives what `aggregate` gives period by period, for every kind.
        #[test]
        fn one_pass_equals_period_by_period(
            mut articles in prop::collection::vec(article_strategy(), 0..40),
            days in prop::collection::btree_set(0i64..70, 1..12),
        ) {
            for (i, article) in articles.iter_mut().enumerate() {
                article.id = i as i64 + 1;
            }
            let rules = Rules::shanghai();
            let mut periods: Vec<Period> = Vec::new();
            for kind in [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month] {
                for day in &days {
                    let period = Period::at(kind, START + day * DAY, &rules.tz);
                    if !periods.contains(&period) {
                        periods.push(period);
                    }
                }
            }
            let accounts = [1, 2, 3, 4];
            let computed = compute_periods(&accounts, &articles, &periods, &Outside::default(), &rules);
            for (period, rows) in periods.iter().zip(computed) {
                for (account, row) in accounts.iter().zip(rows) {
                    let all: Vec<&ArticleData> =
                        articles.iter().filter(|a| a.account_id == *account).collect();
                    let inside: Vec<&ArticleData> = all
                        .iter()
                        .copied()
                        .filter(|a| a.published_at >= period.start && a.published_at < period.end)
                        .collect();
                    prop_assert_eq!(&row, &aggregate(*account, period, &inside, &all, &rules));
                }
            }
        }
    }
}
