//! Articles, keyed by (biz, mid, idx), and their append-only count snapshots.

use crate::sql::{OptionalExtension as _, Row, params};
use mpwatch_core::time::UnixSeconds;
use mpwatch_core::{ArticleKey, ArticleKind, ArticleStatus, Biz, Copyright};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::{Context as _, Result, Store, StoreError, Tx};

/// What is known of an article, from a list entry (status `pending`) or a fetched page.
/// `None` fields never erase stored values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArticleRecord {
    /// Identity.
    pub key: Option<ArticleKey>,
    /// Signature from the URL.
    pub sn: Option<String>,
    /// Canonical URL.
    pub url: String,
    /// Short `/s/<token>` URL, when the article was found by one.
    pub short_url: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub digest: Option<String>,
    /// Author line.
    pub author: Option<String>,
    /// Publication instant.
    pub published_at: Option<UnixSeconds>,
    /// Message kind.
    pub kind: Option<ArticleKind>,
    /// Originality.
    pub copyright: Option<Copyright>,
    /// For reposts: the original account's name.
    pub original_account: Option<String>,
    /// For reposts: the original article's URL.
    pub original_url: Option<String>,
    /// 阅读原文 link.
    pub source_url: Option<String>,
    /// Cover image.
    pub cover_url: Option<String>,
    /// Comment thread id.
    pub comment_id: Option<String>,
    /// Body as clean text.
    pub content_text: Option<String>,
    /// Characters of the body, whitespace excluded.
    pub word_count: Option<i64>,
    /// Images in the body.
    pub image_count: Option<i64>,
    /// What the page said. `Pending` means "discovered, not fetched".
    pub status: ArticleStatus,
    /// Why it is blocked, as the page states it.
    pub status_reason: Option<String>,
    /// The body as clean HTML (stored in `article_bodies`).
    pub body_html: Option<String>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UpsertOutcome {
    /// A new row.
    Inserted,
    /// An existing row changed.
    Updated {
        /// The status moved (e.g. ok -> deleted).
        status_changed: bool,
        /// The body's hash changed.
        content_changed: bool,
    },
    /// Nothing but the fetch time changed.
    Unchanged,
}

/// An article as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredArticle {
    /// Row id.
    pub id: i64,
    /// The account's row id, when the account is tracked.
    pub account_id: Option<i64>,
    /// The account's biz.
    pub biz: Biz,
    /// Push id.
    pub mid: u64,
    /// Position in the push.
    pub idx: u32,
    /// Signature.
    pub sn: Option<String>,
    /// Canonical URL.
    pub url: String,
    /// Short URL.
    pub short_url: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Summary.
    pub digest: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Publication (unix seconds).
    pub published_at: Option<UnixSeconds>,
    /// Kind.
    pub kind: ArticleKind,
    /// Originality.
    pub copyright: Option<Copyright>,
    /// Repost origin account.
    pub original_account: Option<String>,
    /// Repost origin URL.
    pub original_url: Option<String>,
    /// 阅读原文.
    pub source_url: Option<String>,
    /// Cover image.
    pub cover_url: Option<String>,
    /// Comment thread id.
    pub comment_id: Option<String>,
    /// Body text.
    pub content_text: Option<String>,
    /// Body characters.
    pub word_count: Option<i64>,
    /// Body images.
    pub image_count: Option<i64>,
    /// Status.
    pub status: ArticleStatus,
    /// Blocked reason.
    pub status_reason: Option<String>,
    /// When the status last changed.
    pub status_changed_at: Option<UnixSeconds>,
    /// SHA-256 of the body text.
    pub content_hash: Option<String>,
    /// First discovery.
    pub first_seen_at: UnixSeconds,
    /// Last page fetch.
    pub last_fetched_at: Option<UnixSeconds>,
}

impl StoredArticle {
    /// The article's key.
    pub fn key(&self) -> ArticleKey {
        ArticleKey { biz: self.biz.clone(), mid: self.mid, idx: self.idx }
    }
}

