//! Tracked accounts, their groups and their sources (ways of finding articles), with
//! each source's health.

use crate::sql::{Connection, OptionalExtension as _, Row, params};
use mpwatch_core::time::UnixSeconds;
use mpwatch_core::{Biz, SourceHealth, SourceKind};
use serde::Serialize;

use crate::{Context as _, Result, Store, StoreError, Tx};

/// An account to add, or to merge into the account that already has one of its
/// identifiers.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// The account's `__biz`, when known.
    pub biz: Option<Biz>,
    /// The `gh_` id, when known.
    pub username: Option<String>,
    /// The 微信号, when known.
    pub alias: Option<String>,
    /// Display name.
    pub nickname: Option<String>,
    /// Groups (tags) to put the account in.
    pub groups: Vec<String>,
    /// Sources to attach.
    pub sources: Vec<NewSource>,
}

impl NewAccount {
    /// An account known by its biz.
    pub fn with_biz(biz: Biz) -> Self {
        NewAccount { biz: Some(biz), ..NewAccount::default() }
    }
}

/// A source to attach to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSource {
    /// How articles are found.
    pub kind: SourceKind,
    /// What to ask: a feed URL, a biz, an alias or an article URL. Never a credential.
    pub locator: String,
}

/// The result of [`Tx::add_account`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedAccount {
    /// The account's id.
    pub id: i64,
    /// `false` when the account existed and was merged into.
    pub created: bool,
}

/// A stored account with its groups and sources.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// `__biz`.
    pub biz: Option<Biz>,
    /// `gh_` id.
    pub username: Option<String>,
    /// 微信号.
    pub alias: Option<String>,
    /// Display name.
    pub nickname: Option<String>,
    /// Disabled accounts are kept but not crawled.
    pub enabled: bool,
    /// When it was added (unix seconds).
    pub added_at: UnixSeconds,
    /// Its groups, sorted.
    pub groups: Vec<String>,
    /// Its sources.
    pub sources: Vec<Source>,
    /// Articles stored for it.
    pub article_count: i64,
}

impl Account {
    /// The best name to show: nickname, alias, username, biz, then `#id`.
    pub fn display_name(&self) -> String {
        self.nickname
            .clone()
            .or_else(|| self.alias.clone())
            .or_else(|| self.username.clone())
            .or_else(|| self.biz.as_ref().map(|b| b.to_string()))
            .unwrap_or_else(|| format!("#{}", self.id))
    }
}

/// A stored source with its health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// Row id.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// How articles are found.
    pub kind: SourceKind,
    /// What is asked.
    pub locator: String,
    /// Disabled sources are not used.
    pub enabled: bool,
    /// Last known health.
    pub health: SourceHealth,
    /// Last success (unix seconds).
    pub last_ok_at: Option<UnixSeconds>,
    /// Last failure, one line.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: i64,
    /// Not tried again before this instant.
    pub next_retry_at: Option<UnixSeconds>,
    /// Where paging through the source's list stands.
    pub listing: ListPosition,
}

/// Where paging back through a source's list stands, kept so that a sweep which fails
/// part-way resumes where it stopped (across attempts and restarts) instead of leaving a
/// hole of older articles behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListPosition {
    /// Every article the source lists that was published at or before this instant is
    /// stored (a finished sweep reached it, or the end of the list).
    pub covered_through: Option<UnixSeconds>,
    /// An unfinished sweep: the offset to continue from.
    pub resume_offset: Option<i64>,
    /// The newest publication time the unfinished sweep saw.
    pub sweep_newest: Option<UnixSeconds>,
}

/// What `--purge` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Articles deleted.
    pub articles: i64,
    /// Count snapshots deleted.
    pub snapshots: i64,
    /// Sources deleted.
    pub sources: i64,
}

fn clean_groups(groups: &[String]) -> Vec<String> {
    let mut groups: Vec<String> = groups.iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
    groups.sort();
    groups.dedup();
    groups
}

