//! An approval as an approver is shown it: who asked to run what, the arguments (redacted when
//! the approval was recorded), risk, reasons, approvals so far and the time left.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use steward_store::{Approval, human_duration};

/// Arguments are cut to this many characters in text for people.
const ARGS_PREVIEW: usize = 600;

/// Seconds until a pending approval expires (0 once past), `None` when the time is unreadable.
pub fn seconds_left(a: &Approval, now: DateTime<Utc>) -> Option<u64> {
    let at = DateTime::parse_from_rfc3339(&a.expires_at).ok()?;
    Some((at.with_timezone(&Utc) - now).num_seconds().max(0) as u64)
}

/// `42m`, `1h`, `90s`; `expired` at zero.
fn time_left(a: &Approval, now: DateTime<Utc>) -> String {
    match seconds_left(a, now) {
        Some(0) => "expired".into(),
        Some(s) => human_duration(std::time::Duration::from_secs(s)),
        None => "unknown".into(),
    }
}

/// The approval as structured content.
pub fn summary(a: &Approval, now: DateTime<Utc>) -> Value {
    json!({
        "id": a.id,
        "state": a.state.as_str(),
        "requester": a.principal,
        "server": a.server,
        "tool": a.tool,
        "risk": a.risk,
        "reasons": a.reasons,
        "arguments": a.args,
        "args_digest": a.args_digest,
        "approvals": a.progress(),
        "approved_by": a.approvals.iter().map(|v| v.by.as_str()).collect::<Vec<_>>(),
        "required_approvers": a.required_count,
        "required_roles": a.required_roles,
        "mode": a.mode,
        "created_at": a.created_at,
        "expires_at": a.expires_at,
        "seconds_left": seconds_left(a, now),
        "time_left": time_left(a, now),
        "decided_by": a.decided_by,
        "decision_reason": a.decision_reason,
    })
}

fn args_preview(a: &Approval) -> String {
    let text = a.args.to_string();
    if text.chars().count() > ARGS_PREVIEW {
        format!("{}…", text.chars().take(ARGS_PREVIEW).collect::<String>())
    } else {
        text
    }
}

/// A few lines for a person (or a model) to read.
pub fn text(a: &Approval, now: DateTime<Utc>) -> String {
    let reasons = if a.reasons.is_empty() {
        "-".to_string()
    } else {
        a.reasons.join("; ")
    };
    let roles = if a.required_roles.is_empty() {
        String::new()
    } else {
        format!(" with role {}", a.required_roles.join(" or "))
    };
    let mut out = format!(
        "{id} [{state}] {who} wants to run {target} ({risk} risk)\n  arguments (secrets redacted): {args}\n  why: {reasons}\n  approvals: {progress} (needs {count}{roles}); {left} left (expires {expires})",
        id = a.id,
        state = a.state,
        who = a.principal,
        target = a.target(),
        risk = a.risk,
        args = args_preview(a),
        progress = a.progress(),
        count = a.required_count,
        left = time_left(a, now),
        expires = a.expires_at,
    );
    if let Some(by) = &a.decided_by {
        out.push_str(&format!(
            "\n  decided by {by}{}",
            a.decision_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    out
}
