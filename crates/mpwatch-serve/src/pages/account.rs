//! `/accounts`: the tracked accounts; `/account/{id|alias|biz|name}`: one account's
//! trend chart, its newest articles with their latest counts, its sources' health and
//! its feeds; `/account/{id}/chart.svg`: the chart (drawn by `mpwatch-chart`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use mpwatch_index::compute::{Period, PeriodKind, Rules};
use serde::Serialize;

use super::format::{count_text, local_time};
use super::{Section, layout, respond, strip_json, svg_response, wants_json};
use crate::SharedState;
use crate::error::RequestError;
use crate::feed::items::{FeedItem, Filters, Scope, feed_items};

/// One account in the list.
#[derive(Debug, Serialize)]
pub struct AccountSummary {
    /// Row id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `__biz`.
    pub biz: Option<String>,
    /// WeChat ID (微信号).
    pub alias: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Articles stored.
    pub articles: i64,
    /// Tracked.
    pub enabled: bool,
}

/// A source's health (its locator is not shown: a feed URL may carry a key).
#[derive(Debug, Serialize)]
pub struct SourceHealth {
    /// Row id.
    pub id: i64,
    /// feed, profile_ext, mp_backend, manual.
    pub kind: String,
    /// ok, degraded, failing, dead, ...
    pub health: String,
    /// Failures in a row.
    pub consecutive_failures: i64,
    /// Last success (unix seconds).
    pub last_ok_at: Option<i64>,
    /// The last error's one line.
    pub last_error: Option<String>,
}

/// Articles on one page of an account, unless `limit` says otherwise.
const PAGE_ROWS: u32 = 50;

/// One article row.
#[derive(Debug, Serialize)]
pub struct ArticleRow {
    /// `articles.id`.
    pub id: i64,
    /// Its position in its push.
    pub idx: i64,
    /// Title.
    pub title: String,
    /// Publish time (unix seconds).
    pub published_at: i64,
    /// Kind.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Latest counts.
    pub counts: Option<crate::feed::items::Counts>,
}

impl From<FeedItem> for ArticleRow {
    fn from(item: FeedItem) -> Self {
        ArticleRow {
            id: item.id,
            idx: item.idx,
            title: item.title,
            published_at: item.published_at,
            kind: item.kind,
            status: item.status,
            counts: item.counts,
        }
    }
}

/// What the account page shows.
#[derive(Debug, Serialize)]
pub struct AccountPage {
    /// The account.
    pub account: AccountSummary,
    /// Its sources.
    pub sources: Vec<SourceHealth>,
    /// Its newest articles (a page of them; `after` gives the next).
    pub articles: Vec<ArticleRow>,
    /// Articles to a page.
    pub limit: u32,
    /// The chart's metric.
    pub metric: String,
    /// The chart's days.
    pub days: i64,
    #[serde(skip)]
    zone: jiff::tz::TimeZone,
}

fn summary(account: &mpwatch_store::accounts::Account) -> AccountSummary {
    AccountSummary {
        id: account.id,
        name: account.display_name(),
        biz: account.biz.as_ref().map(ToString::to_string),
        alias: account.alias.clone(),
        groups: account.groups.clone(),
        articles: account.article_count,
        enabled: account.enabled,
    }
}

/// `/accounts`.
pub async fn list(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    list_of(&state, wants_json(&headers, false)).await
}

/// `/accounts.json`.
pub async fn list_json(State(state): State<SharedState>) -> Response {
    list_of(&state, true).await
}

async fn list_of(state: &SharedState, json: bool) -> Response {
    let result =
        state.readers.read(|store| Ok(store.list_accounts(None)?.iter().map(summary).collect::<Vec<_>>())).await;
    match result {
        Ok(accounts) => respond(json, &accounts, |accounts| {
            layout(
                "Accounts",
                Section::Accounts,
                html! {
                    h1 { "Accounts" }
                    div.scroll { table {
                        thead { tr { th { "account" } th { "WeChat ID" } th { "groups" } th.num { "articles" } th { "feeds" } } }
                        tbody { @for account in accounts {
                            tr {
                                td { a href=(format!("/account/{}", account.id)) { (account.name) } @if !account.enabled { " (paused)" } }
                                td { (account.alias.as_deref().unwrap_or("")) }
                                td { (account.groups.join(", ")) }
                                td.num { (account.articles) }
                                td { a href=(format!("/feeds/account/{}.atom", account.id)) { "Atom" } " "
                                     a href=(format!("/feeds/account/{}.json", account.id)) { "JSON" } }
                            }
                        } }
                    } }
                },
            )
        }),
        Err(error) => error.respond(json),
    }
}

