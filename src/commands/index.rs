//! `mpwatch index [calc]` and `mpwatch report`.

use anyhow::{Context as _, Result, bail};
use mpwatch_index::compute::{Period, PeriodKind, Rules};
use mpwatch_index::formulas::{Formula, Inputs, NriInputs, nri};
use mpwatch_index::{RankingRow, Scope};

use crate::cli::{GlobalArgs, IndexArgs, IndexCommand, Lang, ReportArgs, ReportFormat, ReportPeriod};
use crate::context::AppContext;

/// Index rules from the configuration.
pub fn rules(context: &AppContext) -> Result<Rules> {
    let config = &context.config;
    Rules::from_config(config).with_context(|| format!("unknown time zone {}", config.timezone))
}

pub fn parse_date(text: &str) -> Result<jiff::civil::Date> {
    text.parse().with_context(|| format!("`{text}` is not a date (YYYY-MM-DD)"))
}

/// `mpwatch index`: recompute, or `calc`.
pub fn run(global: &GlobalArgs, args: &IndexArgs) -> Result<()> {
    if let Some(IndexCommand::Calc { formula, values, json }) = &args.calc {
        return calc(formula, values, *json);
    }
    let context = AppContext::load(global)?;
    let rules = rules(&context)?;
    let scope = match (&args.from, &args.to, args.full) {
        (_, _, true) => Scope::Full,
        (Some(from), Some(to), _) => {
            let from = Period::containing(PeriodKind::Day, parse_date(from)?, &rules.tz).start;
            let to = Period::containing(PeriodKind::Day, parse_date(to)?, &rules.tz).end;
            Scope::Range(from, to)
        }
        _ => Scope::Incremental,
    };
    let mut store = context.open_store_with(false, false)?;
    let summary = mpwatch_index::update(&mut store, &rules, scope, context.now())?;
    println!(
        "recomputed {} periods: {} changed ({} account rows written)",
        summary.periods, summary.changed, summary.rows
    );
    Ok(())
}

fn calc(formula: &str, values: &[String], json: bool) -> Result<()> {
    let formula: Formula = formula.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let mut given = std::collections::BTreeMap::new();
    for pair in values {
        let Some((key, value)) = pair.split_once('=') else { bail!("`{pair}` is not KEY=VALUE") };
        if !formula.keys().contains(&key) {
            bail!("{formula} takes no key `{key}`; its keys are {}", formula.keys().join(" "));
        }
        let number: f64 = value.trim().parse().with_context(|| format!("{key}: `{value}` is not a number"))?;
        if !number.is_finite() || number < 0.0 {
            bail!("{key} must be a non-negative number");
        }
        given.insert(key.to_string(), number);
    }
    let missing: Vec<&str> = formula.keys().iter().copied().filter(|k| !given.contains_key(*k)).collect();
    if !missing.is_empty() {
        eprintln!("warning: missing keys count as 0: {}", missing.join(" "));
    }
    let get = |key: &str| given.get(key).copied().unwrap_or(0.0);
    let value = if formula == Formula::Nri {
        nri(&NriInputs {
            days: get("days"),
            readSum: get("readSum"),
            readMax: get("readMax"),
            readAvg: get("readAvg"),
            headline: get("headline"),
            likeSum: get("likeSum"),
        })
    } else {
        formula.compute(&Inputs {
            R: get("R"),
            n: get("n"),
            d: get("d"),
            Rt: get("Rt"),
            Rmax: get("Rmax"),
            Z: get("Z"),
            Zt: get("Zt"),
            Zmax: get("Zmax"),
            L: get("L"),
            Lt: get("Lt"),
            Lmax: get("Lmax"),
            RE: get("RE"),
            REt: get("REt"),
            REmax: get("REmax"),
        })
    };
    if json {
        println!("{}", serde_json::json!({ "formula": formula.as_str(), "value": value }));
    } else {
        println!("{value}");
    }
    Ok(())
}

