//! How many items a run works on at once, and when an item stops counting.
//!
//! A run leases items for its worker slots. An item holds its slot while it fetches
//! and gives it up once its effect is queued for a group commit: waiting for the disk
//! is not work, and a worker that waited for its commit capped every group at one
//! write per worker (16 with the simulator's concurrency), so a crawl wrote 14 times
//! its database size to disk. Items
//! waiting for their commit stay in the run (a stop waits for them, an error gives
//! them back), up to [`WAITING_PER_SLOT`] per slot.

use std::cell::RefCell;
use std::future::Future;

use tokio::sync::OwnedSemaphorePermit;

use crate::db::Working;

/// At most this many items per worker slot wait for their commit (a slow disk then
/// slows leasing instead of filling memory).
pub(crate) const WAITING_PER_SLOT: usize = 32;

/// A run's worker slot, held by one item while it works.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    /// Tells group commits that an item is working and may add a write soon.
    _working: Working,
}

impl Slot {
    /// A slot of a run's semaphore, counted by the database's group commits.
    pub(crate) fn new(permit: OwnedSemaphorePermit, working: Working) -> Slot {
        Slot { _permit: permit, _working: working }
    }
}

tokio::task_local! {
    /// The worker slot of the item this task processes, until its commit is queued.
    static SLOT: RefCell<Option<Slot>>;
}

/// Runs an item's processing holding `slot`.
pub(crate) async fn holding<F: Future>(slot: Slot, work: F) -> F::Output {
    SLOT.scope(RefCell::new(Some(slot)), work).await
}

/// Whether the calling task processes a run item (with or without its slot still).
pub(crate) fn in_item() -> bool {
    SLOT.try_with(|_| ()).is_ok()
}

/// Gives up the calling task's worker slot, if it holds one: its item now only waits
/// for a commit. A task that fetches again after this (a credential expired mid-item)
/// does so without a slot; the host's connection slots and rate limits still hold it.
pub(crate) fn give_up() {
    // Outside a run item (the service's own writes) there is no slot to give up.
    let _ = SLOT.try_with(|slot| slot.borrow_mut().take());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mpwatch_store::{Store, StoreOptions};
    use tokio::sync::Semaphore;

    use super::*;
    use crate::db::Db;

    #[tokio::test]
    async fn a_slot_is_free_again_once_its_item_gives_it_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::new(Store::open(&dir.path().join("s.db"), &StoreOptions::default()).expect("store"));
        let slots = Arc::new(Semaphore::new(1));
        let permit = slots.clone().try_acquire_owned().expect("a free slot");
        let observed = holding(Slot::new(permit, db.working()), {
            let (slots, db) = (slots.clone(), db.clone());
            async move {
                let before = (slots.available_permits(), db.items_working(), in_item());
                give_up();
                (before, (slots.available_permits(), db.items_working(), in_item()))
            }
        })
        .await;
        assert_eq!(observed, ((0, 1, true), (1, 0, true)));
        assert!(!in_item());
        give_up(); // outside an item: nothing to do, no panic
    }
}
