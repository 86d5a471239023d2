//! `mpwatch index [calc]` and `mpwatch report`.

use anyhow::{Context as _, Result, bail};
use mpwatch_index::compute::{Period, PeriodKind, Rules};
use mpwatch_index::formulas::{Formula, Inputs, NriInputs, nri};
use mpwatch_index::{RankingRow, Scope};

use crate::cli::{GlobalArgs, IndexArgs, IndexCommand, ReportArgs, ReportFormat, ReportPeriod};
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
        // The last complete period.
        _ => Period::at(kind, now, &rules.tz).previous(&rules.tz),
    };
    let mut store = context.open_store_with(false, false)?;
    mpwatch_index::update(&mut store, &rules, Scope::Incremental, now)?;
    let text = ranking_text(&mut store, &rules, &period, index, args.group.as_deref(), args.top, args.format, now)?;
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
    format: ReportFormat,
    now: i64,
) -> Result<String> {
    let kind = period.kind;
    let label = match kind {
        PeriodKind::Custom => format!(
            "{} to {}",
            period.first_day,
            period.first_day.saturating_add(jiff::Span::new().days(period.days as i64 - 1))
        ),
        _ => format!("the {} of {}", kind.as_str(), period.first_day),
    };
    // A period in which no tracked account published is not a ranking: nothing is
    // computed or stored for it.
    let published = store.connection().query_row(
        "SELECT EXISTS (SELECT 1 FROM articles a JOIN accounts acc ON acc.id = a.account_id
                        WHERE acc.enabled AND a.published_at >= ?1 AND a.published_at < ?2)",
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
    render(&rows, format, &title, index)
}

const HEADERS: [&str; 12] = ["rank", "change", "account", "n", "R", "R/n", "Rmax", "Rt", "Z", "L", "index", "flags"];

fn cells(row: &RankingRow) -> [String; 12] {
    let change = match row.change {
        None if row.rank.is_none() => String::new(),
        None => "new".to_string(),
        Some(0) => "=".to_string(),
        Some(c) if c > 0 => format!("+{c}"),
        Some(c) => c.to_string(),
    };
    let mut flags = Vec::new();
    if row.late > 0 {
        flags.push(format!("late:{}", row.late));
    }
    if row.provisional {
        flags.push("provisional".to_string());
    }
    [
        // Accounts that published nothing are listed unranked.
        row.rank.map(|rank| rank.to_string()).unwrap_or_else(|| "-".into()),
        change,
        row.account.clone(),
        row.n.to_string(),
        format!("{:.0}", row.reads),
        row.reads_per_article.map(|r| format!("{r:.0}")).unwrap_or_else(|| "-".into()),
        format!("{:.0}", row.reads_max),
        format!("{:.0}", row.reads_headline),
        format!("{:.0}", row.wows),
        format!("{:.0}", row.likes),
        format!("{:.2}", row.value),
        flags.join(" "),
    ]
}

fn render(rows: &[RankingRow], format: ReportFormat, title: &str, index: Formula) -> Result<String> {
    Ok(match format {
        ReportFormat::Json => {
            let value = serde_json::json!({ "title": title, "index": index.as_str(), "rows": rows });
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
            let mut out = HEADERS.join(",") + "\n";
            for row in rows {
                // Full precision in CSV: rounding is for display only.
                let mut cells = cells(row);
                cells[10] = row.value.to_string();
                out.push_str(&cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
            out
        }
        ReportFormat::Md => {
            let mut out =
                format!("### {title}\n\n| {} |\n|{}|\n", HEADERS.join(" | "), HEADERS.map(|_| "---").join("|"));
            for row in rows {
                out.push_str(&format!("| {} |\n", cells(row).map(|c| c.replace('|', "\\|")).join(" | ")));
            }
            out
        }
        ReportFormat::Table => {
            if rows.is_empty() {
                return Ok(format!("{title}: no data\n"));
            }
            let mut table = crate::table::new(&HEADERS);
            for row in rows {
                table.add_row(cells(row).to_vec());
            }
            crate::table::right_align(&mut table, &[0, 3, 4, 5, 6, 7, 8, 9, 10]);
            format!("{title}\n{table}\n")
        }
    })
}
