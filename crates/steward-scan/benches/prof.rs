//! Load-robust timing (minimum over repetitions) of the scanner's public entry points, for
//! comparing builds on a shared machine: `cargo bench -p steward-scan --bench prof`.
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_scan::{OutputAction, OutputPolicy};

fn min_time(mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..30 {
        let t = Instant::now();
        for _ in 0..3 {
            f();
        }
        best = best.min(t.elapsed() / 3);
    }
    best
}

fn main() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/toollists/server-filesystem.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("json");
    let tools = doc["tools"].as_array().cloned().unwrap_or_default();
    let d = min_time(|| {
        for t in &tools {
            std::hint::black_box(steward_scan::scan_tool(t));
        }
    });
    println!("describe server-filesystem tools/list ({} tools): {d:?}", tools.len());
    // `PROF_ONLY=describe` stops here (for a profiler).
    if std::env::var("PROF_ONLY").is_ok_and(|v| v == "describe") {
        return;
    }
    let prose = "the server returned a list of files and directories with sizes in bytes sorted by name ".repeat(745);
    let mut logs = String::new();
    let mut i: u64 = 0;
    while logs.len() < 64 * 1024 {
        i += 1;
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        logs.push_str(&format!(
            "2024-05-{:02}T10:{:02}:{:02}Z INFO auth ok key_id={} token_count={} request={:016x} path=/api/items/{} status=200 took={}ms\n",
            1 + i % 28, i % 60, (i * 7) % 60, h % 1000, h % 4096, h, i, h % 997
        ));
    }
    for (name, text) in [("prose", &prose), ("logs", &logs)] {
        let v = json!({"content": [{"type": "text", "text": text}]});
        for (pname, pol) in [
            ("baseline", OutputPolicy::baseline()),
            ("secrets+pii", OutputPolicy::all(OutputAction::Redact)),
        ] {
            let d = min_time(|| {
                let mut x = v.clone();
                std::hint::black_box(steward_scan::redact_result(&mut x, &pol));
            });
            println!("redact_result {pname} 64 KiB {name}: {d:?}");
        }
    }
}
