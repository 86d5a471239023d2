//! Credential sets leased to one node at a time: WeChat limits a credential however
//! many machines use it, so in a cluster only the node holding a set's lease uses it,
//! and the set's limit holds across the cluster. A lease runs for `[crawl] lease` and
//! is renewed while the set is in use (past half its time); a node that stops gives
//! its sets back, and a dead node's run out. On SQLite (one node, `''`) there is no
//! one to share with: nothing is written and every set is this node's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mpwatch_core::time::{Clock, UnixSeconds};
use tracing::debug;

use crate::db::Db;
use crate::error::CrawlError;

/// How long a node waits before asking again for a set another node holds (at most a
/// lease: it may have run out by then).
const ASK_AGAIN_AFTER: i64 = 30;

/// The credential leases of this node.
#[derive(Debug)]
pub(crate) struct CredentialLeases {
    db: Db,
    clock: Arc<dyn Clock>,
    node: String,
    lease_seconds: i64,
    /// The end of each lease this node holds, as last written.
    held: Mutex<HashMap<String, UnixSeconds>>,
}

impl CredentialLeases {
    /// Leases of `node`, each running `lease_seconds`.
    pub(crate) fn new(db: Db, clock: Arc<dyn Clock>, node: String, lease_seconds: i64) -> Self {
        CredentialLeases { db, clock, node, lease_seconds: lease_seconds.max(2), held: Mutex::default() }
    }

    fn held_until(&self, name: &str) -> Option<UnixSeconds> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).copied()
    }

    /// `None` when this node may use the set `name` now (it holds its lease, renewed if
    /// half of it has passed); else when to ask again (another node holds it).
    pub(crate) async fn busy_until(&self, name: &str) -> Result<Option<UnixSeconds>, CrawlError> {
        if self.node.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        if self.held_until(name).is_some_and(|until| until - now > self.lease_seconds / 2) {
            return Ok(None);
        }
        let until = now + self.lease_seconds;
        let (set, node) = (name.to_string(), self.node.clone());
        let granted = self.db.write_now(move |tx| tx.lease_credential(&set, &node, until, now)).await?;
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if granted {
            held.insert(name.to_string(), until);
            Ok(None)
        } else {
            held.remove(name);
            debug!(credential = name, "another node holds this credential set");
            // Not before its holder's lease could run out unrenewed.
            Ok(Some(now + ASK_AGAIN_AFTER.min(self.lease_seconds)))
        }
    }
}
