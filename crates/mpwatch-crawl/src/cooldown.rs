//! Anti-crawl cooldowns: after a verification page or a frequency-control answer, a
//! host or a credential rests, 15 min at first and doubling while the signals keep
//! coming. Cooldowns live in the database (they survive restarts); a cache spares a
//! query per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mpwatch_core::config::Config;
use mpwatch_core::time::{Clock, UnixSeconds};
use mpwatch_store::cooldowns::Cooldown;
use tracing::info;

use crate::alerts::{AlertKind, Alerts};
use crate::db::Db;
use crate::error::CrawlError;
use crate::progress::Progress;

/// What rests: a host or a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// A host (`host[:port]`): verification pages.
    Host,
    /// A credential set (by name): frequency control.
    Credential,
}

impl Scope {
    /// The scope as stored in `cooldowns.scope`.
    fn as_str(self) -> &'static str {
        match self {
            Scope::Host => "host",
            Scope::Credential => "credential",
        }
    }
}

/// The cooldowns of a crawler.
#[derive(Debug)]
pub(crate) struct Cooldowns {
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    db: Db,
    alerts: Alerts,
    /// This crawler's node: a host rests for it alone (WeChat limits per address).
    node: String,
    /// The end of the latest cooldown of each target (0: none), as last read or written.
    cache: Mutex<HashMap<(&'static str, String), UnixSeconds>>,
}

impl Cooldowns {
    /// Cooldowns kept in `db`, of hosts as `node` sees them and of credentials.
    pub(crate) fn new(config: Arc<Config>, clock: Arc<dyn Clock>, db: Db, alerts: Alerts, node: String) -> Self {
        Cooldowns { config, clock, db, alerts, node, cache: Mutex::new(HashMap::new()) }
    }

    /// The node whose cooldown of a target in `scope` counts: this one for a host, none
    /// (`''`, global) for a credential.
    fn node_of(&self, scope: Scope) -> String {
        match scope {
            Scope::Host => self.node.clone(),
            Scope::Credential => String::new(),
        }
    }

    fn cached(&self, key: &(&'static str, String)) -> Option<UnixSeconds> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).copied()
    }

    fn remember(&self, key: (&'static str, String), until: UnixSeconds) {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, until);
    }

    /// The end of a running cooldown of `target`, if any.
    pub(crate) async fn cooling_until(&self, scope: Scope, target: &str) -> Result<Option<UnixSeconds>, CrawlError> {
        let now = self.clock.now();
        let key = (scope.as_str(), target.to_string());
        if let Some(until) = self.cached(&key) {
            return Ok((until > now).then_some(until));
        }
        let (s, t, n) = (key.0, key.1.clone(), self.node_of(scope));
        let record = self.db.call(move |store| store.cooldown(s, &t, &n)).await?;
        let until = record.map_or(0, |c| c.until);
        self.remember(key, until);
        Ok((until > now).then_some(until))
    }

    /// Enters (or extends) a cooldown after an anti-crawl signal: the initial length,
    /// then double on each signal that follows the previous rest closely, up to the
    /// maximum. Returns its end; counts it in `progress`.
    pub(crate) async fn enter(
        &self,
        progress: &Progress,
        scope: Scope,
        target: &str,
        reason: &str,
    ) -> Result<UnixSeconds, CrawlError> {
        let now = self.clock.now();
        let (s, t, n) = (scope.as_str(), target.to_string(), self.node_of(scope));
        let previous = self.db.call(move |store| store.cooldown(s, &t, &n)).await?;
        let initial = self.config.crawl.cooldown_initial.as_secs() as i64;
        let max = self.config.crawl.cooldown_max.as_secs() as i64;
        let level = match &previous {
            // Still cooling (another task saw the same signal): keep the current rest.
            Some(c) if c.until > now => return Ok(c.until),
            // A signal soon after the last rest: the server is still unhappy.
            Some(c) if now - c.until < (c.until - c.started_at).max(initial) * 2 => c.level + 1,
            _ => 1,
        };
        let length = initial.saturating_mul(1i64 << (level - 1).clamp(0, 20)).min(max);
        let cooldown = Cooldown {
            scope: scope.as_str().to_string(),
            target: target.to_string(),
            node: self.node_of(scope),
            until: now + length,
            level,
            reason: Some(reason.to_string()),
            started_at: now,
        };
        let until = cooldown.until;
        self.db.write_now(move |tx| tx.set_cooldown(&cooldown)).await?;
        self.remember((scope.as_str(), target.to_string()), until);
        Progress::bump(&progress.cooldowns);
        let scope = scope.as_str();
        self.alerts.raise(
            AlertKind::Cooldown,
            &format!("{scope}:{target}"),
            format!("anti-crawl signal ({reason}): {scope} {target} rests for {length} s (level {level})"),
        );
        Ok(until)
    }

    /// Ends the record of a cooldown once its target works again (so the next signal
    /// starts over at the initial length).
    pub(crate) async fn clear_after_success(&self, scope: Scope, target: &str) -> Result<(), CrawlError> {
        let key = (scope.as_str(), target.to_string());
        if self.cached(&key).is_some_and(|until| until > 0) {
            let (s, t, n) = (key.0, key.1.clone(), self.node_of(scope));
            self.db.write_now(move |tx| tx.clear_cooldown(s, &t, &n)).await?;
            self.remember(key, 0);
            info!(scope = scope.as_str(), target, "working again after a cooldown");
        }
        Ok(())
    }
}
