//! Indices and rankings from mpwatch's stored articles and count snapshots: daily read
//! rate, engagement, Qingbo's WCI (V11, V13, V14.2 with and without shares) and
//! Newrank's NRI, per account and period, with competition rankings.
//!
//! - [`formulas`]: the formulas of `shared/docs/indices.md`, exact.
//! - [`compute`]: calendars (day, Sunday-Saturday week, month, custom) in a time zone,
//!   which snapshot counts (first at or after +24 h for days and weeks, +7 d for months;
//!   `late` and `provisional` flags), aggregates, rankings.
//! - [`bulk`]: every period of a window in one pass over its articles and snapshots.
//! - [`update`]: writes `index_periods` / `index_values` (documented in
//!   `docs/schema.md`), incrementally or in full; recomputing is idempotent. An
//!   incremental update reads only the windows of time its new data touches.
//! - [`stored`]: reads them back: rankings within a selection, the last final period,
//!   chart series.
//!
//! This crate never touches the network: it reads the database the crawler filled.
#![deny(missing_docs)]

pub mod bulk;
pub mod compute;
pub mod formulas;
pub mod stored;

pub use stored::{RankingRow, SeriesPoint, last_final_period, ranking, ranking_computed, series};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bulk::{Outside, compute_periods};
use compute::{AccountPeriod, ArticleData, Observation, Period, PeriodKind, Rules, competition_ranks};
use formulas::Formula;
use mpwatch_store::{Store, StoreError, Tx};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension as _, params};

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
    /// Of those, periods whose stored rows changed (and were written).
    pub changed: usize,
    /// Account-period rows written.
    pub rows: usize,
}

/// The period kinds `mpwatch index` maintains.
pub const KINDS: [PeriodKind; 3] = [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month];

/// The columns of an observation, after `s.article_id`.
const OBSERVATION_COLUMNS: &str = "s.age_seconds, s.observed_at, coalesce(s.reads, 0), coalesce(s.likes, 0),
    coalesce(s.wows, 0), coalesce(s.shares, 0), coalesce(s.comments, 0)";

fn observation(row: &mpwatch_store::sql::Row<'_>, first: usize) -> rusqlite::Result<Observation> {
    Ok(Observation {
        age: row.get(first)?,
        observed_at: row.get(first + 1)?,
        reads: row.get(first + 2)?,
        likes: row.get(first + 3)?,
        wows: row.get(first + 4)?,
        shares: row.get(first + 5)?,
        comments: row.get(first + 6)?,
    })
}

fn article(row: &mpwatch_store::sql::Row<'_>) -> rusqlite::Result<ArticleData> {
    Ok(ArticleData {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mid: row.get::<_, i64>(2)? as u64,
        idx: row.get::<_, i64>(3)? as u32,
        published_at: row.get(4)?,
        snapshots: Vec::new(),
    })
}