/// One observation of an article's counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// When the counts were read.
    pub observed_at: UnixSeconds,
    /// The ladder age this fills (seconds after publication), `None` for ad hoc ones.
    pub rung_seconds: Option<i64>,
    /// 阅读 (100001 when shown as 10万+).
    pub reads: Option<i64>,
    /// The read count was displayed as 10万+.
    pub reads_capped: bool,
    /// 赞 (`old_like_num`).
    pub likes: Option<i64>,
    /// 在看 (`like_num`).
    pub wows: Option<i64>,
    /// Shares.
    pub shares: Option<i64>,
    /// Comments.
    pub comments: Option<i64>,
    /// Which endpoint gave the numbers.
    pub source: String,
}

/// A stored snapshot with its age.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredSnapshot {
    /// Row id.
    pub id: i64,
    /// The article.
    pub article_id: i64,
    /// `observed_at - published_at`.
    pub age_seconds: Option<i64>,
    /// The observation.
    #[serde(flatten)]
    pub snapshot: Snapshot,
}

/// SHA-256 of the body text, hex.
pub fn content_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

const ARTICLE_COLUMNS: &str = "id, account_id, biz, mid, idx, sn, url, short_url, title, digest, author,
    published_at, kind, copyright, original_account, original_url, source_url, cover_url, comment_id,
    content_text, word_count, image_count, status, status_reason, status_changed_at, content_hash,
    first_seen_at, last_fetched_at";

fn parse_column<T: std::str::FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("bad value `{text}`").into(),
        )
    })
}

fn parse_optional<T: std::str::FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => parse_column(row, index).map(Some),
    }
}

fn article_from_row(row: &Row<'_>) -> rusqlite::Result<StoredArticle> {
    let mid: i64 = row.get(3)?;
    let idx: i64 = row.get(4)?;
    Ok(StoredArticle {
        id: row.get(0)?,
        account_id: row.get(1)?,
        biz: parse_column(row, 2)?,
        mid: mid as u64,
        idx: idx as u32,
        sn: row.get(5)?,
        url: row.get(6)?,
        short_url: row.get(7)?,
        title: row.get(8)?,
        digest: row.get(9)?,
        author: row.get(10)?,
        published_at: row.get(11)?,
        kind: parse_column(row, 12)?,
        copyright: parse_optional(row, 13)?,
        original_account: row.get(14)?,
        original_url: row.get(15)?,
        source_url: row.get(16)?,
        cover_url: row.get(17)?,
        comment_id: row.get(18)?,
        content_text: row.get(19)?,
        word_count: row.get(20)?,
        image_count: row.get(21)?,
        status: parse_column(row, 22)?,
        status_reason: row.get(23)?,
        status_changed_at: row.get(24)?,
        content_hash: row.get(25)?,
        first_seen_at: row.get(26)?,
        last_fetched_at: row.get(27)?,
    })
}

