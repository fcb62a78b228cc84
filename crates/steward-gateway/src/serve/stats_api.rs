//! `/v1/stats`: what the console's overview draws, as JSON.
//!
//! GET /v1/stats[?hours=24]  → decisions per hour by effect and by risk, the most denied tools and
//!     principals, calls per server, approval waiting times, and alerts (canary hits, drifted
//!     tools, blocked descriptions, denial bursts: more than `console.denial_burst` denials for
//!     one principal in an hour).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use steward_store::{Overview, Pin, PinState};

use super::state::AppState;

/// The longest window asked for: a week.
const MAX_HOURS: u32 = 24 * 7;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatsQuery {
    #[serde(default)]
    pub hours: Option<u32>,
}

/// Approval waiting times, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Waits {
    pub count: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub max: Option<f64>,
    /// `(label, count)`: under a minute, 1–5 min, 5–15 min, 15–60 min, over an hour.
    pub buckets: Vec<(String, usize)>,
}

impl Waits {
    pub fn of(waits: &[f64]) -> Waits {
        let mut w: Vec<f64> = waits.iter().copied().filter(|x| x.is_finite()).collect();
        w.sort_by(f64::total_cmp);
        let at = |q: f64| -> Option<f64> {
            if w.is_empty() {
                return None;
            }
            let i = ((w.len() - 1) as f64 * q).round() as usize;
            w.get(i).copied()
        };
        let edges = [
            ("< 1 min", 60.0),
            ("1–5 min", 300.0),
            ("5–15 min", 900.0),
            ("15–60 min", 3600.0),
            ("> 1 h", f64::INFINITY),
        ];
        let mut lower = 0.0;
        let buckets = edges
            .iter()
            .map(|(label, upper)| {
                let n = w.iter().filter(|x| **x >= lower && **x < *upper).count();
                lower = *upper;
                (label.to_string(), n)
            })
            .collect();
        Waits {
            count: w.len(),
            median: at(0.5),
            p90: at(0.9),
            max: w.last().copied(),
            buckets,
        }
    }
}

/// Everything the overview shows.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub hours: u32,
    pub generated_at: String,
    pub denial_burst: u64,
    #[serde(flatten)]
    pub overview: Overview,
    /// Per hour (oldest first): counts by effect and by risk.
    pub effect_series: Vec<(String, BTreeMap<String, u64>)>,
    pub risk_series: Vec<(String, BTreeMap<String, u64>)>,
    pub waits: Waits,
    pub drifted_tools: Vec<Pin>,
    /// Why a part is missing (the pin store cannot be read, say): never silently empty.
    pub problems: Vec<String>,
}

/// The overview of the last `hours` hours.
pub async fn stats(st: &AppState, hours: u32) -> Result<Stats, String> {
    let hours = hours.clamp(1, MAX_HOURS);
    let now = chrono::Utc::now();
    let since = (now - chrono::Duration::hours(hours as i64 - 1))
        .format("%Y-%m-%dT%H:00:00")
        .to_string();
    let burst = st.console.as_ref().map(|c| c.cfg.denial_burst).unwrap_or(20);
    let overview = super::activity_api::read(st, move |r| r.overview(&since, burst)).await?;
    let mut problems = Vec::new();
    let drifted_tools = match st.relay.catalog().pins().cloned() {
        None => {
            problems.push("the tool pin store is unavailable: drift cannot be shown".into());
            Vec::new()
        }
        Some(pins) => match tokio::task::spawn_blocking(move || pins.list(None)).await {
            Ok(Ok(all)) => all.into_iter().filter(|p| p.state == PinState::Drifted).collect(),
            Ok(Err(e)) => {
                problems.push(format!("tool pins cannot be read: {e}"));
                Vec::new()
            }
            Err(e) => {
                problems.push(format!("tool pins cannot be read: {e}"));
                Vec::new()
            }
        },
    };
    if overview.denial_bursts_truncated {
        problems.push("more denial bursts than listed".into());
    }
    Ok(Stats {
        hours,
        generated_at: steward_store::now_rfc3339(),
        denial_burst: burst,
        effect_series: steward_store::hourly_series(&overview.by_hour_effect, now, hours),
        risk_series: steward_store::hourly_series(&overview.by_hour_risk, now, hours),
        waits: Waits::of(&overview.approval_waits),
        overview,
        drifted_tools,
        problems,
    })
}

pub async fn show(State(st): State<Arc<AppState>>, Query(q): Query<StatsQuery>) -> Response {
    match stats(&st, q.hours.unwrap_or(24)).await {
        Ok(s) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json!(s).to_string(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "stats unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"error": "unavailable", "message": "the audit log cannot be read right now"}).to_string(),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_summarise() {
        let w = Waits::of(&[10.0, 30.0, 120.0, 4000.0, f64::NAN]);
        assert_eq!(w.count, 4);
        assert_eq!(w.median, Some(120.0));
        assert_eq!(w.max, Some(4000.0));
        let counts: Vec<usize> = w.buckets.iter().map(|b| b.1).collect();
        assert_eq!(counts, vec![2, 1, 0, 0, 1]);
        assert_eq!(Waits::of(&[]).median, None);
    }
}
