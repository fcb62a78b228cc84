//! Inline SVG charts: no script, no external resource, printable. Hand-written because a
//! charting crate would bring a renderer or JavaScript for three kinds of bar chart.

use std::fmt::Write;

use super::html::esc;
use super::model::DayCount;

pub const EFFECT_COLORS: [(&str, &str); 4] = [
    ("allow", "#2e7d32"),
    ("ask", "#0277bd"),
    ("approve", "#ef6c00"),
    ("deny", "#c62828"),
];

fn nice_max(v: u64) -> u64 {
    if v <= 5 {
        return v.max(1);
    }
    let mag = 10u64.pow((v as f64).log10().floor() as u32);
    for m in [1, 2, 5, 10] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10 * mag
}

/// Decisions per day, stacked by effect.
pub fn stacked_days(id: &str, title: &str, days: &[DayCount]) -> String {
    let (w, h, left, bottom, top) = (760.0, 240.0, 48.0, 36.0, 16.0);
    let plot_w = w - left - 12.0;
    let plot_h = h - bottom - top;
    let max = nice_max(
        days.iter()
            .map(|d| d.allow + d.ask + d.approve + d.deny)
            .max()
            .unwrap_or(0),
    );
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="{id}-t"><title id="{id}-t">{}</title>"#,
        esc(title)
    );
    // Whole-number ticks: max is 1, 2 or 5 times a power of ten.
    let ticks = if max <= 5 {
        max
    } else {
        [5, 4, 2].into_iter().find(|n| max.is_multiple_of(*n)).unwrap_or(1)
    };
    for i in 0..=ticks {
        let v = max as f64 * i as f64 / ticks as f64;
        let y = top + plot_h - plot_h * i as f64 / ticks as f64;
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#555">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 3.0,
            v.round() as u64
        );
    }
    let n = days.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).clamp(1.0, 48.0);
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for (effect, color) in EFFECT_COLORS {
            let v = match effect {
                "allow" => d.allow,
                "ask" => d.ask,
                "approve" => d.approve,
                _ => d.deny,
            };
            if v == 0 {
                continue;
            }
            let bh = plot_h * v as f64 / max as f64;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{color}"><title>{} {effect}: {v}</title></rect>"#,
                esc(&d.day)
            );
        }
    }
    let label_at = |i: usize| left + slot * i as f64 + slot / 2.0;
    let mut labels: Vec<usize> = vec![0, days.len() / 2, days.len().saturating_sub(1)];
    labels.dedup();
    for i in labels {
        if let Some(d) = days.get(i) {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#555">{}</text>"##,
                label_at(i),
                top + plot_h + 14.0,
                esc(&d.day)
            );
        }
    }
    let mut lx = left;
    for (effect, color) in EFFECT_COLORS {
        let _ = write!(
            s,
            r##"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#333">{effect}</text>"##,
            h - 12.0,
            lx + 14.0,
            h - 3.0
        );
        lx += 80.0;
    }
    if days.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#777">no decisions in the period</text>"##,
            left + plot_w / 2.0,
            top + plot_h / 2.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars, one per item, largest first as given.
pub fn hbars(id: &str, title: &str, items: &[(String, u64)], color: &dyn Fn(&str) -> &'static str) -> String {
    let row = 22.0;
    let (w, left) = (760.0, 260.0);
    let h = (items.len().max(1) as f64) * row + 10.0;
    let plot_w = w - left - 60.0;
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="{id}-t"><title id="{id}-t">{}</title>"#,
        esc(title)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let bw = plot_w * *v as f64 / max as f64;
        let shown: String = if label.chars().count() > 40 {
            format!("{}…", label.chars().take(39).collect::<String>())
        } else {
            label.clone()
        };
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#333">{}</text><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{}"><title>{}: {v}</title></rect><text x="{:.1}" y="{:.1}" font-size="11" fill="#333">{v}</text>"##,
            left - 8.0,
            y + 14.0,
            esc(&shown),
            row - 6.0,
            color(label),
            esc(label),
            left + bw + 6.0,
            y + 14.0
        );
    }
    if items.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="20" font-size="12" text-anchor="middle" fill="#777">nothing in the period</text>"##,
            w / 2.0
        );
    }
    s.push_str("</svg>");
    s
}

pub fn risk_color(risk: &str) -> &'static str {
    match risk {
        "CRITICAL" => "#b71c1c",
        "HIGH" => "#e65100",
        "MEDIUM" => "#f9a825",
        "LOW" => "#558b2f",
        _ => "#78909c",
    }
}

pub fn plain(_: &str) -> &'static str {
    "#3f6fb5"
}

pub fn deny_color(_: &str) -> &'static str {
    "#c62828"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_titles_and_escaped_labels() {
        let days = vec![DayCount {
            day: "2026-11-21".into(),
            allow: 3,
            ask: 0,
            approve: 1,
            deny: 2,
        }];
        let svg = stacked_days("c1", "Decisions per day", &days);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches("<rect").count(),
            3 + 4,
            "three stacked parts and four legend swatches"
        );
        let bars = hbars("c2", "Top <reasons>", &[("a<b>&\"c".into(), 5)], &plain);
        assert!(bars.contains("a&lt;b&gt;&amp;&quot;c") && !bars.contains("a<b>"));
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(130), 200);
    }
}
