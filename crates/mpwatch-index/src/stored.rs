//! Reading stored indices back: a period's ranking within a selection, the last
//! period whose data is final, and one account's series for charts.

use std::collections::HashMap;

use mpwatch_store::Store;
use rusqlite::{OptionalExtension as _, params};

use crate::Result;
use crate::compute::{PeriodKind, competition_ranks};
use crate::formulas::Formula;

/// One line of a ranking, as `mpwatch report` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RankingRow {
    /// Rank (competition ranking within the selection); `None` for an account that
    /// published nothing in the period (listed after the ranked ones).
    pub rank: Option<i64>,
    /// Previous rank minus this one within the same selection (positive: up), `None`
    /// when unranked in either period.
    pub change: Option<i64>,
    /// Account row id.
    pub account_id: i64,
    /// Account name.
    pub account: String,
    /// Pushes (发布次数).
    pub pushes: i64,
    /// Articles.
    pub n: i64,
    /// R (a sum of counts; 10万+ counts as 100001).
    pub reads: i64,
    /// R / n.
    pub reads_per_article: Option<f64>,
    /// Rmax (100001: 10万+).
    pub reads_max: i64,
    /// Rt.
    pub reads_headline: i64,
    /// Z (在看).
    pub wows: i64,
    /// L (点赞).
    pub likes: i64,
    /// The index value.
    pub value: f64,
    /// Articles observed late.
    pub late: i64,
    /// Not final yet.
    pub provisional: bool,
    /// Articles without a value at their age that will get none (the ladder ended).
    pub missing: i64,
}

/// The ranking of one period and index among the tracked accounts, or among one group's:
/// ranks and changes count only the selection (`--group G --top 3` shows ranks 1-3 of
/// G). Accounts that published nothing come last, unranked. Changes compare with the
/// stored period of the same kind that ends where this one starts.
pub fn ranking(
    store: &Store,
    kind: PeriodKind,
    start: i64,
    index: Formula,
    group: Option<&str>,
) -> Result<Vec<RankingRow>> {
    let mut rows = selection(store, kind, start, index, group)?;
    let previous_start: Option<i64> = store
        .connection()
        .prepare_cached(
            "SELECT p.period_start FROM index_periods p
             WHERE p.period_kind = ?1
               AND p.period_end = (SELECT period_start FROM index_periods WHERE period_kind = ?1 AND period_start = ?2 LIMIT 1)
             LIMIT 1",
        )?
        .query_row(params![kind.as_str(), start], |row| row.get(0))
        .optional()?;
    let previous = match previous_start {
        Some(previous_start) => ranks_within(&selection(store, kind, previous_start, index, group)?),
        None => HashMap::new(),
    };
    let ranks = ranks_within(&rows);
    for row in &mut rows {
        row.rank = ranks.get(&row.account_id).copied();
        row.change = row.rank.and_then(|rank| previous.get(&row.account_id).map(|before| before - rank));
    }
    rows.sort_by(|a, b| (a.rank.is_none(), a.rank, &a.account).cmp(&(b.rank.is_none(), b.rank, &b.account)));
    Ok(rows)
}

/// The ranking of a period computed now, not read from the tables (a reader that may
/// not write: `mpwatch serve` for custom ranges and periods not stored yet). The same
/// numbers as [`ranking`] gives once the period is stored, without rank changes.
pub fn ranking_computed(
    store: &Store,
    period: &crate::compute::Period,
    rules: &crate::compute::Rules,
    index: Formula,
    group: Option<&str>,
) -> Result<Vec<RankingRow>> {
    let computed = crate::compute_period(store, period, rules)?;
    let conn = store.connection();
    let mut name = conn.prepare_cached("SELECT coalesce(nickname, alias, biz) FROM accounts WHERE id = ?1")?;
    let mut member =
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM account_groups WHERE account_id = ?1 AND name = ?2)")?;
    let mut rows = Vec::new();
    for row in &computed {
        if let Some(group) = group
            && !member.query_row(params![row.account_id, group], |r| r.get::<_, bool>(0))?
        {
            continue;
        }
        let inputs = &row.inputs;
        let round = |value: f64| value.round() as i64;
        rows.push(RankingRow {
            rank: None,
            change: None,
            account_id: row.account_id,
            account: name.query_row([row.account_id], |r| r.get(0))?,
            pushes: row.pushes,
            n: inputs.n as i64,
            reads: round(inputs.R),
            reads_per_article: (inputs.n > 0.0).then(|| inputs.R / inputs.n),
            reads_max: round(inputs.Rmax),
            reads_headline: round(inputs.Rt),
            wows: round(inputs.Z),
            likes: round(inputs.L),
            value: crate::index_value(index, row, period),
            late: row.late,
            provisional: row.provisional,
            missing: row.missing,
        });
    }
    let ranks = ranks_within(&rows);
    for row in &mut rows {
        row.rank = ranks.get(&row.account_id).copied();
    }
    rows.sort_by(|a, b| (a.rank.is_none(), a.rank, &a.account).cmp(&(b.rank.is_none(), b.rank, &b.account)));
    Ok(rows)
}