impl Tx<'_> {
    /// Inserts or updates the article with this key.
    ///
    /// - A `pending` record (from a list or feed) only fills in what is still missing.
    /// - An `ok` record updates every field it has; `None` fields keep stored values.
    /// - A `deleted`, `blocked` or `unavailable` record changes the status (and its
    ///   time) and keeps the stored content.
    pub fn upsert_article(&self, record: &ArticleRecord, now: UnixSeconds) -> Result<(i64, UpsertOutcome)> {
        let key = record
            .key
            .as_ref()
            .ok_or_else(|| StoreError::NotFound(format!("article {} has no biz/mid/idx yet", record.url)))?;
        let conn = self.connection();
        let describe = || format!("storing article {key}");
        let existing = conn
            .prepare_cached(&format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE biz = ?1 AND mid = ?2 AND idx = ?3"))
            .and_then(|mut statement| {
                statement.query_row(params![key.biz.as_str(), key.mid as i64, key.idx], article_from_row)
            })
            .optional()
            .context(describe)?;
        let fetched_at = (record.status != ArticleStatus::Pending).then_some(now);
        let hash = record.content_text.as_deref().map(content_hash);
        let Some(old) = existing else {
            conn.prepare_cached(
                "INSERT INTO articles (account_id, biz, mid, idx, sn, url, short_url, title, digest, author,
                    published_at, kind, copyright, original_account, original_url, source_url, cover_url,
                    comment_id, content_text, word_count, image_count, status, status_reason,
                    status_changed_at, content_hash, first_seen_at, last_fetched_at)
                 VALUES ((SELECT id FROM accounts WHERE biz = ?1), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                    ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    key.biz.as_str(),
                    key.mid as i64,
                    key.idx,
                    record.sn,
                    record.url,
                    record.short_url,
                    record.title,
                    record.digest,
                    record.author,
                    record.published_at,
                    record.kind.unwrap_or(ArticleKind::Article).as_str(),
                    record.copyright.map(Copyright::as_str),
                    record.original_account,
                    record.original_url,
                    record.source_url,
                    record.cover_url,
                    record.comment_id,
                    record.content_text,
                    record.word_count,
                    record.image_count,
                    record.status.as_str(),
                    record.status_reason,
                    fetched_at,
                    hash,
                    now,
                    fetched_at,
                ])
            })
            .context(describe)?;
            let id = conn.last_insert_rowid();
            self.store_body(id, record).context(describe)?;
            return Ok((id, UpsertOutcome::Inserted));
        };

        let status_changed = record.status != ArticleStatus::Pending && record.status != old.status;
        let content_changed = hash.is_some() && record.status == ArticleStatus::Ok && hash != old.content_hash;
        let updated = match record.status {
            ArticleStatus::Pending => conn
                .prepare_cached(
                    "UPDATE articles SET
                    sn = coalesce(sn, ?2), short_url = coalesce(short_url, ?3), title = coalesce(title, ?4),
                    digest = coalesce(digest, ?5), author = coalesce(author, ?6),
                    published_at = coalesce(published_at, ?7), cover_url = coalesce(cover_url, ?8),
                    copyright = coalesce(copyright, ?9), source_url = coalesce(source_url, ?10),
                    account_id = coalesce(account_id, (SELECT id FROM accounts WHERE biz = articles.biz)),
                    kind = CASE WHEN CAST(?11 AS TEXT) IS NOT NULL AND ?11 != 'article' THEN ?11 ELSE kind END
                 WHERE id = ?1 AND (
                    (CAST(?11 AS TEXT) IS NOT NULL AND ?11 != 'article' AND kind != ?11) OR
                    (sn IS NULL AND CAST(?2 AS TEXT) IS NOT NULL) OR (short_url IS NULL AND CAST(?3 AS TEXT) IS NOT NULL)
                    OR (title IS NULL AND CAST(?4 AS TEXT) IS NOT NULL) OR (digest IS NULL AND CAST(?5 AS TEXT) IS NOT NULL)
                    OR (author IS NULL AND CAST(?6 AS TEXT) IS NOT NULL)
                    OR (published_at IS NULL AND CAST(?7 AS BIGINT) IS NOT NULL)
                    OR (cover_url IS NULL AND CAST(?8 AS TEXT) IS NOT NULL) OR (copyright IS NULL AND CAST(?9 AS TEXT) IS NOT NULL)
                    OR (source_url IS NULL AND CAST(?10 AS TEXT) IS NOT NULL)
                    OR (account_id IS NULL AND EXISTS (SELECT 1 FROM accounts WHERE biz = articles.biz)))",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        old.id,
                        record.sn,
                        record.short_url,
                        record.title,
                        record.digest,
                        record.author,
                        record.published_at,
                        record.cover_url,
                        record.copyright.map(Copyright::as_str),
                        record.source_url,
                        record.kind.map(ArticleKind::as_str),
                    ])
                }),
            ArticleStatus::Ok => conn.prepare_cached(&ok_update(record, &old)).and_then(|mut statement| {
                statement.execute(params![
                    old.id,
                    record.sn,
                    record.url,
                    record.short_url,
                    record.title,
                    record.digest,
                    record.author,
                    record.published_at,
                    record.kind.map(ArticleKind::as_str),
                    record.copyright.map(Copyright::as_str),
                    record.original_account,
                    record.original_url,
                    record.source_url,
                    record.cover_url,
                    record.comment_id,
                    record.content_text,
                    record.word_count,
                    record.image_count,
                    hash,
                    now,
                ])
            }),
            gone => conn
                .prepare_cached(
                    "UPDATE articles SET
                    short_url = coalesce(short_url, ?2),
                    status_changed_at = CASE WHEN status = ?3 THEN status_changed_at ELSE ?5 END,
                    status = ?3, status_reason = coalesce(?4, status_reason), last_fetched_at = ?5
                 WHERE id = ?1",
                )
                .and_then(|mut statement| {
                    statement.execute(params![old.id, record.short_url, gone.as_str(), record.status_reason, now])
                }),
        }
        .context(describe)?;
        let body_changed = self.store_body(old.id, record).context(describe)? > 0;
        let new = conn
            .prepare_cached(&format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?1"))
            .and_then(|mut statement| statement.query_row([old.id], article_from_row))
            .context(describe)?;
        let changed_fields = StoredArticle { last_fetched_at: old.last_fetched_at, ..new } != old;
        let outcome = if (updated == 0 || !changed_fields) && !body_changed {
            UpsertOutcome::Unchanged
        } else {
            UpsertOutcome::Updated { status_changed, content_changed }
        };
        Ok((old.id, outcome))
    }

    /// Stores the clean HTML of a fetched page's body; writes nothing when the stored one
    /// is the same (a re-fetch of an unchanged page writes no page). Returns the rows
    /// written.
    fn store_body(&self, article_id: i64, record: &ArticleRecord) -> rusqlite::Result<usize> {
        let Some(html) = record.body_html.as_deref().filter(|_| record.status == ArticleStatus::Ok) else {
            return Ok(0);
        };
        self.connection()
            .prepare_cached(
                "INSERT INTO article_bodies (article_id, html) VALUES (?1, ?2)
                 ON CONFLICT (article_id) DO UPDATE SET html = excluded.html WHERE article_bodies.html IS DISTINCT FROM excluded.html",
            )?
            .execute(params![article_id, html])
    }

    /// The ladder rungs already filled for an article.
    pub fn rungs_taken(&self, article_id: i64) -> Result<Vec<i64>> {
        self.connection()
            .prepare_cached(
                "SELECT rung_seconds FROM metric_snapshots WHERE article_id = ?1 AND rung_seconds IS NOT NULL",
            )
            .and_then(|mut statement| statement.query_map([article_id], |row| row.get(0))?.collect())
            .context(|| format!("reading the rungs taken of article #{article_id}"))
    }

    /// Appends a snapshot. A second snapshot for the same ladder rung is ignored
    /// (returns `None`), so retrying a stored rung cannot duplicate it.
    pub fn insert_snapshot(&self, article_id: i64, snapshot: &Snapshot) -> Result<Option<i64>> {
        let conn = self.connection();
        let inserted = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO metric_snapshots (article_id, observed_at, age_seconds, rung_seconds, reads,
                    reads_capped, likes, wows, shares, comments, source)
                 VALUES (?1, ?2, ?2 - (SELECT published_at FROM articles WHERE id = ?1), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    article_id,
                    snapshot.observed_at,
                    snapshot.rung_seconds,
                    snapshot.reads,
                    snapshot.reads_capped,
                    snapshot.likes,
                    snapshot.wows,
                    snapshot.shares,
                    snapshot.comments,
                    snapshot.source,
                ])
            })
            .context(|| format!("storing snapshot of article #{article_id}"))?;
        Ok((inserted > 0).then(|| conn.last_insert_rowid()))
    }
}

