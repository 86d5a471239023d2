//! Who crawls for this database: one process per crawler node holds the node's row of
//! `crawler_lock`, beats its heart while it lives, and keeps the leases of the work it
//! is doing and of the credential sets it uses. On SQLite there is one node, `''` (the
//! machine); on PostgreSQL several nodes, each with its own egress, share the queue.

use mpwatch_core::time::UnixSeconds;
use serde::Serialize;

use crate::sql::{OptionalExtension as _, params};
use crate::{Context as _, Result, Store, Tx};

/// A process asking for a node's crawler lock.
#[derive(Debug, Clone, Copy)]
pub struct NodeClaim<'a> {
    /// The node's name (`''` on SQLite).
    pub node: &'a str,
    /// The process: `<pid>@<host>`.
    pub holder: &'a str,
    /// `service` or `crawl` (a foreground crawl).
    pub role: &'a str,
    /// Its egress: the proxy without credentials, or `direct`.
    pub egress: &'a str,
}

/// Who holds a node's crawler lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrawlerLock {
    /// The node's name (`''` on SQLite).
    pub node: String,
    /// `<pid>@<host>`.
    pub holder: String,
    /// `service` or `crawl` (a foreground crawl).
    pub role: String,
    /// The proxy it fetches through (without credentials), or `direct`.
    pub egress: Option<String>,
    /// Since when.
    pub acquired_at: UnixSeconds,
    /// Last sign of life.
    pub heartbeat_at: UnixSeconds,
    /// What it is doing.
    pub status: Option<String>,
}

/// What trying to take a node's crawler lock gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Taken (or already ours, or taken over from a dead holder).
    Taken,
    /// Held by a live process.
    Held(CrawlerLock),
}

/// A node as `status` lists it: its lock and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeState {
    /// The node's lock row.
    #[serde(flatten)]
    pub lock: CrawlerLock,
    /// Work items leased by its process now.
    pub work_leased: i64,
    /// Credential sets leased to it now (labels, never secrets).
    pub credentials: Vec<String>,
}

const LOCK_COLUMNS: &str = "node, holder, role, egress, acquired_at, heartbeat_at, status";

fn lock_from_row(row: &crate::sql::Row<'_>) -> rusqlite::Result<CrawlerLock> {
    Ok(CrawlerLock {
        node: row.get(0)?,
        holder: row.get(1)?,
        role: row.get(2)?,
        egress: row.get(3)?,
        acquired_at: row.get(4)?,
        heartbeat_at: row.get(5)?,
        status: row.get(6)?,
    })
}

/// `node`'s lock row, if any.
fn lock_of(conn: &crate::sql::Connection, node: &str) -> Result<Option<CrawlerLock>> {
    conn.query_row(&format!("SELECT {LOCK_COLUMNS} FROM crawler_lock WHERE node = ?1"), [node], lock_from_row)
        .optional()
        .context(|| format!("reading the crawler lock of node {node:?}"))
}