fn chart_params(params: &HashMap<String, String>) -> Result<(String, i64), RequestError> {
    let metric = params.get("metric").cloned().unwrap_or_else(|| "reads".into());
    if !mpwatch_chart::METRICS.contains(&metric.as_str()) && metric.parse::<mpwatch_index::formulas::Formula>().is_err()
    {
        return Err(RequestError::BadRequest(format!(
            "metric={metric}: expected one of {}, or an index name",
            mpwatch_chart::METRICS.join(", ")
        )));
    }
    let days = match params.get("days") {
        Some(text) => {
            text.parse::<i64>().map_err(|_| RequestError::BadRequest(format!("days={text}: expected a number")))?
        }
        None => 60,
    };
    if !(2..=1000).contains(&days) {
        return Err(RequestError::BadRequest("days: expected 2 to 1000".into()));
    }
    Ok((metric, days))
}

/// `/account/{id}` (or `{id}.json`).
pub async fn page(
    State(state): State<SharedState>,
    Path(segment): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (key, dot_json) = strip_json(&segment);
    let json = wants_json(&headers, dot_json);
    let key = key.to_string();
    let zone = state.rules.tz.clone();
    let result = async {
        let (metric, days) = chart_params(&params)?;
        let limit = match params.get("limit") {
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| RequestError::BadRequest(format!("limit={text}: expected 1 to 500")))?,
            None => PAGE_ROWS,
        };
        // `after=PUBLISHED_AT:IDX`: the last row of the previous page.
        let after = match params.get("after") {
            Some(text) => {
                let bad = || RequestError::BadRequest(format!("after={text}: expected PUBLISHED_AT:IDX"));
                let (published_at, idx) = text.split_once(':').ok_or_else(bad)?;
                Some((published_at.parse::<i64>().map_err(|_| bad())?, idx.parse::<i64>().map_err(|_| bad())?))
            }
            None => None,
        };
        state
            .readers
            .read(move |store| {
                let account = store.resolve_account(&key)?;
                let filters = Filters { limit, after, all_states: true, ..Filters::default() };
                let items = feed_items(store, &Scope::Account(account.id), &filters)?;
                let sources = account
                    .sources
                    .iter()
                    .map(|s| SourceHealth {
                        id: s.id,
                        kind: s.kind.as_str().to_string(),
                        health: s.health.as_str().to_string(),
                        consecutive_failures: s.consecutive_failures,
                        last_ok_at: s.last_ok_at,
                        last_error: s.last_error.clone(),
                    })
                    .collect();
                Ok(AccountPage {
                    limit,
                    account: summary(&account),
                    sources,
                    articles: items.into_iter().map(ArticleRow::from).collect(),
                    metric,
                    days,
                    zone,
                })
            })
            .await
    }
    .await;
    match result {
        Ok(page) => respond(json, &page, render),
        Err(error) => error.respond(json),
    }
}

