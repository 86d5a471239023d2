//! Indices and rankings from mpwatch's stored articles and count snapshots: daily read
//! rate, engagement, Qingbo's WCI (V11, V13, V14.2 with and without shares) and
//! Newrank's NRI, per account and period, with competition rankings.
//!
//! - [`formulas`]: the formulas of `shared/docs/indices.md`, exact.
//! - [`compute`]: calendars (day, Sunday-Saturday week, month, custom) in a time zone,
//!   which snapshot counts (first at or after +24 h for days and weeks, +7 d for months;
//!   `late` and `provisional` flags), aggregates, rankings.
//! - [`update`]: writes `index_periods` / `index_values` (documented in
//!   `docs/schema.md`), incrementally or in full; recomputing is idempotent.
//!
//! This crate never touches the network: it reads the database the crawler filled.
#![deny(missing_docs)]

pub mod compute;
pub mod formulas;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use compute::{AccountPeriod, ArticleData, Observation, Period, PeriodKind, Rules, aggregate, competition_ranks};
use formulas::Formula;
use mpwatch_store::{Store, StoreError};
use rusqlite::params;

/// Errors of the index crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// SQLite failed while reading or writing the index tables.
    #[error("index tables: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The crate's result type.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// What to recompute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Periods touched by articles or snapshots added since the last run, and periods
    /// still provisional.
    Incremental,
    /// Every period from the first article to now.
    Full,
    /// Periods overlapping `[from, to)` (unix seconds).
    Range(i64, i64),
}

/// What an update did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpdateSummary {
    /// Periods (of any kind) recomputed.
    pub periods: usize,
    /// Account-period rows written.
    pub rows: usize,
}

/// The period kinds `mpwatch index` maintains.
pub const KINDS: [PeriodKind; 3] = [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month];