/// `mpwatch report`: brings the indices up to date, then prints one ranking.
pub fn report(context: &AppContext, args: &ReportArgs) -> Result<()> {
    let rules = rules(context)?;
    let index: Formula = args.index.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let kind = match args.period {
        ReportPeriod::Day => PeriodKind::Day,
        ReportPeriod::Week => PeriodKind::Week,
        ReportPeriod::Month => PeriodKind::Month,
    };
    let now = context.now();
    let period = match (&args.from, &args.to, &args.date) {
        (Some(from), Some(to), _) => {
            let (from, to) = (parse_date(from)?, parse_date(to)?);
            if to < from {
                bail!("--to must not be before --from");
            }
            Period::range(from, to, &rules.tz)
        }
        (_, _, Some(date)) => Period::containing(kind, parse_date(date)?, &rules.tz),
        _ => Period::at(kind, now, &rules.tz).previous(&rules.tz),
    };
    let mut store = context.open_store_with(false, false)?;
    mpwatch_index::update(&mut store, &rules, Scope::Incremental, now)?;
    // By default: the last period whose data is final, and the report says so.
    let period = match (&args.from, &args.date) {
        (None, None) => match mpwatch_index::last_final_period(&store, kind, now)? {
            Some(start) => {
                let day = jiff::Timestamp::from_second(start)
                    .context("a stored period's start")?
                    .to_zoned_datetime(rules.tz.clone())
                    .date();
                let period = Period::containing(kind, day, &rules.tz);
                eprintln!("{} {}: the last {} whose data is final", kind.as_str(), period.first_day, kind.as_str());
                period
            }
            None => {
                eprintln!(
                    "{} {}: the last complete {}; its data is not final yet",
                    kind.as_str(),
                    period.first_day,
                    kind.as_str()
                );
                period
            }
        },
        _ => period,
    };
    let text = ranking_text(
        &mut store,
        &rules,
        &period,
        index,
        args.group.as_deref(),
        args.top,
        (args.format, args.lang),
        now,
    )?;
    print!("{text}");
    Ok(())
}

/// One period's ranking by `index`, rendered: computed and stored first when the
/// period has no stored values (and always for a custom range). The indices must be
/// up to date.
#[allow(clippy::too_many_arguments)]
pub fn ranking_text(
    store: &mut mpwatch_store::Store,
    rules: &Rules,
    period: &Period,
    index: Formula,
    group: Option<&str>,
    top: Option<usize>,
    (format, lang): (ReportFormat, Lang),
    now: i64,
) -> Result<String> {
    let kind = period.kind;
    let last_day = period.first_day.saturating_add(jiff::Span::new().days(period.days as i64 - 1));
    let label = match kind {
        PeriodKind::Custom => format!("{} to {last_day}", period.first_day),
        _ => format!("the {} of {}", kind.as_str(), period.first_day),
    };
    // A period in which no tracked account published is not a ranking: nothing is
    // computed or stored for it.
    let published = store.connection().query_row(
        "SELECT EXISTS (SELECT 1 FROM articles a JOIN accounts acc ON acc.id = a.account_id
                        WHERE acc.enabled = 1 AND a.published_at >= ?1 AND a.published_at < ?2)",
        (period.start, period.end),
        |row| row.get::<_, bool>(0),
    )?;
    if !published {
        bail!("no articles published in {label}");
    }
    let stored = store.connection().query_row(
        "SELECT count(*) > 0 FROM index_periods WHERE period_kind = ?1 AND period_start = ?2 AND period_end = ?3",
        (kind.as_str(), period.start, period.end),
        |row| row.get::<_, bool>(0),
    )?;
    // Custom ranges are computed for the report (and kept, keyed by their start).
    if !stored || kind == PeriodKind::Custom {
        mpwatch_index::store_period(store, period, rules, now)?;
    }
    let mut rows = mpwatch_index::ranking(store, kind, period.start, index, group)?;
    if let Some(top) = top {
        rows.truncate(top);
    }
    let title = match kind {
        PeriodKind::Custom => format!("{label} ({} days) ranking by {index}", period.days),
        _ => format!("{} {} ranking by {}", kind.as_str(), period.first_day, index),
    };
    let period_label = match kind {
        PeriodKind::Custom => format!("{}..{last_day}", period.first_day),
        _ => period.first_day.to_string(),
    };
    render(&Rendering { rows: &rows, format, lang, title: &title, period: &period_label, index })
}

/// Column headers, in English and as Chinese rankers print them.
const HEADERS: [&str; 13] =
    ["rank", "change", "account", "pushes", "n", "R", "R/n", "Rmax", "Rt", "Z", "L", "index", "flags"];
const HEADERS_ZH: [&str; 13] = [
    "排名",
    "变化",
    "公众号",
    "发布次数",
    "文章数",
    "总阅读数",
    "平均阅读",
    "最高阅读",
    "头条阅读",
    "在看",
    "点赞",
    "指数",
    "标记",
];

/// How a number of reads reads in a table: WeChat's cap as it shows it.
fn reads_shown(reads: i64) -> String {
    if reads == CAPPED_READS { "10万+".to_string() } else { reads.to_string() }
}

