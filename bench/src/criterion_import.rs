//! Criterion results (policy decisions, audit append/verify) read from `target/criterion`, so
//! the table shows them beside the end-to-end numbers without running them twice.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct CriterionEntry {
    pub id: String,
    pub median_ns: f64,
    pub mean_ns: f64,
    /// Elements per iteration, when the bench declared a throughput.
    pub elements: Option<u64>,
    /// Seconds since the result was written.
    pub age_s: u64,
}

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
    #[serde(default)]
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
struct Throughput {
    #[serde(rename = "Elements", default)]
    elements: Option<u64>,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Every result under `criterion_dir` whose id starts with one of `prefixes`.
pub fn load(criterion_dir: &Path, prefixes: &[&str]) -> Vec<CriterionEntry> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(criterion_dir) else {
        return out;
    };
    for entry in dir.flatten() {
        let new = entry.path().join("new");
        let Ok(bench) = std::fs::read(new.join("benchmark.json")) else {
            continue;
        };
        let Ok(bench) = serde_json::from_slice::<Benchmark>(&bench) else {
            continue;
        };
        if !prefixes.iter().any(|p| bench.full_id.starts_with(p)) {
            continue;
        }
        let estimates_path = new.join("estimates.json");
        let Ok(est) = std::fs::read(&estimates_path) else {
            continue;
        };
        let Ok(est) = serde_json::from_slice::<Estimates>(&est) else {
            continue;
        };
        let age_s = std::fs::metadata(&estimates_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map_or(0, |d| d.as_secs());
        out.push(CriterionEntry {
            id: bench.full_id,
            median_ns: est.median.point_estimate,
            mean_ns: est.mean.point_estimate,
            elements: bench.throughput.and_then(|t| t.elements),
            age_s,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}