impl Tx<'_> {
    /// Adds an account, or merges into the one that already has its biz, username,
    /// alias or one of its sources: missing identifiers are filled in, groups and
    /// sources are added, and the account is enabled. Running it twice changes nothing.
    pub fn add_account(&self, new: &NewAccount, now: UnixSeconds) -> Result<AddedAccount> {
        let conn = self.connection();
        let existing = matching_accounts(conn, new)?;
        let (id, created) = match existing.as_slice() {
            [] => {
                conn.execute_cached(
                    "INSERT INTO accounts (biz, username, alias, nickname, enabled, added_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
                    params![new.biz.as_ref().map(Biz::as_str), new.username, new.alias, new.nickname, now],
                )
                .context(|| "adding account".into())?;
                (conn.last_insert_rowid(), true)
            }
            [id] => {
                let changed = conn
                    .execute_cached(
                        "UPDATE accounts SET
                            biz = coalesce(biz, ?2), username = coalesce(username, ?3),
                            alias = coalesce(alias, ?4), nickname = coalesce(?5, nickname),
                            enabled = 1, updated_at = ?6
                         WHERE id = ?1 AND (
                            (biz IS NULL AND CAST(?2 AS TEXT) IS NOT NULL) OR (username IS NULL AND CAST(?3 AS TEXT) IS NOT NULL)
                            OR (alias IS NULL AND CAST(?4 AS TEXT) IS NOT NULL)
                            OR (CAST(?5 AS TEXT) IS NOT NULL AND nickname IS DISTINCT FROM ?5)
                            OR enabled = 0)",
                        params![id, new.biz.as_ref().map(Biz::as_str), new.username, new.alias, new.nickname, now],
                    )
                    .context(|| format!("updating account #{id}"))?;
                if changed > 0 {
                    tracing::debug!(account = id, "merged identifiers into existing account");
                }
                (*id, false)
            }
            ids => {
                return Err(StoreError::Ambiguous(format!(
                    "these identifiers belong to {} different accounts ({}); remove one first",
                    ids.len(),
                    ids.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(", ")
                )));
            }
        };
        for group in clean_groups(&new.groups) {
            conn.execute_cached(
                "INSERT OR IGNORE INTO account_groups (account_id, name) VALUES (?1, ?2)",
                params![id, group],
            )
            .context(|| format!("adding account #{id} to group {group}"))?;
        }
        for source in &new.sources {
            self.add_source(id, source, now)?;
        }
        Ok(AddedAccount { id, created })
    }

    /// Attaches a source to an account; an existing identical source is re-enabled.
    pub fn add_source(&self, account_id: i64, source: &NewSource, now: UnixSeconds) -> Result<i64> {
        let conn = self.connection();
        conn.query_row(
            "INSERT INTO account_sources (account_id, kind, locator, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id, kind, locator) DO UPDATE SET
                enabled = 1,
                health = CASE WHEN account_sources.health = 'disabled' THEN 'unknown' ELSE account_sources.health END
             RETURNING id",
            params![account_id, source.kind.as_str(), source.locator, now],
            |row| row.get(0),
        )
        .context(|| format!("adding {} source to account #{account_id}", source.kind))
    }

    /// Disables an account (kept with its data, no longer crawled). Returns whether it
    /// was enabled before.
    pub fn disable_account(&self, id: i64, now: UnixSeconds) -> Result<bool> {
        let changed = self
            .connection()
            .execute_cached(
                "UPDATE accounts SET enabled = 0, updated_at = ?2 WHERE id = ?1 AND enabled = 1",
                params![id, now],
            )
            .context(|| format!("disabling account #{id}"))?;
        Ok(changed > 0)
    }

    /// Deletes an account and everything stored for it.
    pub fn purge_account(&self, id: i64) -> Result<PurgeReport> {
        let conn = self.connection();
        let count = |sql: &str| -> Result<i64> {
            conn.query_row(sql, [id], |row| row.get(0)).context(|| format!("counting data of account #{id}"))
        };
        let report = PurgeReport {
            articles: count("SELECT count(*) FROM articles WHERE account_id = ?1")?,
            snapshots: count(
                "SELECT count(*) FROM metric_snapshots s JOIN articles a ON a.id = s.article_id WHERE a.account_id = ?1",
            )?,
            sources: count("SELECT count(*) FROM account_sources WHERE account_id = ?1")?,
        };
        let deleted = conn
            .execute_cached("DELETE FROM accounts WHERE id = ?1", [id])
            .context(|| format!("deleting account #{id}"))?;
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("no account #{id}")));
        }
        Ok(report)
    }

    /// What a fetched page taught about its account: an account known only by a short
    /// link (a manual source with `locator`) gets its biz; the account with this biz
    /// gets its nickname, `gh_` id and alias where they are still missing.
    pub fn learn_account(
        &self,
        biz: &Biz,
        nickname: Option<&str>,
        username: Option<&str>,
        alias: Option<&str>,
        locator: Option<&str>,
        now: UnixSeconds,
    ) -> Result<()> {
        let conn = self.connection();
        let describe = || format!("updating account {biz}");
        if let Some(locator) = locator {
            conn.execute_cached(
                "UPDATE accounts SET biz = ?1, updated_at = ?3
                 WHERE biz IS NULL AND NOT EXISTS (SELECT 1 FROM accounts WHERE biz = ?1)
                   AND id IN (SELECT account_id FROM account_sources WHERE kind = 'manual' AND locator = ?2)",
                params![biz.as_str(), locator, now],
            )
            .context(describe)?;
        }
        conn.execute_cached(
            "UPDATE accounts SET nickname = coalesce(nickname, ?2),
                username = coalesce(username, (SELECT ?3 WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE username = ?3))),
                alias = coalesce(alias, (SELECT ?4 WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE alias = ?4))),
                updated_at = ?5
             WHERE biz = ?1 AND ((nickname IS NULL AND CAST(?2 AS TEXT) IS NOT NULL)
                OR (username IS NULL AND CAST(?3 AS TEXT) IS NOT NULL) OR (alias IS NULL AND CAST(?4 AS TEXT) IS NOT NULL))",
            params![biz.as_str(), nickname, username, alias, now],
        )
        .context(describe)?;
        Ok(())
    }

    /// Records the outcome of using a source: success resets the failure count; a
    /// failure increments it and sets the health (`degraded` below three in a row,
    /// `failing` from three) and when to try again.
    pub fn record_source_outcome(
        &self,
        source_id: i64,
        outcome: std::result::Result<(), &str>,
        next_retry_at: Option<UnixSeconds>,
        now: UnixSeconds,
    ) -> Result<()> {
        let conn = self.connection();
        match outcome {
            Ok(()) => conn.execute_cached(
                "UPDATE account_sources SET health = 'ok', last_ok_at = ?2, consecutive_failures = 0,
                    next_retry_at = ?3 WHERE id = ?1",
                params![source_id, now, next_retry_at],
            ),
            Err(error) => conn.execute_cached(
                "UPDATE account_sources SET consecutive_failures = consecutive_failures + 1,
                    health = CASE WHEN consecutive_failures + 1 >= 3 THEN 'failing' ELSE 'degraded' END,
                    last_error = ?2, next_retry_at = ?3 WHERE id = ?1",
                params![source_id, error, next_retry_at],
            ),
        }
        .context(|| format!("recording health of source #{source_id}"))?;
        Ok(())
    }

    /// Saves where paging through a source's list stands (written in the same
    /// transaction as the articles of the pages it counts, so neither is ahead).
    pub fn save_list_position(&self, source_id: i64, position: &ListPosition) -> Result<()> {
        self.connection()
            .execute_cached(
                "UPDATE account_sources SET list_covered_through = ?2, list_resume_offset = ?3,
                    list_sweep_newest = ?4 WHERE id = ?1",
                params![source_id, position.covered_through, position.resume_offset, position.sweep_newest],
            )
            .context(|| format!("saving the list position of source #{source_id}"))?;
        Ok(())
    }
}

