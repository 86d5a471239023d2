//! `mpwatch chart`: accounts as lines over time (drawn by `mpwatch-chart`).

use anyhow::{Context as _, Result, bail};
use mpwatch_chart::{Chart, METRICS, Output};
use mpwatch_index::compute::{Period, PeriodKind};

use crate::cli::{ChartArgs, ReportPeriod};
use crate::commands::index::rules;
use crate::context::AppContext;

/// Draws the chart.
pub fn run(context: &AppContext, args: &ChartArgs) -> Result<()> {
    let metric = args.metric.as_str();
    if !METRICS.contains(&metric) && metric.parse::<mpwatch_index::formulas::Formula>().is_err() {
        bail!("unknown metric `{metric}`; expected one of {}, or an index name", METRICS.join(", "));
    }
    let extension = args.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let output = match extension.as_deref() {
        Some("svg") => Output::Svg(&args.output),
        Some("png") => Output::Png(&args.output),
        _ => bail!("{}: the output must end in .svg or .png", args.output.display()),
    };
    let rules = rules(context)?;
    let kind = match args.period {
        ReportPeriod::Day => PeriodKind::Day,
        ReportPeriod::Week => PeriodKind::Week,
        ReportPeriod::Month => PeriodKind::Month,
    };
    if args.smooth && kind != PeriodKind::Day {
        bail!("--smooth averages days: it needs --period day");
    }
    let from = Period::containing(kind, args.from.parse().with_context(|| format!("--from {}", args.from))?, &rules.tz);
    let to = Period::containing(kind, args.to.parse().with_context(|| format!("--to {}", args.to))?, &rules.tz);
    if to.end <= from.start {
        bail!("--to must not be before --from");
    }
    let mut store = context.open_store_with(false, false)?;
    mpwatch_index::update(&mut store, &rules, mpwatch_index::Scope::Incremental, context.now())?;
    let chart = Chart { accounts: &args.accounts, metric, kind, from: &from, to: &to, smooth: args.smooth };
    mpwatch_chart::write_chart(&store, &rules, &chart, output)?;
    println!("wrote {}", args.output.display());
    Ok(())
}