/// Everything the periods inside `[from, to)` need (see [`compute_periods`]): the
/// tracked articles (of enabled accounts) published in it with all their snapshots;
/// older articles with the snapshots observed in it and their last one before it;
/// and which accounts were observed before it. Reads by index ranges of the window,
/// never the whole history.
pub fn load_window(store: &Store, from: i64, to: i64) -> Result<(Vec<ArticleData>, Outside)> {
    let conn = store.connection();
    let mut articles: Vec<ArticleData> = conn
        .prepare_cached(
            "SELECT a.id, a.account_id, a.mid, a.idx, a.published_at
             FROM articles a JOIN accounts acc ON acc.id = a.account_id
             WHERE acc.enabled = 1 AND a.published_at >= ?1 AND a.published_at < ?2 AND a.status != 'pending'
             ORDER BY a.id",
        )?
        .query_map(params![from, to], article)?
        .collect::<rusqlite::Result<_>>()?;
    let mut position: HashMap<i64, usize> = articles.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    // Read in index order (by article) and put in time order here: SQLite would sort
    // every row of the window in a temporary B-tree.
    let mut snapshots = conn.prepare_cached(&format!(
        "SELECT s.article_id, s.id, {OBSERVATION_COLUMNS}
         FROM metric_snapshots s JOIN articles a ON a.id = s.article_id
         WHERE a.published_at >= ?1 AND a.published_at < ?2 AND s.age_seconds IS NOT NULL"
    ))?;
    let mut loaded: Vec<(usize, i64, Observation)> = Vec::new();
    for row in snapshots
        .query_map(params![from, to], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, observation(row, 2)?)))?
    {
        let (article_id, snapshot_id, observation) = row?;
        if let Some(i) = position.get(&article_id) {
            loaded.push((*i, snapshot_id, observation));
        }
    }
    loaded.sort_unstable_by_key(|(i, snapshot_id, observation)| (*i, observation.observed_at, *snapshot_id));
    for (i, _, observation) in loaded {
        articles[i].snapshots.push(observation);
    }
    // Older articles observed inside the window, each preceded by its last snapshot
    // before it (their reads at the window's start). The window's snapshots are read
    // from the (observed_at, article_id) index alone; only those of articles not
    // loaded above are looked up row by row (a join read every row of the window's
    // snapshots and their articles: 0.6 s of a day's 0.9 s incremental update).
    let mut in_window = conn.prepare_cached(
        "SELECT observed_at, article_id, id FROM metric_snapshots WHERE observed_at >= ?1 AND observed_at < ?2",
    )?;
    let mut outside_snapshots: Vec<(i64, i64)> = Vec::new();
    for row in in_window.query_map(params![from, to], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?)))? {
        let (observed_at, article_id, snapshot_id): (i64, i64, i64) = row?;
        if !position.contains_key(&article_id) {
            outside_snapshots.push((observed_at, snapshot_id));
        }
    }
    outside_snapshots.sort_unstable();
    let mut older_snapshot = conn.prepare_cached(&format!(
        "SELECT a.id, a.account_id, a.mid, a.idx, a.published_at, {OBSERVATION_COLUMNS}
         FROM metric_snapshots s JOIN articles a ON a.id = s.article_id JOIN accounts acc ON acc.id = a.account_id
         WHERE s.id = ?1 AND a.published_at < ?2 AND acc.enabled = 1 AND a.status != 'pending'
           AND s.age_seconds IS NOT NULL"
    ))?;
    let mut last_before = conn.prepare_cached(&format!(
        "SELECT s.article_id, {OBSERVATION_COLUMNS} FROM metric_snapshots s
         WHERE s.article_id = ?1 AND s.observed_at < ?2 AND s.age_seconds IS NOT NULL
         ORDER BY s.observed_at DESC, s.id DESC LIMIT 1"
    ))?;
    for (_, snapshot_id) in outside_snapshots {
        let Some((older, inside)) = older_snapshot
            .query_row(params![snapshot_id, from], |row| Ok((article(row)?, observation(row, 5)?)))
            .optional()?
        else {
            continue;
        };
        let i = match position.get(&older.id) {
            Some(i) => *i,
            None => {
                let mut older = older;
                if let Some(start) =
                    last_before.query_map(params![older.id, from], |row| observation(row, 1))?.next().transpose()?
                {
                    older.snapshots.push(start);
                }
                position.insert(older.id, articles.len());
                articles.push(older);
                articles.len() - 1
            }
        };
        articles[i].snapshots.push(inside);
    }
    let observed_before = conn
        .prepare_cached(
            "SELECT acc.id FROM accounts acc WHERE acc.enabled = 1 AND EXISTS (
                SELECT 1 FROM articles a JOIN metric_snapshots s ON s.article_id = a.id
                WHERE a.account_id = acc.id AND a.published_at < ?1 AND a.status != 'pending'
                  AND s.observed_at < ?1 AND s.age_seconds IS NOT NULL)",
        )?
        .query_map([from], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((articles, Outside { observed_before }))
}