/// Competition ranks by value among the rows that published something.
fn ranks_within(rows: &[RankingRow]) -> HashMap<i64, i64> {
    let published: Vec<(i64, f64)> =
        rows.iter().filter(|row| row.n > 0).map(|row| (row.account_id, row.value)).collect();
    competition_ranks(&published).into_iter().collect()
}

/// A count stored as a double, as a whole number (half away from zero).
fn rounded(value: f64) -> i64 {
    value.round() as i64
}

/// The selection's rows of one stored period, unranked.
fn selection(
    store: &Store,
    kind: PeriodKind,
    start: i64,
    index: Formula,
    group: Option<&str>,
) -> Result<Vec<RankingRow>> {
    let mut statement = store.connection().prepare_cached(
        // The columns of v_rankings, from its tables: the view cannot be filtered by
        // period start, and by kind alone it reads every period of that kind. The counts
        // are rounded here, half away from zero as SQLite's round() does (PostgreSQL's
        // round() of a double rounds half to even).
        "SELECT v.account_id, coalesce(a.nickname, a.alias, a.biz) AS account_name, p.n,
                p.reads, p.reads / nullif(p.n, 0), p.reads_max, p.reads_headline, p.wows,
                p.likes, v.value, p.late_articles, p.provisional, p.pushes,
                p.missing_articles
         FROM index_values v
         JOIN index_periods p USING (account_id, period_kind, period_start)
         JOIN accounts a ON a.id = v.account_id
         WHERE v.period_kind = ?1 AND v.period_start = ?2 AND v.index_name = ?3
           AND (CAST(?4 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM account_groups g WHERE g.account_id = v.account_id AND g.name = ?4))",
    )?;
    let rows = statement
        .query_map(params![kind.as_str(), start, index.as_str(), group], |row| {
            Ok(RankingRow {
                rank: None,
                change: None,
                account_id: row.get(0)?,
                account: row.get(1)?,
                n: row.get(2)?,
                reads: rounded(row.get(3)?),
                reads_per_article: row.get(4)?,
                reads_max: rounded(row.get(5)?),
                reads_headline: rounded(row.get(6)?),
                wows: rounded(row.get(7)?),
                likes: rounded(row.get(8)?),
                value: row.get(9)?,
                late: row.get(10)?,
                provisional: row.get(11)?,
                pushes: row.get(12)?,
                missing: row.get(13)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The start of the latest stored period of `kind` that ended by `now`, has articles and
/// whose data is final (no row provisional): what a ranking by default shows. Looks at
/// the newest 64 periods, newest first (an index range; data becomes final within days).
pub fn last_final_period(store: &Store, kind: PeriodKind, now: i64) -> Result<Option<i64>> {
    let conn = store.connection();
    let starts: Vec<i64> = conn
        .prepare_cached(
            "SELECT DISTINCT period_start FROM index_periods
             WHERE period_kind = ?1 AND period_end <= ?2 ORDER BY period_start DESC LIMIT 64",
        )?
        .query_map(params![kind.as_str(), now], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut state = conn.prepare_cached(
        "SELECT max(provisional), max(n) FROM index_periods WHERE period_kind = ?1 AND period_start = ?2",
    )?;
    for start in starts {
        let (provisional, articles): (Option<i64>, Option<i64>) =
            state.query_row(params![kind.as_str(), start], |row| Ok((row.get(0)?, row.get(1)?)))?;
        if provisional == Some(0) && articles.unwrap_or(0) > 0 {
            return Ok(Some(start));
        }
    }
    Ok(None)
}

/// One point of a chart series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesPoint {
    /// The period's start (unix seconds).
    pub start: i64,
    /// The metric's value.
    pub value: f64,
    /// Articles the account published in the period (0: nothing to show).
    pub n: i64,
    /// The period still waits for data.
    pub provisional: bool,
}

/// An index (or `reads`, `read_rate`, `engagement_rate`, `wows`, `likes`, `n`) of one
/// account per period, for charts, oldest first.
pub fn series(
    store: &Store,
    account_id: i64,
    kind: PeriodKind,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SeriesPoint>> {
    let from_periods = matches!(metric, "reads" | "read_rate" | "engagement_rate" | "wows" | "likes" | "n");
    let sql = if from_periods {
        format!(
            "SELECT period_start, {metric}, n, provisional FROM index_periods
             WHERE account_id = ?1 AND period_kind = ?2 AND period_start >= ?3 AND period_start < ?4
               AND CAST(?5 AS TEXT) IS NOT NULL
             ORDER BY period_start"
        )
    } else {
        "SELECT p.period_start, v.value, p.n, p.provisional
         FROM index_periods p JOIN index_values v USING (account_id, period_kind, period_start)
         WHERE p.account_id = ?1 AND p.period_kind = ?2 AND p.period_start >= ?3 AND p.period_start < ?4
           AND v.index_name = ?5
         ORDER BY p.period_start"
            .to_string()
    };
    let mut statement = store.connection().prepare(&sql)?;
    let rows = statement
        .query_map(params![account_id, kind.as_str(), from, to, metric], |row| {
            Ok(SeriesPoint { start: row.get(0)?, value: row.get(1)?, n: row.get(2)?, provisional: row.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
