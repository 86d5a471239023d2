//! Credential sets leased to one node at a time: WeChat limits a credential however
//! many machines use it, so only the node holding its lease may use it, and the limit
//! holds across the cluster. A node's heartbeat renews its credential leases; a dead
//! node's run out and another node may take them. (A credential's cooldown is a row of
//! `cooldowns` with scope `credential`, which every node reads: global by itself.)

use mpwatch_core::time::UnixSeconds;

use crate::{Context as _, PgStore, Result};

impl PgStore {
    /// Leases the credential set `name` (its label, never a secret) to `node` until
    /// `lease_until`, if no other node holds a lease that has not run out. Returns
    /// whether `node` holds it now.
    pub fn lease_credential(
        &mut self,
        name: &str,
        node: &str,
        lease_until: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool> {
        let rows = self
            .client()
            .query(
                "INSERT INTO credential_leases (name, node, lease_until, acquired_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET node = excluded.node, lease_until = excluded.lease_until,
                    acquired_at = CASE WHEN credential_leases.node = excluded.node
                                       THEN credential_leases.acquired_at ELSE excluded.acquired_at END
                 WHERE credential_leases.node = excluded.node OR credential_leases.lease_until <= $4
                 RETURNING node",
                &[&name, &node, &lease_until, &now],
            )
            .context(|| format!("leasing credential {name} to node {node}"))?;
        Ok(!rows.is_empty())
    }

    /// Gives the credential set `name` back, if `node` holds it.
    pub fn release_credential(&mut self, name: &str, node: &str) -> Result<()> {
        self.client()
            .execute("DELETE FROM credential_leases WHERE name = $1 AND node = $2", &[&name, &node])
            .context(|| format!("releasing credential {name}"))?;
        Ok(())
    }

    /// The node holding the credential set `name` now, if any.
    pub fn credential_holder(&mut self, name: &str, now: UnixSeconds) -> Result<Option<String>> {
        let row = self
            .client()
            .query_opt("SELECT node FROM credential_leases WHERE name = $1 AND lease_until > $2", &[&name, &now])
            .context(|| format!("reading the lease of credential {name}"))?;
        row.map(|row| row.try_get(0)).transpose().context(|| format!("reading the lease of credential {name}"))
    }
}
