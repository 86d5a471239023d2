//! `/rankings`: one period's ranking by one index, of every account or of a group, as
//! `mpwatch report` prints it (the same numbers: stored values where the period is
//! stored, else computed now by the same code without being stored).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use mpwatch_index::RankingRow;
use mpwatch_index::compute::{Period, PeriodKind, Rules};
use mpwatch_index::formulas::Formula;
use serde::Serialize;

use super::format::{count_text, value};
use super::{Section, layout, respond, wants_json};
use crate::SharedState;
use crate::error::RequestError;
use crate::feed::encode;

/// The longest custom range, in days.
pub const MAX_CUSTOM_DAYS: i32 = 366;

/// What the page shows.
#[derive(Debug, Serialize)]
pub struct RankingsPage {
    /// day, week, month or custom.
    pub period_kind: String,
    /// First day (YYYY-MM-DD).
    pub first_day: String,
    /// Last day, inclusive.
    pub last_day: String,
    /// Start (unix seconds).
    pub start: i64,
    /// End, exclusive (unix seconds).
    pub end: i64,
    /// The index ranked by.
    pub index: String,
    /// The group, if one.
    pub group: Option<String>,
    /// `stored` (read from index tables) or `computed` (now, not stored yet).
    pub values: &'static str,
    /// Why there are no rows, or how the period was chosen.
    pub note: Option<String>,
    /// The ranking.
    pub rows: Vec<RankingRow>,
    /// Groups to choose from.
    pub groups: Vec<String>,
    /// The previous and next periods' first days (not for custom ranges).
    pub previous: Option<String>,
    /// See `previous`.
    pub next: Option<String>,
}

/// The request's choices.
#[derive(Debug)]
struct Choice {
    kind: PeriodKind,
    date: Option<jiff::civil::Date>,
    range: Option<(jiff::civil::Date, jiff::civil::Date)>,
    index: Formula,
    group: Option<String>,
}

fn choice(params: &HashMap<String, String>) -> Result<Choice, RequestError> {
    let bad = RequestError::BadRequest;
    let date = |key: &str| -> Result<Option<jiff::civil::Date>, RequestError> {
        match params.get(key).map(String::as_str).filter(|v| !v.is_empty()) {
            Some(text) => text.parse().map(Some).map_err(|_| bad(format!("{key}={text}: expected YYYY-MM-DD"))),
            None => Ok(None),
        }
    };
    let kind = match params.get("period").map(String::as_str).unwrap_or("day") {
        "day" => PeriodKind::Day,
        "week" => PeriodKind::Week,
        "month" => PeriodKind::Month,
        "custom" => PeriodKind::Custom,
        other => return Err(bad(format!("period={other}: expected day, week, month or custom"))),
    };
    let range = match (kind, date("from")?, date("to")?) {
        // A custom range is computed on request, from its articles and snapshots in
        // memory: at most a year of them.
        (PeriodKind::Custom, Some(from), Some(to))
            if from <= to && to.since(from).is_ok_and(|span| span.get_days() < MAX_CUSTOM_DAYS) =>
        {
            Some((from, to))
        }
        (PeriodKind::Custom, Some(from), Some(to)) if from <= to => {
            return Err(bad(format!("a custom range is at most {MAX_CUSTOM_DAYS} days; this one is longer")));
        }
        (PeriodKind::Custom, Some(_), Some(_)) => return Err(bad("to must not be before from".into())),
        (PeriodKind::Custom, _, _) => return Err(bad("a custom period needs from and to (YYYY-MM-DD)".into())),
        _ => None,
    };
    let index = params
        .get("index")
        .map(String::as_str)
        .unwrap_or("wci-v14.2")
        .parse::<Formula>()
        .map_err(|e: String| bad(format!("index: {e}")))?;
    let group = params.get("group").filter(|g| !g.is_empty()).cloned();
    Ok(Choice { kind, date: date("date")?, range, index, group })
}

