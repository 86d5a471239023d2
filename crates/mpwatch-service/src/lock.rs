//! Whether the crawler lock's holder still lives (one process fetches per database).

use mpwatch_core::time::UnixSeconds;
use mpwatch_crawl::holder::{holder_alive, is_local};
use mpwatch_store::nodes::CrawlerLock;

/// A lock whose heartbeat is older than this (clock seconds) is abandoned.
pub const LOCK_STALE_AFTER: i64 = mpwatch_crawl::holder::HEARTBEAT_STALE_AFTER;

/// Whether the lock's holder lives: its heartbeat (every 2 s) is fresh and, on this
/// host, its process exists. A stale heartbeat means dead even if the pid exists: after
/// an unclean reboot the pid may belong to another program, and a stopped (Ctrl-Z)
/// crawl gives the lock up and notices when it resumes.
pub fn lock_holder_alive(lock: &CrawlerLock, now: UnixSeconds) -> bool {
    now - lock.heartbeat_at < LOCK_STALE_AFTER && (!is_local(&lock.holder) || holder_alive(&lock.holder))
}