/// Loads tracked articles (of enabled accounts) published in `[from, to)`, with their
/// snapshots.
pub fn load_articles(store: &Store, from: i64, to: i64) -> Result<Vec<ArticleData>> {
    let conn = store.connection();
    let mut statement = conn.prepare(
        "SELECT a.id, a.account_id, a.mid, a.idx, a.published_at
         FROM articles a JOIN accounts acc ON acc.id = a.account_id
         WHERE acc.enabled = 1 AND a.published_at >= ?1 AND a.published_at < ?2 AND a.status != 'pending'
         ORDER BY a.id",
    )?;
    let mut articles: Vec<ArticleData> = statement
        .query_map(params![from, to], |row| {
            Ok(ArticleData {
                id: row.get(0)?,
                account_id: row.get(1)?,
                mid: row.get::<_, i64>(2)? as u64,
                idx: row.get::<_, i64>(3)? as u32,
                published_at: row.get(4)?,
                snapshots: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let index: HashMap<i64, usize> = articles.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    let mut snapshots = conn.prepare(
        "SELECT s.article_id, s.age_seconds, s.observed_at, coalesce(s.reads, 0), coalesce(s.likes, 0), coalesce(s.wows, 0),
                coalesce(s.shares, 0), coalesce(s.comments, 0)
         FROM metric_snapshots s JOIN articles a ON a.id = s.article_id
         WHERE a.published_at >= ?1 AND a.published_at < ?2 AND s.age_seconds IS NOT NULL
         ORDER BY s.observed_at, s.id",
    )?;
    let rows = snapshots.query_map(params![from, to], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            Observation {
                age: row.get(1)?,
                observed_at: row.get(2)?,
                reads: row.get(3)?,
                likes: row.get(4)?,
                wows: row.get(5)?,
                shares: row.get(6)?,
                comments: row.get(7)?,
            },
        ))
    })?;
    for row in rows {
        let (article_id, observation) = row?;
        if let Some(i) = index.get(&article_id) {
            articles[*i].snapshots.push(observation);
        }
    }
    Ok(articles)
}

fn tracked_accounts(store: &Store) -> Result<Vec<i64>> {
    let mut statement = store.connection().prepare("SELECT id FROM accounts WHERE enabled = 1 ORDER BY id")?;
    let ids = statement.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// Computes one period for every tracked account (no writes).
pub fn compute_period(store: &Store, period: &Period, rules: &Rules) -> Result<Vec<AccountPeriod>> {
    // Reads gained need every article published before the period's end.
    let articles = load_articles(store, i64::MIN / 2, period.end)?;
    Ok(compute_from(&tracked_accounts(store)?, &articles, period, rules))
}

/// Computes one period from articles already loaded (those published before its end
/// at least).
fn compute_from(accounts: &[i64], articles: &[ArticleData], period: &Period, rules: &Rules) -> Vec<AccountPeriod> {
    let mut by_account: BTreeMap<i64, Vec<&ArticleData>> = BTreeMap::new();
    for article in articles.iter().filter(|a| a.published_at < period.end) {
        by_account.entry(article.account_id).or_default().push(article);
    }
    accounts
        .iter()
        .map(|account| {
            let all = by_account.get(account).map(Vec::as_slice).unwrap_or_default();
            let in_period: Vec<&ArticleData> = all.iter().copied().filter(|a| a.published_at >= period.start).collect();
            aggregate(*account, period, &in_period, all, rules)
        })
        .collect()
}

/// Recomputes and stores one period: its aggregates, every index, ranks and rank changes
/// (against the previous period, and the next period's changes against this one).
pub fn store_period(store: &mut Store, period: &Period, rules: &Rules, now: i64) -> Result<usize> {
    let rows = compute_period(store, period, rules)?;
    write_period(store, period, rows, rules, now)
}

/// Writes a computed period with its indices and ranks.
fn write_period(
    store: &mut Store,
    period: &Period,
    rows: Vec<AccountPeriod>,
    rules: &Rules,
    now: i64,
) -> Result<usize> {
    let kind = period.kind.as_str();
    let previous = period.previous(&rules.tz);
    let previous_ranks = ranks_of(store, kind, previous.start)?;
    let mut values: BTreeMap<Formula, Vec<(i64, f64)>> = BTreeMap::new();
    for row in &rows {
        for formula in Formula::ALL {
            let value = match formula {
                // NRI counts the period's days inclusively (a real month has 28-31), where
                // the WCI divides by 30.
                Formula::Nri => formulas::nri(&formulas::NriInputs {
                    days: period.days,
                    ..formulas::NriInputs::from_inputs(&row.inputs)
                }),
                _ => formula.compute(&row.inputs),
            };
            values.entry(formula).or_default().push((row.account_id, value));
        }
    }
    let count = rows.len();
    store.write(|tx| {
        let conn = tx.connection();
        let sqlite = |source| StoreError::Sqlite { context: "writing indices".into(), source };
        conn.execute("DELETE FROM index_periods WHERE period_kind = ?1 AND period_start = ?2", params![kind, period.start]).map_err(sqlite)?;
        for row in &rows {
            let i = &row.inputs;
            conn.execute(
                "INSERT INTO index_periods (account_id, period_kind, period_start, period_end, first_day, d, n, pushes,
                    headlines, reads, reads_headline, reads_max, wows, wows_headline, wows_max, likes, likes_headline,
                    likes_max, shares, shares_headline, shares_max, comments, comments_headline, comments_max,
                    engagement_rate, read_rate, reads_gained_per_day, late_articles, provisional, computed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                    ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
                params![
                    row.account_id,
                    kind,
                    period.start,
                    period.end,
                    period.first_day.to_string(),
                    period.d,
                    i.n as i64,
                    row.pushes,
                    row.headlines,
                    i.R,
                    i.Rt,
                    i.Rmax,
                    i.Z,
                    i.Zt,
                    i.Zmax,
                    i.L,
                    i.Lt,
                    i.Lmax,
                    i.RE,
                    i.REt,
                    i.REmax,
                    row.comments.0,
                    row.comments.1,
                    row.comments.2,
                    row.engagement_rate,
                    row.read_rate,
                    row.reads_gained_per_day,
                    row.late,
                    row.provisional,
                    now
                ],
            )
            .map_err(sqlite)?;
        }
        for (formula, list) in &values {
            for (account, rank) in competition_ranks(list) {
                let value = list.iter().find(|(a, _)| *a == account).map_or(0.0, |(_, v)| *v);
                let change = previous_ranks.get(&(account, formula.as_str().to_string())).map(|before| before - rank);
                conn.execute(
                    "INSERT INTO index_values (account_id, period_kind, period_start, index_name, value, rank, rank_change)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![account, kind, period.start, formula.as_str(), value, rank, change],
                )
                .map_err(sqlite)?;
            }
        }
        // The following period's changes are measured against this one.
        conn.execute(
            "UPDATE index_values SET rank_change = (
                SELECT p.rank - index_values.rank FROM index_values p
                WHERE p.account_id = index_values.account_id AND p.period_kind = index_values.period_kind
                  AND p.index_name = index_values.index_name AND p.period_start = ?2)
             WHERE period_kind = ?1 AND period_start = (
                SELECT min(period_start) FROM index_periods WHERE period_kind = ?1 AND period_start > ?2)",
            params![kind, period.start],
        )
        .map_err(sqlite)?;
        Ok(())
    })?;
    Ok(count)
}

fn ranks_of(store: &Store, kind: &str, start: i64) -> Result<HashMap<(i64, String), i64>> {
    let mut statement = store.connection().prepare(
        "SELECT account_id, index_name, rank FROM index_values WHERE period_kind = ?1 AND period_start = ?2",
    )?;
    let ranks = statement
        .query_map(params![kind, start], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ranks)
}

/// Publication instants whose periods must be recomputed.
fn touched(store: &Store, scope: Scope, now: i64) -> Result<BTreeSet<i64>> {
    let conn = store.connection();
    let times: Vec<i64> = match scope {
        Scope::Full => conn
            .prepare(
                "SELECT DISTINCT published_at FROM articles WHERE published_at IS NOT NULL AND published_at <= ?1",
            )?
            .query_map([now], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        Scope::Range(from, to) => conn
            .prepare("SELECT DISTINCT published_at FROM articles WHERE published_at >= ?1 AND published_at < ?2")?
            .query_map(params![from, to], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        Scope::Incremental => {
            let (last_article, last_snapshot): (i64, i64) = conn
                .query_row("SELECT last_article_id, last_snapshot_id FROM index_state WHERE id = 1", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .unwrap_or((0, 0));
            let mut times: Vec<i64> = conn
                .prepare(
                    "SELECT DISTINCT a.published_at FROM articles a
                     WHERE a.published_at IS NOT NULL AND (a.id > ?1
                        OR EXISTS (SELECT 1 FROM metric_snapshots s WHERE s.article_id = a.id AND s.id > ?2))",
                )?
                .query_map(params![last_article, last_snapshot], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            // Provisional periods wait for data: look again.
            times.extend(
                conn.prepare("SELECT DISTINCT period_start FROM index_periods WHERE provisional = 1")?
                    .query_map([], |row| row.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            );
            times
        }
    };
    Ok(times.into_iter().collect())
}

/// Recomputes the periods `scope` names and records what was seen.
pub fn update(store: &mut Store, rules: &Rules, scope: Scope, now: i64) -> Result<UpdateSummary> {
    let times = touched(store, scope, now)?;
    let mut periods: BTreeMap<(PeriodKind, i64), Period> = BTreeMap::new();
    for t in times {
        for kind in KINDS {
            let period = Period::at(kind, t, &rules.tz);
            periods.entry((kind, period.start)).or_insert(period);
        }
    }
    if let Scope::Range(from, to) = scope {
        periods.retain(|_, p| p.end > from && p.start < to);
    }
    let mut summary = UpdateSummary::default();
    // One load for all periods (each period reads the articles before its end).
    let latest_end = periods.values().map(|p| p.end).max().unwrap_or(0);
    let articles = if periods.is_empty() { Vec::new() } else { load_articles(store, i64::MIN / 2, latest_end)? };
    let accounts = tracked_accounts(store)?;
    // Chronological order, so each period's rank changes see the previous period.
    for period in periods.values() {
        let rows = compute_from(&accounts, &articles, period, rules);
        summary.rows += write_period(store, period, rows, rules, now)?;
        summary.periods += 1;
    }
    let (last_article, last_snapshot): (i64, i64) = store.connection().query_row(
        "SELECT coalesce((SELECT max(id) FROM articles), 0), coalesce((SELECT max(id) FROM metric_snapshots), 0)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    store.write(|tx| {
        tx.connection()
            .execute(
                "INSERT INTO index_state (id, last_article_id, last_snapshot_id, computed_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET last_article_id = ?1, last_snapshot_id = ?2, computed_at = ?3",
                params![last_article, last_snapshot, now],
            )
            .map_err(|source| StoreError::Sqlite { context: "recording index state".into(), source })?;
        Ok(())
    })?;
    Ok(summary)
}

/// One line of a ranking, as `mpwatch report` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RankingRow {
    /// Rank (competition ranking).
    pub rank: i64,
    /// Previous rank minus this one (positive: up), `None` when new.
    pub change: Option<i64>,
    /// Account name.
    pub account: String,
    /// Articles.
    pub n: i64,
    /// R.
    pub reads: f64,
    /// R / n.
    pub reads_per_article: Option<f64>,
    /// Rmax.
    pub reads_max: f64,
    /// Rt.
    pub reads_headline: f64,
    /// Z (在看).
    pub wows: f64,
    /// L (点赞).
    pub likes: f64,
    /// The index value.
    pub value: f64,
    /// Articles observed late.
    pub late: i64,
    /// Not final yet.
    pub provisional: bool,
}

/// The ranking of one period and index (optionally one group), best first.
pub fn ranking(
    store: &Store,
    kind: PeriodKind,
    start: i64,
    index: Formula,
    group: Option<&str>,
) -> Result<Vec<RankingRow>> {
    let mut statement = store.connection().prepare(
        "SELECT r.rank, r.rank_change, r.account_name, r.n, r.reads, r.reads_per_article, r.reads_max, r.reads_headline,
                r.wows, r.likes, r.value, r.late_articles, r.provisional
         FROM v_rankings r JOIN index_periods p ON p.account_id = r.account_id AND p.period_kind = r.period_kind
              AND p.first_day = r.first_day
         WHERE r.period_kind = ?1 AND p.period_start = ?2 AND r.index_name = ?3
           AND (?4 IS NULL OR EXISTS (SELECT 1 FROM account_groups g WHERE g.account_id = r.account_id AND g.name = ?4))
         ORDER BY r.rank, r.account_name",
    )?;
    let rows = statement
        .query_map(params![kind.as_str(), start, index.as_str(), group], |row| {
            Ok(RankingRow {
                rank: row.get(0)?,
                change: row.get(1)?,
                account: row.get(2)?,
                n: row.get(3)?,
                reads: row.get(4)?,
                reads_per_article: row.get(5)?,
                reads_max: row.get(6)?,
                reads_headline: row.get(7)?,
                wows: row.get(8)?,
                likes: row.get(9)?,
                value: row.get(10)?,
                late: row.get(11)?,
                provisional: row.get(12)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// An index (or `reads`) of one account per period, for charts: (period start, value).
pub fn series(
    store: &Store,
    account_id: i64,
    kind: PeriodKind,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, f64)>> {
    let sql = match metric {
        "reads" | "read_rate" | "engagement_rate" | "wows" | "likes" | "n" => format!(
            "SELECT period_start, {metric} FROM index_periods WHERE account_id = ?1 AND period_kind = ?2
             AND period_start >= ?3 AND period_start < ?4 ORDER BY period_start"
        ),
        _ => "SELECT period_start, value FROM index_values WHERE account_id = ?1 AND period_kind = ?2
              AND period_start >= ?3 AND period_start < ?4 AND index_name = ?5 ORDER BY period_start"
            .to_string(),
    };
    let mut statement = store.connection().prepare(&sql)?;
    let rows: Vec<(i64, f64)> = if sql.contains("?5") {
        statement
            .query_map(params![account_id, kind.as_str(), from, to, metric], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    } else {
        statement
            .query_map(params![account_id, kind.as_str(), from, to], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    Ok(rows)
}
