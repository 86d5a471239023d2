//! Charts of stored index values, drawn with plotters and a bundled CJK font (a GB2312
//! subset of Noto Sans SC, `assets/fonts/`), so Chinese account names draw on any
//! machine, with no system font: files for `mpwatch chart`, SVG text for the dashboard of
//! `mpwatch serve`, and an article's growth curve.

mod growth;

use std::path::Path;

use anyhow::{Result, bail};
use mpwatch_index::SeriesPoint;
use mpwatch_index::compute::{Period, PeriodKind, Rules};
use mpwatch_store::Store;
use plotters::coord::combinators::BindKeyPoints as _;
use plotters::prelude::*;

pub use growth::{GrowthPoint, growth_svg};

static FONT: &[u8] = include_bytes!("../assets/fonts/NotoSansSC-GB2312.otf");

/// Metrics read from `index_periods` (anything else is an index name).
pub const METRICS: &[&str] = &["reads", "read_rate", "engagement_rate", "wows", "likes", "n"];

/// Pixels: the whole image, and the legend's column on its right.
const SIZE: (u32, u32) = (1100, 560);
const LEGEND_WIDTH: u32 = 210;

/// What one chart shows.
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
    /// A 7-day average instead of gaps (daily charts).
    pub smooth: bool,
}

/// One account's line: its name and its runs of points (a gap between runs).
struct Line {
    label: String,
    runs: Vec<Vec<SeriesPoint>>,
}

/// Where a chart goes.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// An SVG file.
    Svg(&'a Path),
    /// A PNG file.
    Png(&'a Path),
}

/// Draws `chart` from stored index values into a file (the indices must be up to date).
pub fn write_chart(store: &Store, rules: &Rules, chart: &Chart<'_>, output: Output<'_>) -> Result<()> {
    let lines = lines_of(store, chart)?;
    let labels = Labels::new(chart, rules);
    let span = (chart.from.start, chart.to.end);
    register_bundled_font()?;
    match output {
        Output::Svg(path) => {
            draw(SVGBackend::new(path, SIZE).into_drawing_area(), &labels, &lines, span, rules, chart.kind)
        }
        Output::Png(path) => {
            draw(BitMapBackend::new(path, SIZE).into_drawing_area(), &labels, &lines, span, rules, chart.kind)
        }
    }
}

/// Draws `chart` as an SVG document in memory (for web pages).
pub fn chart_svg(store: &Store, rules: &Rules, chart: &Chart<'_>) -> Result<String> {
    let lines = lines_of(store, chart)?;
    let labels = Labels::new(chart, rules);
    // SVG names the font family, but plotters still measures text with a loaded font.
    register_bundled_font()?;
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(area, &labels, &lines, (chart.from.start, chart.to.end), rules, chart.kind)?;
    }
    Ok(svg)
}

/// No account of a chart has a point to draw (an error a caller may tell apart from a
/// failure: `error.downcast_ref::<NoData>()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoData {
    /// The metric asked for.
    pub metric: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
}

impl std::fmt::Display for NoData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no {} data for these accounts between {} and {}", self.metric, self.from, self.to)
    }
}

impl std::error::Error for NoData {}

/// Each account's line; [`NoData`] when no account has a point to draw.
fn lines_of(store: &Store, chart: &Chart<'_>) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for name in chart.accounts {
        let account = store.resolve_account(name)?;
        let points =
            mpwatch_index::series(store, account.id, chart.kind, chart.metric, chart.from.start, chart.to.end)?;
        let runs = if chart.smooth { vec![seven_day_average(&points)] } else { runs_with_gaps(points, chart.metric) };
        lines.push(Line { label: account.display_name(), runs });
    }
    if lines.iter().all(|line| line.runs.iter().all(Vec::is_empty)) {
        return Err(NoData {
            metric: chart.metric.to_string(),
            from: chart.from.first_day.to_string(),
            to: chart.to.first_day.to_string(),
        }
        .into());
    }
    Ok(lines)
}

/// Text is measured (and, in bitmaps, drawn) with the bundled font; SVG only names the
/// family, and browsers use theirs. Parsing the 1.5 MB font once per process is enough.
pub(crate) fn register_bundled_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let registered =
        *REGISTERED.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if registered { Ok(()) } else { bail!("the bundled font is unreadable") }
}

/// A metric that means nothing on a day without a push (everything but `n`) is left
/// out there: the line has a gap instead of a fall to zero.
fn runs_with_gaps(points: Vec<SeriesPoint>, metric: &str) -> Vec<Vec<SeriesPoint>> {
    let mut runs: Vec<Vec<SeriesPoint>> = vec![Vec::new()];
    for point in points {
        if point.n == 0 && metric != "n" {
            if runs.last().is_some_and(|run| !run.is_empty()) {
                runs.push(Vec::new());
            }
            continue;
        }
        if let Some(run) = runs.last_mut() {
            run.push(point);
        }
    }
    runs.retain(|run| !run.is_empty());
    runs
}

/// The trailing 7-day average of each day (days without a push count as 0; the first
/// days average what there is). Provisional if any day averaged is.
fn seven_day_average(points: &[SeriesPoint]) -> Vec<SeriesPoint> {
    points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            let window = &points[i.saturating_sub(6)..=i];
            SeriesPoint {
                value: window.iter().map(|p| p.value).sum::<f64>() / window.len() as f64,
                provisional: window.iter().any(|p| p.provisional),
                ..*point
            }
        })
        .collect()
}

/// The chart's words.
struct Labels {
    title: String,
    y_axis: String,
    x_axis: String,
}

