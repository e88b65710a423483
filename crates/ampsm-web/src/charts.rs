//! Small server-rendered SVG charts (no script): bars for a value per iteration, and a step line for a
//! running total over time. Values are scaled to the largest; labels are plain text.

use maud::{Markup, html};

const W: f64 = 560.0;
const H: f64 = 160.0;
const PAD_L: f64 = 56.0;
const PAD_B: f64 = 22.0;
const PAD_T: f64 = 10.0;

/// Bars: one per `(label, value)`.
pub fn bars(title: &str, points: &[(String, f64)], unit: &str) -> Markup {
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let plot_w = W - PAD_L - 8.0;
    let plot_h = H - PAD_B - PAD_T;
    let n = points.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.7).clamp(2.0, 48.0);
    html! {
        figure {
            figcaption.dim { (title) }
            svg width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) {
                line x1=(PAD_L) y1=(PAD_T + plot_h) x2=(W - 8.0) y2=(PAD_T + plot_h) stroke="currentColor" stroke-opacity="0.3" {}
                text x=(PAD_L - 4.0) y=(PAD_T + 10.0) text-anchor="end" { (axis_label(max, unit)) }
                text x=(PAD_L - 4.0) y=(PAD_T + plot_h) text-anchor="end" { "0" }
                @for (i, (label, v)) in points.iter().enumerate() {
                    @let h = if max > 0.0 { v / max * plot_h } else { 0.0 };
                    @let x = PAD_L + slot * i as f64 + (slot - bar_w) / 2.0;
                    rect x=(fmt(x)) y=(fmt(PAD_T + plot_h - h)) width=(fmt(bar_w)) height=(fmt(h)) fill="var(--blue)" {
                        title { (label) ": " (axis_label(*v, unit)) }
                    }
                    @if points.len() <= 30 {
                        text x=(fmt(x + bar_w / 2.0)) y=(H - 6.0) text-anchor="middle" { (label) }
                    }
                }
            }
        }
    }
}

/// A step line through `(time ms, running total)` points.
pub fn steps(title: &str, points: &[(i64, f64)], unit: &str) -> Markup {
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let t0 = points.first().map(|p| p.0).unwrap_or(0);
    let t1 = points.last().map(|p| p.0).unwrap_or(0).max(t0 + 1);
    let plot_w = W - PAD_L - 8.0;
    let plot_h = H - PAD_B - PAD_T;
    let x = |t: i64| PAD_L + (t - t0) as f64 / (t1 - t0) as f64 * plot_w;
    let y = |v: f64| PAD_T + plot_h - if max > 0.0 { v / max * plot_h } else { 0.0 };
    let mut d = String::new();
    let mut prev: Option<f64> = None;
    for (t, v) in points {
        if prev.is_none() {
            d.push_str(&format!("M{} {}", fmt(x(*t)), fmt(y(0.0))));
        }
        d.push_str(&format!(" L{} {}", fmt(x(*t)), fmt(y(prev.unwrap_or(0.0)))));
        d.push_str(&format!(" L{} {}", fmt(x(*t)), fmt(y(*v))));
        prev = Some(*v);
    }
    html! {
        figure {
            figcaption.dim { (title) }
            svg width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) {
                line x1=(PAD_L) y1=(PAD_T + plot_h) x2=(W - 8.0) y2=(PAD_T + plot_h) stroke="currentColor" stroke-opacity="0.3" {}
                text x=(PAD_L - 4.0) y=(PAD_T + 10.0) text-anchor="end" { (axis_label(max, unit)) }
                text x=(PAD_L - 4.0) y=(PAD_T + plot_h) text-anchor="end" { "0" }
                @if points.len() > 1 {
                    text x=(PAD_L) y=(H - 6.0) { (ampsm_core::time::format_ms(t0).get(11..19).unwrap_or("")) }
                    text x=(W - 8.0) y=(H - 6.0) text-anchor="end" { (ampsm_core::time::format_ms(t1).get(11..19).unwrap_or("")) }
                }
                path d=(d) fill="none" stroke="var(--aqua)" stroke-width="2" {}
            }
        }
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

fn axis_label(v: f64, unit: &str) -> String {
    if unit == "$" {
        format!("${v:.4}")
    } else if v >= 10_000.0 {
        format!("{:.1}k{unit}", v / 1000.0)
    } else {
        format!("{v:.0}{unit}")
    }
}
