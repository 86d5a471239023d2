//! The store as async tasks share it: one connection behind an async mutex, every call
//! on tokio's blocking pool so that SQLite never stalls the runtime. Callers wait for
//! the connection as tasks, in turn, and take a blocking thread only once it is theirs:
//! with a blocking mutex, hundreds of a busy service's calls each held a blocking
//! thread while they waited, filled the pool, and the scheduler's own calls queued
//! behind them for seconds (fires started up to 24 s late with 100,000 accounts).
//!
//! Writes are group-committed: a write joins a queue, the first write of a group
//! schedules a commit [`GATHER`] later, and that commit runs every write queued by
//! then in one transaction. Items' effects then share a commit, and the WAL gets each
//! changed page (queue, indexes) once per group instead of once per item: one crawl of
//! a 20-account month wrote 38x its database size with one commit per write. A write
//! waits at most [`GATHER`] longer; against WeChat's rate limits that is nothing.

use std::future::Future;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mpwatch_store::{GroupWrite, Store, StoreError, Tx};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::error::CrawlError;

/// How long the first write of a group waits for others to join it. A group holds at
/// most one write per worker (each waits for its commit), so longer gathers write
/// little less (25 ms: 7x the database per crawl instead of 14x, and no better at
/// 100 or 300 ms) and idle the workers (docs/benchmarks.md).
pub const GATHER: Duration = Duration::from_millis(5);

/// The store shared by async tasks: every call runs on the blocking pool.
#[derive(Clone)]
pub struct Db {
    store: Arc<tokio::sync::Mutex<Store>>,
    queue: Arc<Mutex<Queue>>,
}

/// Writes waiting for their group's commit.
#[derive(Default)]
struct Queue {
    writes: Vec<Box<dyn GroupWrite>>,
    /// A commit is scheduled and will take every write queued until it starts.
    commit_scheduled: bool,
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
    /// Shares `store`.
    pub fn new(store: Store) -> Db {
        Db { store: Arc::new(tokio::sync::Mutex::new(store)), queue: Arc::new(Mutex::new(Queue::default())) }
    }

    /// Runs `f` with the store on the blocking pool.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        let store = self.store.clone();
        said_when_slow(async move {
            // Fair (first come, first served), and waited for without a thread.
            let mut store = store.lock_owned().await;
            let task = tokio::task::spawn_blocking(move || f(&mut store));
            task.await.map_err(|e| CrawlError::Task(e.to_string()))?.map_err(CrawlError::from)
        })
        .await
    }

    /// Runs `f` in a write transaction shared with the other writes queued at the
    /// time (a group commit). `f`'s writes commit together, or not at all; an error of
    /// `f` undoes its own writes only. Returns once the group has committed.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        let (reply, answer) = oneshot::channel();
        let schedule = {
            let mut queue = lock(&self.queue);
            queue.writes.push(Box::new(Member { f: Some(f), result: None, reply: Some(reply) }));
            !mem::replace(&mut queue.commit_scheduled, true)
        };
        if schedule {
            let (store, queue) = (self.store.clone(), self.queue.clone());
            // Waits in real time on a blocking thread: the engine's clock may be a
            // test's paused one, and the gathering is about the disk, not the crawl.
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(GATHER);
                // Takes its turn after the calls already waiting; writes queued
                // meanwhile join this group.
                let mut store = store.blocking_lock();
                let group = {
                    let mut queue = lock(&queue);
                    queue.commit_scheduled = false;
                    mem::take(&mut queue.writes)
                };
                store.write_group(group);
            });
        }
        said_when_slow(async move {
            let answer = answer.await.map_err(|_| CrawlError::Task("a group commit ended without an answer".into()))?;
            answer.map_err(CrawlError::from)
        })
        .await
    }
}

/// Waits for a database call; one that waits long (another program holds the write
/// lock: SQLite waits up to `[store] busy_timeout`) says so in the log, and again when
/// it got through.
async fn said_when_slow<T>(call: impl Future<Output = Result<T, CrawlError>>) -> Result<T, CrawlError> {
    const SAY_AFTER: Duration = Duration::from_secs(2);
    let started = Instant::now();
    let mut call = std::pin::pin!(call);
    let result = tokio::select! {
        result = &mut call => result,
        () = tokio::time::sleep(SAY_AFTER) => {
            warn!("waiting for the database: another program may hold its write lock (waited {} s so far)", SAY_AFTER.as_secs());
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
    f: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: Option<oneshot::Sender<Result<T, StoreError>>>,
}

impl<F, T> GroupWrite for Member<F, T>
where
    F: FnOnce(&Tx<'_>) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn run(&mut self, tx: &Tx<'_>) -> bool {
        let Some(f) = self.f.take() else { return false };
        let result = f(tx);
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
        store.connection().pragma_update(None, "max_page_count", pages + 8).expect("limit");
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
