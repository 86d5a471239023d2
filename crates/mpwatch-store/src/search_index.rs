//! The full-text index `articles_fts` catching up with the articles (SQLite only).
//!
//! Writing an article only notes it in `articles_fts_pending` (schema version 16's
//! triggers); the words enter the index here, a batch of articles per transaction.
//! One batch writes one FTS5 segment, where indexing inside every crawl commit wrote
//! one per article and merged them over and over: on the comparison world the index
//! wrote 94 MB of WAL for its 48 MB, now 49 MB, and the whole crawl 595 MB instead of
//! 788 MB for a 236 MB database (docs/benchmarks.md).
//! PostgreSQL has no `articles_fts`: there every call does nothing.

use crate::sql::params;

use crate::{Context as _, Result, Store, Tx};

/// Articles indexed per transaction: about a quarter of a second of writing, and one
/// FTS5 segment of a few megabytes.
pub const SEARCH_INDEX_BATCH: usize = 2_000;

/// Which of the articles waiting for the index a batch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Only those whose page has been fetched (status no longer `pending`): a listed
    /// article's text arrives with its page, and indexing it before would index it
    /// twice. What a crawl indexes, while it runs and at its end.
    Fetched,
    /// Every one: what a reparse, a copy, the demo and maintenance index.
    All,
}

impl Tx<'_> {
    /// Adds up to `limit` articles waiting for the full-text index to it, lowest id
    /// first, and returns how many it took (fewer than `limit`: none of the kind is left).
    pub fn index_for_search(&self, limit: usize, which: Waiting) -> Result<usize> {
        let conn = self.connection();
        if conn.is_postgres() {
            return Ok(0);
        }
        let context = || "adding articles to the full-text index".to_string();
        // One statement per batch, never one per article: SQLite opens a statement
        // savepoint for each statement of a transaction, and FTS5 writes what it holds
        // in memory as a segment at every savepoint. An article at a time wrote a
        // segment of one or two pages per article, merged again and again.
        let fetched = which == Waiting::Fetched;
        let (taken, last): (i64, Option<i64>) = conn
            .query_row(
                "SELECT count(*), max(article_id) FROM (
                    SELECT p.article_id FROM articles_fts_pending p
                    WHERE NOT ?2 OR EXISTS (SELECT 1 FROM articles a WHERE a.id = p.article_id AND a.status <> 'pending')
                    ORDER BY p.article_id LIMIT ?1)",
                params![i64::try_from(limit).unwrap_or(i64::MAX), fetched],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .context(context)?;
        let Some(last) = last else { return Ok(0) };
        // An article deleted meanwhile has nothing to index; its note goes all the same
        // (with `All`).
        conn.execute_cached(
            "INSERT INTO articles_fts (rowid, title, digest, content_text)
             SELECT a.id, a.title, a.digest, a.content_text FROM articles_fts_pending p JOIN articles a ON a.id = p.article_id
             WHERE p.article_id <= ?1 AND (NOT ?2 OR a.status <> 'pending') ORDER BY p.article_id",
            params![last, fetched],
        )
        .context(context)?;
        conn.execute_cached(
            "DELETE FROM articles_fts_pending WHERE article_id <= ?1 AND (NOT ?2 OR EXISTS (
                SELECT 1 FROM articles a WHERE a.id = articles_fts_pending.article_id AND a.status <> 'pending'))",
            params![last, fetched],
        )
        .context(context)?;
        Ok(taken as usize)
    }
}

impl Store {
    /// Indexes every article waiting for the full-text index, [`SEARCH_INDEX_BATCH`]
    /// per transaction; returns how many.
    pub fn index_all_for_search(&mut self) -> Result<usize> {
        self.index_all_for_search_while(&|| true).map(|(indexed, _)| indexed)
    }

    /// [`Store::index_all_for_search`], asking `keep_going` before each batch: returns
    /// how many it indexed and whether it was stopped before the end.
    pub fn index_all_for_search_while(&mut self, keep_going: &dyn Fn() -> bool) -> Result<(usize, bool)> {
        let mut total = 0;
        loop {
            if !keep_going() {
                return Ok((total, true));
            }
            let indexed = self.write(|tx| tx.index_for_search(SEARCH_INDEX_BATCH, Waiting::All))?;
            total += indexed;
            if indexed < SEARCH_INDEX_BATCH {
                return Ok((total, false));
            }
        }
    }

    /// How many articles wait for the full-text index (0 on PostgreSQL).
    pub fn waiting_for_search_index(&self) -> Result<i64> {
        if self.connection().is_postgres() {
            return Ok(0);
        }
        self.connection()
            .query_row("SELECT count(*) FROM articles_fts_pending", [], |row| row.get(0))
            .context(|| "counting articles waiting for the full-text index".into())
    }
}
