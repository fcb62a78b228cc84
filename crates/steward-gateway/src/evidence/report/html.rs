//! The report as one self-contained HTML5 file: inline CSS and SVG, no script, no external
//! resource (a CSP meta tag says so to the browser), printable to PDF.
//!
//! Written with `write!` and one escape function: the page is a fixed layout of tables, and a
//! template engine would add a dependency and a build step for it.

use std::fmt::Write;

use super::model::*;
use super::svg;

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(esc).unwrap_or_else(|| "–".into())
}

fn num(key: &str, v: impl std::fmt::Display) -> String {
    format!(r#"<span class="num" data-key="{key}">{v}</span>"#)
}

fn secs(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) if s < 7200.0 => format!("{:.1}m", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

const CSS: &str = r#"
:root { --ink:#1d2330; --muted:#5b6475; --line:#d9dde5; --ok:#2e7d32; --bad:#c62828; --warn:#ef6c00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0 auto; max-width: 1040px; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 6px; padding-top: 8px; border-top: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p, li { color: var(--ink); }
.meta { color: var(--muted); margin: 0 0 2px; }
.controls { color: var(--muted); font-size: 12px; margin: 0 0 10px; }
.controls span { display: inline-block; border: 1px solid var(--line); border-radius: 3px; padding: 0 5px; margin-right: 4px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 12.5px; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); padding: 4px 6px; }
th { background: #f3f5f8; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 14px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.card .num { display: block; font-size: 22px; font-weight: 600; }
.card small { color: var(--muted); }
figure.chart { margin: 8px 0 16px; }
figcaption { color: var(--muted); font-size: 12px; }
.verdict { border-radius: 6px; padding: 10px 14px; font-weight: 600; }
.verdict.ok { background: #e8f5e9; color: var(--ok); border: 1px solid #a5d6a7; }
.verdict.bad { background: #ffebee; color: var(--bad); border: 1px solid #ef9a9a; }
.tag-bad { color: var(--bad); font-weight: 600; }
.tag-warn { color: var(--warn); font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12px; word-break: break-all; }
nav ol { columns: 2; margin: 6px 0 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav { display: none; }
  section { break-inside: auto; }
  h2 { break-before: auto; break-after: avoid; }
  table, figure { break-inside: avoid; }
}
"#;

fn section_open(out: &mut String, id: &str, n: usize, controls: &[&str]) {
    let title = SECTIONS.iter().find(|(s, _)| *s == id).map(|(_, t)| *t).unwrap_or(id);
    let _ = write!(
        out,
        r#"<section id="{id}" data-section="{id}"><h2>{n}. {}</h2><p class="controls">Evidence for "#,
        esc(title)
    );
    for c in controls {
        let _ = write!(out, "<span>{}</span>", esc(c));
    }
    out.push_str("</p>");
}

fn table(out: &mut String, head: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        let _ = write!(out, r#"<p class="empty">{}</p>"#, esc(empty));
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in head {
        let class = if h.starts_with('#') { r#" class="n""# } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(h.trim_start_matches('#')));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for (i, cell) in r.iter().enumerate() {
            let class = if head.get(i).is_some_and(|h| h.starts_with('#')) {
                r#" class="n""#
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn figure(out: &mut String, chart: &str, svg: String, caption: &str) {
    let _ = write!(
        out,
        r#"<figure class="chart" data-chart="{chart}">{svg}<figcaption>{}</figcaption></figure>"#,
        esc(caption)
    );
}

fn card(out: &mut String, key: &str, v: impl std::fmt::Display, label: &str) {
    let _ = write!(
        out,
        r#"<div class="card">{}<small>{}</small></div>"#,
        num(key, v),
        esc(label)
    );
}

fn pairs(map: &std::collections::BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="steward {}">
<title>{} — {} to {}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{}</h1>"#,
        env!("CARGO_PKG_VERSION"),
        esc(&r.title),
        esc(&r.period.since),
        esc(&r.period.until),
        esc(&r.title)
    );
    let _ = write!(
        o,
        r#"<p class="meta">Period: <b>{}</b> to <b>{}</b> (UTC). Generated {}.</p><p class="meta">Audit database <code>{}</code>{}; policy <code>{}</code>{}.</p></header>"#,
        esc(&r.period.since),
        esc(&r.period.until),
        esc(&r.generated_at),
        esc(&r.sources.database),
        r.sources
            .config
            .as_deref()
            .map(|c| format!(" (config <code>{}</code>)", esc(c)))
            .unwrap_or_default(),
        esc(&r.sources.policy),
        r.sources
            .registry
            .as_deref()
            .map(|g| format!("; registry <code>{}</code>", esc(g)))
            .unwrap_or_default()
    );

    o.push_str(r##"<nav><b>Contents</b><ol><li><a href="#controls">Control mapping</a></li>"##);
    for (id, title) in SECTIONS {
        let _ = write!(o, r##"<li><a href="#{id}">{}</a></li>"##, esc(title));
    }
    o.push_str("</ol></nav>");

    // Control mapping.
    o.push_str(r#"<section id="controls" data-section="controls"><h2>Control mapping</h2>"#);
    let rows = r
        .controls
        .iter()
        .map(|c| {
            vec![
                esc(c.framework),
                format!("<b>{}</b>", esc(c.id)),
                esc(c.title),
                c.sections
                    .iter()
                    .map(|s| {
                        let t = SECTIONS.iter().find(|(id, _)| id == s).map(|(_, t)| *t).unwrap_or(s);
                        format!(r##"<a href="#{s}">{}</a>"##, esc(t))
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    table(&mut o, &["Framework", "Control", "What it asks", "Evidence"], rows, "");
    o.push_str("</section>");

    access(&mut o, &r.access);
    decisions(&mut o, &r.decisions);
    approvals(&mut o, &r.approvals);
    denials(&mut o, &r.denials);
    keys(&mut o, &r.api_keys);
    registry(&mut o, &r.registry);
    drift(&mut o, &r.tool_drift);
    canaries(&mut o, &r.canaries_and_redaction);
    integrity(&mut o, &r.integrity);

    if !r.limits.is_empty() {
        o.push_str(r#"<section id="limits" data-section="limits"><h2>Listings cut short</h2><ul>"#);
        for l in &r.limits {
            let _ = write!(o, "<li>{}</li>", esc(l));
        }
        o.push_str("</ul></section>");
    }
    let _ = write!(
        o,
        "<footer>Generated by Steward {} from the hash-chained audit log. The same content is available as JSON (<code>steward report --format json</code>).</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    o
}

fn access(o: &mut String, a: &AccessSection) {
    section_open(o, "access", 1, &a.controls);
    let p = &a.policy;
    let _ = write!(
        o,
        "<p>Policy <code>{}</code>, version <code>{}</code>: default <b>{}</b>, mode {}, approvals in {} mode.</p>",
        esc(&p.source),
        esc(&p.version),
        esc(&p.default_effect),
        esc(&p.mode),
        esc(&p.approval_mode)
    );
    o.push_str("<h3>Roles and capabilities</h3>");
    table(
        o,
        &["Role", "Capabilities", "May call"],
        p.roles
            .iter()
            .map(|r| {
                vec![
                    format!("<b>{}</b>", esc(&r.name)),
                    esc(&r.capabilities.join(", ")),
                    esc(&r.may_call.join("; ")),
                ]
            })
            .collect(),
        "The policy defines no roles.",
    );
    o.push_str("<h3>Named principals</h3>");
    table(
        o,
        &["Principal", "Roles"],
        p.principals
            .iter()
            .map(|x| vec![esc(&x.id), esc(&x.roles.join(", "))])
            .collect(),
        "The policy names no principals (roles come from API keys and tokens).",
    );
    o.push_str("<h3>Tool classes</h3>");
    table(
        o,
        &["Tools", "Risk", "Requires", "Approval", "Approvers", "Operations"],
        p.tools
            .iter()
            .map(|t| {
                vec![
                    format!("<code>{}</code>", esc(&t.tools)),
                    opt(&t.risk),
                    esc(&t.requires.join(", ")),
                    opt(&t.approval),
                    opt(&t.approvers),
                    esc(&t.operations.join(", ")),
                ]
            })
            .collect(),
        "No tool classes: unclassified tools take their risk from MCP annotations.",
    );
    o.push_str("<h3>Rules</h3>");
    table(
        o,
        &["Rule", "Effect", "Tools", "Reason"],
        p.rules
            .iter()
            .map(|r| {
                vec![
                    format!("<code>{}</code>{}", esc(&r.id), if r.shadow { " (shadow)" } else { "" }),
                    esc(&r.effect),
                    format!("<code>{}</code>", esc(&r.tools)),
                    opt(&r.reason),
                ]
            })
            .collect(),
        "No rules.",
    );
    o.push_str("<h3>Risk levels without a rule</h3>");
    table(
        o,
        &["Risk", "Effect"],
        p.risk_effects.iter().map(|(r, e)| vec![esc(r), esc(e)]).collect(),
        "",
    );
    o.push_str("<h3>Policy versions in force</h3>");
    table(
        o,
        &["Version", "First decision", "Last decision", "#Decisions"],
        a.versions
            .iter()
            .map(|v| {
                vec![
                    format!("<code>{}</code>", esc(&v.version)),
                    esc(&v.first_seen),
                    esc(&v.last_seen),
                    v.decisions.to_string(),
                ]
            })
            .collect(),
        "No decisions in the period.",
    );
    o.push_str("<h3>Policy changes</h3>");
    table(
        o,
        &["When", "From", "To", "Source"],
        a.changes
            .iter()
            .map(|c| vec![esc(&c.ts), opt(&c.old_version), opt(&c.new_version), opt(&c.source)])
            .collect(),
        "The policy was not reloaded in the period.",
    );
    o.push_str("<h3>Principals that made calls</h3>");
    table(
        o,
        &["Principal", "#Calls"],
        a.principals.iter().map(|(p, n)| vec![esc(p), n.to_string()]).collect(),
        "No calls in the period.",
    );
    o.push_str("</section>");
}

fn decisions(o: &mut String, d: &DecisionsSection) {
    section_open(o, "decisions", 2, &d.controls);
    o.push_str(r#"<div class="cards">"#);
    card(o, "decisions.total", d.total, "tool calls decided");
    for (effect, _) in svg::EFFECT_COLORS {
        card(
            o,
            &format!("decisions.by_effect.{effect}"),
            d.by_effect.get(effect).copied().unwrap_or(0),
            effect,
        );
    }
    o.push_str("</div>");
    figure(
        o,
        "decisions_by_day",
        svg::stacked_days("chart-days", "Decisions per day by effect", &d.by_day),
        "Tool-call decisions per UTC day, stacked by effect.",
    );
    let mut risks: Vec<(String, u64)> = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
        .iter()
        .map(|r| (r.to_string(), d.by_risk.get(*r).copied().unwrap_or(0)))
        .collect();
    risks.extend(
        d.by_risk
            .iter()
            .filter(|(k, _)| !["CRITICAL", "HIGH", "MEDIUM", "LOW"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), *v)),
    );
    figure(
        o,
        "decisions_by_risk",
        svg::hbars("chart-risk", "Decisions by risk", &risks, &svg::risk_color),
        "Tool-call decisions by the risk the policy assigned.",
    );
    let servers = pairs(&d.by_server);
    figure(
        o,
        "decisions_by_server",
        svg::hbars(
            "chart-server",
            "Decisions by server",
            &servers[..servers.len().min(15)],
            &svg::plain,
        ),
        "Tool-call decisions by upstream server (the 15 busiest).",
    );
    table(
        o,
        &["Server", "#Decisions"],
        servers.iter().map(|(s, n)| vec![esc(s), n.to_string()]).collect(),
        "No decisions in the period.",
    );
    o.push_str("<h3>Per day</h3>");
    table(
        o,
        &["Day", "#allow", "#ask", "#approve", "#deny"],
        d.by_day
            .iter()
            .map(|x| {
                vec![
                    esc(&x.day),
                    x.allow.to_string(),
                    x.ask.to_string(),
                    x.approve.to_string(),
                    x.deny.to_string(),
                ]
            })
            .collect(),
        "No decisions in the period.",
    );
    o.push_str("<h3>By door and event kind</h3>");
    table(
        o,
        &["Door", "#Decisions"],
        pairs(&d.by_door)
            .iter()
            .map(|(s, n)| vec![esc(s), n.to_string()])
            .collect(),
        "",
    );
    table(
        o,
        &["Audit event kind", "#Events"],
        pairs(&d.events_by_kind)
            .iter()
            .map(|(s, n)| vec![esc(s), n.to_string()])
            .collect(),
        "No audit events in the period.",
    );
    o.push_str("</section>");
}

fn approvals(o: &mut String, a: &ApprovalsSection) {
    section_open(o, "approvals", 3, &a.controls);
    o.push_str(r#"<div class="cards">"#);
    card(o, "approvals.total", a.total, "approvals requested or decided");
    card(o, "approvals.wait.decided", a.wait.decided, "decided");
    card(o, "approvals.wait.median", secs(a.wait.median_seconds), "median wait");
    card(
        o,
        "approvals.wait.p95",
        secs(a.wait.p95_seconds),
        "95th percentile wait",
    );
    o.push_str("</div>");
    figure(
        o,
        "approval_wait",
        svg::hbars("chart-wait", "Approval waiting time", &a.wait.histogram, &svg::plain),
        "How long decided approvals waited from request to decision.",
    );
    table(
        o,
        &["State", "#Approvals"],
        pairs(&a.by_state)
            .iter()
            .map(|(s, n)| vec![esc(s), n.to_string()])
            .collect(),
        "",
    );
    table(
        o,
        &[
            "Approval",
            "Requester",
            "Call",
            "Risk",
            "Why it needed approval",
            "Approvers",
            "Outcome",
            "Requested",
            "Wait",
        ],
        a.items
            .iter()
            .map(|x| {
                let votes = x
                    .approvers
                    .iter()
                    .map(|v| {
                        format!(
                            "{} at {}{}",
                            esc(&v.by),
                            esc(&v.at),
                            v.reason.as_deref().map(|r| format!(": {}", esc(r))).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("<br>");
                let outcome = format!(
                    "{}{}{}",
                    esc(&x.state),
                    x.decided_by
                        .as_deref()
                        .map(|b| format!(" by {}", esc(b)))
                        .unwrap_or_default(),
                    x.decision_reason
                        .as_deref()
                        .map(|r| format!(": {}", esc(r)))
                        .unwrap_or_default()
                );
                vec![
                    format!("<code>{}</code>", esc(&x.id)),
                    esc(&x.requester),
                    format!("<code>{}/{}</code>", esc(&x.server), esc(&x.tool)),
                    esc(&x.risk),
                    esc(&x.reasons.join("; ")),
                    if votes.is_empty() { "–".into() } else { votes },
                    outcome,
                    esc(&x.created_at),
                    secs(x.wait_seconds),
                ]
            })
            .collect(),
        "No approvals in the period.",
    );
    o.push_str("</section>");
}

fn event_rows(items: &[EventItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .rev()
        .map(|x| {
            vec![
                x.seq.to_string(),
                esc(&x.ts),
                opt(&x.principal),
                format!("<code>{}/{}</code>", opt(&x.server), opt(&x.tool)),
                opt(&x.risk),
                opt(&x.reason),
                esc(&x.rule_ids.join(", ")),
            ]
        })
        .collect()
}

fn denials(o: &mut String, d: &DenialsSection) {
    section_open(o, "denials", 4, &d.controls);
    o.push_str(r#"<div class="cards">"#);
    card(o, "denials.denied_calls", d.denied_calls, "calls denied");
    card(
        o,
        "denials.blocked_tools",
        d.blocked_tools,
        "tools hidden for their definition",
    );
    card(
        o,
        "denials.refused_messages",
        d.refused_messages,
        "messages refused before the policy",
    );
    o.push_str("</div>");
    figure(
        o,
        "top_deny_reasons",
        svg::hbars("chart-deny", "Top reasons for denial", &d.top_reasons, &svg::deny_color),
        "The ten most frequent reasons calls were denied.",
    );
    o.push_str("<h3>Top reasons</h3>");
    table(
        o,
        &["Reason", "#Calls"],
        d.top_reasons.iter().map(|(r, n)| vec![esc(r), n.to_string()]).collect(),
        "No call was denied in the period.",
    );
    o.push_str("<h3>By rule</h3>");
    table(
        o,
        &["Rule", "#Calls"],
        d.by_rule
            .iter()
            .map(|(r, n)| vec![format!("<code>{}</code>", esc(r)), n.to_string()])
            .collect(),
        "No rule denied a call in the period.",
    );
    o.push_str("<h3>Denied calls, newest first</h3>");
    table(
        o,
        &["#Seq", "When", "Principal", "Call", "Risk", "Reason", "Rules"],
        event_rows(&d.recent),
        "No call was denied in the period.",
    );
    o.push_str("</section>");
}

fn key_rows(items: &[KeyItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|k| {
            vec![
                format!("<code>{}</code>", esc(&k.id)),
                opt(&k.name),
                esc(&k.principal),
                esc(&k.roles.join(", ")),
                esc(&k.created),
                opt(&k.expires),
                opt(&k.revoked),
            ]
        })
        .collect()
}

fn keys(o: &mut String, k: &KeysSection) {
    section_open(o, "api_keys", 5, &k.controls);
    o.push_str(r#"<div class="cards">"#);
    card(o, "api_keys.created", k.created.len(), "created");
    card(o, "api_keys.revoked", k.revoked.len(), "revoked");
    card(o, "api_keys.expired", k.expired.len(), "expired");
    card(o, "api_keys.active", k.active, "active now");
    o.push_str("</div>");
    let head = ["Key", "Name", "Principal", "Roles", "Created", "Expires", "Revoked"];
    o.push_str("<h3>Created</h3>");
    table(o, &head, key_rows(&k.created), "No key was created in the period.");
    o.push_str("<h3>Revoked</h3>");
    table(o, &head, key_rows(&k.revoked), "No key was revoked in the period.");
    o.push_str("<h3>Expired</h3>");
    table(o, &head, key_rows(&k.expired), "No key expired in the period.");
    o.push_str("</section>");
}

fn registry(o: &mut String, g: &RegistrySection) {
    section_open(o, "registry", 6, &g.controls);
    if !g.configured {
        o.push_str(r#"<p class="empty">No registry was given (<code>registry:</code> in steward.yaml, or <code>--registry FILE</code>): which servers are approved is not evidenced here.</p></section>"#);
        return;
    }
    let _ = write!(
        o,
        "<p>Registry <code>{}</code>, owner {}, review every {}.</p>",
        esc(g.source.as_deref().unwrap_or("")),
        opt(&g.owner),
        g.review_cadence_days
            .map(|d| format!("{d} days"))
            .unwrap_or_else(|| "– (no review_cadence_days)".into())
    );
    o.push_str(r#"<div class="cards">"#);
    card(o, "registry.entries", g.entries.len(), "entries");
    card(o, "registry.expired", g.expired, "approvals expired");
    card(o, "registry.past_review", g.past_review, "past their review date");
    o.push_str("</div>");
    table(
        o,
        &[
            "Server",
            "Status",
            "Owner",
            "Version",
            "Risk",
            "Data scope",
            "Approved",
            "Expires",
            "Review due",
        ],
        g.entries
            .iter()
            .map(|e| {
                let flag = |on: bool, text: &str, v: String| {
                    if on {
                        format!(r#"{v} <span class="tag-bad">{text}</span>"#)
                    } else {
                        v
                    }
                };
                vec![
                    format!("<b>{}</b>", esc(&e.name)),
                    esc(&e.status),
                    opt(&e.owner),
                    opt(&e.version),
                    opt(&e.risk),
                    opt(&e.data_scope),
                    opt(&e.approved_date),
                    flag(e.expired, "expired", opt(&e.expires)),
                    flag(e.past_review, "overdue", opt(&e.review_due)),
                ]
            })
            .collect(),
        "The registry has no entries.",
    );
    o.push_str("</section>");
}

fn pin_rows(items: &[PinItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|p| {
            vec![
                format!("<code>{}/{}</code>", esc(&p.server), esc(&p.tool)),
                format!("<code>{}</code>", esc(&p.fingerprint)),
                p.current_fingerprint
                    .as_deref()
                    .map(|f| format!("<code>{}</code>", esc(f)))
                    .unwrap_or_else(|| "–".into()),
                opt(&p.drifted_at),
                opt(&p.approved_by),
                opt(&p.approved_at),
            ]
        })
        .collect()
}

fn drift(o: &mut String, d: &DriftSection) {
    section_open(o, "tool_drift", 7, &d.controls);
    o.push_str(r#"<div class="cards">"#);
    card(o, "tool_drift.events", d.event_count, "drift events");
    card(
        o,
        "tool_drift.drifted_now",
        d.drifted_now.len(),
        "tools drifted, awaiting review",
    );
    card(o, "tool_drift.approved", d.approved.len(), "drifts approved");
    o.push_str("</div><h3>Drift events</h3>");
    table(
        o,
        &["#Seq", "When", "Tool", "What happened", "Why"],
        d.events
            .iter()
            .rev()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    esc(&e.ts),
                    format!("<code>{}/{}</code>", opt(&e.server), opt(&e.tool)),
                    esc(&e.what),
                    esc(&e.reason),
                ]
            })
            .collect(),
        "No tool changed its definition in the period.",
    );
    let head = [
        "Tool",
        "Trusted fingerprint",
        "Current fingerprint",
        "Drifted",
        "Approved by",
        "Approved",
    ];
    o.push_str("<h3>Drifted now, awaiting review</h3>");
    table(o, &head, pin_rows(&d.drifted_now), "No tool is drifted.");
    o.push_str("<h3>Drifts approved in the period</h3>");
    table(o, &head, pin_rows(&d.approved), "No drift was approved in the period.");
    o.push_str("</section>");
}

fn canaries(o: &mut String, c: &CanarySection) {
    section_open(o, "canaries_and_redaction", 8, &c.controls);
    o.push_str(r#"<div class="cards">"#);
    card(o, "canaries.calls", c.canary_count, "canary tools called");
    card(
        o,
        "redaction.redacted",
        c.redacted_results,
        "results with sensitive data",
    );
    card(o, "redaction.withheld", c.withheld_results, "results withheld");
    o.push_str("</div><h3>Canary calls</h3>");
    table(
        o,
        &["#Seq", "When", "Principal", "Call", "Risk", "Reason", "Rules"],
        event_rows(&c.canary_calls),
        "No canary was called in the period.",
    );
    o.push_str("<h3>Sensitive data found in results, by kind</h3>");
    table(
        o,
        &["Kind", "#Findings"],
        pairs(&c.findings_by_kind)
            .iter()
            .map(|(k, n)| vec![esc(k), n.to_string()])
            .collect(),
        "No sensitive data was found in results in the period.",
    );
    o.push_str("<h3>Results redacted or withheld, newest first</h3>");
    table(
        o,
        &["#Seq", "When", "Principal", "Call", "Outcome", "Findings"],
        c.events
            .iter()
            .rev()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    esc(&e.ts),
                    opt(&e.principal),
                    format!("<code>{}/{}</code>", opt(&e.server), opt(&e.tool)),
                    opt(&e.outcome),
                    esc(&e.findings.join(", ")),
                ]
            })
            .collect(),
        "No result was redacted or withheld in the period.",
    );
    o.push_str("</section>");
}

fn integrity(o: &mut String, i: &IntegritySection) {
    section_open(o, "integrity", 9, &i.controls);
    let verdict = if let Some((seq, p)) = &i.broken {
        format!("The chain is broken at seq {seq}: {}", esc(p))
    } else if let Some(t) = &i.truncated {
        format!(
            "The log is truncated: it ends at seq {}, but a checkpoint made at {} covers seq {}.",
            t.log_ends_at,
            esc(&t.checkpoint_ts),
            t.checkpoint_seq
        )
    } else if !i.problems.is_empty() {
        "The log fails verification (see below).".to_string()
    } else {
        format!(
            "The hash chain verifies: {} event(s), seq {} through {}.",
            i.rows, i.first_seq, i.last_seq
        )
    };
    let _ = write!(
        o,
        r#"<p class="verdict {}" data-key="integrity.ok" data-value="{}">{verdict}</p>"#,
        if i.ok { "ok" } else { "bad" },
        i.ok
    );
    let head = match &i.signed_head {
        Some(c) => format!(
            "seq {} at {}, hash <code>{}</code>, {}",
            c.seq,
            esc(&c.ts),
            esc(&c.hash),
            match c
                .public_key
                .as_deref()
                .and_then(steward_store::signing::PublicKey::from_hex)
            {
                Some(k) => format!("signed with key <code>{}</code>", esc(&k.id())),
                None => "unsigned".into(),
            }
        ),
        None => "none: no checkpoint matches the chain (truncation of the newest rows cannot be shown)".into(),
    };
    let anchor = match &i.anchor {
        Some(a) => format!(
            "rows before {} were pruned; the chain starts at seq {} (<code>{}</code>), {}",
            esc(&a.pruned_before),
            a.seq,
            esc(&a.hash),
            if a.signature.is_some() { "signed" } else { "unsigned" }
        ),
        None => "none: the chain starts at its first row".into(),
    };
    table(
        o,
        &["", ""],
        vec![
            vec!["Signed head".into(), head],
            vec!["Checkpoints".into(), num("integrity.checkpoints", i.checkpoints)],
            vec!["Prune anchor".into(), anchor],
            vec!["Newest hash".into(), format!("<code>{}</code>", opt(&i.last_hash))],
            vec![
                "Trusted keys".into(),
                if i.trusted_keys.is_empty() {
                    "none given: signatures are checked against the key each checkpoint names".into()
                } else {
                    esc(&i.trusted_keys.join(", "))
                },
            ],
            vec![
                "Calls without outcome".into(),
                format!(
                    "{} (cut off by a crash, or still running; not a failure)",
                    num("integrity.calls_without_outcome", i.calls_without_outcome.count)
                ),
            ],
        ],
        "",
    );
    if !i.problems.is_empty() {
        o.push_str("<h3>Problems</h3><ul>");
        for p in &i.problems {
            let _ = write!(o, r#"<li class="tag-bad">{}</li>"#, esc(p));
        }
        o.push_str("</ul>");
    }
    if !i.notes.is_empty() {
        o.push_str("<h3>Notes</h3><ul>");
        for n in &i.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul>");
    }
    o.push_str("</section>");
}
