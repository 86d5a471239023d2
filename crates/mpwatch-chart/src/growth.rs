//! One article's growth curve: its snapshots' reads by age, as SVG for the dashboard.

use anyhow::Result;
use plotters::prelude::*;

/// One snapshot of an article.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowthPoint {
    /// Seconds since publication when the counts were read.
    pub age_seconds: i64,
    /// Reads (阅读; 100001 is "10万+").
    pub reads: i64,
    /// 在看 + 赞, when known.
    pub engagements: Option<i64>,
}

const SIZE: (u32, u32) = (900, 420);

/// Reads (and 在看 + 赞) against the article's age in hours, oldest first. `None` when
/// there is nothing to draw.
pub fn growth_svg(title: &str, points: &[GrowthPoint]) -> Result<Option<String>> {
    if points.is_empty() {
        return Ok(None);
    }
    let hours = |p: &GrowthPoint| p.age_seconds as f64 / 3600.0;
    let max_x = points.iter().map(hours).fold(1.0f64, f64::max) * 1.05;
    let max_y = points.iter().map(|p| p.reads.max(p.engagements.unwrap_or(0))).max().unwrap_or(0).max(1) as f64 * 1.1;
    crate::register_bundled_font()?;
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let error = |e: DrawingAreaErrorKind<std::io::Error>| anyhow::anyhow!("cannot draw the growth curve: {e}");
        area.fill(&WHITE).map_err(error)?;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..max_x, 0.0..max_y)
            .map_err(error)?;
        chart
            .configure_mesh()
            .x_desc("hours since publication")
            .y_desc("count")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(error)?;
        let reads: Vec<(f64, f64)> = points.iter().map(|p| (hours(p), p.reads as f64)).collect();
        chart
            .draw_series(LineSeries::new(reads.clone(), BLUE.stroke_width(2)))
            .map_err(error)?
            .label("reads (阅读)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart.draw_series(reads.iter().map(|&p| Circle::new(p, 3, BLUE.filled()))).map_err(error)?;
        let engagements: Vec<(f64, f64)> =
            points.iter().filter_map(|p| p.engagements.map(|e| (hours(p), e as f64))).collect();
        if !engagements.is_empty() {
            chart
                .draw_series(LineSeries::new(engagements, RED.stroke_width(2)))
                .map_err(error)?
                .label("在看 + 赞")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(error)?;
        area.present().map_err(error)?;
    }
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_snapshots_and_nothing_for_none() {
        assert!(growth_svg("t", &[]).unwrap().is_none());
        let points = [
            GrowthPoint { age_seconds: 3600, reads: 120, engagements: Some(4) },
            GrowthPoint { age_seconds: 86_400, reads: 900, engagements: None },
        ];
        let svg = growth_svg("<title & more>", &points).unwrap().unwrap();
        assert!(svg.starts_with("<svg"), "{svg:.80}");
        assert!(svg.contains("<polyline") || svg.contains("<path"), "a line is drawn");
        // Text reaches the SVG escaped.
        assert!(!svg.contains("<title & more>"));
    }
}
