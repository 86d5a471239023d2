//! The store as async tasks share it: one connection behind a mutex, every call on
//! tokio's blocking pool so that SQLite never stalls the runtime.

use std::sync::{Arc, Mutex};

use mpwatch_store::{Store, StoreError};

use crate::error::CrawlError;

/// The store shared by async tasks: every call runs on the blocking pool.
#[derive(Debug, Clone)]
pub struct Db(Arc<Mutex<Store>>);

impl Db {
    /// Shares `store`.
    pub fn new(store: Store) -> Db {
        Db(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` with the store on the blocking pool.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CrawlError> {
        let db = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut store)
        })
        .await
        .map_err(|e| CrawlError::Task(e.to_string()))?
        .map_err(CrawlError::from)
    }
}
