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

/// Every result under `criterion_dir` whose id starts with one of `prefixes`. Results of a
/// benchmark group sit one directory deeper (`criterion/<group>/<function>/new`).
pub fn load(criterion_dir: &Path, prefixes: &[&str]) -> Vec<CriterionEntry> {
    let mut out = Vec::new();
    let mut dirs = vec![(criterion_dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir()
                || path
                    .file_name()
                    .is_some_and(|n| n == "report" || n == "new" || n == "base" || n == "change")
            {
                continue;
            }
            match read_result(&path.join("new"), prefixes) {
                Some(e) => out.push(e),
                None if depth < 1 => dirs.push((path, depth + 1)),
                None => {}
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn read_result(new: &Path, prefixes: &[&str]) -> Option<CriterionEntry> {
    let bench: Benchmark = serde_json::from_slice(&std::fs::read(new.join("benchmark.json")).ok()?).ok()?;
    if !prefixes.iter().any(|p| bench.full_id.starts_with(p)) {
        return None;
    }
    let estimates_path = new.join("estimates.json");
    let est: Estimates = serde_json::from_slice(&std::fs::read(&estimates_path).ok()?).ok()?;
    let age_s = std::fs::metadata(&estimates_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0, |d| d.as_secs());
    Some(CriterionEntry {
        id: bench.full_id,
        median_ns: est.median.point_estimate,
        mean_ns: est.mean.point_estimate,
        elements: bench.throughput.and_then(|t| t.elements),
        age_s,
    })
}
