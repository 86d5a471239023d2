//! The store as async tasks share it: one connection behind an async mutex, every call
//! on tokio's blocking pool so that SQLite never stalls the runtime. Callers wait for
//! the connection as tasks, in turn, and take a blocking thread only once it is theirs:
//! with a blocking mutex, hundreds of a busy service's calls each held a blocking
//! thread while they waited, filled the pool, and the scheduler's own calls queued
//! behind them for seconds (fires started up to 24 s late with 100,000 accounts).
//!
//! Writes are group-committed: a write joins a queue, the first write of a group
//! schedules a commit, and that commit runs every write queued by then in one
//! transaction. Items' effects then share a commit, and the WAL gets each changed page
//! (queue, indexes) once per group instead of once per item: one crawl of a 20-account
//! month wrote 38x its database size with one commit per write.
//!
//! How long a group gathers: a run item's write waits up to [`GATHER`] for others while
//! other items are still working (they may add theirs), and commits at once when none
//! is (nothing more is coming). Any other write (the service's own records, a
//! cooldown) commits its group within a few milliseconds: someone is waiting on it.

use std::future::Future;
use std::mem;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mpwatch_store::{GroupWrite, Store, StoreError, Tx};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::error::CrawlError;

/// The longest a group of run items' writes gathers while other items are working,
/// unless the configuration says otherwise (`crawl.commit_gather`). Items do not wait
/// for their commit to take the next (see `worker_slot`), so a group holds what the
/// run finished meanwhile: against the simulator with its limits lifted, about 100
/// writes, and a crawl writes 3x its database to disk instead of 14x
/// (docs/benchmarks.md). A crash loses at most this much work, and only until the
/// leases of its items run out.
pub const GATHER: Duration = Duration::from_secs(1);
/// How often a gathering group looks whether it may commit early.
const GATHER_TICK: Duration = Duration::from_millis(2);
/// A group this large commits without gathering longer.
const GROUP_FULL: usize = 4_096;

/// The store shared by async tasks: every call runs on the blocking pool.
#[derive(Clone)]
pub struct Db {
    store: Arc<tokio::sync::Mutex<Store>>,
    queue: Arc<Mutex<Queue>>,
    /// Run items working (holding a worker slot), which may add writes to a group.
    working: Arc<AtomicUsize>,
    /// Group commits so far: new work is due after one (or as time passes).
    commits: Arc<AtomicU64>,
    /// How long run items' writes gather.
    gather: Duration,
}

/// One run item working, counted while this lives.
pub(crate) struct Working(Arc<AtomicUsize>);

impl Drop for Working {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Writes waiting for their group's commit.
#[derive(Default)]
struct Queue {
    writes: Vec<Box<dyn GroupWrite>>,
    /// A commit is scheduled and will take every write queued until it starts.
    commit_scheduled: bool,
    /// A write of the group is not a run item's: commit it without gathering.
    urgent: bool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Db {
    /// Shares `store`, gathering run items' writes for [`GATHER`].
    pub fn new(store: Store) -> Db {
        Db::with_gather(store, GATHER)
    }

    /// Shares `store`, gathering run items' writes for `gather`.
    pub fn with_gather(store: Store, gather: Duration) -> Db {
        Db {
            gather,
            store: Arc::new(tokio::sync::Mutex::new(store)),
            queue: Arc::new(Mutex::new(Queue::default())),
            working: Arc::default(),
            commits: Arc::default(),
        }
    }

    /// How many group commits there have been: a run that found nothing more due
    /// leases again once this changed (or its clock moved on).
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Counts one run item as working until the guard is dropped.
    pub(crate) fn working(&self) -> Working {
        self.working.fetch_add(1, Ordering::AcqRel);
        Working(self.working.clone())
    }

    /// How many run items are working.
    #[cfg(test)]
    pub(crate) fn items_working(&self) -> usize {
        self.working.load(Ordering::Acquire)
    }

    /// Runs `f` with the store on the blocking pool.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        let store = self.store.clone();
        said_when_slow(Duration::ZERO, async move {
            // Fair (first come, first served), and waited for without a thread.
            let mut store = store.lock_owned().await;
            let task = tokio::task::spawn_blocking(move || f(&mut store));
            task.await.map_err(|e| CrawlError::Task(e.to_string()))?.map_err(CrawlError::from)
        })
        .await
    }

    /// Runs `f` in a write transaction shared with the other writes queued at the
    /// time (a group commit). `f`'s writes commit together, or not at all; an error of
    /// `f` undoes its own writes only. `f` may run twice (when another write of its
    /// group failed, the group runs again), so it only writes through `tx` and returns
    /// what the caller acts on. Returns once the group has committed: within
    /// the gather time for a run item's write, at once for any other. A run item's
    /// write through here is its last (its effect and acknowledgement): the item gives
    /// up its worker slot while it waits.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        self.write_in_group(f, Wait { urgent: !crate::worker_slot::in_item(), slot_free: true }).await
    }