fn read(store: &mpwatch_store::Store, rules: &Rules, choice: Choice) -> Result<RankingsPage, RequestError> {
    let tz = &rules.tz;
    let mut note = None;
    let period = match (choice.range, choice.date) {
        (Some((from, to)), _) => Period::range(from, to, tz),
        (None, Some(date)) => Period::containing(choice.kind, date, tz),
        (None, None) => match mpwatch_index::last_final_period(store, choice.kind, rules.now)? {
            Some(start) => {
                let day = jiff::Timestamp::from_second(start)
                    .map_err(|e| RequestError::Internal(format!("a stored period's start: {e}")))?
                    .to_zoned_datetime(tz.clone())
                    .date();
                note = Some(format!("the last {} whose data is final", choice.kind.as_str()));
                Period::containing(choice.kind, day, tz)
            }
            None => {
                note = Some(format!("the last complete {}; its data is not final yet", choice.kind.as_str()));
                Period::at(choice.kind, rules.now, tz).previous(tz)
            }
        },
    };
    let last_day = period.first_day.saturating_add(jiff::Span::new().days(period.days as i64 - 1));
    let conn = store.connection();
    let published: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM articles a JOIN accounts acc ON acc.id = a.account_id
                            WHERE acc.enabled = 1 AND a.published_at >= ?1 AND a.published_at < ?2)",
        )?
        .query_row((period.start, period.end), |row| row.get(0))?;
    let stored: bool = conn
        .prepare_cached(
            "SELECT count(*) > 0 FROM index_periods WHERE period_kind = ?1 AND period_start = ?2 AND period_end = ?3",
        )?
        .query_row((period.kind.as_str(), period.start, period.end), |row| row.get(0))?;
    let group = choice.group.as_deref();
    if let Some(group) = group {
        let known: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM account_groups WHERE name = ?1)")?
            .query_row([group], |row| row.get(0))?;
        if !known {
            return Err(RequestError::NotFound(format!("no group {group}")));
        }
    }
    let (rows, values) = if !published {
        note = Some(format!("no articles published from {} to {last_day}", period.first_day));
        (Vec::new(), "stored")
    } else if stored && period.kind != PeriodKind::Custom {
        (mpwatch_index::ranking(store, period.kind, period.start, choice.index, group)?, "stored")
    } else {
        (mpwatch_index::ranking_computed(store, &period, rules, choice.index, group)?, "computed")
    };
    let groups: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT name FROM account_groups ORDER BY name")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let (previous, next) = match period.kind {
        PeriodKind::Custom => (None, None),
        kind => {
            let previous = period.previous(tz).first_day.to_string();
            let next = jiff::Timestamp::from_second(period.end).ok().filter(|_| period.end <= rules.now).map(|end| {
                Period::containing(kind, end.to_zoned_datetime(tz.clone()).date(), tz).first_day.to_string()
            });
            (Some(previous), next)
        }
    };
    Ok(RankingsPage {
        period_kind: period.kind.as_str().to_string(),
        first_day: period.first_day.to_string(),
        last_day: last_day.to_string(),
        start: period.start,
        end: period.end,
        index: choice.index.as_str().to_string(),
        group: choice.group,
        values,
        note,
        rows,
        groups,
        previous,
        next,
    })
}

/// The ranking for the query's choices.
pub async fn load(state: &SharedState, params: &HashMap<String, String>) -> Result<RankingsPage, RequestError> {
    let choice = choice(params)?;
    let rules = Rules { now: mpwatch_core::time::now_unix(), ..state.rules.clone() };
    state.readers.read(move |store| read(store, &rules, choice)).await
}

/// `/rankings`.
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

/// `/rankings.json`.
pub async fn json(State(state): State<SharedState>, Query(params): Query<HashMap<String, String>>) -> Response {
    match load(&state, &params).await {
        Ok(page) => respond(true, &page, render),
        Err(error) => error.respond(true),
    }
}

/// R/n rounded as `report` rounds it (half to even), digits grouped.
fn per_article(reads: f64) -> String {
    let rounded = format!("{reads:.0}");
    rounded.parse::<i64>().map(|r| count_text(Some(r), false)).unwrap_or(rounded)
}

/// The rank change as an arrow. Computed rankings (custom ranges, periods not stored
/// yet) have no previous ranking to compare with.
fn change(row: &RankingRow, computed: bool) -> Markup {
    if computed {
        return html! { span.muted title="rank changes are shown for stored periods" { "–" } };
    }
    match (row.rank, row.change) {
        (None, _) => html! { span.muted { "–" } },
        (Some(_), None) => html! { span.muted title="not ranked in the previous period" { "new" } },
        (Some(_), Some(0)) => html! { span.muted title="same rank" { "=" } },
        (Some(_), Some(up)) if up > 0 => html! { span.up title=(format!("up {up}")) { "▲" (up) } },
        (Some(_), Some(down)) => html! { span.down title=(format!("down {}", -down)) { "▼" (-down) } },
    }
}