fn render(page: &AccountPage) -> Markup {
    let account = &page.account;
    let tz = &page.zone;
    let chart = format!("/account/{}/chart.svg?metric={}&days={}", account.id, page.metric, page.days);
    let content = html! {
        h1 { (account.name) }
        p.meta {
            @if let Some(alias) = &account.alias { "WeChat ID " (alias) " · " }
            @if let Some(biz) = &account.biz { "biz " code { (biz) } " · " }
            (account.articles) " articles"
            @if !account.groups.is_empty() { " · groups: " (account.groups.join(", ")) }
        }
        p.meta { "Feeds: "
            a href=(format!("/feeds/account/{}.atom", account.id)) { "Atom" } " · "
            a href=(format!("/feeds/account/{}.rss", account.id)) { "RSS" } " · "
            a href=(format!("/feeds/account/{}.json", account.id)) { "JSON Feed" }
        }
        figure.chart {
            img src=(chart) alt=(format!("{} per day, last {} days", page.metric, page.days)) width="1100" height="560";
            figcaption { (page.metric) " per day, last " (page.days) " days at most. Other metrics: "
                @for metric in ["reads", "engagement_rate", "wows", "likes", "n", "wci-v14.2", "nri"] {
                    a href=(format!("/account/{}?metric={metric}&days={}", account.id, page.days)) { (metric) } " "
                }
            }
        }
        h2 { "Articles" }
        div.scroll { table.articles {
            thead { tr { th { "published" } th { "title" } th.num title="阅读" { "reads" } th.num title="赞" { "likes" }
                         th.num title="在看" { "wows" } th.num title="转发" { "shares" } th.num title="评论" { "comments" } th { "counted" } } }
            tbody { @for article in &page.articles {
                tr data-article=(article.id) {
                    td { (local_time(article.published_at, tz)) }
                    td { a href=(format!("/article/{}", article.id)) { (article.title) }
                         @if article.status != "ok" { " " span.flag { (article.status) } } }
                    @match &article.counts {
                        Some(c) => {
                            td.num { (count_text(c.reads, c.reads_capped)) } td.num { (count_text(c.likes, false)) }
                            td.num { (count_text(c.wows, false)) } td.num { (count_text(c.shares, false)) }
                            td.num { (count_text(c.comments, false)) } td { (local_time(c.observed_at, tz)) }
                        }
                        None => { td.num { "–" } td.num { "–" } td.num { "–" } td.num { "–" } td.num { "–" } td { "not yet" } }
                    }
                }
            } }
        } }
        @if let Some(last) = page.articles.last().filter(|_| page.articles.len() == page.limit as usize) {
            p { a href=(format!("/account/{}?after={}:{}&limit={}", account.id, last.published_at, last.idx, page.limit)) { "Older articles →" } }
        }
        h2 { "Sources" }
        table {
            thead { tr { th { "source" } th { "health" } th.num { "failures in a row" } th { "last ok" } th { "last error" } } }
            tbody { @for source in &page.sources {
                tr {
                    td { (source.kind) " #" (source.id) }
                    td { span class=(format!("health {}", source.health)) { (source.health) } }
                    td.num { (source.consecutive_failures) }
                    td { @match source.last_ok_at { Some(t) => (local_time(t, tz)), None => "never" } }
                    td { (source.last_error.as_deref().unwrap_or("")) }
                }
            } }
        }
    };
    layout(&account.name, Section::Accounts, content)
}

/// `/account/{id}/chart.svg`: the account's daily metric over the last `days` days.
pub async fn chart(
    State(state): State<SharedState>,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let rules = Rules { now: mpwatch_core::time::now_unix(), ..state.rules.clone() };
    let result = async {
        let (metric, days) = chart_params(&params)?;
        state
            .readers
            .read(move |store| {
                let account = store.resolve_account(&key)?;
                let today = jiff::Timestamp::from_second(rules.now)
                    .map_err(|e| RequestError::Internal(e.to_string()))?
                    .to_zoned_datetime(rules.tz.clone())
                    .date();
                // From the account's first article when that is later: no empty weeks.
                let first_published: Option<i64> = store
                    .connection()
                    .prepare_cached("SELECT min(published_at) FROM articles WHERE account_id = ?1")?
                    .query_row([account.id], |row| row.get(0))?;
                let first = today.saturating_sub(jiff::Span::new().days(days - 1));
                let first = match first_published.and_then(|t| jiff::Timestamp::from_second(t).ok()) {
                    Some(t) => first.max(t.to_zoned_datetime(rules.tz.clone()).date()).min(today),
                    None => first,
                };
                let from = Period::containing(PeriodKind::Day, first, &rules.tz);
                let to = Period::containing(PeriodKind::Day, today, &rules.tz);
                let accounts = [account.id.to_string()];
                let chart = mpwatch_chart::Chart {
                    accounts: &accounts,
                    metric: &metric,
                    kind: PeriodKind::Day,
                    from: &from,
                    to: &to,
                    smooth: false,
                };
                mpwatch_chart::chart_svg(store, &rules, &chart).map_err(|error| {
                    match error.downcast_ref::<mpwatch_chart::NoData>() {
                        Some(no_data) => RequestError::NotFound(no_data.to_string()),
                        None => RequestError::Internal(format!("{error:#}")),
                    }
                })
            })
            .await
    }
    .await;
    match result {
        Ok(svg) => svg_response(svg),
        Err(error) => error.into_response(),
    }
}
