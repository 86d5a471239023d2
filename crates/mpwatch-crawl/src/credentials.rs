//! The pool of client credential sets: rotation, expiry (an alert), cooldowns.

use std::sync::Mutex;

use mpwatch_core::secrets::ClientCredential;
use mpwatch_core::time::UnixSeconds;

/// What is known about one credential set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    /// Usable.
    Active,
    /// The server said "no session": never used again by this process.
    Expired,
    /// Frequency-controlled until then.
    CoolingUntil(UnixSeconds),
}

#[derive(Debug)]
struct Entry {
    credential: ClientCredential,
    state: CredentialState,
}

/// Credential sets used in rotation.
#[derive(Debug)]
pub struct CredentialPool {
    entries: Mutex<(Vec<Entry>, usize)>,
}

impl CredentialPool {
    /// A pool of the sets from the secrets file.
    pub fn new(credentials: Vec<ClientCredential>) -> Self {
        let entries =
            credentials.into_iter().map(|credential| Entry { credential, state: CredentialState::Active }).collect();
        CredentialPool { entries: Mutex::new((entries, 0)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Entry>, usize)> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next usable set, round robin.
    pub fn acquire(&self, now: UnixSeconds) -> Option<ClientCredential> {
        let mut guard = self.lock();
        let (entries, next) = &mut *guard;
        let count = entries.len();
        for offset in 0..count {
            let index = (*next + offset) % count;
            let usable = match entries[index].state {
                CredentialState::Active => true,
                CredentialState::CoolingUntil(until) => now >= until,
                CredentialState::Expired => false,
            };
            if usable {
                entries[index].state = CredentialState::Active;
                *next = (index + 1) % count;
                return Some(entries[index].credential.clone());
            }
        }
        None
    }

    /// Whether any set is usable at `now`.
    pub fn any_available(&self, now: UnixSeconds) -> bool {
        self.lock().0.iter().any(|e| match e.state {
            CredentialState::Active => true,
            CredentialState::CoolingUntil(until) => now >= until,
            CredentialState::Expired => false,
        })
    }

    /// When a set is next usable: `now` if one is, the end of the earliest cooldown
    /// otherwise, `None` when every set expired (or there is none).
    pub fn next_available(&self, now: UnixSeconds) -> Option<UnixSeconds> {
        self.lock()
            .0
            .iter()
            .filter_map(|e| match e.state {
                CredentialState::Active => Some(now),
                CredentialState::CoolingUntil(until) => Some(until.max(now)),
                CredentialState::Expired => None,
            })
            .min()
    }

    /// Marks a set expired. Returns how many usable sets are left, or `None` when it
    /// already was expired (or is unknown).
    pub fn mark_expired(&self, name: &str) -> Option<usize> {
        let mut guard = self.lock();
        let entry = guard.0.iter_mut().find(|e| e.credential.name == name)?;
        if entry.state == CredentialState::Expired {
            return None;
        }
        entry.state = CredentialState::Expired;
        Some(guard.0.iter().filter(|e| e.state != CredentialState::Expired).count())
    }

    /// Puts a set into a cooldown until `until`.
    pub fn cool(&self, name: &str, until: UnixSeconds) {
        if let Some(entry) = self.lock().0.iter_mut().find(|e| e.credential.name == name) {
            entry.state = CredentialState::CoolingUntil(until);
        }
    }

    /// Takes the sets of a reloaded secrets file: a set already known by its name and
    /// key keeps its state (an expired set stays expired); new ones start usable, and
    /// sets no longer listed are dropped. Runs in flight use the new sets from their
    /// next request on.
    pub fn replace_sets(&self, credentials: Vec<ClientCredential>) {
        let mut guard = self.lock();
        let (entries, next) = &mut *guard;
        let mut old: Vec<Entry> = std::mem::take(entries);
        for credential in credentials {
            let state = old
                .iter()
                .position(|e| e.credential.name == credential.name && e.credential.key == credential.key)
                .map_or(CredentialState::Active, |i| old.swap_remove(i).state);
            entries.push(Entry { credential, state });
        }
        *next = 0;
    }

    /// Names and states, for summaries.
    pub fn states(&self) -> Vec<(String, CredentialState)> {
        self.lock().0.iter().map(|e| (e.credential.name.clone(), e.state)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_sets_keep_known_states_and_start_new_ones_usable() {
        let pool = CredentialPool::new(vec![credential("a"), credential("b")]);
        assert_eq!(pool.mark_expired("a"), Some(1));
        assert_eq!(pool.mark_expired("b"), Some(0));
        assert!(!pool.any_available(0));
        let mut renewed = credential("b");
        renewed.key = Secret::new("k2");
        pool.replace_sets(vec![credential("a"), renewed, credential("c")]);
        let states = pool.states();
        assert_eq!(
            states,
            vec![
                ("a".to_string(), CredentialState::Expired),
                ("b".to_string(), CredentialState::Active),
                ("c".to_string(), CredentialState::Active),
            ]
        );
        assert_eq!(pool.acquire(0).map(|c| c.name), Some("b".to_string()));
    }
    use mpwatch_core::secrets::Secret;

    fn credential(name: &str) -> ClientCredential {
        ClientCredential {
            name: name.into(),
            uin: Secret::new("u"),
            key: Secret::new("k"),
            pass_ticket: Secret::new("p"),
            appmsg_token: Secret::new("t"),
            cookie: None,
            user_agent: None,
        }
    }

    #[test]
    fn rotates_skips_expired_and_cooling() {
        let pool = CredentialPool::new(vec![credential("a"), credential("b"), credential("c")]);
        let names: Vec<String> = (0..4).map(|_| pool.acquire(0).unwrap().name).collect();
        assert_eq!(names, ["a", "b", "c", "a"]);
        assert_eq!(pool.mark_expired("b"), Some(2));
        assert_eq!(pool.mark_expired("b"), None);
        pool.cool("c", 100);
        assert_eq!(pool.acquire(50).unwrap().name, "a");
        assert_eq!(pool.acquire(50).unwrap().name, "a");
        assert_eq!(pool.acquire(100).unwrap().name, "c");
        pool.mark_expired("a");
        pool.mark_expired("c");
        assert!(pool.acquire(1000).is_none());
        assert!(!pool.any_available(1000));
    }

    #[test]
    fn the_next_usable_set_is_the_first_whose_rest_ends() {
        let pool = CredentialPool::new(vec![credential("a"), credential("b")]);
        assert_eq!(pool.next_available(10), Some(10), "one usable now");
        pool.cool("a", 300);
        pool.cool("b", 200);
        assert_eq!(pool.next_available(10), Some(200));
        assert_eq!(pool.next_available(250), Some(250));
        pool.mark_expired("b");
        assert_eq!(pool.next_available(250), Some(300));
        pool.mark_expired("a");
        assert_eq!(pool.next_available(250), None, "none will be");
    }
}
