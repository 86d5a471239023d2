//! Read-only connections for requests. SQLite reads block, so they run on tokio's
//! blocking pool; a few connections are kept open (with their statement caches) and
//! reused, and at most [`MAX_READERS`] reads run at once: more requests wait their turn
//! instead of opening ever more connections. A read's permit lives as long as the read
//! itself, not as long as its request: a client that hangs up cannot start more reads
//! than that.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpwatch_store::Store;
use tokio::sync::Semaphore;

use crate::error::{RequestError, ServeError};

/// Reads at once (the machine's cores are the limit; SQLite readers do not block the
/// crawler's writes in WAL mode).
pub const MAX_READERS: usize = 4;

/// A small pool of read-only connections.
#[derive(Debug)]
pub struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Arc<Mutex<Vec<Store>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Opens one connection now, so that a missing or foreign database is reported at
    /// start.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Readers, ServeError> {
        let first = Store::open_read_only(path, busy_timeout)?;
        Ok(Readers {
            path: path.to_path_buf(),
            busy_timeout,
            idle: Arc::new(Mutex::new(vec![first])),
            permits: Arc::new(Semaphore::new(MAX_READERS)),
        })
    }

    /// Runs `read` on a read-only connection on the blocking pool.
    pub async fn read<T, F>(&self, read: F) -> Result<T, RequestError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, RequestError> + Send + 'static,
    {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| RequestError::Internal("readers closed".into()))?;
        let idle = self.idle.clone();
        let (path, busy_timeout) = (self.path.clone(), self.busy_timeout);
        tokio::task::spawn_blocking(move || {
            // Held until the read is done, even if the request is dropped meanwhile.
            let _permit = permit;
            let pooled = idle.lock().ok().and_then(|mut idle| idle.pop());
            // Opening may wait on a lock for the busy timeout: here, not on a worker.
            let store = match pooled {
                Some(store) => store,
                None => Store::open_read_only(&path, busy_timeout)?,
            };
            let result = read(&store);
            if let Ok(mut idle) = idle.lock() {
                idle.push(store);
            }
            result
        })
        .await
        .map_err(|error| RequestError::Internal(format!("a read panicked: {error}")))?
    }
}