    /// A write committed at once, even from a run item, which keeps its slot: for
    /// what other tasks read back before they act (a cooldown, an expired credential).
    pub async fn write_now<T: Send + 'static>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        self.write_in_group(f, Wait { urgent: true, slot_free: false }).await
    }

    /// A write a run item makes on the side (the fetch log): it joins the gathering
    /// group, and the item keeps its slot (it goes on working after it).
    pub(crate) async fn write_along<T: Send + 'static>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        self.write_in_group(f, Wait { urgent: !crate::worker_slot::in_item(), slot_free: false }).await
    }

    async fn write_in_group<T: Send + 'static>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
        Wait { urgent, slot_free }: Wait,
    ) -> Result<T, CrawlError> {
        let (reply, answer) = oneshot::channel();
        let schedule = {
            let mut queue = lock(&self.queue);
            queue.writes.push(Box::new(Member { f, result: None, reply: Some(reply) }));
            queue.urgent |= urgent;
            !mem::replace(&mut queue.commit_scheduled, true)
        };
        if schedule {
            let (store, queue) = (self.store.clone(), self.queue.clone());
            let (working, commits, gather) = (self.working.clone(), self.commits.clone(), self.gather);
            // Waits in real time on a blocking thread: the engine's clock may be a
            // test's paused one, and the gathering is about the disk, not the crawl.
            tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                loop {
                    std::thread::sleep(GATHER_TICK);
                    let (urgent, full) = {
                        let queue = lock(&queue);
                        (queue.urgent, queue.writes.len() >= GROUP_FULL)
                    };
                    // The count is read after this write was queued: an item working
                    // now may still add a write; none working means none is coming.
                    if urgent || full || working.load(Ordering::Acquire) == 0 || started.elapsed() >= gather {
                        break;
                    }
                }
                // Takes its turn after the calls already waiting; writes queued
                // meanwhile join this group.
                let mut store = store.blocking_lock();
                let group = {
                    let mut queue = lock(&queue);
                    queue.commit_scheduled = false;
                    queue.urgent = false;
                    mem::take(&mut queue.writes)
                };
                let writes = group.len();
                store.write_group(group);
                commits.fetch_add(1, Ordering::AcqRel);
                // How the crawler batches its writes (bench/run.sh reads it for the
                // snapshot ingest benchmark's group size).
                debug!(writes, "group commit");
            });
        }
        if slot_free {
            // Waiting for the disk is not a run item's work: its slot goes to the next.
            crate::worker_slot::give_up();
        }
        // A gathered write waits up to the gather time by design; only longer is slow.
        let expected = if urgent { Duration::ZERO } else { self.gather };
        said_when_slow(expected, async move {
            let answer = answer.await.map_err(|_| CrawlError::Task("a group commit ended without an answer".into()))?;
            answer.map_err(CrawlError::from)
        })
        .await
    }
}

/// How a write waits for its group's commit.
struct Wait {
    /// The group commits at once rather than gathering more.
    urgent: bool,
    /// A run item gives up its worker slot while it waits (its last write).
    slot_free: bool,
}

/// Waits for a database call; one that waits long (another program holds the write
/// lock: SQLite waits up to `[store] busy_timeout`) says so in the log, and again when
/// it got through. `expected` is how long it may wait by design (a gathering group).
async fn said_when_slow<T>(
    expected: Duration,
    call: impl Future<Output = Result<T, CrawlError>>,
) -> Result<T, CrawlError> {
    let say_after = expected + Duration::from_secs(2);
    let started = Instant::now();
    let mut call = std::pin::pin!(call);
    let result = tokio::select! {
        result = &mut call => result,
        () = tokio::time::sleep(say_after) => {
            warn!(
                "waiting for the database: another program may hold its write lock (waited {:.0} s so far)",
                say_after.as_secs_f64()
            );
            let result = call.await;
            let waited = started.elapsed().as_secs_f64();
            match &result {
                Err(error) if error.is_busy() => warn!("gave up waiting for the database after {waited:.1} s"),
                _ => info!("the database answered after {waited:.1} s"),
            }
            result
        }
    };
    result
}

/// A queued write and where its answer goes.
struct Member<F, T> {
    /// Runs twice when the group's first attempt failed (see `Store::write_group`).
    f: F,
    result: Option<Result<T, StoreError>>,
    reply: Option<oneshot::Sender<Result<T, StoreError>>>,
}

