//! `steward registry lint`: schema errors and the mistakes that make a registry lie.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use steward_policy::{Diagnostic, Severity};

use crate::error::{error, warning, with_hint};
use crate::load::{EntrySpans, parse};
use crate::model::ApprovedServer;
use crate::pin::{is_exact_version, package_of};

/// Approvals expiring within this many days are reported as soon-expiring.
pub const SOON_EXPIRING_DAYS: i64 = 30;

/// Every finding about registry YAML, errors and warnings, in file order.
///
/// Errors: schema errors, unpinned or `latest` versions, expired approvals, duplicate names, a
/// name both approved and denied. Warnings: approvals expiring within
/// [`SOON_EXPIRING_DAYS`], missing rationale, expiry, approver or config.
pub fn lint(text: &str, name: &str, today: NaiveDate) -> Vec<Diagnostic> {
    let parsed = parse(text, name);
    let mut diags = parsed.diagnostics;
    let Some(registry) = parsed.registry else {
        return diags;
    };

    let mut seen: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
    let mut duplicate = |section: &'static str, entry: &str, line: u64, diags: &mut Vec<Diagnostic>| {
        if let Some(first) = seen.insert((section, entry.to_string()), line) {
            diags.push(with_hint(
                error(
                    line,
                    1,
                    format!("'{entry}' is listed twice in {section} (first at line {first})"),
                ),
                "keep one entry per server",
            ));
        }
    };
    for a in &registry.approved {
        duplicate("approved", &a.name, a.line, &mut diags);
    }
    for p in &registry.pending_review {
        duplicate("pending_review", &p.name, p.line, &mut diags);
    }
    for d in &registry.denied {
        duplicate("denied", &d.name, d.line, &mut diags);
        if d.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            diags.push(warning(d.line, 1, format!("denied server '{}' has no reason", d.name)));
        }
        if let Some(alt) = &d.alternative
            && registry.approved(alt).is_none()
            && !alt.contains(' ')
        {
            diags.push(warning(
                d.line,
                1,
                format!(
                    "denied server '{}' names alternative '{alt}', which is not approved",
                    d.name
                ),
            ));
        }
    }

    for (a, spans) in registry.approved.iter().zip(parsed.spans.iter()) {
        approved_findings(a, spans, today, &mut diags);
        if let Some(d) = registry.denied(&a.name) {
            diags.push(with_hint(
                error(
                    spans.name.0,
                    spans.name.1,
                    format!("'{}' is both approved and denied (line {})", a.name, d.line),
                ),
                "a server is either approved or denied; remove one of the entries",
            ));
        }
        if let Some(p) = registry.pending(&a.name) {
            diags.push(warning(
                spans.name.0,
                spans.name.1,
                format!("'{}' is both approved and pending review (line {})", a.name, p.line),
            ));
        }
    }
    diags.sort_by_key(|d| (d.line, d.column));
    diags
}

fn approved_findings(a: &ApprovedServer, spans: &EntrySpans, today: NaiveDate, diags: &mut Vec<Diagnostic>) {
    let (line, column) = spans.name;
    let name = &a.name;
    match (&a.version, spans.version) {
        (None, _) => diags.push(with_hint(
            error(
                line,
                column,
                format!("approved server '{name}' has no version: it is unpinned"),
            ),
            "pin the exact version that was reviewed, e.g. `version: \"1.4.2\"`",
        )),
        (Some(v), at) if !is_exact_version(v) => {
            let (l, c) = at.unwrap_or((line, column));
            diags.push(with_hint(
                error(
                    l,
                    c,
                    format!("approved server '{name}' has version '{v}', which is not pinned"),
                ),
                "approve one exact version; `latest` and ranges change under you",
            ))
        }
        _ => {}
    }
    if let Some(config) = &a.config
        && let Some(command) = &config.command
        && let Some(pkg) = package_of(command, &config.args)
    {
        let (l, c) = spans.config.unwrap_or((line, column));
        match (&pkg.version, &a.version) {
            (_, _) if !pkg.is_pinned() => diags.push(with_hint(
                error(
                    l,
                    c,
                    format!(
                        "config of '{name}' runs {}{} without a pinned version",
                        pkg.name,
                        pkg.version.as_deref().map(|v| format!("@{v}")).unwrap_or_default()
                    ),
                ),
                format!(
                    "write the package as {}@{}",
                    pkg.name,
                    a.version.as_deref().unwrap_or("VERSION")
                ),
            )),
            (Some(pv), Some(v)) if strip_v(pv) != strip_v(v) => diags.push(error(
                l,
                c,
                format!(
                    "config of '{name}' runs {}@{pv} but the approved version is {v}",
                    pkg.name
                ),
            )),
            _ => {}
        }
        if let Some(npm) = &a.npm_package
            && pkg.ecosystem == crate::pin::Ecosystem::Npm
            && &pkg.name != npm
        {
            diags.push(warning(
                l,
                c,
                format!("config of '{name}' runs package {} but npm_package is {npm}", pkg.name),
            ));
        }
    }
    match (a.expires, spans.expires) {
        (None, _) => diags.push(with_hint(
            warning(line, column, format!("approved server '{name}' has no expires date")),
            "approvals should be reviewed; add `expires: YYYY-MM-DD`",
        )),
        (Some(e), at) => {
            let (l, c) = at.unwrap_or((line, column));
            let days = (e - today).num_days();
            if days < 0 {
                diags.push(with_hint(
                    error(
                        l,
                        c,
                        format!("approval of '{name}' expired on {e} ({} day(s) ago)", -days),
                    ),
                    "renew the approval after review, or move the entry to pending_review",
                ));
            } else if days <= SOON_EXPIRING_DAYS {
                diags.push(warning(
                    l,
                    c,
                    format!("approval of '{name}' expires on {e}, in {days} day(s)"),
                ));
            }
        }
    }
    if a.rationale.is_none() {
        diags.push(with_hint(
            warning(line, column, format!("approved server '{name}' has no rationale")),
            "say why it is needed; reviewers and auditors read it",
        ));
    }
    if a.approved_by.as_deref().is_none_or(|s| s.trim().is_empty()) {
        diags.push(warning(
            line,
            column,
            format!("approved server '{name}' has no approved_by"),
        ));
    }
    if a.approved_date.is_some_and(|d| d > today) {
        diags.push(warning(
            line,
            column,
            format!("approved server '{name}' has an approved_date in the future"),
        ));
    }
    if a.sandbox_required {
        let (l, c) = spans.sandbox.unwrap_or((line, column));
        match &a.config {
            Some(config) if config.url.is_some() && config.command.is_none() => diags.push(with_hint(
                error(l, c, format!("'{name}' requires a sandbox but is a remote server (url)")),
                "a sandbox confines a process Steward starts; only stdio servers (command) can have one",
            )),
            Some(config) if config.sandbox.is_none() => diags.push(with_hint(
                warning(
                    l,
                    c,
                    format!("'{name}' requires a sandbox but its config declares none: the gateway will not serve it"),
                ),
                "add `sandbox: {profile: node, ...}` to its config (docs/sandbox.md); clients may still run it with `steward proxy --sandbox`",
            )),
            _ => {}
        }
    }
    if a.config.is_none() {
        diags.push(with_hint(
            warning(line, column, format!("approved server '{name}' has no config")),
            "without `config: {command, args, env}` the gateway cannot serve it and checks cannot detect drift",
        ));
    }
}

fn strip_v(v: &str) -> &str {
    v.strip_prefix('v').unwrap_or(v)
}

/// Whether any finding is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}
