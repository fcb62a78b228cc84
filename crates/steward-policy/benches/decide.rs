//! Decision latency: a 100-rule policy, every detector on, a 1 KB shell command argument.
//!
//! Run: `cargo bench -p steward-policy --bench decide -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use steward_policy::{Call, Policy, Principal};

mod fixture;
use fixture::{command, policy_yaml};

fn benches(c: &mut Criterion) {
    let policy = Policy::from_yaml(&policy_yaml(), "bench.yaml").expect("the bench policy loads");
    assert_eq!(policy.rule_count(), 100);
    let alice = Principal::new("alice", "jwt");
    let benign = json!({"host": "web-01", "command": command(false)});
    let dangerous = json!({"host": "web-01", "command": command(true)});
    let small = json!({"host": "web-01", "command": "uptime"});
    let at_noon =
        std::time::SystemTime::from(chrono::DateTime::parse_from_rfc3339("2026-03-03T12:00:00+01:00").unwrap());
    let call = |args| Call {
        client_name: Some("claude-code"),
        now: at_noon,
        ..Call::tool_call(&alice, "it-ops", "ssh-exec", args)
    };

    let d = policy.decide(&call(&benign));
    assert_eq!((d.effect.as_str(), d.flags.len()), ("allow", 0), "{d:?}");
    let d = policy.decide(&call(&dangerous));
    assert_eq!(d.effect.as_str(), "deny", "{d:?}");

    c.bench_function("decide/100 rules, 1 KB command", |b| {
        b.iter(|| policy.decide(black_box(&call(&benign))))
    });
    c.bench_function("decide/100 rules, 1 KB command, sudo rm -rf /", |b| {
        b.iter(|| policy.decide(black_box(&call(&dangerous))))
    });
    c.bench_function("decide/100 rules, small args", |b| {
        b.iter(|| policy.decide(black_box(&call(&small))))
    });
    let other = json!({"amount": 250});
    c.bench_function("decide/100 rules, other server", |b| {
        b.iter(|| {
            policy.decide(black_box(&Call {
                now: at_noon,
                ..Call::tool_call(&alice, "srv04", "create_invoice", &other)
            }))
        })
    });
    let detectors = policy.detectors().clone();
    c.bench_function("detectors/1 KB command", |b| {
        b.iter(|| detectors.scan(black_box(&benign)))
    });
    // Distinct commands each time: the argument cache never answers, the parser does the work.
    let variants: Vec<serde_json::Value> = (0..1024)
        .map(|i| json!({"host": "web-01", "command": format!("{} # run {i}", command(false))}))
        .collect();
    let mut i = 0;
    c.bench_function("decide/100 rules, 1 KB command, uncached", |b| {
        b.iter(|| {
            i = (i + 1) % variants.len();
            policy.decide(black_box(&call(&variants[i])))
        })
    });
    c.bench_function("explain/100 rules, 1 KB command", |b| {
        b.iter(|| policy.explain(black_box(&call(&benign))))
    });
}

criterion_group!(decide, benches);
criterion_main!(decide);