impl Tx<'_> {
    /// Takes `claim.node`'s crawler lock for `claim.holder` unless a live process
    /// (`is_alive`, which sees the holder and its last heartbeat) holds it; a dead
    /// holder's lock is taken over. The row is replaced only if it still names the
    /// holder that was read, so two processes racing for one node (on PostgreSQL,
    /// where this transaction does not lock the table) never both win.
    pub fn take_crawler_lock(
        &self,
        claim: &NodeClaim<'_>,
        is_alive: impl Fn(&CrawlerLock) -> bool,
        now: UnixSeconds,
    ) -> Result<LockOutcome> {
        let current = self.read_lock(claim.node)?;
        if let Some(lock) = &current
            && lock.holder != claim.holder
            && is_alive(lock)
        {
            return Ok(LockOutcome::Held(lock.clone()));
        }
        let replaced = current.map_or_else(|| claim.holder.to_string(), |lock| lock.holder);
        let written = self
            .connection()
            .execute_cached(
                "INSERT INTO crawler_lock (node, holder, role, egress, acquired_at, heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, role = excluded.role,
                    egress = excluded.egress,
                    acquired_at = CASE WHEN crawler_lock.holder = excluded.holder THEN crawler_lock.acquired_at
                                       ELSE excluded.acquired_at END,
                    heartbeat_at = excluded.heartbeat_at, status = NULL
                 WHERE crawler_lock.holder = excluded.holder OR crawler_lock.holder = ?6",
                params![claim.node, claim.holder, claim.role, claim.egress, now, replaced],
            )
            .context(|| format!("taking the crawler lock of node {:?}", claim.node))?;
        if written == 1 {
            return Ok(LockOutcome::Taken);
        }
        // Another process took it between the read and the write: it lives.
        match self.read_lock(claim.node)? {
            Some(lock) => Ok(LockOutcome::Held(lock)),
            None => self.take_crawler_lock(claim, is_alive, now),
        }
    }

    fn read_lock(&self, node: &str) -> Result<Option<CrawlerLock>> {
        lock_of(self.connection(), node)
    }

    /// A sign of life of `node`'s lock holder, with what it is doing. Returns whether
    /// `holder` still holds the lock.
    pub fn heartbeat_crawler_lock(
        &self,
        node: &str,
        holder: &str,
        status: Option<&str>,
        now: UnixSeconds,
    ) -> Result<bool> {
        let updated = self
            .connection()
            .execute_cached(
                "UPDATE crawler_lock SET heartbeat_at = ?3, status = ?4 WHERE node = ?1 AND holder = ?2",
                params![node, holder, now, status],
            )
            .context(|| format!("refreshing the crawler lock of node {node:?}"))?;
        Ok(updated == 1)
    }

    /// Gives `node`'s lock back (if `holder` has it), with the credential sets leased
    /// to the node.
    pub fn release_crawler_lock(&self, node: &str, holder: &str) -> Result<()> {
        let released = self
            .connection()
            .execute_cached("DELETE FROM crawler_lock WHERE node = ?1 AND holder = ?2", params![node, holder])
            .context(|| format!("releasing the crawler lock of node {node:?}"))?;
        if released == 1 {
            self.connection()
                .execute_cached("DELETE FROM credential_leases WHERE node = ?1", [node])
                .context(|| format!("releasing the credential sets of node {node:?}"))?;
        }
        Ok(())
    }

    /// Renews the leases `holder` still has on the items `ids` (work in progress) to
    /// `until`, so that no other node takes them over while they are being done.
    /// Returns how many it still held.
    pub fn renew_leases(&self, ids: &[i64], holder: &str, until: UnixSeconds) -> Result<usize> {
        let mut renewed = 0;
        for id in ids {
            renewed += self
                .connection()
                .execute_cached(
                    "UPDATE work_queue SET lease_until = ?3
                     WHERE id = ?1 AND state = 'leased' AND leased_by = ?2 AND lease_until < ?3",
                    params![id, holder, until],
                )
                .context(|| format!("renewing the lease of work item #{id}"))?;
        }
        Ok(renewed)
    }

    /// Leases the credential set `name` (its label, never a secret) to `node` until
    /// `until`, unless another node holds a lease of it that has not run out: WeChat
    /// limits a credential however many machines use it, so one node at a time uses
    /// each. Returns whether `node` holds it now.
    pub fn lease_credential(&self, name: &str, node: &str, until: UnixSeconds, now: UnixSeconds) -> Result<bool> {
        let written = self
            .connection()
            .execute_cached(
                "INSERT INTO credential_leases (name, node, lease_until, acquired_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET node = excluded.node, lease_until = excluded.lease_until,
                    acquired_at = CASE WHEN credential_leases.node = excluded.node
                                       THEN credential_leases.acquired_at ELSE excluded.acquired_at END
                 WHERE credential_leases.node = excluded.node OR credential_leases.lease_until <= ?4",
                params![name, node, until, now],
            )
            .context(|| format!("leasing credential set {name} to node {node:?}"))?;
        Ok(written == 1)
    }
}

impl Store {
    /// Who holds `node`'s crawler lock, if anyone.
    pub fn crawler_lock(&self, node: &str) -> Result<Option<CrawlerLock>> {
        lock_of(self.connection(), node)
    }

    /// Every node that holds or held a crawler lock (a dead one's row stays until it
    /// is taken over), by name, with the work and credential sets it holds at `now`.
    pub fn nodes(&self, now: UnixSeconds) -> Result<Vec<NodeState>> {
        let describe = || "listing crawler nodes".to_string();
        let conn = self.connection();
        let leases: Vec<(String, String)> = conn
            .prepare_cached("SELECT node, name FROM credential_leases WHERE lease_until > ?1 ORDER BY node, name")
            .and_then(|mut s| s.query_map([now], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
            .context(describe)?;
        conn.prepare_cached(&format!(
            "SELECT {LOCK_COLUMNS},
                (SELECT count(*) FROM work_queue w WHERE w.state = 'leased' AND w.leased_by = c.holder)
             FROM crawler_lock c ORDER BY node"
        ))
        .and_then(|mut s| {
            s.query_map([], |row| {
                let lock = lock_from_row(row)?;
                let credentials =
                    leases.iter().filter(|(node, _)| *node == lock.node).map(|(_, name)| name.clone()).collect();
                Ok(NodeState { lock, work_leased: row.get(7)?, credentials })
            })?
            .collect()
        })
        .context(describe)
    }

    /// The node holding the credential set `name` at `now`, if any.
    pub fn credential_holder(&self, name: &str, now: UnixSeconds) -> Result<Option<String>> {
        self.connection()
            .query_row(
                "SELECT node FROM credential_leases WHERE name = ?1 AND lease_until > ?2",
                params![name, now],
                |row| row.get(0),
            )
            .optional()
            .context(|| format!("reading the lease of credential set {name}"))
    }
}