impl Store {
    /// The article with this key.
    pub fn article_by_key(&self, key: &ArticleKey) -> Result<Option<StoredArticle>> {
        self.connection()
            .query_row(
                &format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE biz = ?1 AND mid = ?2 AND idx = ?3"),
                params![key.biz.as_str(), key.mid as i64, key.idx],
                article_from_row,
            )
            .optional()
            .context(|| format!("reading article {key}"))
    }

    /// Every snapshot of an article, oldest first.
    pub fn snapshots_of(&self, article_id: i64) -> Result<Vec<StoredSnapshot>> {
        let mut statement = self
            .connection()
            .prepare_cached(
                "SELECT id, article_id, age_seconds, observed_at, rung_seconds, reads, reads_capped, likes, wows,
                        shares, comments, source
                 FROM metric_snapshots WHERE article_id = ?1 ORDER BY observed_at, id",
            )
            .context(|| "reading snapshots".into())?;
        statement
            .query_map([article_id], |row| {
                Ok(StoredSnapshot {
                    id: row.get(0)?,
                    article_id: row.get(1)?,
                    age_seconds: row.get(2)?,
                    snapshot: Snapshot {
                        observed_at: row.get(3)?,
                        rung_seconds: row.get(4)?,
                        reads: row.get(5)?,
                        reads_capped: row.get(6)?,
                        likes: row.get(7)?,
                        wows: row.get(8)?,
                        shares: row.get(9)?,
                        comments: row.get(10)?,
                        source: row.get(11)?,
                    },
                })
            })
            .and_then(|rows| rows.collect())
            .context(|| format!("reading snapshots of article #{article_id}"))
    }
}

