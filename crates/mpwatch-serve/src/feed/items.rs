//! Which articles a feed holds: the newest of a selection, with their latest counts,
//! filtered as the request asks. The query walks an index newest first and stops at the
//! limit: its cost follows the items asked for, not the history.

use mpwatch_store::Store;
use rusqlite::types::Value;

use super::content::xml_safe;
use crate::error::RequestError;

/// Whose articles.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every tracked account.
    All,
    /// One account (its row id).
    Account(i64),
    /// A group's accounts.
    Group(String),
}

/// Filters of a feed request (query parameters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Items at most.
    pub limit: u32,
    /// Titles containing one of these (case-insensitive for Latin letters).
    pub title_include: Vec<String>,
    /// Titles containing none of these.
    pub title_exclude: Vec<String>,
    /// Latest read count at least this.
    pub min_reads: Option<i64>,
    /// Published at or after (unix seconds).
    pub since: Option<i64>,
    /// After this (publish time, position in its push) in the list's order: the next
    /// page of a list (a push's articles share their publish time).
    pub after: Option<(i64, i64)>,
    /// Articles of paused accounts and articles not fetched yet too (an account's own
    /// page lists them; feeds leave them out).
    pub all_states: bool,
    /// Only this kind (article, picture, text, video, audio).
    pub kind: Option<String>,
    /// Only articles marked original (原创).
    pub original_only: bool,
}

impl Filters {
    /// The filters as a query string (`?…`, or empty), in a fixed order and without the
    /// token: part of a filtered feed's own URL (its id and `rel="self"` link), so a
    /// reader that follows it keeps the filters.
    pub fn query(&self, default_limit: u32) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if self.limit != default_limit {
            query.append_pair("limit", &self.limit.to_string());
        }
        if !self.title_include.is_empty() {
            query.append_pair("title_include", &self.title_include.join("|"));
        }
        if !self.title_exclude.is_empty() {
            query.append_pair("title_exclude", &self.title_exclude.join("|"));
        }
        if let Some(min) = self.min_reads {
            query.append_pair("min_reads", &min.to_string());
        }
        if let Some(since) = self.since {
            query.append_pair("since", &since.to_string());
        }
        if let Some(kind) = &self.kind {
            query.append_pair("kind", kind);
        }
        if self.original_only {
            query.append_pair("original_only", "true");
        }
        let query = query.finish();
        if query.is_empty() { query } else { format!("?{query}") }
    }
}

/// The latest counts of an article.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Counts {
    /// 阅读 (100001: "10万+").
    pub reads: Option<i64>,
    /// The read count is WeChat's cap ("10万+").
    pub reads_capped: bool,
    /// 赞.
    pub likes: Option<i64>,
    /// 在看.
    pub wows: Option<i64>,
    /// 转发.
    pub shares: Option<i64>,
    /// 评论.
    pub comments: Option<i64>,
    /// When they were read (unix seconds).
    pub observed_at: i64,
}

/// One article of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// `articles.id`.
    pub id: i64,
    /// Its position in its push (1: the headline).
    pub idx: i64,
    /// The canonical article URL.
    pub url: String,
    /// Title.
    pub title: String,
    /// Digest (摘要).
    pub digest: Option<String>,
    /// Author (作者), else the account.
    pub author: Option<String>,
    /// Publish time (unix seconds).
    pub published_at: i64,
    /// article, picture, text, video, audio.
    pub kind: String,
    /// original, repost, none.
    pub copyright: Option<String>,
    /// The stored body text (paragraphs on lines).
    pub content_text: Option<String>,
    /// The stored body as clean HTML (`article_bodies`), with its images.
    pub body_html: Option<String>,
    /// The cover image.
    pub cover_url: Option<String>,
    /// ok, deleted, blocked, unavailable.
    pub status: String,
    /// The account's row id.
    pub account_id: i64,
    /// The account's name.
    pub account: String,
    /// The latest counts, if any were taken.
    pub counts: Option<Counts>,
    /// When anything of the item last changed (fetched, counted).
    pub updated_at: i64,
}

