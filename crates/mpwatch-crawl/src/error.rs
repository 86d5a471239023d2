//! What stops a crawl. Item failures are not errors: they are outcomes, recorded in
//! the queue and retried.

use mpwatch_store::StoreError;

use crate::fetch::FetchError;

/// What stops a crawl (item failures are outcomes, recorded and retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrawlError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(FetchError),
    /// A background task died.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl CrawlError {
    /// Another program held the database's write lock longer than the busy timeout.
    pub fn is_busy(&self) -> bool {
        matches!(self, CrawlError::Store(error) if error.is_busy())
    }
}