/// An article that may need count snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsCandidate {
    /// Row id.
    pub id: i64,
    /// Key.
    pub key: ArticleKey,
    /// Signature.
    pub sn: Option<String>,
    /// Comment thread id.
    pub comment_id: Option<String>,
    /// Publication.
    pub published_at: UnixSeconds,
    /// Ladder rungs already stored (seconds).
    pub rungs_taken: Vec<i64>,
}

/// One line of `mpwatch articles`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArticleSummary {
    /// Row id.
    pub id: i64,
    /// Account display name.
    pub account_name: Option<String>,
    /// Biz.
    pub biz: String,
    /// Push id.
    pub mid: i64,
    /// Position.
    pub idx: i64,
    /// Title.
    pub title: Option<String>,
    /// Publication (unix seconds).
    pub published_at: Option<i64>,
    /// Kind.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Latest 阅读.
    pub reads: Option<i64>,
    /// Latest 赞.
    pub likes: Option<i64>,
    /// Latest 在看.
    pub wows: Option<i64>,
    /// Latest shares.
    pub shares: Option<i64>,
    /// Latest comments.
    pub comments: Option<i64>,
    /// Snapshots stored.
    pub snapshot_count: i64,
}

/// Filters of [`Store::list_articles`].
#[derive(Debug, Clone, Default)]
pub struct ArticleFilter {
    /// Only this account (row id).
    pub account_id: Option<i64>,
    /// Published at or after.
    pub since: Option<UnixSeconds>,
    /// Only this status.
    pub status: Option<ArticleStatus>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

impl Tx<'_> {
    /// The status of the article with this key, if stored.
    pub fn article_status(&self, key: &ArticleKey) -> Result<Option<ArticleStatus>> {
        let status: Option<String> = self
            .connection()
            .query_row(
                "SELECT status FROM articles WHERE biz = ?1 AND mid = ?2 AND idx = ?3",
                params![key.biz.as_str(), key.mid as i64, key.idx],
                |row| row.get(0),
            )
            .optional()
            .context(|| format!("reading status of article {key}"))?;
        status.map(|s| s.parse().map_err(|_| StoreError::Corrupt(format!("status `{s}`")))).transpose()
    }

    /// Whether the article behind this short link (`/s/<token>`) has had its page
    /// fetched. (An article named by its key is looked up by the key: there is no
    /// index on `url`, and a scan of every article per link grew with the history.)
    pub fn short_url_fetched(&self, short_url: &str) -> Result<bool> {
        self.connection()
            .prepare_cached(SHORT_URL_FETCHED)
            .and_then(|mut statement| statement.query_row([short_url], |row| row.get(0)))
            .context(|| format!("looking up {short_url}"))
    }

