//! Feeds: `/feeds/all.{atom,rss,json}`, `/feeds/account/{id|alias|biz|name}.{…}`,
//! `/feeds/group/{name}.{…}`, and `/feeds.opml` listing them. Newest first, full text,
//! the latest counts as a namespaced element (Atom, RSS) or `_mpwatch` (JSON Feed) and as
//! a line in the content. Answers carry an ETag and Last-Modified, so a reader polling
//! with `If-None-Match` / `If-Modified-Since` gets `304 Not Modified`.

mod atom;
pub mod content;
pub mod items;
mod json;
mod rss;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

use crate::SharedState;
use crate::error::RequestError;
use items::{FeedItem, Filters, Scope};

/// The namespace of the counts' elements in Atom and RSS (prefix `mpwatch`).
pub const NAMESPACE: &str = "urn:mpwatch:feed:1";

/// The most items a feed gives, whatever `limit` asks.
pub const MAX_ITEMS: u32 = 1000;

/// A feed's format, from the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Atom 1.0.
    Atom,
    /// RSS 2.0.
    Rss,
    /// JSON Feed 1.1.
    Json,
}

impl Format {
    fn of(extension: &str) -> Option<Format> {
        match extension {
            "atom" => Some(Format::Atom),
            "rss" | "xml" => Some(Format::Rss),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The extension of its URLs.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Atom => "atom",
            Format::Rss => "rss",
            Format::Json => "json",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }
}

/// A feed, ready to be written in any format.
#[derive(Debug)]
pub struct Feed {
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// The URL of this feed with its filters (never the token): its id and self link.
    pub self_url: String,
    /// The page it belongs to on the dashboard.
    pub home_url: String,
    /// Items, newest first.
    pub items: Vec<FeedItem>,
    /// The latest change of any item (or 0).
    pub updated_at: i64,
}

/// `name.ext` split at the last dot, with the format.
fn split_file(file: &str) -> Result<(&str, Format), RequestError> {
    let (name, extension) = file
        .rsplit_once('.')
        .ok_or_else(|| RequestError::NotFound(format!("{file}: a feed ends in .atom, .rss or .json")))?;
    let format = Format::of(extension)
        .ok_or_else(|| RequestError::NotFound(format!("{file}: a feed ends in .atom, .rss or .json")))?;
    Ok((name, format))
}

/// Reads the filters of a request; unknown parameters (`token`) are ignored.
pub fn filters(
    params: &HashMap<String, String>,
    default_limit: u32,
    tz: &jiff::tz::TimeZone,
) -> Result<Filters, RequestError> {
    let bad = |message: String| RequestError::BadRequest(message);
    let words = |key: &str| -> Vec<String> {
        params
            .get(key)
            .map(|v| v.split('|').map(str::trim).filter(|w| !w.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let limit = match params.get("limit") {
        Some(text) => text.parse::<u32>().map_err(|_| bad(format!("limit={text}: expected a number")))?,
        None => default_limit,
    };
    if !(1..=MAX_ITEMS).contains(&limit) {
        return Err(bad(format!("limit={limit}: expected 1 to {MAX_ITEMS}")));
    }
    let min_reads = match params.get("min_reads") {
        Some(text) => Some(text.parse::<i64>().map_err(|_| bad(format!("min_reads={text}: expected a number")))?),
        None => None,
    };
    let since = match params.get("since") {
        Some(text) => Some(parse_since(text, tz).ok_or_else(|| {
            bad(format!("since={text}: expected a date (YYYY-MM-DD), a time (RFC 3339) or unix seconds"))
        })?),
        None => None,
    };
    let kind = match params.get("kind").map(String::as_str) {
        Some(kind @ ("article" | "picture" | "text" | "video" | "audio")) => Some(kind.to_string()),
        Some(other) => return Err(bad(format!("kind={other}: expected article, picture, text, video or audio"))),
        None => None,
    };
    let original_only = match params.get("original_only").map(String::as_str) {
        None | Some("" | "0" | "false" | "no") => false,
        Some("1" | "true" | "yes") => true,
        Some(other) => return Err(bad(format!("original_only={other}: expected true or false"))),
    };
    Ok(Filters {
        limit,
        title_include: words("title_include"),
        title_exclude: words("title_exclude"),
        min_reads,
        since,
        after: None,
        all_states: false,
        kind,
        original_only,
    })
}

/// A date (midnight in the configured zone), a local date and time (in that zone), an
/// RFC 3339 time, or unix seconds.
fn parse_since(text: &str, tz: &jiff::tz::TimeZone) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        return Some(timestamp.as_second());
    }
    // jiff reads a date out of a longer text too: a bare date must be just that.
    let local: jiff::civil::DateTime = match text.len() {
        10 => text.parse::<jiff::civil::Date>().ok()?.to_datetime(jiff::civil::Time::midnight()),
        _ => text.replacen(' ', "T", 1).parse().ok()?,
    };
    local.to_zoned_datetime(tz.clone()).ok().map(|zoned| zoned.timestamp().as_second())
}

/// Which feed a path names.
enum Selection {
    /// `/feeds/all`.
    All,
    /// `/feeds/account/{id|alias|biz|name}`.
    Account(String),
    /// `/feeds/group/{name}`.
    Group(String),
}

/// `/feeds/all.{ext}`.
pub async fn all(
    State(state): State<SharedState>,
    Path(file): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, RequestError> {
    let (name, format) = split_file(&file)?;
    if name != "all" {
        return Err(RequestError::NotFound(format!("no feed {file}; try all.atom")));
    }
    feed(state, Selection::All, format, &params, &headers).await
}

/// `/feeds/account/{id|alias|biz|name}.{ext}`.
pub async fn account(
    State(state): State<SharedState>,
    Path(file): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, RequestError> {
    let (name, format) = split_file(&file)?;
    feed(state, Selection::Account(name.to_string()), format, &params, &headers).await
}

/// `/feeds/group/{name}.{ext}`.
pub async fn group(
    State(state): State<SharedState>,
    Path(file): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, RequestError> {
    let (name, format) = split_file(&file)?;
    feed(state, Selection::Group(name.to_string()), format, &params, &headers).await
}

/// A feed of `selection` with the request's filters, in `format`.
async fn feed(
    state: SharedState,
    selection: Selection,
    format: Format,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, RequestError> {
    let filters = filters(params, state.config.serve.feed_items, &state.rules.tz)?;
    let query = filters.query(state.config.serve.feed_items);
    let base = state.base_url.clone();
    let extension = format.extension();
    let feed = state
        .readers
        .read(move |store| {
            let (scope, title, description, path, home) = match selection {
                Selection::All => (
                    Scope::All,
                    "mpwatch: every tracked account".to_string(),
                    "The newest articles of every account mpwatch tracks, with their latest counts".to_string(),
                    "all".to_string(),
                    "/rankings".to_string(),
                ),
                Selection::Account(name) => {
                    let account = store.resolve_account(&name)?;
                    let title = account.display_name();
                    (
                        Scope::Account(account.id),
                        format!("{title} (mpwatch)"),
                        format!("Articles of the WeChat account {title}, with their latest counts"),
                        format!("account/{}", account.id),
                        format!("/account/{}", account.id),
                    )
                }
                Selection::Group(name) => {
                    let known: bool = store.connection().query_row(
                        "SELECT EXISTS (SELECT 1 FROM account_groups WHERE name = ?1)",
                        [&name],
                        |row| row.get(0),
                    )?;
                    if !known {
                        return Err(RequestError::NotFound(format!("no group {name}")));
                    }
                    (
                        Scope::Group(name.clone()),
                        format!("{name} (mpwatch group)"),
                        format!("Articles of the accounts of the group {name}, with their latest counts"),
                        format!("group/{}", encode(&name)),
                        format!("/rankings?group={}", encode(&name)),
                    )
                }
            };
            let items = items::feed_items(store, &scope, &filters)?;
            Ok(feed_of(
                title,
                description,
                format!("{base}/feeds/{path}.{extension}{query}"),
                format!("{base}{home}"),
                items,
            ))
        })
        .await?;
    Ok(respond(&state, &feed, format, headers))
}

/// A path segment or query value, percent-encoded.
pub fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn feed_of(title: String, description: String, self_url: String, home_url: String, items: Vec<FeedItem>) -> Feed {
    let updated_at = items.iter().map(|item| item.updated_at.max(item.published_at)).max().unwrap_or(0);
    Feed { title, description, self_url, home_url, items, updated_at }
}

/// The feed written in `format`, or 304 when the reader has it already.
fn respond(state: &SharedState, feed: &Feed, format: Format, request: &HeaderMap) -> Response {
    let tz = &state.rules.tz;
    let body = match format {
        Format::Atom => atom::write(feed, tz),
        Format::Rss => rss::write(feed, tz),
        Format::Json => json::write(feed, tz),
    };
    conditional(request, body.into_bytes(), format.content_type(), feed.updated_at)
}

/// An answer with an ETag (a digest of the body) and Last-Modified; `304 Not Modified`
/// when the request's validators match (If-None-Match wins over If-Modified-Since, as
/// RFC 9110 says).
pub fn conditional(request: &HeaderMap, body: Vec<u8>, content_type: &'static str, modified_at: i64) -> Response {
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>());
    let last_modified = http_date(modified_at);
    let not_modified = match request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tags) => tags.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == etag || t == "*"),
        None => request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| jiff::fmt::rfc2822::parse(v).ok())
            .is_some_and(|since| modified_at > 0 && modified_at <= since.timestamp().as_second()),
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some(value) = last_modified.and_then(|date| HeaderValue::from_str(&date).ok()) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    // Readers may keep it, but must ask (cheaply, with the validators) before reusing it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// An HTTP date (RFC 9110 IMF-fixdate).
fn http_date(at: i64) -> Option<String> {
    let timestamp = jiff::Timestamp::from_second(at).ok().filter(|_| at > 0)?;
    jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&timestamp).ok()
}

/// `/feeds.opml`: every feed (all, each group, each account) as OPML, Atom URLs.
pub async fn opml(State(state): State<SharedState>, headers: HeaderMap) -> Result<Response, RequestError> {
    let base = state.base_url.clone();
    let (xml, modified) = state
        .readers
        .read(move |store| {
            let accounts = store.list_accounts(None)?;
            let feed = |title: String, path: String, html: String| opml::Outline {
                text: content::xml_safe(title.clone()),
                title: Some(content::xml_safe(title)),
                r#type: Some("rss".into()),
                xml_url: Some(format!("{base}{path}")),
                html_url: Some(format!("{base}{html}")),
                ..opml::Outline::default()
            };
            let mut document = opml::OPML {
                head: Some(opml::Head { title: Some("mpwatch feeds".into()), ..opml::Head::default() }),
                ..opml::OPML::default()
            };
            document.body.outlines.push(feed(
                "mpwatch: every tracked account".into(),
                "/feeds/all.atom".into(),
                "/rankings".into(),
            ));
            let mut groups: Vec<&String> = accounts.iter().filter(|a| a.enabled).flat_map(|a| &a.groups).collect();
            groups.sort();
            groups.dedup();
            for group in groups {
                let name = content::xml_safe(group.clone());
                let mut folder = opml::Outline { text: name.clone(), title: Some(name), ..opml::Outline::default() };
                folder.outlines.push(feed(
                    format!("{group} (all)"),
                    format!("/feeds/group/{}.atom", encode(group)),
                    format!("/rankings?group={}", encode(group)),
                ));
                for account in accounts.iter().filter(|a| a.enabled && a.groups.contains(group)) {
                    folder.outlines.push(feed(
                        account.display_name(),
                        format!("/feeds/account/{}.atom", account.id),
                        format!("/account/{}", account.id),
                    ));
                }
                document.body.outlines.push(folder);
            }
            for account in accounts.iter().filter(|a| a.enabled && a.groups.is_empty()) {
                document.body.outlines.push(feed(
                    account.display_name(),
                    format!("/feeds/account/{}.atom", account.id),
                    format!("/account/{}", account.id),
                ));
            }
            let xml = document.to_string().map_err(|error| RequestError::Internal(format!("OPML: {error}")))?;
            let modified = accounts.iter().map(|a| a.added_at).max().unwrap_or(0);
            Ok((xml, modified))
        })
        .await?;
    Ok(conditional(&headers, xml.into_bytes(), "text/x-opml; charset=utf-8", modified))
}