impl<F, T> GroupWrite for Member<F, T>
where
    F: Fn(&Tx<'_>) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn run(&mut self, tx: &Tx<'_>) -> bool {
        let result = (self.f)(tx);
        let kept = result.is_ok();
        self.result = Some(result);
        kept
    }

    fn failure(&self) -> Option<StoreError> {
        match &self.result {
            Some(Err(error)) => Some(error.for_group_member()),
            _ => None,
        }
    }

    fn finish(mut self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (committed, self.result.take()) {
            (Ok(()), Some(result)) => result,
            (_, Some(Err(own))) => Err(own),
            (Err(group), _) => Err(group.for_group_member()),
            (Ok(()), None) => Err(StoreError::Group { message: "a write of a group did not run".into(), busy: false }),
        };
        if let Some(reply) = self.reply.take() {
            // The caller may have stopped waiting (its task was cancelled): nothing to do.
            let _ = reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use mpwatch_store::StoreOptions;

    use super::*;

    /// A write that fills the disk ends SQLite's whole transaction: every write of its
    /// group is told the disk is full (not that a savepoint went missing).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_fails_the_whole_group_with_its_own_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("f.db"), &StoreOptions::default()).expect("store");
        let pages: i64 = store.connection().query_row("PRAGMA page_count", [], |row| row.get(0)).expect("pages");
        store.connection().sqlite().expect("SQLite").pragma_update(None, "max_page_count", pages + 8).expect("limit");
        let db = Db::new(store);
        let writes = (0..40).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| {
                    tx.enqueue("page", &format!("https://example.invalid/{i}/{}", "x".repeat(3000)), 0, 0, 0)
                })
                .await
            })
        });
        let errors: Vec<String> = futures_util::future::join_all(writes)
            .await
            .into_iter()
            .filter_map(|joined| joined.expect("task").err().map(|error| error.to_string()))
            .collect();
        assert!(!errors.is_empty(), "the disk never filled");
        assert!(errors.iter().all(|error| error.contains("full")), "{errors:#?}");
    }

    /// A group gathers while run items work, and only then: a write from outside an
    /// item commits at once, an item's commits once no other item works (long before a
    /// minute's gather), and a working item holds the group until its own write joins.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_gathers_only_while_items_are_working() {
        use crate::worker_slot::{Slot, holding};
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("g.db"), &StoreOptions::default()).expect("store");
        let db = Db::with_gather(store, Duration::from_secs(60));
        let within = |what: &'static str| move |_| panic!("{what} waited for the gather");
        let enqueue =
            |i: usize| move |tx: &Tx<'_>| tx.enqueue("page", &format!("https://example.invalid/{i}"), 0, 0, 0);
        // Outside an item: at once.
        tokio::time::timeout(Duration::from_secs(30), db.write(enqueue(1)))
            .await
            .unwrap_or_else(within("a service write"))
            .expect("write");
        // An item's write with no other item working: at once.
        let slots = Arc::new(tokio::sync::Semaphore::new(2));
        let permit = slots.clone().try_acquire_owned().expect("slot");
        tokio::time::timeout(Duration::from_secs(30), holding(Slot::new(permit, db.working()), db.write(enqueue(2))))
            .await
            .unwrap_or_else(within("a lone item's write"))
            .expect("write");
        // Two items working: the first write waits for the other's, and one commit
        // takes both (in whichever order they come).
        let before = db.commits();
        let one = Slot::new(slots.clone().try_acquire_owned().expect("slot"), db.working());
        let other = Slot::new(slots.clone().try_acquire_owned().expect("slot"), db.working());
        let first = tokio::spawn({
            let db = db.clone();
            async move { holding(one, db.write(enqueue(3))).await }
        });
        tokio::time::timeout(Duration::from_secs(30), holding(other, db.write(enqueue(4))))
            .await
            .unwrap_or_else(within("the last item's write"))
            .expect("write");
        first.await.expect("task").expect("write");
        // A call takes the connection after every group before it has counted itself.
        assert_eq!(db.call(|store| store.open_work()).await.expect("count"), 4);
        assert_eq!(db.commits() - before, 1, "the two items' writes were committed apart");
    }

    /// Writes queued together commit together; one that fails leaves nothing of itself
    /// and gets its own error, and the others stand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_member_of_a_group_undoes_only_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("m.db"), &StoreOptions::default()).expect("store");
        let db = Db::new(store);
        let writes = (0..20).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| {
                    tx.enqueue("page", &format!("https://example.invalid/{i}"), 0, 0, 0)?;
                    if i % 5 == 0 { Err(StoreError::NotFound(format!("member {i} fails"))) } else { Ok(i) }
                })
                .await
            })
        });
        let results: Vec<Result<i32, CrawlError>> =
            futures_util::future::join_all(writes).await.into_iter().map(|joined| joined.expect("task")).collect();
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(value) => assert_eq!(*value as usize, i),
                Err(error) => {
                    assert_eq!(i % 5, 0, "member {i} failed: {error}");
                    assert!(error.to_string().contains(&format!("member {i} fails")), "{error}");
                }
            }
        }
        let queued = db.call(|store| store.open_work()).await.expect("count");
        assert_eq!(queued, 16, "the 4 failing members' items must be gone, the 16 others kept");
    }
}
