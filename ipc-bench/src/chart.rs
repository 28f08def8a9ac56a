//! The chart: round-trip latency per mechanism on a log axis, one panel for one CPU and one
//! for two CPUs side by side. Each mechanism has a bar from p50 to p99.9 with a dot at p50
//! and a ring at p99, Rust above and its C twin below.

use std::path::Path;

use plotters::prelude::*;

use crate::harness::{Placement, Test};
use crate::report::Row;

/// An axis label: 1 µs, 10 µs, 1 ms…
fn duration_label(ns: f64) -> String {
    match ns {
        v if v >= 1e6 => format!("{} ms", v / 1e6),
        v if v >= 1e3 => format!("{} µs", v / 1e3),
        v => format!("{v} ns"),
    }
}

const RUST: RGBColor = RGBColor(0xb7, 0x41, 0x0e);
const C: RGBColor = RGBColor(0x1f, 0x5f, 0xa8);

/// Draw the latency rows of `rows` into an SVG file at `path`.
pub fn draw(rows: &[Row], path: &Path, title: &str) -> Result<(), String> {
    let latency: Vec<&Row> = rows
        .iter()
        .filter(|r| r.key.mech.is_some() && r.key.test == Test::Latency)
        .collect();
    // One line per mechanism, in table order.
    let mut mechs: Vec<_> = latency.iter().filter_map(|r| r.key.mech).collect();
    mechs.dedup();
    if mechs.is_empty() {
        return Err("no latency rows to draw".into());
    }
    let values = latency
        .iter()
        .flat_map(|r| [&r.rust, &r.c])
        .flat_map(|f| [f.quantile(0.5), f.quantile(0.999)])
        .flatten();
    let (lo, hi) = values.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi == 0 {
        return Err("no latency was measured".into());
    }
    let x_range = (lo as f64 / 2.0).max(1.0)..(hi as f64 * 2.0);

    let height = 120 + 34 * mechs.len() as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 18))
        .map_err(|e| err(&e))?;
    // The key, in a strip under both panels, so that it never covers a bar.
    let (root, footer) = root.split_vertically(height - 60);
    let text = |s: &str, color: RGBColor, x: i32| {
        footer
            .draw_text(s, &("sans-serif", 14).into_font().color(&color), (x, 10))
            .map_err(|e| err(&e))
    };
    text("● Rust", RUST, 200)?;
    text("● C twin (same calls)", C, 290)?;
    text(
        "dot: p50   ring: p99   bar: p50 to p99.9   (log scale)",
        BLACK,
        480,
    )?;
    let (left, right) = root.split_horizontally(600);
    for (area, placement, name) in [
        (left, Placement::SameCpu, "both on 1 CPU"),
        (right, Placement::CrossCpu, "on 2 CPUs"),
    ] {
        let n = mechs.len();
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("round trip, {name}"), ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(if placement == Placement::SameCpu {
                190
            } else {
                10
            })
            .build_cartesian_2d(x_range.clone().log_scale(), 0f64..n as f64)
            .map_err(|e| err(&e))?;
        let labels = mechs.clone();
        chart
            .configure_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                // Labels sit at the middle of each mechanism's band.
                let i = (n as f64 - y - 0.5).round();
                let on_middle = (n as f64 - y - 0.5 - i).abs() < 0.01;
                match (on_middle, usize::try_from(i as i64)) {
                    (true, Ok(i)) if placement == Placement::SameCpu && i < labels.len() => {
                        labels[i].label().to_owned()
                    }
                    _ => String::new(),
                }
            })
            .x_label_formatter(&|x| duration_label(*x))
            .label_style(("sans-serif", 13))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, mech) in mechs.iter().enumerate() {
            let Some(row) = latency
                .iter()
                .find(|r| r.key.mech == Some(*mech) && r.key.placement == placement)
            else {
                continue;
            };
            let band = n as f64 - i as f64 - 0.5;
            for (fig, color, dy) in [(&row.rust, RUST, 0.15), (&row.c, C, -0.15)] {
                let (Some(p50), Some(p99), Some(p999)) =
                    (fig.quantile(0.5), fig.quantile(0.99), fig.quantile(0.999))
                else {
                    continue;
                };
                let y = band + dy;
                let (p50, p99, p999) = (p50 as f64, p99 as f64, p999 as f64);
                chart
                    .draw_series(LineSeries::new(
                        [(p50, y), (p999, y)],
                        color.stroke_width(2),
                    ))
                    .map_err(|e| err(&e))?;
                chart
                    .draw_series([
                        Circle::new((p50, y), 4, color.filled()),
                        Circle::new((p99, y), 3, color.stroke_width(1)),
                    ])
                    .map_err(|e| err(&e))?;
            }
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
