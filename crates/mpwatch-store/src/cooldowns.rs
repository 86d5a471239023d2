//! Anti-crawl cooldowns of hosts and credentials, visible to users in `cooldowns`. A
//! host's cooldown belongs to the node that saw the signal (WeChat limits per address);
//! a credential's is global (node `''`).

use crate::sql::{OptionalExtension as _, params};
use mpwatch_core::time::UnixSeconds;
use serde::Serialize;

use crate::{Context as _, Result, Store, Tx};

/// One cooldown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cooldown {
    /// `host` or `credential`.
    pub scope: String,
    /// Host name or credential label.
    pub target: String,
    /// The node resting (a host's cooldown); `''` for a credential's, and on SQLite.
    pub node: String,
    /// Resting until then.
    pub until: UnixSeconds,
    /// Signals in a row (the next rest doubles).
    pub level: i64,
    /// What triggered it.
    pub reason: Option<String>,
    /// When the current rest began.
    pub started_at: UnixSeconds,
}

impl Tx<'_> {
    /// Records a cooldown (replacing the previous one of the same target).
    pub fn set_cooldown(&self, cooldown: &Cooldown) -> Result<()> {
        self.connection()
            .execute_cached(
                "INSERT INTO cooldowns (scope, target, node, until, level, reason, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (scope, target, node) DO UPDATE SET until = excluded.until, level = excluded.level,
                    reason = excluded.reason, started_at = excluded.started_at",
                params![
                    cooldown.scope,
                    cooldown.target,
                    cooldown.node,
                    cooldown.until,
                    cooldown.level,
                    cooldown.reason,
                    cooldown.started_at
                ],
            )
            .context(|| format!("recording cooldown of {} {}", cooldown.scope, cooldown.target))?;
        Ok(())
    }

    /// Forgets a target's cooldown history on `node` (after it works again).
    pub fn clear_cooldown(&self, scope: &str, target: &str, node: &str) -> Result<()> {
        self.connection()
            .execute_cached(
                "DELETE FROM cooldowns WHERE scope = ?1 AND target = ?2 AND node = ?3",
                params![scope, target, node],
            )
            .context(|| format!("clearing cooldown of {scope} {target} on node {node:?}"))?;
        Ok(())
    }
}

fn cooldown_from_row(row: &crate::sql::Row<'_>) -> rusqlite::Result<Cooldown> {
    Ok(Cooldown {
        scope: row.get(0)?,
        target: row.get(1)?,
        node: row.get(2)?,
        until: row.get(3)?,
        level: row.get(4)?,
        reason: row.get(5)?,
        started_at: row.get(6)?,
    })
}

impl Store {
    /// The cooldown record of a target on `node`, if any (it may have ended).
    pub fn cooldown(&self, scope: &str, target: &str, node: &str) -> Result<Option<Cooldown>> {
        self.connection()
            .query_row(
                "SELECT scope, target, node, until, level, reason, started_at FROM cooldowns
                 WHERE scope = ?1 AND target = ?2 AND node = ?3",
                params![scope, target, node],
                cooldown_from_row,
            )
            .optional()
            .context(|| format!("reading cooldown of {scope} {target}"))
    }

    /// Cooldowns still running at `now`.
    pub fn active_cooldowns(&self, now: UnixSeconds) -> Result<Vec<Cooldown>> {
        let mut statement = self
            .connection()
            .prepare(
                "SELECT scope, target, node, until, level, reason, started_at FROM cooldowns WHERE until > ?1
                 ORDER BY until",
            )
            .context(|| "reading cooldowns".into())?;
        statement
            .query_map([now], cooldown_from_row)
            .and_then(|rows| rows.collect())
            .context(|| "reading cooldowns".into())
    }
}