/// Ids of accounts sharing an identifier or a source with `new`.
fn matching_accounts(conn: &Connection, new: &NewAccount) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    let mut push = |id: Option<i64>| {
        if let Some(id) = id
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    };
    let lookups = [
        ("biz", new.biz.as_ref().map(|b| b.as_str().to_string())),
        ("username", new.username.clone()),
        ("alias", new.alias.clone()),
    ];
    for (column, value) in lookups {
        if let Some(value) = value {
            push(
                conn.query_row(&format!("SELECT id FROM accounts WHERE {column} = ?1"), [&value], |row| row.get(0))
                    .optional()
                    .context(|| format!("looking up account by {column}"))?,
            );
        }
    }
    // A feed or a manual URL identifies its account; a biz locator is covered above.
    for source in new.sources.iter().filter(|s| matches!(s.kind, SourceKind::Feed | SourceKind::Manual)) {
        push(
            conn.query_row(
                "SELECT account_id FROM account_sources WHERE kind = ?1 AND locator = ?2 LIMIT 1",
                params![source.kind.as_str(), source.locator],
                |row| row.get(0),
            )
            .optional()
            .context(|| "looking up account by source".into())?,
        );
    }
    Ok(ids)
}

const ACCOUNT_COLUMNS: &str = "a.id, a.biz, a.username, a.alias, a.nickname, a.enabled, a.added_at,
    (SELECT count(*) FROM articles x WHERE x.account_id = a.id)";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let biz: Option<String> = row.get(1)?;
    Ok(Account {
        id: row.get(0)?,
        biz: biz.and_then(|b| Biz::parse(&b).ok()),
        username: row.get(2)?,
        alias: row.get(3)?,
        nickname: row.get(4)?,
        enabled: row.get(5)?,
        added_at: row.get(6)?,
        groups: Vec::new(),
        sources: Vec::new(),
        article_count: row.get(7)?,
    })
}

