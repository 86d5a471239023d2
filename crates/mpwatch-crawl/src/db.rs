//! The store as async tasks share it: one connection behind a mutex, every call on
//! tokio's blocking pool so that SQLite never stalls the runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpwatch_store::{Store, StoreError};
use tracing::{info, warn};

use crate::error::CrawlError;

/// The store shared by async tasks: every call runs on the blocking pool.
#[derive(Debug, Clone)]
pub struct Db(Arc<Mutex<Store>>);

impl Db {
    /// Shares `store`.
    pub fn new(store: Store) -> Db {
        Db(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` with the store on the blocking pool. A call that waits long (another
    /// program holds the write lock: SQLite waits up to `[store] busy_timeout`) says so
    /// in the log, and again when it got through.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        const SAY_AFTER: Duration = Duration::from_secs(2);
        let db = self.0.clone();
        let started = Instant::now();
        let mut task = tokio::task::spawn_blocking(move || {
            let mut store = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut store)
        });
        let joined = tokio::select! {
            joined = &mut task => joined,
            () = tokio::time::sleep(SAY_AFTER) => {
                warn!("waiting for the database: another program may hold its write lock (waited {} s so far)", SAY_AFTER.as_secs());
                let joined = task.await;
                let waited = started.elapsed().as_secs_f64();
                match &joined {
                    Ok(Err(error)) if error.is_busy() => warn!("gave up waiting for the database after {waited:.1} s"),
                    _ => info!("the database answered after {waited:.1} s"),
                }
                joined
            }
        };
        joined.map_err(|e| CrawlError::Task(e.to_string()))?.map_err(CrawlError::from)
    }
}