/// WeChat shows at most "10万+"; mpwatch stores that as 100001.
const CAPPED_READS: i64 = 100_001;

/// The cells of one row; `for_data` keeps numbers as numbers (CSV).
fn cells(row: &RankingRow, lang: Lang, for_data: bool) -> [String; 13] {
    let change = match row.change {
        None if row.rank.is_none() => String::new(),
        None if lang == Lang::Zh => "新".to_string(),
        None => "new".to_string(),
        Some(0) => "=".to_string(),
        Some(c) if c > 0 => format!("+{c}"),
        Some(c) => c.to_string(),
    };
    let mut flags = Vec::new();
    if row.late > 0 {
        flags.push(match lang {
            Lang::En => format!("late:{}", row.late),
            Lang::Zh => format!("迟测:{}", row.late),
        });
    }
    if row.missing > 0 {
        flags.push(match lang {
            Lang::En => format!("missing:{}", row.missing),
            Lang::Zh => format!("缺数:{}", row.missing),
        });
    }
    if row.provisional {
        flags.push(match lang {
            Lang::En => "provisional".to_string(),
            Lang::Zh => "暂定".to_string(),
        });
    }
    let max = if for_data { row.reads_max.to_string() } else { reads_shown(row.reads_max) };
    [
        // Accounts that published nothing are listed unranked.
        row.rank.map(|rank| rank.to_string()).unwrap_or_else(|| if for_data { String::new() } else { "-".into() }),
        change,
        row.account.clone(),
        row.pushes.to_string(),
        row.n.to_string(),
        row.reads.to_string(),
        row.reads_per_article
            .map(|r| format!("{r:.0}"))
            .unwrap_or_else(|| if for_data { String::new() } else { "-".into() }),
        max,
        row.reads_headline.to_string(),
        row.wows.to_string(),
        row.likes.to_string(),
        if for_data { row.value.to_string() } else { format!("{:.2}", row.value) },
        flags.join(" "),
    ]
}

/// A report's rows in one format.
pub struct Rendering<'a> {
    /// The rows, best first.
    pub rows: &'a [RankingRow],
    /// Table, CSV, JSON or Markdown.
    pub format: ReportFormat,
    /// Headers' language.
    pub lang: Lang,
    /// The heading line.
    pub title: &'a str,
    /// The period's label in data (`2026-11-01`, or `2026-10-30..2026-11-28`).
    pub period: &'a str,
    /// The index ranked by.
    pub index: Formula,
}

fn render(r: &Rendering<'_>) -> Result<String> {
    let headers = match r.lang {
        Lang::En => HEADERS,
        Lang::Zh => HEADERS_ZH,
    };
    Ok(match r.format {
        ReportFormat::Json => {
            let value =
                serde_json::json!({ "title": r.title, "period": r.period, "index": r.index.as_str(), "rows": r.rows });
            format!("{}\n", serde_json::to_string_pretty(&value)?)
        }
        ReportFormat::Csv => {
            let quote = |cell: &str| {
                if cell.contains([',', '"', '\n']) {
                    format!("\"{}\"", cell.replace('"', "\"\""))
                } else {
                    cell.to_string()
                }
            };
            let period_header = if r.lang == Lang::Zh { "周期" } else { "period" };
            let mut out = format!("{period_header},{}\n", headers.join(","));
            for row in r.rows {
                // Full precision and plain numbers in CSV: formatting is for display only.
                let cells = cells(row, r.lang, true);
                out.push_str(&quote(r.period));
                out.push(',');
                out.push_str(&cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
            out
        }
        ReportFormat::Md => {
            let mut out =
                format!("### {}\n\n| {} |\n|{}|\n", r.title, headers.join(" | "), headers.map(|_| "---").join("|"));
            for row in r.rows {
                out.push_str(&format!(
                    "| {} |\n",
                    cells(row, r.lang, false).map(|c| c.replace('|', "\\|")).join(" | ")
                ));
            }
            out
        }
        ReportFormat::Table => {
            if r.rows.is_empty() {
                return Ok(format!("{}: no data\n", r.title));
            }
            let mut table = crate::table::new(&headers);
            for row in r.rows {
                table.add_row(cells(row, r.lang, false).to_vec());
            }
            crate::table::right_align(&mut table, &[0, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
            format!("{}\n{table}\n", r.title)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reads_show_as_wechat_shows_them() {
        assert_eq!(reads_shown(100_001), "10万+");
        assert_eq!(reads_shown(100_000), "100000");
    }
}
