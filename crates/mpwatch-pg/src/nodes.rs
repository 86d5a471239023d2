//! The nodes of a cluster: each `mpwatch` process that crawls registers under a name,
//! beats its heart while it lives, and its heartbeat keeps its leases (work and
//! credentials) from running out. A node that dies stops beating; its leases run out
//! and the others take its work over. `status` lists the nodes.

use mpwatch_core::time::UnixSeconds;
use serde::Serialize;

use crate::{Context as _, PgError, PgStore, Result};

/// A node as it registers.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its name, unique among the live nodes (`[node] name`, else the host name).
    pub name: String,
    /// Its process id.
    pub pid: i64,
    /// Its host name.
    pub host: String,
    /// Its egress: the proxy without credentials, or `direct`.
    pub egress: String,
    /// How long its leases run between heartbeats.
    pub lease_seconds: i64,
}

/// A node as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Its name.
    pub name: String,
    /// `<pid>@<host>`.
    pub process: String,
    /// Its egress.
    pub egress: Option<String>,
    /// When it registered.
    pub started_at: UnixSeconds,
    /// Its last heartbeat.
    pub heartbeat_at: UnixSeconds,
    /// Whether its heartbeat is within its lease time.
    pub alive: bool,
    /// What it said it is doing.
    pub status: Option<String>,
    /// Work items it holds.
    pub work_leased: i64,
    /// Credential sets it holds (labels, never secrets).
    pub credentials: Vec<String>,
}

/// What a heartbeat renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Work items whose lease now runs to the new time.
    pub work: u64,
    /// Credential leases renewed.
    pub credentials: u64,
}

impl PgStore {
    /// Registers `node`. A dead node of the same name (its heartbeat older than its
    /// lease time) is replaced, and whatever it still held is given back first: this
    /// process knows nothing of that work. A live one of the same name is an error.
    pub fn join(&mut self, node: &Node, now: UnixSeconds) -> Result<()> {
        let describe = || format!("registering node {}", node.name);
        let mut tx = self.client().transaction().context(describe)?;
        let taken = tx
            .query(
                "INSERT INTO nodes (name, pid, host, egress, started_at, heartbeat_at, lease_seconds, status)
                 VALUES ($1, $2, $3, $4, $5, $5, $6, NULL)
                 ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, host = excluded.host, egress = excluded.egress,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                    lease_seconds = excluded.lease_seconds, status = NULL
                 WHERE nodes.heartbeat_at + nodes.lease_seconds < excluded.heartbeat_at
                    OR (nodes.pid = excluded.pid AND nodes.host = excluded.host)
                 RETURNING name",
                &[&node.name, &node.pid, &node.host, &node.egress, &now, &node.lease_seconds],
            )
            .context(describe)?;
        if taken.is_empty() {
            let row = tx
                .query_one("SELECT pid, host, heartbeat_at FROM nodes WHERE name = $1", &[&node.name])
                .context(describe)?;
            let (pid, host, heartbeat_at): (i64, String, i64) = (
                row.try_get(0).context(describe)?,
                row.try_get(1).context(describe)?,
                row.try_get(2).context(describe)?,
            );
            return Err(PgError::NodeNameTaken {
                name: node.name.clone(),
                holder: format!("{pid}@{host}"),
                age: now - heartbeat_at,
            });
        }
        tx.execute(
            "UPDATE work_queue SET state = 'pending', lease_until = NULL, leased_by = NULL,
                attempts = greatest(attempts - 1, 0), updated_at = $2
             WHERE state = 'leased' AND leased_by = $1",
            &[&node.name, &now],
        )
        .context(describe)?;
        tx.execute("DELETE FROM credential_leases WHERE node = $1", &[&node.name]).context(describe)?;
        tx.commit().context(describe)
    }

    /// Beats `node`'s heart: records `status` and renews every lease it holds (work and
    /// credentials) to `now + lease_seconds`. Fails if the node is no longer
    /// registered as this process (it stalled past its lease and another took its name).
    pub fn heartbeat(&mut self, node: &Node, status: Option<&str>, now: UnixSeconds) -> Result<Heartbeat> {
        let describe = || format!("heartbeat of node {}", node.name);
        let until = now + node.lease_seconds;
        let mut tx = self.client().transaction().context(describe)?;
        let registered = tx
            .execute(
                "UPDATE nodes SET heartbeat_at = $4, status = $5 WHERE name = $1 AND pid = $2 AND host = $3",
                &[&node.name, &node.pid, &node.host, &now, &status],
            )
            .context(describe)?;
        if registered == 0 {
            let holder = tx
                .query_opt("SELECT pid, host FROM nodes WHERE name = $1", &[&node.name])
                .context(describe)?
                .map(|row| Ok(format!("{}@{}", row.try_get::<_, i64>(0)?, row.try_get::<_, String>(1)?)))
                .transpose()
                .context(describe)?
                .unwrap_or_else(|| "nobody (it was removed)".into());
            return Err(PgError::NodeNameTaken { name: node.name.clone(), holder, age: 0 });
        }
        let work = tx
            .execute(
                "UPDATE work_queue SET lease_until = $2 WHERE state = 'leased' AND leased_by = $1",
                &[&node.name, &until],
            )
            .context(describe)?;
        let credentials = tx
            .execute("UPDATE credential_leases SET lease_until = $2 WHERE node = $1", &[&node.name, &until])
            .context(describe)?;
        tx.commit().context(describe)?;
        Ok(Heartbeat { work, credentials })
    }

    /// Leaves the cluster: gives back the work and credentials `node` holds and removes
    /// it from the list.
    pub fn leave(&mut self, node: &Node, now: UnixSeconds) -> Result<()> {
        let describe = || format!("removing node {}", node.name);
        self.release_work(&node.name, now)?;
        let mut tx = self.client().transaction().context(describe)?;
        tx.execute("DELETE FROM credential_leases WHERE node = $1", &[&node.name]).context(describe)?;
        tx.execute(
            "DELETE FROM nodes WHERE name = $1 AND pid = $2 AND host = $3",
            &[&node.name, &node.pid, &node.host],
        )
        .context(describe)?;
        tx.commit().context(describe)
    }

    /// Every registered node, live or not, with what it holds.
    pub fn nodes(&mut self, now: UnixSeconds) -> Result<Vec<NodeStatus>> {
        let describe = || "listing nodes".to_string();
        let rows = self
            .client()
            .query(
                "SELECT n.name, n.pid, n.host, n.egress, n.started_at, n.heartbeat_at, n.lease_seconds, n.status,
                        (SELECT count(*) FROM work_queue w WHERE w.state = 'leased' AND w.leased_by = n.name),
                        coalesce((SELECT array_agg(c.name ORDER BY c.name) FROM credential_leases c
                                  WHERE c.node = n.name AND c.lease_until > $1), '{}')
                 FROM nodes n ORDER BY n.name",
                &[&now],
            )
            .context(describe)?;
        rows.iter()
            .map(|row| {
                let heartbeat_at: i64 = row.try_get(5)?;
                let lease_seconds: i64 = row.try_get(6)?;
                Ok(NodeStatus {
                    name: row.try_get(0)?,
                    process: format!("{}@{}", row.try_get::<_, i64>(1)?, row.try_get::<_, String>(2)?),
                    egress: row.try_get(3)?,
                    started_at: row.try_get(4)?,
                    heartbeat_at,
                    alive: heartbeat_at + lease_seconds >= now,
                    status: row.try_get(7)?,
                    work_leased: row.try_get(8)?,
                    credentials: row.try_get(9)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, postgres::Error>>()
            .context(describe)
    }
}
