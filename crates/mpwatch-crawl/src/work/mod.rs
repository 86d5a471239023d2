//! The three kinds of work in the queue, one handler each: `discover` asks a source
//! for articles, `page` fetches and stores an article page, `metrics` takes one count
//! snapshot of the ladder. Each handler commits its effect together with the item's
//! acknowledgement, or says what should become of the item.

use mpwatch_core::time::UnixSeconds;

pub(crate) mod discover;
pub(crate) mod metrics;
pub(crate) mod page;

/// `work_queue.kind` of a discover item (target: a source id).
pub(crate) const DISCOVER: &str = "discover";
/// `work_queue.kind` of a page item (target: an article URL).
pub(crate) const PAGE: &str = "page";
/// `work_queue.kind` of a metrics item (target: `<article id>:<rung seconds>`).
pub(crate) const METRICS: &str = "metrics";

/// The priority of a listed article's page (and of one listed but never fetched, queued
/// again): the page is wanted once, so an item whose article got its page meanwhile
/// through another link (a feed's short link), within [`RECHECK_AFTER`], is not
/// fetched. Ad-hoc `--url`s (20) and re-checks (0) are fetched whatever is stored; a
/// re-check that joins a waiting item finds a page older than [`RECHECK_AFTER`].
pub(crate) const LISTED_PAGE_PRIORITY: i64 = 10;

/// The priority of a URL a source gave without a key (a feed's short link): below
/// listed pages, and like them skipped when its article got its page meanwhile.
pub(crate) const FEED_LINK_PRIORITY: i64 = 9;

/// Whether a page item was queued by a source (not a re-check, not an ad-hoc `--url`),
/// so that one whose article was fetched meanwhile through another link is skipped.
pub(crate) fn queued_by_a_source(priority: i64) -> bool {
    priority == LISTED_PAGE_PRIORITY || priority == FEED_LINK_PRIORITY
}

/// How old a live article's page may get before a run checks it again (deletions,
/// edits).
pub(crate) const RECHECK_AFTER: UnixSeconds = 86_400;

/// What became of a work item (when the handler did not acknowledge it itself).
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Acknowledged together with its effect.
    Done,
    /// Failed; try again at this instant (or a little later: retries are spread).
    Retry(UnixSeconds, String),
    /// Not tried (cooldown, no credential); wait without using an attempt.
    Postpone(UnixSeconds, String),
    /// Give up.
    Fail(String),
}