    /// Keeps a fetched page, zstd-compressed by the caller, for `mpwatch reparse`.
    pub fn insert_raw_page(
        &self,
        article_id: i64,
        url: &str,
        fetched_at: UnixSeconds,
        uncompressed: usize,
        body: &[u8],
    ) -> Result<()> {
        self.connection()
            .execute_cached(
                "INSERT INTO raw_pages (article_id, fetched_at, url, bytes, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![article_id, fetched_at, url, uncompressed as i64, body],
            )
            .context(|| format!("archiving page of article #{article_id}"))?;
        Ok(())
    }
}

impl Store {
    /// Live articles last fetched before `stale_before` and published after
    /// `published_after`: their pages are checked again (deletions, edits).
    pub fn articles_to_recheck(
        &self,
        stale_before: UnixSeconds,
        published_after: UnixSeconds,
    ) -> Result<Vec<(i64, String)>> {
        let mut statement = self
            .connection()
            .prepare(
                // `+status`: read the window by publication time; through the status
                // index SQLite read every stored article and sorted the window.
                "SELECT id, url FROM articles
                 WHERE +status = 'ok' AND last_fetched_at < ?1 AND published_at > ?2 ORDER BY published_at",
            )
            .context(|| "finding pages to check again".into())?;
        statement
            .query_map(params![stale_before, published_after], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .context(|| "finding pages to check again".into())
    }

    /// The article with this row id.
    pub fn article_by_id(&self, id: i64) -> Result<Option<StoredArticle>> {
        self.connection()
            .query_row(&format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?1"), [id], article_from_row)
            .optional()
            .context(|| format!("reading article #{id}"))
    }

    /// The article found by this short link.
    pub fn article_by_short_url(&self, short_url: &str) -> Result<Option<StoredArticle>> {
        self.connection()
            .query_row(
                &format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE short_url = ?1"),
                [short_url],
                article_from_row,
            )
            .optional()
            .context(|| format!("reading article {short_url}"))
    }

    /// Live articles of enabled accounts published within `max_age` of `now`, with the
    /// ladder rungs they already have.
    pub fn metrics_candidates(&self, now: UnixSeconds, max_age: i64) -> Result<Vec<MetricsCandidate>> {
        self.read(|conn| {
            let mut statement = conn
                .prepare(
                    "SELECT a.id, a.biz, a.mid, a.idx, a.sn, a.comment_id, a.published_at,
                            (SELECT string_agg(CAST(rung_seconds AS TEXT), ',') FROM metric_snapshots s
                             WHERE s.article_id = a.id AND s.rung_seconds IS NOT NULL)
                     FROM articles a LEFT JOIN accounts acc ON acc.id = a.account_id
                     WHERE +a.status = 'ok' AND a.published_at IS NOT NULL AND a.published_at >= ?1
                       AND coalesce(acc.enabled, 1) = 1
                     ORDER BY a.published_at",
                )
                .context(|| "finding articles that need counts".into())?;
            let candidates: Vec<Option<MetricsCandidate>> = statement
                .query_map([now - max_age], |row| {
                    let biz: String = row.get(1)?;
                    let mid: i64 = row.get(2)?;
                    let idx: i64 = row.get(3)?;
                    let rungs: Option<String> = row.get(7)?;
                    Ok(Biz::parse(&biz).ok().map(|biz| MetricsCandidate {
                        id: row.get(0).unwrap_or_default(),
                        key: ArticleKey { biz, mid: mid as u64, idx: idx as u32 },
                        sn: row.get(4).unwrap_or_default(),
                        comment_id: row.get(5).unwrap_or_default(),
                        published_at: row.get(6).unwrap_or_default(),
                        rungs_taken: rungs
                            .map(|r| r.split(',').filter_map(|x| x.parse().ok()).collect())
                            .unwrap_or_default(),
                    }))
                })
                .and_then(|rows| rows.collect())
                .context(|| "finding articles that need counts".into())?;
            Ok(candidates.into_iter().flatten().collect())
        })
    }

    /// Stored articles with their latest counts, newest first.
    pub fn list_articles(&self, filter: &ArticleFilter) -> Result<Vec<ArticleSummary>> {
        let mut articles = Vec::new();
        self.each_article(filter, |article| {
            articles.push(article);
            Ok::<(), StoreError>(())
        })?;
        Ok(articles)
    }

    /// [`Store::list_articles`] one row at a time, in the same order, without holding
    /// them: `f` gets each (an export of a million rows runs in constant memory).
    pub fn each_article<E: From<StoreError>>(
        &self,
        filter: &ArticleFilter,
        mut f: impl FnMut(ArticleSummary) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        // The base tables, as v_articles joins them, but each article's latest snapshot
        // found by its own index seek: through the view SQLite materialised the latest
        // snapshot of every article first (a scan of every snapshot, held in memory:
        // `articles --json` grew 5.7 MB on the synthetic year).
        let mut statement = self.connection().prepare(&article_list_sql()).context(|| "listing articles".into())?;
        let rows = statement
            .query_map(
                params![
                    filter.account_id,
                    filter.since,
                    filter.status.map(ArticleStatus::as_str),
                    filter.limit.map(|limit| limit as i64)
                ],
                |row| {
                    Ok(ArticleSummary {
                        id: row.get(0)?,
                        account_name: row.get(1)?,
                        biz: row.get(2)?,
                        mid: row.get(3)?,
                        idx: row.get(4)?,
                        title: row.get(5)?,
                        published_at: row.get(6)?,
                        kind: row.get(7)?,
                        status: row.get(8)?,
                        reads: row.get(9)?,
                        likes: row.get(10)?,
                        wows: row.get(11)?,
                        shares: row.get(12)?,
                        comments: row.get(13)?,
                        snapshot_count: row.get(14)?,
                    })
                },
            )
            .context(|| "listing articles".into())?;
        for row in rows {
            f(row.context(|| "listing articles".into())?)?;
        }
        Ok(())
    }
}

/// Joins each article `a` to its latest snapshot as `m` (by observation time, then id):
/// one index seek per article, where `v_latest_metrics` finds the latest of every
/// article at once. For queries that read articles one by one (listings, exports).
pub const LATEST_SNAPSHOT_JOIN: &str = "LEFT JOIN metric_snapshots m ON m.id = (SELECT l.id FROM metric_snapshots l
     WHERE l.article_id = a.id ORDER BY l.observed_at DESC, l.id DESC LIMIT 1)";

/// [`Store::each_article`]'s query: the columns of `v_articles` it needs, from the base
/// tables.
fn article_list_sql() -> String {
    format!(
        "SELECT a.id, coalesce(acc.nickname, acc.alias, a.biz), a.biz, a.mid, a.idx, a.title,
            a.published_at, a.kind, a.status, m.reads, m.likes, m.wows, m.shares, m.comments,
            (SELECT count(c.id) FROM metric_snapshots c WHERE c.article_id = a.id)
         FROM articles a
         LEFT JOIN accounts acc ON acc.id = a.account_id
         {LATEST_SNAPSHOT_JOIN}
         WHERE (CAST(?1 AS BIGINT) IS NULL OR a.account_id = ?1) AND (CAST(?2 AS BIGINT) IS NULL OR a.published_at >= ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR a.status = ?3)
         ORDER BY a.published_at DESC, a.biz, a.mid, a.idx
         LIMIT coalesce(CAST(?4 AS BIGINT), 9223372036854775807)"
    )
}

impl Store {
    /// The latest archived page of every article (id, url, compressed body), in
    /// article order, `limit` at a time after `after_article`.
    pub fn latest_raw_pages(&self, after_article: i64, limit: usize) -> Result<Vec<(i64, String, Vec<u8>)>> {
        let mut statement = self
            .connection()
            .prepare(
                "SELECT r.article_id, r.url, r.body FROM raw_pages r
                 WHERE r.article_id > ?1
                   AND r.id = (SELECT max(id) FROM raw_pages l WHERE l.article_id = r.article_id)
                 ORDER BY r.article_id LIMIT ?2",
            )
            .context(|| "reading archived pages".into())?;
        statement
            .query_map(params![after_article, limit as i64], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .and_then(|rows| rows.collect())
            .context(|| "reading archived pages".into())
    }
}

/// `Tx::short_url_fetched`: runs for every link a feed lists.
const SHORT_URL_FETCHED: &str = "SELECT EXISTS (SELECT 1 FROM articles WHERE short_url = ?1 AND status != 'pending')";

/// The update of a stored article by its fetched page. Indexed columns (`published_at`,
/// `short_url`, `account_id`, `status`) are set only when their value changes: SQLite
/// rewrites an index entry for every indexed column an UPDATE sets, changed or not, and
/// those index pages were a tenth of what a crawl wrote to the WAL.
fn ok_update(record: &ArticleRecord, old: &StoredArticle) -> String {
    let mut sets = vec![
        "sn = coalesce(?2, sn)",
        "url = ?3",
        "title = coalesce(?5, title)",
        "digest = coalesce(?6, digest)",
        "author = coalesce(?7, author)",
        "kind = CASE WHEN ?9 = 'article' AND kind != 'article' THEN kind ELSE coalesce(?9, kind) END",
        "copyright = coalesce(?10, copyright)",
        "original_account = coalesce(?11, original_account)",
        "original_url = coalesce(?12, original_url)",
        "source_url = coalesce(?13, source_url)",
        "cover_url = coalesce(?14, cover_url)",
        "comment_id = coalesce(?15, comment_id)",
        "content_text = coalesce(?16, content_text)",
        "word_count = coalesce(?17, word_count)",
        "image_count = coalesce(?18, image_count)",
        "content_hash = coalesce(?19, content_hash)",
        "status_reason = NULL",
        "status_changed_at = CASE WHEN status = 'ok' THEN status_changed_at ELSE ?20 END",
        "last_fetched_at = ?20",
    ];
    if record.short_url.is_some() && record.short_url != old.short_url {
        sets.push("short_url = ?4");
    }
    if record.published_at.is_some() && record.published_at != old.published_at {
        sets.push("published_at = ?8");
    }
    if old.status != ArticleStatus::Ok {
        sets.push("status = 'ok'");
    }
    if old.account_id.is_none() {
        sets.push("account_id = (SELECT id FROM accounts WHERE biz = articles.biz)");
    }
    format!("UPDATE articles SET {} WHERE id = ?1", sets.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    /// A feed's links are looked up through an index, not by reading every article.
    #[test]
    fn a_short_link_is_looked_up_through_its_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("a.db"), &StoreOptions::default()).expect("store");
        let plan = store.query_plan(SHORT_URL_FETCHED).expect("plan").join("; ");
        assert!(plan.contains("SEARCH articles USING INDEX articles_by_short_url"), "{plan}");
        assert!(!plan.contains("SCAN articles"), "{plan}");
    }

    /// `articles --json` streams: each article's latest snapshot is an index seek, and
    /// nothing is materialised (through v_articles SQLite built the latest snapshot of
    /// every article in memory first, from a scan of every snapshot).
    #[test]
    fn listing_articles_materialises_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("a.db"), &StoreOptions::default()).expect("store");
        let plan = store.query_plan(&article_list_sql()).expect("plan").join("; ");
        assert!(!plan.contains("MATERIALIZE") && !plan.contains("AUTOMATIC"), "{plan}");
        assert!(plan.contains("SEARCH m USING INTEGER PRIMARY KEY"), "{plan}");
        assert!(!plan.contains("SCAN l") && !plan.contains("SCAN c") && !plan.contains("SCAN m"), "{plan}");
    }
}
