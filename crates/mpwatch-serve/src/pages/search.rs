//! `/search?q=`: articles whose title, digest or text contain the words, through the
//! trigram full-text index `articles_fts` (queries of one or two characters, which a
//! trigram index cannot answer, fall back to `LIKE` on titles and digests), and through
//! `LIKE` among the articles still waiting for that index.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use mpwatch_store::articles::LATEST_SNAPSHOT_JOIN;
use serde::Serialize;

use super::format::{count_text, local_time};
use super::{Section, layout, respond, wants_json};
use crate::SharedState;
use crate::error::RequestError;

/// Marks around a match in a snippet, turned into `<mark>` after escaping. Control
/// characters: a page's text could hold one, at worst misplacing a highlight.
const MATCH_START: char = '\u{1}';
const MATCH_END: char = '\u{2}';

/// A snippet without its match marks (JSON has no use for them).
fn unmarked<S: serde::Serializer>(snippet: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&snippet.replace([MATCH_START, MATCH_END], ""))
}

/// Results at most.
const LIMIT: i64 = 50;

/// One result.
#[derive(Debug, Serialize)]
pub struct Hit {
    /// `articles.id`.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Account name.
    pub account: String,
    /// The account's row id.
    pub account_id: i64,
    /// Publish time.
    pub published_at: Option<i64>,
    /// Latest read count.
    pub reads: Option<i64>,
    /// The text around the match (plain text; in pages the match is marked).
    #[serde(serialize_with = "unmarked")]
    pub snippet: String,
}

/// What the page shows.
#[derive(Debug, Serialize)]
pub struct SearchPage {
    /// The query.
    pub q: String,
    /// `fts` or `like`.
    pub method: &'static str,
    /// Results, best first (newest first for `like`).
    pub hits: Vec<Hit>,
    #[serde(skip)]
    zone: jiff::tz::TimeZone,
}

fn search(store: &mpwatch_store::Store, q: &str) -> Result<(Vec<Hit>, &'static str), RequestError> {
    // One snapshot for both reads: an article a batch moves from waiting into the index
    // meanwhile is found once, never missed.
    let snapshot = store.connection().transaction(false)?;
    let found = search_in(&snapshot, q)?;
    snapshot.commit()?;
    Ok(found)
}

fn search_in(conn: &mpwatch_store::Connection, q: &str) -> Result<(Vec<Hit>, &'static str), RequestError> {
    let row = |row: &mpwatch_store::sql::Row<'_>| -> rusqlite::Result<Hit> {
        let snippet: Option<String> = row.get(6)?;
        Ok(Hit {
            id: row.get(0)?,
            title: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            account: row.get(2)?,
            account_id: row.get(3)?,
            published_at: row.get(4)?,
            reads: row.get(5)?,
            snippet: snippet.unwrap_or_default(),
        })
    };
    let name = "coalesce(acc.nickname, acc.alias, acc.biz, acc.username, '#' || acc.id)";
    // Every word must occur. The trigram index answers words of three characters or
    // more (each a phrase: FTS5 syntax in the user's words means nothing here); shorter
    // ones are checked with LIKE, among the index's answers when there are any.
    let words: Vec<&str> = q.split_whitespace().collect();
    let (long, short): (Vec<&str>, Vec<&str>) = words.iter().partition(|word| word.chars().count() >= 3);
    let like = |word: &str| format!("%{}%", word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    // Each word in the title, digest or text (short words only in titles and digests
    // when nothing else narrows the search: they match almost everything).
    let like_all = |values: &mut Vec<rusqlite::types::Value>, sql: &mut String, words: &[&str], short_in_text: bool| {
        for word in words {
            values.push(like(word).into());
            let n = values.len();
            if short_in_text || word.chars().count() >= 3 {
                sql.push_str(&format!(
                    " AND (a.title LIKE ?{n} ESCAPE '\\' OR a.digest LIKE ?{n} ESCAPE '\\' OR a.content_text LIKE ?{n} ESCAPE '\\')"
                ));
            } else {
                sql.push_str(&format!(" AND (a.title LIKE ?{n} ESCAPE '\\' OR a.digest LIKE ?{n} ESCAPE '\\')"));
            }
        }
    };
    let run = |sql: String, mut values: Vec<rusqlite::types::Value>, limit: i64| -> Result<Vec<Hit>, RequestError> {
        values.push(limit.into());
        let sql = format!("{sql} LIMIT ?{}", values.len());
        Ok(conn
            .prepare_cached(&sql)?
            .query_map(mpwatch_store::sql::params_from_iter(values), row)?
            .collect::<rusqlite::Result<_>>()?)
    };
    let like_select = format!(
        "SELECT a.id, a.title, {name}, a.account_id, a.published_at, m.reads, a.digest
         FROM articles a JOIN accounts acc ON acc.id = a.account_id {LATEST_SNAPSHOT_JOIN}"
    );
    // PostgreSQL has no FTS5: every word through LIKE (its trigram indexes serve the
    // long ones), in the title, digest or text.
    if long.is_empty() || conn.is_postgres() {
        let (mut sql, mut values) = (format!("{like_select} WHERE 1 = 1"), Vec::new());
        like_all(&mut values, &mut sql, &words, false);
        sql.push_str(" ORDER BY a.published_at DESC, a.idx");
        return Ok((run(sql, values, LIMIT)?, "like"));
    }
    let phrases: Vec<String> = long.iter().map(|word| format!("\"{}\"", word.replace('"', "\"\""))).collect();
    let mut values: Vec<rusqlite::types::Value> = vec![phrases.join(" ").into()];
    let mut sql = format!(
        "SELECT a.id, a.title, {name}, a.account_id, a.published_at, m.reads,
                snippet(articles_fts, -1, char(1), char(2), '…', 24)
         FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid JOIN accounts acc ON acc.id = a.account_id
         {LATEST_SNAPSHOT_JOIN}
         WHERE articles_fts MATCH ?1"
    );
    like_all(&mut values, &mut sql, &short, true);
    sql.push_str(" ORDER BY rank");
    let mut hits = run(sql, values, LIMIT)?;
    // Articles not yet in the index (a crawl adds them in batches:
    // mpwatch_store::search_index) are looked through with LIKE, newest first after
    // the ranked ones: an article is found as soon as it is stored.
    if (hits.len() as i64) < LIMIT {
        let (mut sql, mut values) =
            (format!("{like_select} WHERE a.id IN (SELECT article_id FROM articles_fts_pending)"), Vec::new());
        like_all(&mut values, &mut sql, &words, true);
        sql.push_str(" ORDER BY a.published_at DESC, a.idx");
        hits.extend(run(sql, values, LIMIT - hits.len() as i64)?);
    }
    Ok((hits, "fts"))
}

