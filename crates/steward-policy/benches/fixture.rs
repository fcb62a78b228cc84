//! The benchmark's policy and arguments, shared with other benchmarks.

use std::fmt::Write;

/// 12 rules on the tool under test (as a real deployment writes them), 88 on other servers.
pub fn policy_yaml() -> String {
    let mut y = String::from(
        r#"version: 1
default: deny
timezone: Europe/Berlin
roles:
  operator: [monitoring, ssh-linux, remote-exec, service-control]
  admin: [monitoring, ssh-linux, remote-exec, service-control, local-sudo]
principals:
  alice: { roles: [operator], attributes: { department: ops, level: 3 } }
tools:
  - match: it-ops/ssh-exec
    risk: HIGH
    requires: [ssh-linux, remote-exec]
    operations:
      - name: sudo
        when: '"privilege-escalation" in call.flags'
        risk: CRITICAL
        requires: [local-sudo]
        approval: always
  - match: "srv*/*"
    risk: MEDIUM
rules:
  - id: never-destroy-a-host
    match: "*/*"
    when: 'call.risk == "CRITICAL" && call.flags.exists(f, f in ["destructive-fs", "disk", "infra-destroy"])'
    effect: deny
  - id: known-clients
    match: it-ops/ssh-exec
    when: 'request.client_name != null && !(request.client_name in ["claude-code", "cursor"])'
    effect: deny
  - id: night
    match: it-ops/*
    when: 'time.hour < 7 || time.hour >= 19 || time.weekday in ["Sat", "Sun"]'
    effect: approve
  - id: prod-is-ops-only
    match: it-ops/ssh-exec
    when: 'has(args.host) && args.host.startsWith("prod-") && principal.attributes.department != "ops"'
    effect: deny
  - id: huge-commands
    match: it-ops/ssh-exec
    when: 'size(args.command) > 4096'
    effect: approve
  - id: no-shutdown
    match: it-ops/ssh-exec
    when: 'args.command.matches("(?i)\\bshutdown\\b")'
    effect: deny
  - id: senior-operators
    match: it-ops/ssh-exec
    when: '"operator" in principal.roles && principal.attributes.level >= 2'
    effect: allow
  - id: trial-corp-hosts
    match: it-ops/ssh-exec
    mode: shadow
    when: 'args.host.endsWith(".corp") && request.source == null'
    effect: deny
  - id: exfiltration
    match: "*/*"
    when: '"exfiltration" in call.flags || "credential-access" in call.flags'
    effect: approve
  - id: anonymous-high-risk
    match: "*/*"
    when: 'principal.auth == "" && call.risk in ["HIGH", "CRITICAL"]'
    effect: deny
  - id: read-only-tools
    match: "*/*"
    when: 'has(tool.annotations.readOnlyHint) && tool.annotations.readOnlyHint'
    effect: allow
  - id: overview
    match: it-ops/system-overview
    effect: allow
"#,
    );
    for i in 0..88 {
        let server = format!("srv{:02}", i % 22);
        let (pattern, when) = match i % 4 {
            0 => (format!("{server}/create_*"), format!("args.amount > {}", 100 * i)),
            1 => (
                format!("{server}/delete_item"),
                "!(\"admin\" in principal.roles)".to_string(),
            ),
            2 => (
                format!("{server}/*"),
                format!("principal.attributes.department == \"dept{i}\""),
            ),
            _ => (
                format!("{server}/export"),
                format!("request.client_name == \"client{i}\" && time.hour > 8"),
            ),
        };
        let effect = ["allow", "deny", "approve"][i % 3];
        writeln!(
            y,
            "  - id: rule-{i}\n    match: \"{pattern}\"\n    when: '{when}'\n    effect: {effect}"
        )
        .unwrap();
    }
    y.push_str(
        r#"risk_effects: { LOW: allow, MEDIUM: allow, HIGH: approve_if_dangerous, CRITICAL: approve }
detectors:
  builtin: true
  custom:
    - name: production-database
      flag: prod-data
      regex: ['\bprod(uction)?-db\d*\b']
    - name: secrets-tools
      words: [vault read, aws secretsmanager]
"#,
    );
    y
}

/// A 1 KB maintenance script of the kind agents send: chains, pipes, quotes, loops.
pub fn command(dangerous: bool) -> String {
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
    while s.len() < 1000 {
        if !s.is_empty() {
            s.push_str(" && ");
        }
        s.push_str(parts[i % parts.len()]);
        i += 1;
    }
    if dangerous {
        s.push_str("; sudo rm -rf --no-preserve-root /");
    }
    s
}
