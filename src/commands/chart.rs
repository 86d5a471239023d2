//! `mpwatch chart`: accounts as lines over time, drawn with plotters and a bundled font
//! (DejaVu Sans, `assets/fonts/`), so no system font is needed.

use anyhow::{Context as _, Result, bail};
use mpwatch_index::compute::{Period, PeriodKind};
use plotters::prelude::*;

use crate::cli::{ChartArgs, ReportPeriod};
use crate::commands::index::rules;
use crate::context::AppContext;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

const METRICS: &[&str] = &["reads", "read_rate", "engagement_rate", "wows", "likes", "n"];

/// Draws the chart.
pub fn run(context: &AppContext, args: &ChartArgs) -> Result<()> {
    let metric = args.metric.as_str();
    if !METRICS.contains(&metric) && metric.parse::<mpwatch_index::formulas::Formula>().is_err() {
        bail!("unknown metric `{metric}`; expected one of {}, or an index name", METRICS.join(", "));
    }
    let extension = args.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let svg = match extension.as_deref() {
        Some("svg") => true,
        Some("png") => false,
        _ => bail!("{}: the output must end in .svg or .png", args.output.display()),
    };
    let rules = rules(context)?;
    let kind = match args.period {
        ReportPeriod::Day => PeriodKind::Day,
        ReportPeriod::Week => PeriodKind::Week,
        ReportPeriod::Month => PeriodKind::Month,
    };
    let from = Period::containing(kind, args.from.parse().with_context(|| format!("--from {}", args.from))?, &rules.tz);
    let to = Period::containing(kind, args.to.parse().with_context(|| format!("--to {}", args.to))?, &rules.tz);
    if to.end <= from.start {
        bail!("--to must not be before --from");
    }
    let mut store = context.open_store_with(false, false)?;
    mpwatch_index::update(&mut store, &rules, mpwatch_index::Scope::Incremental, context.now())?;
    let chart = Chart { accounts: &args.accounts, metric, kind, from: &from, to: &to, output: &args.output, svg };
    draw_chart(&store, &rules, &chart)?;
    println!("wrote {}", args.output.display());
    Ok(())
}

/// What one chart shows and where it goes.
pub struct Chart<'a> {
    /// Accounts (names, aliases, ids or bizes), one line each.
    pub accounts: &'a [String],
    /// A metric of [`METRICS`] or an index name.
    pub metric: &'a str,
    /// Period of each point.
    pub kind: PeriodKind,
    /// First period drawn.
    pub from: &'a Period,
    /// Last period drawn.
    pub to: &'a Period,
    /// The file written.
    pub output: &'a std::path::Path,
    /// SVG (else PNG).
    pub svg: bool,
}

/// Draws `chart` from stored index values (the indices must be up to date).
pub fn draw_chart(
    store: &mpwatch_store::Store,
    rules: &mpwatch_index::compute::Rules,
    chart: &Chart<'_>,
) -> Result<()> {
    let (kind, metric, svg) = (chart.kind, chart.metric, chart.svg);
    let mut lines = Vec::new();
    for name in chart.accounts {
        let account = store.resolve_account(name)?;
        let points = mpwatch_index::series(store, account.id, kind, metric, chart.from.start, chart.to.end)?;
        // The bundled font has no CJK glyphs: bitmaps label lines with the alias or id.
        let label = if svg || account.display_name().is_ascii() {
            account.display_name()
        } else {
            account.alias.clone().unwrap_or_else(|| format!("#{}", account.id))
        };
        lines.push((label, points));
    }
    if lines.iter().all(|(_, points)| points.is_empty()) {
        bail!("no {metric} data for these accounts between {} and {}", chart.from.first_day, chart.to.first_day);
    }
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the bundled font is unreadable"))?;
    let title = format!("{metric} per {}", kind.as_str());
    let tz = rules.tz.clone();
    let size = (1000, 560);
    let span = (chart.from.start, chart.to.end);
    if svg {
        draw(SVGBackend::new(chart.output, size).into_drawing_area(), &title, &lines, span, &tz)?;
    } else {
        draw(BitMapBackend::new(chart.output, size).into_drawing_area(), &title, &lines, span, &tz)?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    lines: &[(String, Vec<(i64, f64)>)],
    (start, end): (i64, i64),
    tz: &jiff::tz::TimeZone,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("cannot draw the chart: {e}");
    area.fill(&WHITE).map_err(error)?;
    let max = lines.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v)).fold(0.0f64, f64::max).max(1.0) * 1.08;
    let tz = tz.clone();
    let date = move |t: &i64| {
        jiff::Timestamp::from_second(*t)
            .map(|ts| ts.to_zoned_datetime(tz.clone()).date().to_string())
            .unwrap_or_default()
    };
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(start..end, 0.0..max)
        .map_err(error)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&date)
        .y_label_formatter(&|v| if *v >= 10_000.0 { format!("{:.0}k", v / 1000.0) } else { format!("{v:.0}") })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(error)?;
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(error)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(error)?;
    area.present().map_err(error)?;
    Ok(())
}