fn tracked_accounts(store: &Store) -> Result<Vec<i64>> {
    let mut statement = store.connection().prepare_cached("SELECT id FROM accounts WHERE enabled = 1 ORDER BY id")?;
    let ids = statement.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// Computes one period for every tracked account (no writes).
pub fn compute_period(store: &Store, period: &Period, rules: &Rules) -> Result<Vec<AccountPeriod>> {
    let (articles, outside) = load_window(store, period.start, period.end)?;
    let periods = std::slice::from_ref(period);
    Ok(compute_periods(&tracked_accounts(store)?, &articles, periods, &outside, rules).pop().unwrap_or_default())
}

/// Recomputes and stores one period: its aggregates, every index, ranks and rank changes
/// (against the previous period, and the next period's changes against this one).
/// Returns the rows written: none when the stored period was already current.
pub fn store_period(store: &mut Store, period: &Period, rules: &Rules, now: i64) -> Result<usize> {
    let rules = &Rules { now, ..rules.clone() };
    let rows = compute_period(store, period, rules)?;
    Ok(store.write(|tx| write_period(tx, period, rows, rules, now))?.unwrap_or(0))
}

/// The value of `formula` for one account's period.
pub fn index_value(formula: Formula, row: &AccountPeriod, period: &Period) -> f64 {
    match formula {
        // NRI counts the period's days inclusively (a real month has 28-31), where the WCI
        // divides by 30.
        Formula::Nri => {
            formulas::nri(&formulas::NriInputs { days: period.days, ..formulas::NriInputs::from_inputs(&row.inputs) })
        }
        _ => formula.compute(&row.inputs),
    }
}

/// Foreign-key checks off on `store`'s connection until [`ForeignKeysOff::restore`].
///
/// Every row of `index_values` made SQLite look up its parents in `accounts` and
/// `index_periods`: 645,000 index seeks, 30 % of a full recompute (9.5 s against 6.6 s
/// on a year of 300 accounts). The rows are derived from the tracked accounts and
/// written with their parents, in the same transaction, after
/// [`accounts_still_exist`] has checked (in that transaction) that every account
/// is still there; the cascade a period's rewrite relied on is an explicit `DELETE`.
struct ForeignKeysOff;

impl ForeignKeysOff {
    fn new(store: &Store) -> std::result::Result<ForeignKeysOff, StoreError> {
        // PostgreSQL checks the keys as it always does (turning them off needs a
        // superuser there); SQLite's check of every index row is what this saves.
        if store.connection().is_postgres() {
            return Ok(ForeignKeysOff);
        }
        store
            .connection()
            .execute_batch("PRAGMA foreign_keys = OFF")
            .map_err(|source| StoreError::Sqlite { context: "writing indices".into(), source })?;
        Ok(ForeignKeysOff)
    }

    fn restore(self, store: &Store) -> std::result::Result<(), StoreError> {
        if store.connection().is_postgres() {
            return Ok(());
        }
        store
            .connection()
            .execute_batch("PRAGMA foreign_keys = ON")
            .map_err(|source| StoreError::Sqlite { context: "writing indices".into(), source })
    }
}

/// Fails the transaction if an account of `accounts` was removed since they were read
/// (its rows would reference nothing: foreign keys are not checked while indices are
/// written).
fn accounts_still_exist(tx: &Tx<'_>, accounts: &[i64]) -> std::result::Result<(), StoreError> {
    let ids = format!("[{}]", accounts.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
    let present: i64 = tx
        .connection()
        .query_row(
            "SELECT count(*) FROM accounts WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?1))",
            [ids],
            |row| row.get(0),
        )
        .map_err(|source| StoreError::Sqlite { context: "checking the tracked accounts".into(), source })?;
    if present as usize != accounts.len() {
        return Err(StoreError::NotFound(
            "an account was removed while the indices were computed; run `mpwatch index` again".into(),
        ));
    }
    Ok(())
}

/// How many recomputed periods one transaction writes. A period's rows go to every
/// account's part of the tables' primary keys, so a commit per period wrote each of
/// those pages again for every period: 1.7 GB to the WAL for a full recompute of a
/// year of 300 accounts, 7 of its 10.4 s. 16 periods share each page and still keep
/// the write lock for well under a second.
const PERIODS_PER_COMMIT: usize = 16;

/// Writes a computed period with its indices and ranks, unless the stored rows are the
/// same (`None`).
fn write_period(
    tx: &Tx<'_>,
    period: &Period,
    rows: Vec<AccountPeriod>,
    rules: &Rules,
    now: i64,
) -> std::result::Result<Option<usize>, StoreError> {
    let conn = tx.connection();
    let sqlite = |source| StoreError::Sqlite { context: "writing indices".into(), source };
    let kind = period.kind.as_str();
    let previous = period.previous(&rules.tz);
    let previous_ranks = ranks_of(conn, kind, previous.start).map_err(sqlite)?;
    let mut values: BTreeMap<Formula, Vec<(i64, f64)>> = BTreeMap::new();
    for row in &rows {
        for formula in Formula::ALL {
            let value = index_value(formula, row, period);
            values.entry(formula).or_default().push((row.account_id, value));
        }
    }
    let count = rows.len();
    let columns: Vec<Vec<Value>> = rows.iter().map(|row| period_columns(row, period)).collect();
    if stored_columns(conn, kind, period.start).map_err(sqlite)? == columns {
        // Nothing changed: its index values, ranks and the next period's rank changes
        // derive from these columns and stay as they are.
        return Ok(None);
    }
    let value_of: BTreeMap<(Formula, i64), f64> =
        values.iter().flat_map(|(formula, list)| list.iter().map(move |(a, v)| ((*formula, *a), *v))).collect();
    conn.prepare_cached("DELETE FROM index_values WHERE period_kind = ?1 AND period_start = ?2")
        .and_then(|mut statement| statement.execute(params![kind, period.start]))
        .map_err(sqlite)?;
    conn.prepare_cached("DELETE FROM index_periods WHERE period_kind = ?1 AND period_start = ?2")
        .and_then(|mut statement| statement.execute(params![kind, period.start]))
        .map_err(sqlite)?;
    let mut insert_period = conn
        .prepare_cached(
            "INSERT INTO index_periods (account_id, period_kind, period_start, period_end, first_day, d, n, pushes,
                headlines, reads, reads_headline, reads_max, wows, wows_headline, wows_max, likes, likes_headline,
                likes_max, shares, shares_headline, shares_max, comments, comments_headline, comments_max,
                engagement_rate, read_rate, reads_gained_per_day, late_articles, provisional, missing_articles,
                computed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)",
        )
        .map_err(sqlite)?;
    for columns in &columns {
        insert_period
            .execute(mpwatch_store::sql::params_from_iter(columns.iter().chain(std::iter::once(&Value::Integer(now)))))
            .map_err(sqlite)?;
    }
    let mut insert_value = conn
        .prepare_cached(
            "INSERT INTO index_values (account_id, period_kind, period_start, index_name, value, rank, rank_change)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sqlite)?;
    // Rankers do not rank an account that published nothing: it is listed without a
    // rank, so the others' ranks and changes do not depend on who was silent.
    let silent: std::collections::HashSet<i64> =
        rows.iter().filter(|row| row.inputs.n <= 0.0).map(|row| row.account_id).collect();
    for (formula, list) in &values {
        let published: Vec<(i64, f64)> =
            list.iter().copied().filter(|(account, _)| !silent.contains(account)).collect();
        let ranks: HashMap<i64, i64> = competition_ranks(&published).into_iter().collect();
        for (account, _) in list {
            let value = value_of.get(&(*formula, *account)).copied().unwrap_or(0.0);
            let rank = ranks.get(account).copied();
            let change =
                rank.and_then(|rank| previous_ranks.get(&(*account, formula.as_str())).map(|before| before - rank));
            insert_value
                .execute(params![account, kind, period.start, formula.as_str(), value, rank, change])
                .map_err(sqlite)?;
        }
    }
    // The following period (it starts where this one ends) measures its changes
    // against this one.
    conn.prepare_cached(
        "UPDATE index_values SET rank_change = (
            SELECT p.rank - index_values.rank FROM index_values p
            WHERE p.account_id = index_values.account_id AND p.period_kind = index_values.period_kind
              AND p.index_name = index_values.index_name AND p.period_start = ?2)
         WHERE period_kind = ?1 AND period_start = ?3",
    )
    .and_then(|mut statement| statement.execute(params![kind, period.start, period.end]))
    .map_err(sqlite)?;
    Ok(Some(count))
}

/// The stored columns of an account's row of a period, in `INSERT` order, without
/// `computed_at`: what a recompute compares to decide whether anything changed.
fn period_columns(row: &AccountPeriod, period: &Period) -> Vec<Value> {
    let i = &row.inputs;
    let real = Value::Real;
    vec![
        Value::Integer(row.account_id),
        Value::Text(period.kind.as_str().to_string()),
        Value::Integer(period.start),
        Value::Integer(period.end),
        Value::Text(period.first_day.to_string()),
        real(period.d),
        Value::Integer(i.n as i64),
        Value::Integer(row.pushes),
        Value::Integer(row.headlines),
        real(i.R),
        real(i.Rt),
        real(i.Rmax),
        real(i.Z),
        real(i.Zt),
        real(i.Zmax),
        real(i.L),
        real(i.Lt),
        real(i.Lmax),
        real(i.RE),
        real(i.REt),
        real(i.REmax),
        Value::Integer(row.comments.0),
        Value::Integer(row.comments.1),
        Value::Integer(row.comments.2),
        real(row.engagement_rate),
        real(row.read_rate),
        row.reads_gained_per_day.map_or(Value::Null, real),
        Value::Integer(row.late),
        Value::Integer(i64::from(row.provisional)),
        Value::Integer(row.missing),
    ]
}

/// The stored rows of a period as [`period_columns`] gives them, by account.
fn stored_columns(conn: &mpwatch_store::Connection, kind: &str, start: i64) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut statement = conn.prepare_cached(
        "SELECT account_id, period_kind, period_start, period_end, first_day, d, n, pushes, headlines, reads,
            reads_headline, reads_max, wows, wows_headline, wows_max, likes, likes_headline, likes_max, shares,
            shares_headline, shares_max, comments, comments_headline, comments_max, engagement_rate, read_rate,
            reads_gained_per_day, late_articles, provisional, missing_articles
         FROM index_periods WHERE period_kind = ?1 AND period_start = ?2 ORDER BY account_id",
    )?;
    let rows = statement
        .query_map(params![kind, start], |row| (0..30).map(|i| row.get::<_, Value>(i)).collect())?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

fn ranks_of(
    conn: &mpwatch_store::Connection,
    kind: &str,
    start: i64,
) -> rusqlite::Result<HashMap<(i64, &'static str), i64>> {
    let mut statement = conn.prepare_cached(
        "SELECT account_id, index_name, rank FROM index_values WHERE period_kind = ?1 AND period_start = ?2",
    )?;
    let mut ranks = HashMap::new();
    for row in statement.query_map(params![kind, start], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<i64>>(2)?))
    })? {
        let (account, name, rank) = row?;
        if let (Ok(formula), Some(rank)) = (name.parse::<Formula>(), rank) {
            ranks.insert((account, formula.as_str()), rank);
        }
    }
    Ok(ranks)
}