async fn load(state: &SharedState, params: &HashMap<String, String>) -> Result<SearchPage, RequestError> {
    let q = params.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    if q.chars().count() > 200 {
        return Err(RequestError::BadRequest("q: at most 200 characters".into()));
    }
    let zone = state.rules.tz.clone();
    if q.is_empty() {
        return Ok(SearchPage { q, method: "fts", hits: Vec::new(), zone });
    }
    let query = q.clone();
    let (hits, method) = state.readers.read(move |store| search(store, &query)).await?;
    Ok(SearchPage { q, method, hits, zone })
}

/// `/search`.
pub async fn page(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&headers, false);
    match load(&state, &params).await {
        Ok(page) => respond(json, &page, render),
        Err(error) => error.respond(json),
    }
}

/// `/search.json`.
pub async fn json(State(state): State<SharedState>, Query(params): Query<HashMap<String, String>>) -> Response {
    match load(&state, &params).await {
        Ok(page) => respond(true, &page, render),
        Err(error) => error.respond(true),
    }
}

/// A snippet with its matches marked; every piece of text escaped.
fn snippet(text: &str) -> Markup {
    let mut parts = Vec::new();
    for (i, piece) in text.split(MATCH_START).enumerate() {
        match piece.split_once(MATCH_END) {
            Some((matched, rest)) if i > 0 => parts.push((matched, rest)),
            _ => parts.push(("", piece)),
        }
    }
    html! { @for (matched, rest) in parts { @if !matched.is_empty() { mark { (matched) } } (rest) } }
}

fn render(page: &SearchPage) -> Markup {
    let tz = &page.zone;
    let content = html! {
        h1 { "Search" }
        form.choices method="get" action="/search" {
            input type="search" name="q" value=(page.q) placeholder="words in titles and texts" autofocus;
            button type="submit" { "Search" }
        }
        @if !page.q.is_empty() {
            p.meta { (page.hits.len()) " results" @if page.hits.len() as i64 == LIMIT { " (the first " (LIMIT) ")" }
                @if page.method == "like" { " · without the full-text index: each word looked for in titles and digests, and words of three characters or more also in the text" } }
            ol.hits { @for hit in &page.hits {
                li {
                    a href=(format!("/article/{}", hit.id)) { (hit.title) }
                    " · " a href=(format!("/account/{}", hit.account_id)) { (hit.account) }
                    @if let Some(at) = hit.published_at { " · " (local_time(at, tz)) }
                    @if hit.reads.is_some() { " · 阅读 " (count_text(hit.reads, hit.reads == Some(100_001))) }
                    p.snippet { (snippet(&hit.snippet)) }
                }
            } }
        }
    };
    layout("Search", Section::Search, content)
}
