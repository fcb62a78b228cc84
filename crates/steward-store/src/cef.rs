//! ArcSight Common Event Format, one line per event whatever the event holds.
//!
//! `CEF:0|Vendor|Product|Version|Signature ID|Name|Severity|Extension`. In the header `\` and `|`
//! are escaped; in extension values `\` and `=`. Line breaks are written as `\n` / `\r` in both,
//! and every other control character becomes a space, so a tool name or reason holding a line
//! break cannot start a forged second record. `rt` is epoch milliseconds; fields map to the
//! standard keys (`suser`, `act`, `reason`, `outcome`, `destinationServiceName`, …) and to the
//! custom ones (`cs1`…, with their `csNLabel` only when the value is present).

use crate::event::AuditRow;

/// CEF severity (0-10) of a row: 9 CRITICAL, 7 deny, 6 approve or HIGH, 4 MEDIUM, else 2.
pub fn cef_severity(r: &AuditRow) -> u8 {
    match (r.effect.as_deref(), r.risk.as_deref()) {
        (_, Some("CRITICAL")) => 9,
        (Some("deny"), _) => 7,
        (Some("approve"), _) | (_, Some("HIGH")) => 6,
        (_, Some("MEDIUM")) => 4,
        _ => 2,
    }
}

/// One event as a CEF line (no trailing newline; it never contains one).
pub fn cef_line(r: &AuditRow) -> String {
    let signature = format!(
        "{}:{}",
        r.kind,
        r.effect.as_deref().or(r.outcome.as_deref()).unwrap_or("event")
    );
    let name = match (&r.server, &r.tool) {
        (Some(s), Some(t)) => format!(
            "{} {s}/{t}",
            r.effect.as_deref().or(r.outcome.as_deref()).unwrap_or(&r.kind)
        ),
        _ => r.reason.clone().unwrap_or_else(|| r.kind.clone()),
    };
    let mut ext: Vec<String> = Vec::new();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&r.ts) {
        ext.push(format!("rt={}", t.timestamp_millis()));
    }
    ext.push(format!("cn1={} cn1Label=seq", r.seq));
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            ext.push(format!("{key}={}", extension(v)));
        }
    };
    put("externalId", r.decision_id.as_deref());
    put("suser", r.principal.as_deref());
    put("requestClientApplication", r.client.as_deref());
    put("destinationServiceName", r.server.as_deref());
    put("act", r.effect.as_deref());
    put("outcome", r.outcome.as_deref());
    put("reason", r.reason.as_deref());
    let custom = [
        ("cs1", "tool", &r.tool),
        ("cs2", "risk", &r.risk),
        ("cs3", "approvalId", &r.approval_id),
        ("cs4", "flags", &r.flags),
        ("cs5", "rules", &r.rule_ids),
        ("cs6", "policyVersion", &r.policy_version),
        ("flexString1", "door", &r.door),
        ("flexString2", "method", &r.method),
    ];
    for (key, label, value) in custom {
        if let Some(v) = value {
            ext.push(format!("{key}={} {key}Label={label}", extension(v)));
        }
    }
    if let Some(d) = r.duration_ms {
        ext.push(format!("cfp1={d} cfp1Label=durationMs"));
    }
    format!(
        "CEF:0|Steward|steward|{}|{}|{}|{}|{}",
        header(env!("CARGO_PKG_VERSION")),
        header(&signature),
        header(&name),
        cef_severity(r),
        ext.join(" ")
    )
}

fn header(s: &str) -> String {
    escape(s, &['\\', '|'])
}

fn extension(s: &str) -> String {
    escape(s, &['\\', '='])
}

fn escape(s: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            // NEL, LS and PS end lines for some readers too.
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AuditEvent, EventKind};

    fn row(tool: &str) -> AuditRow {
        let mut e = AuditEvent::new(EventKind::Decision);
        e.ts = "2026-11-21T12:00:00.123Z".into();
        e.principal = Some("alice".into());
        e.server = Some("it-ops".into());
        e.tool = Some(tool.into());
        e.effect = Some("deny".into());
        e.risk = Some("HIGH".into());
        e.reason = Some("a=b\\c\r\nline".into());
        AuditRow::from_event(e, 42, "00".repeat(32))
    }

    #[test]
    fn a_tool_name_with_a_newline_and_a_pipe_stays_one_record() {
        let line = cef_line(&row("evil\nCEF:0|Forged|x|1|2|3|10|suser=root|"));
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        // Exactly 7 unescaped pipes separate the 8 parts.
        let mut parts = Vec::new();
        let (mut cur, mut esc) = (String::new(), false);
        for c in line.chars() {
            match (esc, c) {
                (true, _) => {
                    cur.push(c);
                    esc = false;
                }
                (false, '\\') => {
                    cur.push(c);
                    esc = true;
                }
                (false, '|') if parts.len() < 7 => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        assert_eq!(parts.len(), 8, "{line}");
        assert_eq!(parts[0], "CEF:0");
        assert_eq!(
            parts[5],
            "deny it-ops/evil\\nCEF:0\\|Forged\\|x\\|1\\|2\\|3\\|10\\|suser=root\\|"
        );
        assert_eq!(parts[6], "7");
        let ext = &parts[7];
        assert!(ext.starts_with("rt=1795262400123 "), "{ext}");
        assert!(
            ext.contains("cs1=evil\\nCEF:0|Forged|x|1|2|3|10|suser\\=root| cs1Label=tool"),
            "{ext}"
        );
        assert!(ext.contains("reason=a\\=b\\\\c\\r\\nline"), "{ext}");
        assert!(ext.contains("suser=alice") && ext.contains("act=deny"), "{ext}");
        // Absent fields get neither a value nor a label.
        assert!(!ext.contains("cs3") && !ext.contains("approvalId"), "{ext}");
    }

    #[test]
    fn other_control_characters_become_spaces() {
        let line = cef_line(&row("a\u{0}b\u{2028}c\u{85}d\te"));
        assert!(line.contains("cs1=a b c d e cs1Label=tool"), "{line}");
    }
}
