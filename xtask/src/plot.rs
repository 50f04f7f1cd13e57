//! `cargo xtask bench --plot`: SVG charts from the JSON reports.
//!
//! Horizontal bars, one row per figure and one bar per series (ours,
//! Linux), with a whisker from the minimum to the maximum where a report has
//! them; and scaling curves for benchmarks that sweep a parameter (figures
//! named `name/value`). Written by hand: charts this simple need no plotting
//! library, and SVG text needs no fonts installed.

use std::fmt::Write;

/// One series' value for a figure: (median, min, max).
pub type Value = Option<(f64, f64, f64)>;

/// A row of the chart.
pub struct Row {
    /// The figure's name.
    pub label: String,
    /// Its unit.
    pub unit: String,
    /// One value per series (`None`: not measured).
    pub values: Vec<Value>,
}

const COLORS: [&str; 2] = ["#4e79a7", "#e15759"];
const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 360.0;
const BAR_W: f64 = 440.0;
const BAR_H: f64 = 18.0;
const ROW_GAP: f64 = 14.0;
const TOP: f64 = 70.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Renders the rows as an SVG document. Rows with the same unit share a
/// scale (the largest value among them); different units are not compared.
pub fn horizontal_bars(title: &str, subtitle: &str, series: &[&str], rows: &[Row]) -> String {
    let per_row = BAR_H * series.len().max(1) as f64 + ROW_GAP;
    let height = TOP + per_row * rows.len() as f64 + 20.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="17" font-weight="bold">{}</text>
<text x="10" y="42" fill="#555">{}</text>"##,
        escape(title),
        escape(subtitle)
    );
    for (i, name) in series.iter().enumerate() {
        let x = LABEL_W + i as f64 * 140.0;
        let _ = writeln!(
            svg,
            r##"<rect x="{x}" y="50" width="12" height="12" fill="{}"/><text x="{}" y="61">{}</text>"##,
            COLORS[i % COLORS.len()],
            x + 18.0,
            escape(name)
        );
    }
    for (r, row) in rows.iter().enumerate() {
        let y0 = TOP + r as f64 * per_row;
        let scale = rows
            .iter()
            .filter(|other| other.unit == row.unit)
            .flat_map(|other| other.values.iter().flatten())
            .map(|&(m, _, max)| m.max(max))
            .fold(0.0, f64::max);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_W - 8.0,
            y0 + BAR_H * series.len() as f64 / 2.0 + 4.0,
            escape(&row.label)
        );
        for (s, value) in row.values.iter().enumerate() {
            let y = y0 + s as f64 * BAR_H;
            let color = COLORS[s % COLORS.len()];
            match *value {
                Some((median, min, max)) if scale > 0.0 => {
                    let w = median / scale * BAR_W;
                    let _ = writeln!(
                        svg,
                        r##"<rect x="{LABEL_W}" y="{y}" width="{w:.1}" height="{}" fill="{color}"/>"##,
                        BAR_H - 3.0
                    );
                    if max > min {
                        let (x1, x2, ym) =
                            (LABEL_W + min / scale * BAR_W, LABEL_W + max / scale * BAR_W, y + BAR_H / 2.0 - 1.5);
                        let _ = writeln!(
                            svg,
                            r##"<line x1="{x1:.1}" y1="{ym}" x2="{x2:.1}" y2="{ym}" stroke="#222"/><line x1="{x2:.1}" y1="{}" x2="{x2:.1}" y2="{}" stroke="#222"/>"##,
                            ym - 4.0,
                            ym + 4.0
                        );
                    }
                    let _ = writeln!(
                        svg,
                        r#"<text x="{}" y="{}">{median:.1} {}</text>"#,
                        LABEL_W + BAR_W + 8.0,
                        y + BAR_H - 6.0,
                        escape(&row.unit)
                    );
                }
                _ => {
                    let _ = writeln!(
                        svg,
                        r##"<text x="{}" y="{}" fill="#888">not measured</text>"##,
                        LABEL_W + 4.0,
                        y + BAR_H - 6.0
                    );
                }
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// One point of a scaling curve: parameter value, then median, min, max.
pub type Point = (f64, f64, f64, f64);

const CURVE_W: f64 = 720.0;
const CURVE_H: f64 = 360.0;
const CURVE_LEFT: f64 = 90.0;
const CURVE_TOP: f64 = 60.0;

/// Renders a scaling curve: the median per parameter value joined by a
/// line, a min-max whisker at each point, the parameter on a linear x axis
/// and the cost on a y axis from 0.
pub fn scaling_curve(title: &str, subtitle: &str, x_label: &str, unit: &str, points: &[Point]) -> String {
    let (x_min, x_max) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let y_max = points.iter().map(|p| p.1.max(p.3)).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let x_span = (x_max - x_min).max(1.0);
    let px = |x: f64| CURVE_LEFT + (x - x_min) / x_span * CURVE_W;
    let py = |y: f64| CURVE_TOP + CURVE_H - y / y_max * CURVE_H;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="17" font-weight="bold">{}</text>
<text x="10" y="42" fill="#555">{}</text>"##,
        CURVE_LEFT + CURVE_W + 40.0,
        CURVE_TOP + CURVE_H + 60.0,
        escape(title),
        escape(subtitle)
    );
    for i in 0..=4 {
        let y = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{CURVE_LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" text-anchor="end">{y:.0}</text>"##,
            py(y),
            CURVE_LEFT + CURVE_W,
            CURVE_LEFT - 6.0,
            py(y) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{0}" transform="rotate(-90 16 {0})" text-anchor="middle">{1}</text>"#,
        CURVE_TOP + CURVE_H / 2.0,
        escape(unit)
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        CURVE_LEFT + CURVE_W / 2.0,
        CURVE_TOP + CURVE_H + 44.0,
        escape(x_label)
    );
    let line: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1))).collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"##,
        line.join(" "),
        COLORS[0]
    );
    for &(x, median, min, max) in points {
        let (cx, cy) = (px(x), py(median));
        let _ = writeln!(
            svg,
            r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#222"/><circle cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="{}"/><text x="{cx:.1}" y="{}" text-anchor="middle">{x}</text>"##,
            py(min),
            py(max),
            COLORS[0],
            CURVE_TOP + CURVE_H + 18.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Splits a figure name `base/value` into its sweep and parameter value.
pub fn sweep_point(name: &str) -> Option<(&str, f64)> {
    let (base, value) = name.rsplit_once('/')?;
    Some((base, value.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_names_split_into_base_and_value() {
        assert_eq!(sweep_point("page_alloc::alloc_free_order/3"), Some(("page_alloc::alloc_free_order", 3.0)));
        assert_eq!(sweep_point("page_alloc::alloc_free_order0_pcp"), None);
        assert_eq!(sweep_point("a/b"), None);
    }

    #[test]
    fn scaling_curve_has_a_point_and_whisker_per_value() {
        let points = [(0.0, 10.0, 9.0, 12.0), (1.0, 20.0, 18.0, 25.0), (2.0, 15.0, 15.0, 15.0)];
        let svg = scaling_curve("t", "s", "order", "ns/op", &points);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("<polyline").count(), 1);
        // Five gridlines plus one whisker per point.
        assert_eq!(svg.matches("<line").count(), 5 + 3);
    }

    #[test]
    fn chart_has_a_bar_per_measured_value_and_a_note_per_missing_one() {
        let rows = vec![
            Row { label: "a<b".into(), unit: "ns/op".into(), values: vec![Some((2.0, 1.0, 3.0)), None] },
            Row { label: "c".into(), unit: "ns/page".into(), values: vec![None, Some((5.0, 5.0, 5.0))] },
        ];
        let svg = horizontal_bars("t", "s", &["ours", "Linux"], &rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("not measured").count(), 2);
        assert!(svg.contains("a&lt;b"), "labels are escaped");
        assert!(svg.contains("2.0 ns/op") && svg.contains("5.0 ns/page"));
        // One whisker (min < max) for the first row only: two lines.
        assert_eq!(svg.matches("<line").count(), 2);
    }
}
