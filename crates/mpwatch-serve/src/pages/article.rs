//! `/article/{id}`: an article's metadata, its snapshot history (a table and a growth
//! curve at `/article/{id}/growth.svg`) and its stored body text.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use mpwatch_store::articles::{StoredArticle, StoredSnapshot};
use rusqlite::OptionalExtension as _;
use serde::Serialize;

use super::format::{count_text, http_link, local_time};
use super::{Section, layout, respond, strip_json, svg_response, wants_json};
use crate::SharedState;
use crate::error::RequestError;

/// What the article page shows.
#[derive(Debug, Serialize)]
pub struct ArticlePage {
    /// The stored article.
    pub article: StoredArticle,
    /// Its account's name.
    pub account: Option<String>,
    /// Every snapshot, oldest first.
    pub snapshots: Vec<StoredSnapshot>,
    /// The body as clean HTML, when stored.
    pub body_html: Option<String>,
    #[serde(skip)]
    zone: jiff::tz::TimeZone,
}

fn article_id(text: &str) -> Result<i64, RequestError> {
    text.parse().map_err(|_| RequestError::NotFound(format!("no article {text}: articles are numbered")))
}

/// An article, its account's name, its snapshots and its body's clean HTML.
type Loaded = (StoredArticle, Option<String>, Vec<StoredSnapshot>, Option<String>);

fn load(store: &mpwatch_store::Store, id: i64) -> Result<Loaded, RequestError> {
    let article = store.article_by_id(id)?.ok_or_else(|| RequestError::NotFound(format!("no article {id}")))?;
    let account = match article.account_id {
        Some(account_id) => Some(store.resolve_account(&account_id.to_string())?.display_name()),
        None => None,
    };
    let snapshots = store.snapshots_of(id)?;
    let body_html = store
        .connection()
        .prepare_cached("SELECT html FROM article_bodies WHERE article_id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok((article, account, snapshots, body_html))
}

/// `/article/{id}` (or `{id}.json`).
pub async fn page(State(state): State<SharedState>, Path(segment): Path<String>, headers: HeaderMap) -> Response {
    let (key, dot_json) = strip_json(&segment);
    let json = wants_json(&headers, dot_json);
    let zone = state.rules.tz.clone();
    let result = match article_id(key) {
        Ok(id) => state.readers.read(move |store| load(store, id)).await,
        Err(error) => Err(error),
    };
    match result {
        Ok((article, account, snapshots, body_html)) => {
            respond(json, &ArticlePage { article, account, snapshots, body_html, zone }, render)
        }
        Err(error) => error.respond(json),
    }
}

/// `/article/{id}/growth.svg`.
pub async fn growth(State(state): State<SharedState>, Path(key): Path<String>) -> Response {
    let result = match article_id(&key) {
        Ok(id) => state.readers.read(move |store| load(store, id)).await,
        Err(error) => Err(error),
    };
    let (article, _, snapshots, _) = match result {
        Ok(loaded) => loaded,
        Err(error) => return error.into_response(),
    };
    let points: Vec<mpwatch_chart::GrowthPoint> = snapshots
        .iter()
        .filter_map(|s| {
            let age = s.age_seconds?;
            let reads = s.snapshot.reads?;
            let engagements = match (s.snapshot.wows, s.snapshot.likes) {
                (None, None) => None,
                (wows, likes) => Some(wows.unwrap_or(0) + likes.unwrap_or(0)),
            };
            Some(mpwatch_chart::GrowthPoint { age_seconds: age, reads, engagements })
        })
        .collect();
    // SVG is XML: the title loses the characters XML forbids.
    let title = crate::feed::content::xml_safe(article.title.clone().unwrap_or_else(|| "article".into()));
    match mpwatch_chart::growth_svg(&title, &points) {
        Ok(Some(svg)) => svg_response(svg),
        Ok(None) => RequestError::NotFound("no snapshot with a read count yet".into()).into_response(),
        Err(error) => RequestError::Internal(format!("{error:#}")).into_response(),
    }
}

fn age_text(seconds: i64) -> String {
    match seconds {
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} d", s as f64 / 86_400.0),
    }
}

fn render(page: &ArticlePage) -> Markup {
    let article = &page.article;
    let tz = &page.zone;
    let title = article.title.clone().unwrap_or_else(|| format!("article {}", article.id));
    let content = html! {
        h1 { (title) }
        p.meta {
            @if let (Some(name), Some(id)) = (&page.account, article.account_id) { a href=(format!("/account/{id}")) { (name) } " · " }
            @if let Some(author) = &article.author { (author) " · " }
            @if let Some(at) = article.published_at { (local_time(at, tz)) " · " }
            (article.kind.as_str())
            @if let Some(copyright) = &article.copyright { " · " (copyright.as_str()) }
            " · " (article.status.as_str())
            @if let Some(reason) = &article.status_reason { " (" (reason) ")" }
        }
        p.meta { a href=(article.url) { "Read on WeChat" }
            @if let Some(source) = article.source_url.as_deref().and_then(http_link) { " · " a href=(source) { "阅读原文 link" } }
            @if let Some(original) = article.original_url.as_deref().and_then(http_link) { " · " a href=(original) { "original article" } }
        }
        @if let Some(digest) = &article.digest { blockquote { (digest) } }
        h2 { "Counts over time" }
        @if page.snapshots.is_empty() {
            p { "No snapshot yet." }
        } @else {
            figure.chart {
                img src=(format!("/article/{}/growth.svg", article.id)) alt="reads and 在看 + 赞 by hours since publication" width="900" height="420";
            }
            div.scroll { table.snapshots {
                thead { tr { th { "observed" } th { "age" } th.num title="阅读" { "reads" } th.num title="赞" { "likes" }
                             th.num title="在看" { "wows" } th.num title="转发" { "shares" } th.num title="评论" { "comments" } th { "rung" } } }
                tbody { @for s in &page.snapshots {
                    tr {
                        td { (local_time(s.snapshot.observed_at, tz)) }
                        td { @match s.age_seconds { Some(age) => (age_text(age)), None => "–" } }
                        td.num { (count_text(s.snapshot.reads, s.snapshot.reads_capped)) }
                        td.num { (count_text(s.snapshot.likes, false)) }
                        td.num { (count_text(s.snapshot.wows, false)) }
                        td.num { (count_text(s.snapshot.shares, false)) }
                        td.num { (count_text(s.snapshot.comments, false)) }
                        td { @match s.snapshot.rung_seconds { Some(rung) => (age_text(rung)), None => "ad hoc" } }
                    }
                } }
            } }
        }
        h2 { "Text" }
        article.body {
            @if page.body_html.is_none() && article.content_text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                p.muted { "No text stored (the page was not fetched, or it has none)." }
            } @else {
                (crate::feed::content::body(page.body_html.as_deref(), article.content_text.as_deref(), None))
            }
        }
    };
    layout(&title, Section::Accounts, content)
}
