//! `cargo xtask bench --plot`: SVG charts from the JSON reports.
//!
//! Horizontal bars, one row per figure and one bar per series (ours,
//! Linux), with a whisker from the minimum to the maximum where a report has
//! them. Written by hand: a chart this simple needs no plotting library, and
//! SVG text needs no fonts installed.

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

#[cfg(test)]
mod tests {
    use super::*;

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
