// Temporary timing probe (removed before hand-off).
use std::time::Instant;
use steward_policy::detect::{Detectors, shell};

fn time<F: FnMut()>(name: &str, n: u32, mut f: F) {
    for _ in 0..n / 10 { f(); }
    let t = Instant::now();
    for _ in 0..n { f(); }
    println!("{name}: {:?}", t.elapsed() / n);
}

fn main() {
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
    time("lex", 20000, || { std::hint::black_box(shell::lex(std::hint::black_box(&s))); });
    let sc = shell::lex(&s);
    time("commands()", 20000, || { std::hint::black_box(sc.commands().count()); });
    let d = Detectors::builtin();
    time("builtin scan_str", 20000, || { std::hint::black_box(d.scan_str(std::hint::black_box(&s))); });
    let none = Detectors::none();
    time("none scan_str", 20000, || { std::hint::black_box(none.scan_str(std::hint::black_box(&s))); });
    time("uptime", 200000, || { std::hint::black_box(d.scan_str(std::hint::black_box("uptime"))); });
    time("web-01", 200000, || { std::hint::black_box(d.scan_str(std::hint::black_box("web-01"))); });
}