/// What the stored index tables were computed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Seen {
    last_article: i64,
    last_snapshot: i64,
    /// Which accounts are enabled: their count, and sums of their ids and squared ids.
    accounts: String,
}

impl Seen {
    fn now(store: &Store) -> Result<Seen> {
        let seen = store.connection().query_row(
            "SELECT coalesce((SELECT max(id) FROM articles), 0), coalesce((SELECT max(id) FROM metric_snapshots), 0),
                    (SELECT count(*) || ':' || coalesce(sum(id), 0) || ':' || coalesce(sum(id * id), 0)
                     FROM accounts WHERE enabled = 1)",
            [],
            |row| Ok(Seen { last_article: row.get(0)?, last_snapshot: row.get(1)?, accounts: row.get(2)? }),
        )?;
        Ok(seen)
    }

    fn stored(store: &Store) -> Result<Option<Seen>> {
        let seen = store
            .connection()
            .query_row(
                "SELECT last_article_id, last_snapshot_id, accounts_fingerprint FROM index_state WHERE id = 1",
                [],
                |row| Ok(Seen { last_article: row.get(0)?, last_snapshot: row.get(1)?, accounts: row.get(2)? }),
            )
            .optional()?;
        Ok(seen)
    }
}

/// Instants whose periods must be recomputed: publications of new articles and of
/// articles with new snapshots (their values), and the new observations (reads gained).
/// Reads only what is new, by row id.
/// The instants an incremental update touches: publications of articles added since
/// (`?1`: the last article id seen), and publications and observations of snapshots
/// added since (`?2`: the last snapshot id seen).
const TOUCHED_SINCE: &str = "SELECT published_at FROM articles WHERE id > ?1 AND published_at IS NOT NULL
     UNION ALL SELECT published_at FROM articles
         WHERE id IN (SELECT article_id FROM metric_snapshots WHERE id > ?2) AND published_at IS NOT NULL
     UNION ALL SELECT observed_at FROM metric_snapshots WHERE id > ?2";

