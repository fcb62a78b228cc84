//! Charts as SVG, drawn on the server. Hand-written rather than `plotters`: three chart kinds
//! (stacked columns, horizontal bars, a histogram) are a few dozen lines each, and a plotting
//! crate would add much more build time than that. Colours are presentation attributes, not
//! `style`, so the pages' CSP (no inline styles) holds. Every label is XML-escaped here.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A round axis maximum at or above `max`.
fn nice(max: u64) -> u64 {
    if max <= 5 {
        return 5;
    }
    let mag = 10u64.pow((max as f64).log10().floor() as u32);
    for step in [1, 2, 5, 10] {
        if max <= step * mag {
            return step * mag;
        }
    }
    10 * mag
}

/// Stacked columns, one per bucket (oldest left), one colour per key, with a legend.
/// `series`: `(bucket label, counts by key)`; `keys`: `(key, colour)` in stacking order.
pub fn stacked_columns(title: &str, series: &[(String, BTreeMap<String, u64>)], keys: &[(&str, &str)]) -> String {
    let (w, h, left, bottom, top) = (720.0f64, 220.0f64, 40.0f64, 28.0f64, 14.0f64);
    let plot_h = h - bottom - top;
    let max = series.iter().map(|(_, m)| m.values().sum::<u64>()).max().unwrap_or(0);
    let axis = nice(max);
    let n = series.len().max(1) as f64;
    let slot = (w - left - 10.0) / n;
    let bar = (slot * 0.7).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {}" role="img" aria-label="{}" class="chart">"#,
        h + 22.0,
        esc(title)
    );
    // `nice` axes are 5, 10, 20, 50, …: five steps are whole numbers.
    for i in 0..=5 {
        let v = axis * i / 5;
        let y = top + plot_h - plot_h * (v as f64) / (axis as f64);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d8dee9" stroke-width="1"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#4c566a">{v}</text>"##,
            w - 10.0,
            left - 4.0,
            y + 3.0
        );
    }
    for (i, (label, counts)) in series.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for (key, colour) in keys {
            let c = counts.get(*key).copied().unwrap_or(0);
            if c == 0 {
                continue;
            }
            let bh = plot_h * c as f64 / axis as f64;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{colour}"><title>{} {}: {c}</title></rect>"#,
                esc(label),
                esc(key)
            );
        }
        // Every third label, so they do not overlap.
        if i % 3 == 0 || i + 1 == series.len() {
            let short = label.rsplit('T').next().unwrap_or(label);
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#4c566a">{}h</text>"##,
                x + bar / 2.0,
                top + plot_h + 14.0,
                esc(short)
            );
        }
    }
    let mut lx = left;
    for (key, colour) in keys {
        let _ = write!(
            s,
            r##"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#2e3440">{}</text>"##,
            h + 6.0,
            lx + 14.0,
            h + 15.0,
            esc(key)
        );
        lx += 24.0 + 7.0 * key.chars().count() as f64;
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars, largest first, with their counts.
pub fn bars(title: &str, items: &[(String, u64)], colour: &str) -> String {
    if items.is_empty() {
        return String::new();
    }
    let (w, row, label_w) = (480.0f64, 22.0f64, 200.0f64);
    let h = row * items.len() as f64 + 6.0;
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{}" class="chart bars">"#,
        esc(title)
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = 3.0 + row * i as f64;
        let bw = ((w - label_w - 50.0) * (*n as f64) / max).max(1.0);
        let shown: String = label.chars().take(32).collect();
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#2e3440">{}<title>{}</title></text><rect x="{label_w}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#2e3440">{n}</text>"##,
            label_w - 6.0,
            y + 14.0,
            esc(&shown),
            esc(label),
            y + 3.0,
            row - 8.0,
            label_w + bw + 4.0,
            y + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let svg = bars("t", &[("<script>alert(1)</script>".into(), 3)], "#000");
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        let mut m = BTreeMap::new();
        m.insert("deny".to_string(), 2u64);
        let svg = stacked_columns(
            "x\"y",
            &[("2026-01-31T14".into(), m)],
            &[("allow", "#0a0"), ("deny", "#a00")],
        );
        assert!(svg.contains("aria-label=\"x&quot;y\""));
        assert!(svg.contains("14h"));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(nice(0), 5);
        assert_eq!(nice(7), 10);
        assert_eq!(nice(13), 20);
        assert_eq!(nice(480), 500);
        assert_eq!(nice(1000), 1000);
    }
}