fn parse_text<T: std::str::FromStr>(text: String) -> Result<T> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("`{text}`")))
}

fn fill_details(conn: &Connection, account: &mut Account) -> Result<()> {
    let id = account.id;
    let mut groups = conn
        .prepare_cached("SELECT name FROM account_groups WHERE account_id = ?1 ORDER BY name")
        .context(|| "reading groups".into())?;
    account.groups = groups
        .query_map([id], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .context(|| format!("reading groups of account #{id}"))?;
    account.sources = sources_of(conn, id)?;
    Ok(())
}

fn sources_of(conn: &Connection, account_id: i64) -> Result<Vec<Source>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, account_id, kind, locator, enabled, health, last_ok_at, last_error,
                    consecutive_failures, next_retry_at, list_covered_through, list_resume_offset,
                    list_sweep_newest
             FROM account_sources WHERE account_id = ?1 ORDER BY id",
        )
        .context(|| "reading sources".into())?;
    type RawSource = (i64, i64, String, String, bool, String, Option<i64>, Option<String>, i64, Option<i64>);
    let rows: Vec<(RawSource, ListPosition)> = statement
        .query_map([account_id], |row| {
            Ok((
                (
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                    row.get(9)?,
                ),
                ListPosition { covered_through: row.get(10)?, resume_offset: row.get(11)?, sweep_newest: row.get(12)? },
            ))
        })
        .and_then(|rows| rows.collect())
        .context(|| format!("reading sources of account #{account_id}"))?;
    rows.into_iter()
        .map(
            |(
                (id, account_id, kind, locator, enabled, health, last_ok_at, last_error, failures, next_retry_at),
                listing,
            )| {
                Ok(Source {
                    id,
                    account_id,
                    kind: parse_text(kind)?,
                    locator,
                    enabled,
                    health: parse_text(health)?,
                    last_ok_at,
                    last_error,
                    consecutive_failures: failures,
                    next_retry_at,
                    listing,
                })
            },
        )
        .collect()
}