fn touched(store: &Store, scope: Scope, since: &Seen, now: i64) -> Result<BTreeSet<i64>> {
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
        // Rowid ranges only (a plan test holds it): as a UNION with a join, SQLite read
        // every article and every snapshot's index entry for a day's few thousand rows.
        Scope::Incremental => conn
            .prepare_cached(TOUCHED_SINCE)?
            .query_map(params![since.last_article, since.last_snapshot], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(times.into_iter().collect())
}

/// Whether a tracked account published in `[?1, ?2)` (a range of `articles_by_published`).
const PUBLISHED_IN: &str = "SELECT EXISTS (SELECT 1 FROM articles a JOIN accounts acc ON acc.id = a.account_id
     WHERE a.published_at >= ?1 AND a.published_at < ?2 AND acc.enabled = 1)";

/// Starts of provisional periods that ended before `?1` (now minus the ladder's last
/// age): a range of the partial index `index_periods_provisional`.
const SETTLED_PROVISIONAL: &str = "SELECT DISTINCT period_start FROM index_periods INDEXED BY index_periods_provisional
     WHERE provisional = 1 AND period_end <= ?1";

/// Recomputes the periods `scope` names and records what was seen. An incremental
/// update with nothing new since the last one returns without reading any history; a
/// change in which accounts are enabled recomputes everything (every period has a row
/// per enabled account).
pub fn update(store: &mut Store, rules: &Rules, scope: Scope, now: i64) -> Result<UpdateSummary> {
    let rules = &Rules { now, ..rules.clone() };
    let seen = Seen::now(store)?;
    let stored = Seen::stored(store)?;
    // Provisional periods whose articles' ladders have all ended since: their missing
    // values are missing for good, and recomputing makes them final.
    let settled: Vec<i64> = store
        .connection()
        .prepare_cached(SETTLED_PROVISIONAL)?
        .query_map([now.saturating_sub(rules.ladder_end)], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let scope = match (scope, &stored) {
        (Scope::Incremental, Some(stored)) if *stored == seen && settled.is_empty() => {
            return Ok(UpdateSummary::default());
        }
        (Scope::Incremental, Some(stored)) if stored.accounts != seen.accounts => Scope::Full,
        (scope, _) => scope,
    };
    let since = stored.unwrap_or_default();
    let mut periods: BTreeMap<(PeriodKind, i64), Period> = BTreeMap::new();
    let mut times = touched(store, scope, &since, now)?;
    if scope == Scope::Incremental {
        times.extend(settled);
    }
    for t in times {
        for kind in KINDS {
            let period = Period::at(kind, t, &rules.tz);
            periods.entry((kind, period.start)).or_insert(period);
        }
    }
    if let Scope::Range(from, to) = scope {
        periods.retain(|_, p| p.end > from && p.start < to);
    }
    // A period in which no tracked account published is not a ranking: none is stored
    // (a snapshot observed on such a day touches it, but has nothing to rank there).
    {
        let mut published = store.connection().prepare_cached(PUBLISHED_IN)?;
        let mut keep = Vec::with_capacity(periods.len());
        for (key, period) in &periods {
            if published.query_row(params![period.start, period.end], |row| row.get::<_, bool>(0))? {
                keep.push(*key);
            }
        }
        periods.retain(|key, _| keep.binary_search(key).is_ok());
    }
    let accounts = tracked_accounts(store)?;
    let mut summary = UpdateSummary::default();
    for window in windows(periods.into_values().collect()) {
        let parts = parts_of(window);
        if parts.len() < PARTS_WORTH_A_THREAD {
            for part in parts {
                let computed = compute_part(store, &accounts, &part, rules)?;
                write_computed(store, &accounts, &part, computed, rules, now, &mut summary)?;
            }
        } else {
            write_while_reading(store, &accounts, parts, rules, now, &mut summary)?;
        }
    }
    store.write(|tx| {
        tx.connection()
            .execute(
                "INSERT INTO index_state (id, last_article_id, last_snapshot_id, accounts_fingerprint, computed_at)
                 VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET last_article_id = ?1, last_snapshot_id = ?2,
                    accounts_fingerprint = ?3, computed_at = ?4",
                params![seen.last_article, seen.last_snapshot, seen.accounts, now],
            )
            .map_err(|source| StoreError::Sqlite { context: "recording index state".into(), source })?;
        Ok(())
    })?;
    Ok(summary)
}

/// Loads what `part`'s periods need and computes them.
fn compute_part(store: &Store, accounts: &[i64], part: &[Period], rules: &Rules) -> Result<Vec<Vec<AccountPeriod>>> {
    let from = part.iter().map(|p| p.start).min().unwrap_or(0);
    let to = part.iter().map(|p| p.end).max().unwrap_or(0);
    let (articles, outside) = load_window(store, from, to)?;
    Ok(compute_periods(accounts, &articles, part, &outside, rules))
}

/// Writes computed periods, [`PERIODS_PER_COMMIT`] to a transaction, in their order:
/// chronological within each kind, so each period's rank changes see the previous
/// period (written earlier in the same transaction, or committed).
fn write_computed(
    store: &mut Store,
    accounts: &[i64],
    part: &[Period],
    computed: Vec<Vec<AccountPeriod>>,
    rules: &Rules,
    now: i64,
    summary: &mut UpdateSummary,
) -> Result<()> {
    let mut computed = part.iter().zip(computed).peekable();
    while computed.peek().is_some() {
        let batch: Vec<(&Period, Vec<AccountPeriod>)> = computed.by_ref().take(PERIODS_PER_COMMIT).collect();
        let foreign_keys = ForeignKeysOff::new(store)?;
        let written = store.write(|tx| {
            accounts_still_exist(tx, accounts)?;
            for (period, rows) in batch {
                if let Some(written) = write_period(tx, period, rows, rules, now)? {
                    summary.rows += written;
                    summary.changed += 1;
                }
                summary.periods += 1;
            }
            Ok(())
        });
        foreign_keys.restore(store)?;
        written?;
    }
    Ok(())
}

/// A window of this many parts or more (a full recompute, a long backfill) is read
/// on a second connection while the first writes; a shorter one (a day's update
/// reads about two months) is read and written in turn.
const PARTS_WORTH_A_THREAD: usize = 3;
/// Periods are grouped into parts by their start, this many days each.
const PART_DAYS: i64 = 61;

/// Splits a window's periods into parts by their start ([`PART_DAYS`] each), in time
/// order; each part keeps the window's order. A part's periods may end past the
/// next part's start: each part is loaded for its own periods' span.
fn parts_of(window: Vec<Period>) -> Vec<Vec<Period>> {
    let Some(first) = window.iter().map(|p| p.start).min() else { return Vec::new() };
    let mut parts: BTreeMap<i64, Vec<Period>> = BTreeMap::new();
    for period in window {
        parts.entry((period.start - first) / (PART_DAYS * 86_400)).or_default().push(period);
    }
    parts.into_values().collect()
}

/// Writes each part's periods while the next parts are loaded and computed on a
/// read-only connection of their own (a full recompute of a year: the writing, most
/// of its time, no longer waits for the reading).
fn write_while_reading(
    store: &mut Store,
    accounts: &[i64],
    parts: Vec<Vec<Period>>,
    rules: &Rules,
    now: i64,
    summary: &mut UpdateSummary,
) -> Result<()> {
    let busy_timeout = match store.connection().sqlite() {
        Some(conn) => {
            let busy_ms: i64 = conn.query_row("PRAGMA busy_timeout", [], |row| row.get(0))?;
            std::time::Duration::from_millis(busy_ms.max(0) as u64)
        }
        None => mpwatch_core::config::DEFAULT_BUSY_TIMEOUT,
    };
    let reader = store.open_read_only_again(busy_timeout)?;
    std::thread::scope(|scope| {
        // One part computed ahead: at most the part being written, the one waiting
        // and the one being read are in memory.
        let (send, receive) = std::sync::mpsc::sync_channel::<Result<(Vec<Period>, Vec<Vec<AccountPeriod>>)>>(1);
        scope.spawn(move || {
            let reading = (|| -> Result<()> {
                for part in parts {
                    let computed = compute_part(&reader, accounts, &part, rules)?;
                    if send.send(Ok((part, computed))).is_err() {
                        break; // the writer stopped (on an error of its own)
                    }
                }
                Ok(())
            })();
            if let Err(error) = reading {
                let _ = send.send(Err(error));
            }
        });
        for message in receive {
            let (part, computed) = message?;
            write_computed(store, accounts, &part, computed, rules, now, summary)?;
        }
        Ok(())
    })
}

/// Splits periods (sorted by kind, then start) into windows of time that overlap no
/// other: each window is loaded once, and a backfill of an old month does not load
/// everything between it and today. Within a window the periods keep their order.
fn windows(periods: Vec<Period>) -> Vec<Vec<Period>> {
    let mut spans: Vec<(i64, i64)> = periods.iter().map(|p| (p.start, p.end)).collect();
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out: Vec<Vec<Period>> = vec![Vec::new(); merged.len()];
    for period in periods {
        let window = merged.partition_point(|(_, end)| *end <= period.start);
        out[window].push(period);
    }
    out
}

#[cfg(test)]
mod tests {
    use mpwatch_store::StoreOptions;

    use super::*;

    /// An incremental update finds what is new by rowid ranges, whatever the history.
    #[test]
    fn what_an_incremental_update_touches_is_read_by_rowid_ranges() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("i.db"), &StoreOptions::default()).expect("store");
        let plan = store.query_plan(TOUCHED_SINCE).expect("plan");
        for step in plan.iter().filter(|step| step.starts_with("SCAN") || step.starts_with("SEARCH")) {
            assert!(step.contains("INTEGER PRIMARY KEY"), "{plan:#?}");
        }
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:#?}");
    }
}
