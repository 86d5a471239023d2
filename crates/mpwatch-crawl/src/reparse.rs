//! `mpwatch reparse`: re-derive stored articles from the archived raw pages after a
//! parser improvement, without fetching anything.

use mpwatch_core::time::UnixSeconds;
use mpwatch_store::articles::UpsertOutcome;
use mpwatch_store::{Store, StoreError};
use serde::Serialize;

use crate::work::page::record_from_page;

/// What a reparse did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReparseSummary {
    /// Archived pages read.
    pub pages: u64,
    /// Articles whose stored fields changed.
    pub updated: u64,
    /// Pages that could not be decompressed or parsed into an article.
    pub unusable: u64,
    /// Articles added to the full-text index afterwards (those whose text changed, and
    /// any left waiting before).
    pub indexed_for_search: u64,
}

/// Parses the latest archived page of every article again and upserts the result
/// (status changes and content hashes follow the usual rules), then brings the
/// full-text index up to date.
pub fn reparse(store: &mut Store, now: UnixSeconds) -> Result<ReparseSummary, StoreError> {
    let mut summary = ReparseSummary::default();
    let mut after = 0;
    loop {
        let batch = store.latest_raw_pages(after, 200)?;
        let Some((last, _, _)) = batch.last() else { break };
        after = *last;
        for (article_id, url, compressed) in batch {
            summary.pages += 1;
            let Ok(body) = zstd::decode_all(compressed.as_slice()) else {
                summary.unusable += 1;
                continue;
            };
            let page = mpwatch_wechat::parse_page(&body);
            let known = store.article_by_id(article_id)?.map(|a| a.key());
            let Some(record) = record_from_page(&page, known.as_ref(), &url) else {
                summary.unusable += 1;
                continue;
            };
            let (_, outcome) = store.write(|tx| tx.upsert_article(&record, now))?;
            if matches!(outcome, UpsertOutcome::Updated { .. }) {
                summary.updated += 1;
            }
        }
    }
    summary.indexed_for_search = store.index_all_for_search()? as u64;
    Ok(summary)
}