impl Store {
    /// Enabled sources of enabled accounts (of `account_ids` when not empty). Reads only
    /// those accounts' ids and sources: a run for a group of 28 accounts among 100,000
    /// used to read every account with its groups and article count.
    pub fn active_sources(&self, account_ids: &[i64]) -> Result<Vec<(Source, Option<Biz>)>> {
        let wanted = serde_json::to_string(account_ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.read(|conn| {
            // Two statements: with `?1 = '[]' OR id IN (...)` SQLite read every account.
            let sql = if account_ids.is_empty() {
                "SELECT id, biz FROM accounts WHERE enabled = 1 ORDER BY id"
            } else {
                "SELECT id, biz FROM accounts WHERE enabled = 1 AND id IN (SELECT CAST(value AS BIGINT) FROM json_each(?1)) ORDER BY id"
            };
            let accounts: Vec<(i64, Option<String>)> = conn
                .prepare_cached(sql)
                .and_then(|mut statement| {
                    if account_ids.is_empty() {
                        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect()
                    } else {
                        statement.query_map([&wanted], |row| Ok((row.get(0)?, row.get(1)?)))?.collect()
                    }
                })
                .context(|| "listing the accounts to crawl".into())?;
            let mut active = Vec::new();
            for (id, biz) in accounts {
                let biz = biz.and_then(|b| Biz::parse(&b).ok());
                for source in sources_of(conn, id)? {
                    if source.enabled && source.health != SourceHealth::Disabled {
                        active.push((source, biz.clone()));
                    }
                }
            }
            Ok(active)
        })
    }

    /// One source by id.
    pub fn source(&self, id: i64) -> Result<Option<(Source, Option<Biz>)>> {
        let account_id: Option<i64> = self
            .connection()
            .query_row("SELECT account_id FROM account_sources WHERE id = ?1", [id], |row| row.get(0))
            .optional()
            .context(|| format!("reading source #{id}"))?;
        let Some(account_id) = account_id else { return Ok(None) };
        let account = self.resolve_account(&format!("#{account_id}"))?;
        let biz = account.biz.clone();
        Ok(account.sources.into_iter().find(|s| s.id == id).map(|s| (s, biz)))
    }

    /// The ids of the accounts in `group`, ascending: what a scheduled group job
    /// crawls, read through the group index alone.
    pub fn group_account_ids(&self, group: &str) -> Result<Vec<i64>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT account_id FROM account_groups WHERE name = ?1 ORDER BY account_id")
                .and_then(|mut statement| statement.query_map([group], |row| row.get(0))?.collect())
                .context(|| format!("reading the accounts of group {group}"))
        })
    }

    /// Every account (or those in `group`), ordered by id, with groups and sources.
    pub fn list_accounts(&self, group: Option<&str>) -> Result<Vec<Account>> {
        self.read(|conn| {
            let sql = match group {
                Some(_) => format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM account_groups g JOIN accounts a ON a.id = g.account_id
                     WHERE g.name = ?1 ORDER BY a.id"
                ),
                None => format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a ORDER BY a.id"),
            };
            let mut statement = conn.prepare(&sql).context(|| "listing accounts".into())?;
            let params: Vec<&dyn rusqlite::ToSql> = match &group {
                Some(group) => vec![group],
                None => vec![],
            };
            let mut accounts: Vec<Account> = statement
                .query_map(params.as_slice(), account_from_row)
                .and_then(|rows| rows.collect())
                .context(|| "listing accounts".into())?;
            for account in &mut accounts {
                fill_details(conn, account)?;
            }
            Ok(accounts)
        })
    }

    /// Finds one account by what a user typed: `#id` or a plain id, a biz, a `gh_` id,
    /// an alias, a nickname, or a source locator (a feed URL).
    pub fn resolve_account(&self, text: &str) -> Result<Account> {
        let text = text.trim();
        self.read(|conn| {
            let mut ids: Vec<i64> = Vec::new();
            if let Ok(id) = text.trim_start_matches('#').parse::<i64>() {
                ids.extend(
                    conn.query_row("SELECT id FROM accounts WHERE id = ?1", [id], |row| row.get::<_, i64>(0))
                        .optional()
                        .context(|| "looking up account".into())?,
                );
            }
            if ids.is_empty() {
                let biz = Biz::parse(text).map(|b| b.to_string()).unwrap_or_else(|_| text.to_string());
                let mut statement = conn
                    .prepare(
                        "SELECT id FROM accounts WHERE biz = ?1 OR username = ?2 OR alias = ?2 OR nickname = ?2
                         UNION SELECT account_id FROM account_sources WHERE locator = ?2",
                    )
                    .context(|| "looking up account".into())?;
                ids = statement
                    .query_map(params![biz, text], |row| row.get(0))
                    .and_then(|rows| rows.collect())
                    .context(|| "looking up account".into())?;
            }
            let id = match ids.as_slice() {
                [] => {
                    return Err(StoreError::NotFound(format!(
                        "no account matches `{text}` (see `mpwatch account list`)"
                    )));
                }
                [id] => *id,
                many => {
                    return Err(StoreError::Ambiguous(format!(
                        "`{text}` matches {} accounts; use the id (#{})",
                        many.len(),
                        many.iter().map(i64::to_string).collect::<Vec<_>>().join(", #")
                    )));
                }
            };
            let mut account = conn
                .query_row(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?1"), [id], account_from_row)
                .context(|| format!("reading account #{id}"))?;
            fill_details(conn, &mut account)?;
            Ok(account)
        })
    }

    /// The account with this biz, if tracked.
    pub fn account_id_by_biz(&self, biz: &Biz) -> Result<Option<i64>> {
        self.connection()
            .query_row("SELECT id FROM accounts WHERE biz = ?1", [biz.as_str()], |row| row.get(0))
            .optional()
            .context(|| format!("looking up account {biz}"))
    }
}
