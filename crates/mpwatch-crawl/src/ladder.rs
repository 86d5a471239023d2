//! The snapshot ladder: which count snapshots an article gets, and when. Pure
//! functions of the configured rungs (ages in seconds), the publish time and the clock.

use mpwatch_core::time::UnixSeconds;

/// The ladder rung that stands for "first sight": an article found before its first
/// rung gets one snapshot right away, so a crawl always knows every article's counts.
pub const FIRST_SIGHT: i64 = 0;

/// The rung a snapshot taken at `age` fills: the largest rung not after it, or
/// [`FIRST_SIGHT`] before the first one.
pub fn rung_for_age(rungs: &[i64], age: i64) -> i64 {
    rungs.iter().copied().filter(|r| *r <= age).max().unwrap_or(FIRST_SIGHT)
}

/// The ladder rungs of an article to queue at `now`: the current rung (the largest
/// whose age has passed) if nothing at or after it was taken yet (missed rungs before it
/// are skipped, never invented), or the first-sight rung when no rung has passed yet,
/// and the next future rung at its due time. Only the next one: taking a rung queues
/// the one after it ([`next_rung`]), so the queue holds one future item per article
/// instead of every rung of every article (each a row and three index entries
/// scattered by due time: most of a crawl's disk writes).
pub fn ladder(rungs: &[i64], published_at: UnixSeconds, now: UnixSeconds, taken: &[i64]) -> Vec<(i64, UnixSeconds)> {
    let age = now - published_at;
    let latest_taken = taken.iter().copied().max();
    let mut out = Vec::new();
    match rungs.iter().copied().filter(|r| *r <= age).max() {
        Some(current) if latest_taken.is_none_or(|t| t < current) => out.push((current, now)),
        None if taken.is_empty() => out.push((FIRST_SIGHT, now)),
        _ => {}
    }
    if let Some(rung) = rungs.iter().copied().filter(|r| *r > age).find(|r| !taken.contains(r)) {
        out.push((rung, published_at + rung));
    }
    out
}

/// The rung to queue after a snapshot filled `rung`, at its due time.
pub fn next_rung(rungs: &[i64], published_at: UnixSeconds, rung: i64) -> Option<(i64, UnixSeconds)> {
    rungs.iter().copied().filter(|r| *r > rung).min().map(|next| (next, published_at + next))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNGS: [i64; 4] = [3600, 6 * 3600, 86_400, 2 * 86_400];

    #[test]
    fn ladder_takes_the_current_rung_and_schedules_the_next() {
        // Published 2 h ago, nothing taken: the 1 h rung now, the 6 h one at its time.
        assert_eq!(ladder(&RUNGS, 0, 7200, &[]), vec![(3600, 7200), (6 * 3600, 6 * 3600)]);
        // Down for a day: the 6 h and 1 h rungs are skipped, not invented.
        assert_eq!(ladder(&RUNGS, 0, 30 * 3600, &[]), vec![(86_400, 30 * 3600), (2 * 86_400, 2 * 86_400)]);
        // Already taken: nothing for the current rung.
        assert_eq!(ladder(&RUNGS, 0, 7200, &[3600]), vec![(6 * 3600, 6 * 3600)]);
        // Too young for any rung: a first-sight snapshot now, once.
        assert_eq!(ladder(&RUNGS, 0, 60, &[]), vec![(0, 60), (3600, 3600)]);
        assert_eq!(ladder(&RUNGS, 0, 120, &[0]), vec![(3600, 3600)]);
        // Past the last rung: nothing to wait for.
        assert_eq!(ladder(&RUNGS, 0, 90 * 86_400, &[2 * 86_400]), vec![]);
    }

    #[test]
    fn each_snapshot_queues_the_rung_after_it() {
        assert_eq!(next_rung(&RUNGS, 1000, FIRST_SIGHT), Some((3600, 4600)));
        assert_eq!(next_rung(&RUNGS, 1000, 6 * 3600), Some((86_400, 87_400)));
        assert_eq!(next_rung(&RUNGS, 1000, 2 * 86_400), None);
    }

    #[test]
    fn a_snapshot_fills_the_rung_its_age_has_reached() {
        assert_eq!(rung_for_age(&RUNGS, 59), FIRST_SIGHT);
        assert_eq!(rung_for_age(&RUNGS, 3600), 3600);
        assert_eq!(rung_for_age(&RUNGS, 7 * 3600), 6 * 3600);
        assert_eq!(rung_for_age(&RUNGS, 90 * 86_400), 2 * 86_400);
    }
}
