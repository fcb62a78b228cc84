//! Output protection and description scanning cost: 64 KiB results (prose with no keyword,
//! log lines that wake the prefilter, the same with secrets and PII to redact) and the
//! description scan of a real tool list.
//!
//! Run: `cargo bench -p steward-scan --bench scan -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use steward_scan::{self as scan, OutputAction, OutputPolicy};

const SIZE: usize = 64 * 1024;

/// Prose without any secret keyword: the prefilter finds nothing, no secret regex runs.
fn prose() -> String {
    let words = [
        "the",
        "server",
        "returned",
        "a",
        "list",
        "of",
        "files",
        "and",
        "directories",
        "with",
        "sizes",
        "in",
        "bytes",
        "sorted",
        "by",
        "name",
    ];
    let mut out = String::with_capacity(SIZE + 16);
    let mut i = 0usize;
    while out.len() < SIZE {
        out.push_str(words[(i * 7 + i / 3) % words.len()]);
        out.push(if i % 13 == 12 { '\n' } else { ' ' });
        i += 1;
    }
    out
}

/// Log lines full of prefilter keywords (`token`, `key`, `auth`) and digits, but no secret.
fn logs() -> String {
    let mut out = String::with_capacity(SIZE + 200);
    let mut i: u64 = 0;
    while out.len() < SIZE {
        i += 1;
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        out.push_str(&format!(
            "2024-05-{:02}T10:{:02}:{:02}Z INFO auth ok key_id={} token_count={} request={:016x} path=/api/items/{} status=200 took={}ms\n",
            1 + i % 28,
            i % 60,
            (i * 7) % 60,
            h % 1000,
            h % 4096,
            h,
            i,
            h % 997
        ));
    }
    out
}

/// The log with an AWS key, a GitHub token, an email and a card every ~4 KiB.
fn leaky() -> String {
    let base = logs();
    let mut out = String::with_capacity(SIZE + 4096);
    for (n, line) in base.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if n % 30 == 29 {
            out.push_str(&format!(
                "AWS_ACCESS_KEY_ID=AKIA{} GITHUB_TOKEN=ghp_{} contact=ops{n}@example.com card 4111 1111 1111 1111\n",
                "IOSFODNN7EXAMPLE", "0123456789abcdefghijklmnopqrstuvwxyZ"
            ));
        }
    }
    out
}

fn result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("output");
    g.throughput(Throughput::Bytes(SIZE as u64));
    let baseline = OutputPolicy::baseline();
    let all = OutputPolicy::all(OutputAction::Redact);
    for (name, text) in [("prose", prose()), ("logs", logs()), ("leaky logs", leaky())] {
        g.bench_function(format!("scan_text/64 KiB {name}"), |b| {
            b.iter(|| scan::scan_text(black_box(&text)))
        });
        let r = result(&text);
        g.bench_function(format!("redact_result baseline/64 KiB {name}"), |b| {
            b.iter_batched(
                || r.clone(),
                |mut v| scan::redact_result(&mut v, &baseline),
                criterion::BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("redact_result secrets+pii/64 KiB {name}"), |b| {
            b.iter_batched(
                || r.clone(),
                |mut v| scan::redact_result(&mut v, &all),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/toollists/server-filesystem.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("fixture JSON");
    let tools = doc["tools"].as_array().cloned().unwrap_or_default();
    c.bench_function("describe/server-filesystem tools/list (14 tools)", |b| {
        b.iter(|| tools.iter().map(|t| scan::scan_tool(black_box(t)).len()).sum::<usize>())
    });
}

criterion_group!(scan_benches, benches);
criterion_main!(scan_benches);
