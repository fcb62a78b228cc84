// Temporary timing probe (removed before hand-off).
use std::time::Instant;
use steward_policy::detect::{Detectors, shell};

fn time<F: FnMut()>(name: &str, n: u32, mut f: F) {
    for _ in 0..n / 10 { f(); }
    let t = Instant::now();
    for _ in 0..n { f(); }
    println!("{name}: {:?}", t.elapsed() / n);
}

#[path = "../benches/fixture.rs"]
mod fixture;

fn main() {
    let policy = steward_policy::Policy::from_yaml(&fixture::policy_yaml(), "b").unwrap();
    let alice = steward_policy::Principal::new("alice", "jwt");
    let small = serde_json::json!({"host": "web-01", "command": "uptime"});
    let benign = serde_json::json!({"host": "web-01", "command": fixture::command(false)});
    let call = |args| steward_policy::Call { client_name: Some("claude-code"), ..steward_policy::Call::tool_call(&alice, "it-ops", "ssh-exec", args) };
    let mode = std::env::args().nth(1).unwrap_or_default();
    if mode == "cg-small" { for _ in 0..1000 { std::hint::black_box(policy.decide(&call(&small))); } return; }
    if mode == "cg-big" { for _ in 0..1000 { std::hint::black_box(policy.decide(&call(&benign))); } return; }
    if mode == "cg-none" { return; }
    if mode == "small" { time("decide small", 2_000_000, || { std::hint::black_box(policy.decide(&call(&small))); }); return; }
    if mode == "big" { time("decide 1KB", 200_000, || { std::hint::black_box(policy.decide(&call(&benign))); }); return; }
    time("decide small", 200000, || { std::hint::black_box(policy.decide(&call(&small))); });
    time("decide 1KB", 20000, || { std::hint::black_box(policy.decide(&call(&benign))); });
    let parts = [
        "cd /srv/app && git fetch --prune origin && git status --short",
        "for f in logs/*.log; do gzip -9 \"$f\"; done",
        "tar czf /tmp/backup-$(date +%F).tgz ./data ./config",
        "ls -la /var/log | grep -v debug | sort -k5 -n | tail -20",
        "df -h / /srv && free -m && uptime",
        "journalctl -u app --since '1 hour ago' --no-pager | grep -i error | wc -l",
        "find ./tmp -name '*.tmp' -mtime +7 -print",
        "python3 -m pip list --outdated --format=columns",
        "docker ps --format '{{.Names}} {{.Status}}'",
        "curl -fsS http://localhost:8080/health || echo unhealthy",
        "awk '{print $1}' access.log | sort | uniq -c | sort -rn | head",
        "echo \"deploy finished at $(date -u +%H:%M)\" >> deploy.log",
    ];
    let mut s = String::new();
    let mut i = 0;
    while s.len() < 1000 { if !s.is_empty() { s.push_str(" && "); } s.push_str(parts[i % parts.len()]); i += 1; }
    println!("len {}", s.len());
    if std::env::args().nth(1).as_deref() == Some("cg-scan") { let d = Detectors::builtin(); for _ in 0..1000 { std::hint::black_box(d.scan_str(std::hint::black_box(&s))); } return; }
    if std::env::args().nth(1).as_deref() == Some("scan") { let d = Detectors::builtin(); time("scan", 300000, || { std::hint::black_box(d.scan_str(std::hint::black_box(&s))); }); return; }
    time("calibrate: count spaces in 1KB", 200000, || { std::hint::black_box(std::hint::black_box(&s).bytes().filter(|b| *b == b' ').count()); });
    time("calibrate: 170 pushes", 200000, || { let mut v: Vec<(u32,u32)> = Vec::new(); for i in 0..170u32 { v.push(std::hint::black_box((i, i))); } std::hint::black_box(v); });
    time("calibrate: alloc+free", 2000000, || { std::hint::black_box(Vec::<u8>::with_capacity(std::hint::black_box(32))); });
    time("lex", 20000, || { std::hint::black_box(shell::lex(std::hint::black_box(&s))); });
    let plain = "abcdefg hijk lmnop qrs ".repeat(43);
    time("lex plain words", 20000, || { std::hint::black_box(shell::lex(std::hint::black_box(&plain))); });
    let nosub = s.replace("$(", "x(");
    time("lex no substitutions", 20000, || { std::hint::black_box(shell::lex(std::hint::black_box(&nosub))); });
    let noquote = nosub.replace('\'', "").replace('"', "");
    time("lex no quotes", 20000, || { std::hint::black_box(shell::lex(std::hint::black_box(&noquote))); });
    let sc = shell::lex(&s);
    time("texts+commands", 20000, || { let t = sc.texts(); std::hint::black_box(sc.commands(&t).len()); });
    let d = Detectors::builtin();
    time("builtin scan_str", 20000, || { std::hint::black_box(d.scan_str(std::hint::black_box(&s))); });
    let none = Detectors::none();
    time("none scan_str", 20000, || { std::hint::black_box(none.scan_str(std::hint::black_box(&s))); });
    time("uptime", 200000, || { std::hint::black_box(d.scan_str(std::hint::black_box("uptime"))); });
    time("web-01", 200000, || { std::hint::black_box(d.scan_str(std::hint::black_box("web-01"))); });
}