impl Labels {
    fn new(chart: &Chart<'_>, rules: &Rules) -> Labels {
        let per = chart.kind.as_str();
        let (what, unit) = match chart.metric {
            "reads" => ("reads (阅读)", format!("reads per {per}")),
            "read_rate" => ("read rate (reads / day)", "reads per day".to_string()),
            "engagement_rate" => ("engagement ((在看 + 赞) / reads)", "share of reads".to_string()),
            "wows" => ("在看 (wows)", format!("在看 per {per}")),
            "likes" => ("赞 (likes)", format!("赞 per {per}")),
            "n" => ("articles published", format!("articles per {per}")),
            index => (index, format!("{index} (index value)")),
        };
        let title = if chart.smooth {
            format!("{what}, 7-day average, {} to {}", chart.from.first_day, chart.to.first_day)
        } else {
            format!("{what} per {per}, {} to {}", chart.from.first_day, chart.to.first_day)
        };
        let zone = rules.tz.iana_name().unwrap_or("local time");
        Labels { title, y_axis: unit, x_axis: format!("{per} ({zone})") }
    }
}

/// Tick positions: week starts for spans up to four months, else month starts (and
/// the periods' own starts for weekly and monthly charts).
fn key_points(span: (i64, i64), rules: &Rules, kind: PeriodKind) -> Vec<i64> {
    let days = (span.1 - span.0) / 86_400;
    let tick_kind = match kind {
        PeriodKind::Day if days <= 120 => PeriodKind::Week,
        PeriodKind::Month => PeriodKind::Month,
        PeriodKind::Week if days <= 200 => PeriodKind::Week,
        _ => PeriodKind::Month,
    };
    let mut points = Vec::new();
    let Ok(first) = jiff::Timestamp::from_second(span.0) else { return points };
    let mut period = Period::containing(tick_kind, first.to_zoned_datetime(rules.tz.clone()).date(), &rules.tz);
    while period.start < span.1 {
        if period.start >= span.0 {
            points.push(period.start);
        }
        let Ok(end) = jiff::Timestamp::from_second(period.end) else { break };
        period = Period::containing(tick_kind, end.to_zoned_datetime(rules.tz.clone()).date(), &rules.tz);
    }
    points
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    lines: &[Line],
    (start, end): (i64, i64),
    rules: &Rules,
    kind: PeriodKind,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("cannot draw the chart: {e}");
    area.fill(&WHITE).map_err(error)?;
    let (plot, legend) = area.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let max = lines.iter().flat_map(|line| line.runs.iter().flatten().map(|p| p.value)).fold(0.0f64, f64::max).max(1.0)
        * 1.08;
    let tz = rules.tz.clone();
    let date = move |t: &i64| {
        jiff::Timestamp::from_second(*t)
            .map(|ts| ts.to_zoned_datetime(tz.clone()).strftime("%m-%d").to_string())
            .unwrap_or_default()
    };
    let x = (start..end).with_key_points(key_points((start, end), rules, kind));
    let mut chart = ChartBuilder::on(&plot)
        .caption(&labels.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(86)
        .build_cartesian_2d(x, 0.0..max)
        .map_err(error)?;
    chart
        .configure_mesh()
        .x_label_formatter(&date)
        .y_label_formatter(&|v| {
            if *v >= 10_000.0 {
                format!("{:.0}k", v / 1000.0)
            } else if *v >= 10.0 || *v == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .x_desc(labels.x_axis.as_str())
        .y_desc(labels.y_axis.as_str())
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(error)?;
    for (i, line) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        for run in &line.runs {
            let points: Vec<(i64, f64)> = run.iter().map(|p| (p.start, p.value)).collect();
            if points.len() == 1 {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(error)?;
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(2))).map_err(error)?;
            }
            // Provisional points: hollow rings (their value may still grow).
            chart
                .draw_series(
                    run.iter()
                        .filter(|p| p.provisional)
                        .map(|p| Circle::new((p.start, p.value), 5, color.stroke_width(2))),
                )
                .map_err(error)?;
        }
    }
    // The legend beside the data, never over it.
    let entry_height = 24;
    for (i, line) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let y = 60 + i as i32 * entry_height;
        legend.draw(&PathElement::new(vec![(10, y), (40, y)], color.stroke_width(3))).map_err(error)?;
        legend
            .draw(&Text::new(line.label.clone(), (48, y - 8), ("sans-serif", 15).into_font().color(&BLACK)))
            .map_err(error)?;
    }
    let y = 60 + lines.len() as i32 * entry_height + 8;
    legend.draw(&Circle::new((25, y), 5, BLACK.stroke_width(2))).map_err(error)?;
    legend.draw(&Text::new("provisional", (48, y - 8), ("sans-serif", 15).into_font().color(&BLACK))).map_err(error)?;
    area.present().map_err(error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(start: i64, value: f64, n: i64) -> SeriesPoint {
        SeriesPoint { start, value, n, provisional: false }
    }

    #[test]
    fn days_without_a_push_are_gaps_except_when_counting_articles() {
        let points = vec![point(0, 5.0, 1), point(1, 0.0, 0), point(2, 0.0, 0), point(3, 7.0, 2), point(4, 1.0, 1)];
        let runs = runs_with_gaps(points.clone(), "reads");
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(runs_with_gaps(points, "n").len(), 1);
    }

    #[test]
    fn the_seven_day_average_counts_silent_days_as_zero() {
        let points: Vec<SeriesPoint> = (0..8).map(|day| point(day, if day == 0 { 70.0 } else { 0.0 }, 1)).collect();
        let smooth = seven_day_average(&points);
        assert_eq!(smooth[0].value, 70.0);
        assert_eq!(smooth[6].value, 10.0);
        assert_eq!(smooth[7].value, 0.0);
    }
}