fn flags(row: &RankingRow) -> Markup {
    html! {
        @if row.provisional { span.flag.provisional title="not final: some article still waits for its count" { "provisional" } " " }
        @if row.late > 0 { span.flag title="articles whose count was observed late" { "late:" (row.late) } " " }
        @if row.missing > 0 { span.flag title="articles never counted at their age" { "missing:" (row.missing) } }
    }
}

fn link(page: &RankingsPage, date: &str) -> String {
    let mut href = format!("/rankings?period={}&date={date}&index={}", page.period_kind, page.index);
    if let Some(group) = &page.group {
        href.push_str(&format!("&group={}", encode(group)));
    }
    href
}

fn render(page: &RankingsPage) -> Markup {
    let title = if page.first_day == page.last_day {
        format!("{} ranking, {}", page.index, page.first_day)
    } else {
        format!("{} ranking, {} to {}", page.index, page.first_day, page.last_day)
    };
    let selected = |value: &str, current: &str| (value == current).then_some("selected");
    let content = html! {
        h1 { (title) }
        form.choices method="get" action="/rankings" {
            label { "Period " select name="period" {
                @for kind in ["day", "week", "month", "custom"] { option value=(kind) selected=[selected(kind, &page.period_kind)] { (kind) } }
            } }
            label { "Date " input type="date" name="date" value=(page.first_day); }
            label { "From " input type="date" name="from" value=(page.first_day); }
            label { "To " input type="date" name="to" value=(page.last_day); }
            label { "Index " select name="index" {
                @for formula in Formula::ALL { option value=(formula.as_str()) selected=[selected(formula.as_str(), &page.index)] { (formula.as_str()) } }
            } }
            label { "Group " select name="group" {
                option value="" { "all accounts" }
                @for group in &page.groups { option value=(group) selected=[selected(group, page.group.as_deref().unwrap_or(""))] { (group) } }
            } }
            button type="submit" { "Show" }
        }
        p.meta {
            @if let Some(previous) = &page.previous { a href=(link(page, previous)) rel="prev" { "← previous " (page.period_kind) } " " }
            @if let Some(next) = &page.next { a href=(link(page, next)) rel="next" { "next " (page.period_kind) " →" } " " }
            @if let Some(note) = &page.note { span.note { (note) } " · " }
            "values " (page.values)
        }
        @if !page.rows.is_empty() {
            div.scroll { table.ranking {
                thead { tr {
                    th { "rank" } th { "change" } th { "account" } th.num title="发布次数" { "pushes" } th.num title="文章数" { "n" }
                    th.num title="总阅读数" { "R" } th.num title="平均阅读" { "R/n" } th.num title="最高阅读" { "Rmax" }
                    th.num title="头条阅读" { "Rt" } th.num title="在看" { "Z" } th.num title="点赞" { "L" } th.num { (page.index) } th { "flags" }
                } }
                tbody {
                    @for row in &page.rows {
                        tr data-account=(row.account_id) {
                            td.rank { @match row.rank { Some(rank) => (rank), None => "–" } }
                            td { (change(row, page.values == "computed")) }
                            td { a href=(format!("/account/{}", row.account_id)) { (row.account) } }
                            td.num { (row.pushes) }
                            td.num { (row.n) }
                            td.num { (count_text(Some(row.reads), false)) }
                            td.num { @match row.reads_per_article { Some(r) => (per_article(r)), None => "–" } }
                            td.num { (count_text(Some(row.reads_max), row.reads_max == 100_001)) }
                            td.num { (count_text(Some(row.reads_headline), false)) }
                            td.num { (count_text(Some(row.wows), false)) }
                            td.num { (count_text(Some(row.likes), false)) }
                            td.num.value { (value(row.value)) }
                            td { (flags(row)) }
                        }
                    }
                }
            } }
        }
    };
    layout(&title, Section::Rankings, content)
}
