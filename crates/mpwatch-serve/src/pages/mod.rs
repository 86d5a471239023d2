//! The dashboard: server-rendered pages (maud escapes every interpolated text), each
//! also as JSON (`Accept: application/json`, or `.json` on the path). No script.

pub mod account;
pub mod article;
pub mod rankings;
pub mod search;
pub mod status;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;

use crate::error::RequestError;

static STYLESHEET: &str = include_str!("../../assets/style.css");

/// `/`: the rankings.
pub async fn home() -> Redirect {
    Redirect::to("/rankings")
}

/// `/assets/style.css`.
pub async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    response
}

/// Anything else: a page for browsers, JSON for the rest.
pub async fn not_found(headers: HeaderMap) -> Response {
    RequestError::NotFound("no such page".into()).respond(wants_json(&headers, false))
}

/// Does the request ask for JSON: a `.json` path, or `Accept` preferring
/// `application/json` to `text/html` by quality (the earlier on a tie)?
pub fn wants_json(headers: &HeaderMap, dot_json: bool) -> bool {
    if dot_json {
        return true;
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let quality = |wanted: &str| -> Option<(f32, usize)> {
        accept.split(',').enumerate().find_map(|(position, range)| {
            let mut parts = range.split(';').map(str::trim);
            (parts.next()? == wanted).then(|| {
                let q = parts.find_map(|p| p.strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                (q, position)
            })
        })
    };
    match (quality("application/json"), quality("text/html")) {
        (Some((json, _)), None) => json > 0.0,
        (Some((json, at)), Some((html, html_at))) => json > html || (json == html && json > 0.0 && at < html_at),
        _ => false,
    }
}

/// An SVG image answer.
pub fn svg_response(svg: String) -> Response {
    let mut response = svg.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    response
}

/// A path parameter with an optional `.json` suffix.
pub fn strip_json(segment: &str) -> (&str, bool) {
    match segment.strip_suffix(".json") {
        Some(rest) => (rest, true),
        None => (segment, false),
    }
}

/// The page as JSON or as HTML; either way it varies with `Accept` (for caches).
pub fn respond<T: Serialize>(json: bool, data: &T, html: impl FnOnce(&T) -> Markup) -> Response {
    let mut response = if json {
        match serde_json::to_string_pretty(data) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(error) => RequestError::Internal(format!("JSON: {error}")).into_response(),
        }
    } else {
        html(data).into_response()
    };
    response.headers_mut().append(header::VARY, HeaderValue::from_static("accept"));
    response
}

/// Which section the navigation marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Rankings.
    Rankings,
    /// Accounts.
    Accounts,
    /// Search.
    Search,
    /// Status.
    Status,
}

/// Every page's frame: the navigation and the content.
pub fn layout(title: &str, section: Section, content: Markup) -> Markup {
    let item = |href: &str, label: &str, this: Section| {
        html! { a href=(href) aria-current=[(section == this).then_some("page")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · mpwatch" }
                link rel="stylesheet" href="/assets/style.css";
                link rel="alternate" type="application/atom+xml" title="mpwatch: every tracked account" href="/feeds/all.atom";
            }
            body {
                header {
                    nav {
                        strong { "mpwatch" }
                        (item("/rankings", "Rankings", Section::Rankings))
                        (item("/accounts", "Accounts", Section::Accounts))
                        (item("/search", "Search", Section::Search))
                        (item("/status", "Status", Section::Status))
                        a href="/feeds.opml" { "Feeds (OPML)" }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// An error page in HTML (the JSON form is the error's own).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let page = layout(
        status.canonical_reason().unwrap_or("error"),
        Section::Rankings,
        html! { h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } p { (message) } },
    );
    (status, page).into_response()
}

/// Formatting shared by the pages.
pub mod format {
    pub use crate::feed::content::{count_text, group_digits, local_time};

    /// A date in `tz`.
    pub fn local_date(at: i64, tz: &jiff::tz::TimeZone) -> String {
        jiff::Timestamp::from_second(at).map(|t| t.to_zoned_datetime(tz.clone()).date().to_string()).unwrap_or_default()
    }

    /// An index value as rankers print it (two decimals).
    pub fn value(value: f64) -> String {
        format!("{value:.2}")
    }

    /// A link target from a page (阅读原文, the original of a repost) if it is http(s);
    /// anything else is not made a link.
    pub fn http_link(url: &str) -> Option<&str> {
        let scheme = url.split_once("://")?.0;
        matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https").then_some(url)
    }
}
