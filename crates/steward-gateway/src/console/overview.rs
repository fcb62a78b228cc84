//! `/ui`: decisions over time by effect and by risk, the most denied tools and principals,
//! approval waiting time, calls per server, and alerts. The numbers are `/v1/stats`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use steward_store::AlertRows;

use super::guard;
use super::svg;
use super::view::{self, Layout};
use crate::serve::AppState;
use crate::serve::stats_api::{self, Stats, StatsQuery};

const EFFECTS: [(&str, &str); 4] = [
    ("allow", "#5e9e6e"),
    ("ask", "#88c0d0"),
    ("approve", "#d08770"),
    ("deny", "#bf616a"),
];
const RISKS: [(&str, &str); 4] = [
    ("LOW", "#a3be8c"),
    ("MEDIUM", "#ebcb8b"),
    ("HIGH", "#d08770"),
    ("CRITICAL", "#bf616a"),
];

/// One alert line.
pub struct Alert {
    pub kind: &'static str,
    pub text: String,
    /// An activity row to open, when there is one.
    pub seq: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct OverviewPage {
    layout: Layout,
    hours: u32,
    decisions: u64,
    pending: u64,
    effect_chart: String,
    risk_chart: String,
    denied_tools: String,
    denied_principals: String,
    per_server: String,
    waits: String,
    wait_summary: String,
    alerts: Vec<Alert>,
    problems: Vec<String>,
    burst: u64,
}

fn alert_rows(out: &mut Vec<Alert>, kind: &'static str, what: &str, rows: &AlertRows) {
    for r in &rows.rows {
        out.push(Alert {
            kind,
            text: format!(
                "{what}: {} by {} at {}",
                match (&r.server, &r.tool) {
                    (Some(s), Some(t)) => format!("{}/{}", view::safe(s), view::safe(t)),
                    _ => format!(
                        "{} ({})",
                        view::safe(r.server.as_deref().unwrap_or("?")),
                        view::safe(r.reason.as_deref().unwrap_or(""))
                    ),
                },
                view::safe(r.principal.as_deref().unwrap_or("?")),
                view::when(&r.ts)
            ),
            seq: Some(r.seq),
        });
    }
    if rows.count as usize > rows.rows.len() {
        out.push(Alert {
            kind,
            text: format!(
                "… and {} more {what} (see Activity)",
                rows.count as usize - rows.rows.len()
            ),
            seq: None,
        });
    }
}

fn alerts(s: &Stats) -> Vec<Alert> {
    let mut out = Vec::new();
    alert_rows(&mut out, "canary", "canary tool called", &s.overview.canary_hits);
    for p in &s.drifted_tools {
        out.push(Alert {
            kind: "drift",
            text: format!(
                "tool drift: {}/{} changed since it was pinned{} (review it under Servers)",
                view::safe(&p.server),
                view::safe(&p.tool),
                p.drifted_at
                    .as_deref()
                    .map(|t| format!(" at {}", view::when(t)))
                    .unwrap_or_default()
            ),
            seq: None,
        });
    }
    alert_rows(&mut out, "drift", "drifted tool refused", &s.overview.drift_blocks);
    alert_rows(
        &mut out,
        "blocked",
        "tool with a blocked description refused",
        &s.overview.blocked_descriptions,
    );
    for b in &s.overview.denial_bursts {
        out.push(Alert {
            kind: "burst",
            text: format!(
                "denial burst: {} was denied {} times in the hour from {}:00 UTC (more than {})",
                view::safe(&b.principal),
                b.denials,
                b.hour.replace('T', " "),
                s.denial_burst
            ),
            seq: None,
        });
    }
    out
}

pub async fn page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<StatsQuery>,
) -> Response {
    let s = match guard::page_session(&st, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let layout = Layout::new(&st, Some(&s), "overview", "Overview");
    let stats = match stats_api::stats(&st, q.hours.unwrap_or(24)).await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "console: stats unavailable");
            return view::error_page(
                &st,
                Some(&s),
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the audit log cannot be read right now (see the gateway log)",
            );
        }
    };
    let w = &stats.waits;
    let wait_summary = match (w.median, w.p90, w.max) {
        (Some(m), Some(p), Some(x)) => format!(
            "{} decided: median {}, 90th percentile {}, longest {}",
            w.count,
            view::span(m.round() as i64),
            view::span(p.round() as i64),
            view::span(x.round() as i64)
        ),
        _ => "no approval decided in this window".into(),
    };
    let waits: Vec<(String, u64)> = w.buckets.iter().map(|(l, n)| (l.clone(), *n as u64)).collect();
    let page = OverviewPage {
        layout,
        hours: stats.hours,
        decisions: stats.overview.decisions,
        pending: stats.overview.pending_approvals,
        effect_chart: svg::stacked_columns("decisions per hour by effect", &stats.effect_series, &EFFECTS),
        risk_chart: svg::stacked_columns("decisions per hour by risk", &stats.risk_series, &RISKS),
        denied_tools: svg::bars("most denied tools", &stats.overview.top_denied_tools, "#bf616a"),
        denied_principals: svg::bars(
            "most denied principals",
            &stats.overview.top_denied_principals,
            "#bf616a",
        ),
        per_server: svg::bars("calls per server", &stats.overview.calls_per_server, "#5e81ac"),
        waits: if w.count > 0 {
            svg::bars("approval waiting time", &waits, "#d08770")
        } else {
            String::new()
        },
        wait_summary,
        alerts: alerts(&stats),
        problems: stats.problems.clone(),
        burst: stats.denial_burst,
    };
    view::render(&page)
}