/// The newest articles of `scope` that pass `filters`, newest first (a push's articles
/// in their order in the push).
pub fn feed_items(store: &Store, scope: &Scope, filters: &Filters) -> Result<Vec<FeedItem>, RequestError> {
    if let Scope::Group(name) = scope {
        // Each account's newest from its own index range, merged: a group whose accounts
        // have been quiet for long costs as much as an active one.
        let accounts: Vec<i64> = store
            .connection()
            .prepare_cached("SELECT account_id FROM account_groups WHERE name = ?1")?
            .query_map([name], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut items = Vec::new();
        for account in accounts {
            items.extend(feed_items(store, &Scope::Account(account), filters)?);
        }
        items.sort_by(|a, b| (b.published_at, a.idx, b.id).cmp(&(a.published_at, b.idx, a.id)));
        items.truncate(filters.limit as usize);
        return Ok(items);
    }
    let mut sql = String::from(
        "SELECT a.id, a.url, a.title, a.digest, a.author, a.published_at, a.kind, a.copyright, a.content_text,
                a.cover_url, a.status, a.account_id, coalesce(acc.nickname, acc.alias, acc.biz, acc.username, '#' || acc.id),
                m.reads, m.reads_capped, m.likes, m.wows, m.shares, m.comments, m.observed_at,
                coalesce(a.last_fetched_at, a.first_seen_at), b.html, a.idx
         FROM articles a
         JOIN accounts acc ON acc.id = a.account_id
         LEFT JOIN article_bodies b ON b.article_id = a.id
         LEFT JOIN metric_snapshots m ON m.id = (
             SELECT l.id FROM metric_snapshots l WHERE l.article_id = a.id ORDER BY l.observed_at DESC, l.id DESC LIMIT 1)
         WHERE a.title IS NOT NULL AND a.published_at IS NOT NULL",
    );
    if !filters.all_states {
        sql.push_str(" AND a.status <> 'pending' AND acc.enabled = 1");
    }
    let mut values: Vec<Value> = Vec::new();
    let mut bind = |sql: &mut String, clause: &str, value: Value| {
        values.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", values.len())));
    };
    match scope {
        Scope::All => {}
        Scope::Account(id) => bind(&mut sql, " AND a.account_id = ?", Value::Integer(*id)),
        // Groups are read account by account above.
        Scope::Group(_) => {}
    }
    if let Some(since) = filters.since {
        bind(&mut sql, " AND a.published_at >= ?", Value::Integer(since));
    }
    if let Some((published_at, idx)) = filters.after {
        bind(&mut sql, " AND (a.published_at < ? OR (a.published_at = ?", Value::Integer(published_at));
        bind(&mut sql, " AND a.idx > ?))", Value::Integer(idx));
    }
    if let Some(kind) = &filters.kind {
        bind(&mut sql, " AND a.kind = ?", Value::Text(kind.clone()));
    }
    if filters.original_only {
        sql.push_str(" AND a.copyright = 'original'");
    }
    if let Some(min) = filters.min_reads {
        bind(&mut sql, " AND m.reads >= ?", Value::Integer(min));
    }
    // A word inside the title, ignoring case: LIKE with the word's own % and _ escaped
    // (the same on both backends; PostgreSQL has no instr).
    let inside = |word: &str| {
        let escaped = word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        Value::Text(format!("%{escaped}%"))
    };
    if !filters.title_include.is_empty() {
        sql.push_str(" AND (1 = 0");
        for word in &filters.title_include {
            bind(&mut sql, " OR lower(a.title) LIKE lower(?) ESCAPE '\\'", inside(word));
        }
        sql.push(')');
    }
    for word in &filters.title_exclude {
        bind(&mut sql, " AND lower(a.title) NOT LIKE lower(?) ESCAPE '\\'", inside(word));
    }
    bind(&mut sql, " ORDER BY a.published_at DESC, a.idx, a.id DESC LIMIT ?", Value::Integer(i64::from(filters.limit)));
    let mut statement = store.connection().prepare_cached(&sql)?;
    let items = statement
        .query_map(mpwatch_store::sql::params_from_iter(values), |row| {
            let observed_at: Option<i64> = row.get(19)?;
            let counts = match observed_at {
                Some(observed_at) => Some(Counts {
                    reads: row.get(13)?,
                    reads_capped: row.get::<_, Option<bool>>(14)?.unwrap_or(false),
                    likes: row.get(15)?,
                    wows: row.get(16)?,
                    shares: row.get(17)?,
                    comments: row.get(18)?,
                    observed_at,
                }),
                None => None,
            };
            let fetched: i64 = row.get(20)?;
            // Feeds are XML: what came from a page loses the characters XML forbids.
            let text =
                |i: usize| -> rusqlite::Result<Option<String>> { Ok(row.get::<_, Option<String>>(i)?.map(xml_safe)) };
            Ok(FeedItem {
                id: row.get(0)?,
                idx: row.get(22)?,
                url: row.get(1)?,
                title: text(2)?.unwrap_or_default(),
                digest: text(3)?,
                author: text(4)?.filter(|author| !author.trim().is_empty()),
                published_at: row.get(5)?,
                kind: row.get(6)?,
                copyright: row.get(7)?,
                content_text: text(8)?,
                body_html: text(21)?,
                cover_url: row.get(9)?,
                status: row.get(10)?,
                account_id: row.get(11)?,
                account: text(12)?.unwrap_or_default(),
                updated_at: fetched.max(observed_at.unwrap_or(0)),
                counts,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(items)
}
