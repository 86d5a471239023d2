//! `/search?q=`: articles whose title, digest or text contain the words, through the
//! trigram full-text index `articles_fts` (queries of one or two characters, which a
//! trigram index cannot answer, fall back to `LIKE` on titles and digests).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde::Serialize;

use super::format::{count_text, local_time};
use super::{Section, layout, respond, wants_json};
use crate::SharedState;
use crate::error::RequestError;

/// Marks around a match in a snippet (control characters never in stored text), turned
/// into `<mark>` after escaping.
const MATCH_START: char = '\u{1}';
const MATCH_END: char = '\u{2}';

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
    /// The text around the match (plain text).
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
    let conn = store.connection();
    let row = |row: &rusqlite::Row<'_>| -> rusqlite::Result<Hit> {
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
    let latest_reads = "(SELECT l.reads FROM metric_snapshots l WHERE l.article_id = a.id ORDER BY l.observed_at DESC, l.id DESC LIMIT 1)";
    if q.chars().count() >= 3 {
        // The query as one phrase: FTS5 syntax in the user's words means nothing here.
        let phrase = format!("\"{}\"", q.replace('"', "\"\""));
        let sql = format!(
            "SELECT a.id, a.title, coalesce(acc.nickname, acc.alias, acc.biz), a.account_id, a.published_at, {latest_reads},
                    snippet(articles_fts, -1, char(1), char(2), '…', 24)
             FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid JOIN accounts acc ON acc.id = a.account_id
             WHERE articles_fts MATCH ?1 ORDER BY rank LIMIT ?2"
        );
        let hits = conn.prepare_cached(&sql)?.query_map((phrase, LIMIT), row)?.collect::<rusqlite::Result<_>>()?;
        Ok((hits, "fts"))
    } else {
        let pattern = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let sql = format!(
            "SELECT a.id, a.title, coalesce(acc.nickname, acc.alias, acc.biz), a.account_id, a.published_at, {latest_reads},
                    a.digest
             FROM articles a JOIN accounts acc ON acc.id = a.account_id
             WHERE a.title LIKE ?1 ESCAPE '\\' OR a.digest LIKE ?1 ESCAPE '\\'
             ORDER BY a.published_at DESC LIMIT ?2"
        );
        let hits = conn.prepare_cached(&sql)?.query_map((pattern, LIMIT), row)?.collect::<rusqlite::Result<_>>()?;
        Ok((hits, "like"))
    }
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
                @if page.method == "like" { " · one or two characters: titles and digests only" } }
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
