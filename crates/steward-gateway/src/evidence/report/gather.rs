//! Collecting a report's numbers: one pass over the period's audit rows, then the approvals,
//! keys and pins tables, the registry, and a full verification of the chain.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use steward_policy::Policy;
use steward_registry::Registry;
use steward_store::signing::PublicKey;
use steward_store::{AuditReader, AuditRow, StoreError, VerifyOptions};

use super::model::*;

/// The controls each section evidences.
fn controls_of(section: &str) -> Vec<&'static str> {
    controls()
        .into_iter()
        .filter(|c| c.sections.contains(&section))
        .map(|c| c.id)
        .collect()
}

fn list(json: &Option<String>) -> Vec<String> {
    json.as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

fn detail(r: &AuditRow) -> Value {
    r.detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null)
}

fn item(r: &AuditRow) -> EventItem {
    EventItem {
        seq: r.seq,
        ts: r.ts.clone(),
        principal: r.principal.clone(),
        server: r.server.clone(),
        tool: r.tool.clone(),
        risk: r.risk.clone(),
        effect: r.effect.clone(),
        reason: r.reason.clone(),
        rule_ids: list(&r.rule_ids),
    }
}

/// Keeps the newest `MAX_LISTED` of a stream of items (and counts them all).
struct Newest<T> {
    items: std::collections::VecDeque<T>,
    seen: u64,
}

impl<T> Newest<T> {
    fn new() -> Self {
        Newest {
            items: std::collections::VecDeque::new(),
            seen: 0,
        }
    }

    fn push(&mut self, t: T) {
        self.seen += 1;
        if self.items.len() == MAX_LISTED {
            self.items.pop_front();
        }
        self.items.push_back(t);
    }

    fn finish(self, what: &str, limits: &mut Vec<String>) -> (Vec<T>, u64) {
        if self.seen > self.items.len() as u64 {
            limits.push(format!(
                "{what}: the newest {} of {} are listed",
                self.items.len(),
                self.seen
            ));
        }
        (self.items.into_iter().collect(), self.seen)
    }
}

fn top(map: BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn parse(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts).ok().map(|t| t.with_timezone(&Utc))
}

/// What gathering needs.
pub struct Inputs<'a> {
    pub reader: &'a AuditReader,
    pub policy: &'a Policy,
    pub registry: Option<&'a Registry>,
    pub since: String,
    pub trusted: &'a [PublicKey],
    pub sources: Sources,
}

pub fn gather(inp: Inputs<'_>) -> Result<Report, StoreError> {
    let now = Utc::now();
    let until = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut limits = Vec::new();

    let mut decisions = DecisionsSection {
        controls: controls_of("decisions"),
        ..DecisionsSection::default()
    };
    let mut days: BTreeMap<String, DayCount> = BTreeMap::new();
    let mut versions: BTreeMap<String, PolicyVersion> = BTreeMap::new();
    let mut changes = Vec::new();
    let mut principals: BTreeMap<String, u64> = BTreeMap::new();
    let mut denials = DenialsSection {
        controls: controls_of("denials"),
        ..DenialsSection::default()
    };
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut rules: BTreeMap<String, u64> = BTreeMap::new();
    let mut recent_denied = Newest::new();
    let mut drift_events = Newest::new();
    let mut canaries = Newest::new();
    let mut redactions = Newest::new();
    let mut canary = CanarySection {
        controls: controls_of("canaries_and_redaction"),
        ..CanarySection::default()
    };

    inp.reader.for_each_since(Some(&inp.since), |r| {
        *decisions.events_by_kind.entry(r.kind.clone()).or_default() += 1;
        let d = detail(r);
        match r.kind.as_str() {
            "decision" if r.method.as_deref() == Some("tools/call") => {
                let effect = r.effect.clone().unwrap_or_else(|| "-".into());
                decisions.total += 1;
                *decisions.by_effect.entry(effect.clone()).or_default() += 1;
                *decisions
                    .by_risk
                    .entry(r.risk.clone().unwrap_or_else(|| "-".into()))
                    .or_default() += 1;
                *decisions
                    .by_server
                    .entry(r.server.clone().unwrap_or_else(|| "-".into()))
                    .or_default() += 1;
                *decisions
                    .by_door
                    .entry(r.door.clone().unwrap_or_else(|| "-".into()))
                    .or_default() += 1;
                let day = r.ts.get(..10).unwrap_or("").to_string();
                let entry = days.entry(day.clone()).or_insert_with(|| DayCount {
                    day,
                    ..DayCount::default()
                });
                match effect.as_str() {
                    "allow" => entry.allow += 1,
                    "ask" => entry.ask += 1,
                    "approve" => entry.approve += 1,
                    "deny" => entry.deny += 1,
                    _ => {}
                }
                if let Some(p) = &r.principal {
                    *principals.entry(p.clone()).or_default() += 1;
                }
                if let Some(v) = &r.policy_version {
                    let e = versions.entry(v.clone()).or_insert_with(|| PolicyVersion {
                        version: v.clone(),
                        first_seen: r.ts.clone(),
                        last_seen: r.ts.clone(),
                        decisions: 0,
                    });
                    e.last_seen = r.ts.clone();
                    e.decisions += 1;
                }
                let rule_ids = list(&r.rule_ids);
                if effect == "deny" {
                    denials.denied_calls += 1;
                    *reasons
                        .entry(r.reason.clone().unwrap_or_else(|| "-".into()))
                        .or_default() += 1;
                    for id in &rule_ids {
                        *rules.entry(id.clone()).or_default() += 1;
                    }
                    recent_denied.push(item(r));
                }
                if rule_ids.iter().any(|id| id == "steward:canary") {
                    canaries.push(item(r));
                }
                if rule_ids.iter().any(|id| id == "steward:tool-drift") {
                    drift_events.push(DriftEvent {
                        seq: r.seq,
                        ts: r.ts.clone(),
                        server: r.server.clone(),
                        tool: r.tool.clone(),
                        what: "denied".into(),
                        reason: r.reason.clone().unwrap_or_default(),
                    });
                }
            }
            "decision" => {
                // A governed listing: tools hidden for their definition (scan or drift), warnings.
                for b in d.get("blocked").and_then(Value::as_array).into_iter().flatten() {
                    denials.blocked_tools += 1;
                    let reason = b.get("reason").and_then(Value::as_str).unwrap_or("").to_string();
                    if reason.contains("changed since it was trusted") {
                        drift_events.push(DriftEvent {
                            seq: r.seq,
                            ts: r.ts.clone(),
                            server: r.server.clone(),
                            tool: b.get("tool").and_then(Value::as_str).map(str::to_string),
                            what: "hidden".into(),
                            reason,
                        });
                    }
                }
                for w in d.get("warnings").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(drift) = w.get("drift").and_then(Value::as_str) {
                        drift_events.push(DriftEvent {
                            seq: r.seq,
                            ts: r.ts.clone(),
                            server: r.server.clone(),
                            tool: w.get("tool").and_then(Value::as_str).map(str::to_string),
                            what: "warning".into(),
                            reason: drift.to_string(),
                        });
                    }
                }
            }
            "system" => {
                if r.effect.as_deref() == Some("deny") {
                    denials.refused_messages += 1;
                }
                if r.reason.as_deref() == Some("policy reloaded") {
                    let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
                    changes.push(PolicyChange {
                        ts: r.ts.clone(),
                        old_version: s("old_version"),
                        new_version: s("new_version"),
                        source: s("source"),
                    });
                }
            }
            "outcome" => {
                let findings: Vec<&Value> = d
                    .get("output_findings")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let withheld = r.outcome.as_deref() == Some("withheld");
                if findings.is_empty() && !withheld {
                    return;
                }
                if withheld {
                    canary.withheld_results += 1;
                } else {
                    canary.redacted_results += 1;
                }
                let mut kinds = Vec::new();
                for f in findings {
                    let kind = f.get("kind").and_then(Value::as_str).unwrap_or("?");
                    let action = f.get("action").and_then(Value::as_str).unwrap_or("?");
                    *canary.findings_by_kind.entry(kind.to_string()).or_default() += 1;
                    kinds.push(format!("{kind} ({action})"));
                }
                redactions.push(RedactionItem {
                    seq: r.seq,
                    ts: r.ts.clone(),
                    principal: r.principal.clone(),
                    server: r.server.clone(),
                    tool: r.tool.clone(),
                    outcome: r.outcome.clone(),
                    findings: kinds,
                });
            }
            _ => {}
        }
    })?;
    decisions.by_day = days.into_values().collect();
    denials.top_reasons = top(reasons, 10);
    denials.by_rule = top(rules, 10);
    (denials.recent, _) = recent_denied.finish("denied calls", &mut limits);
    (canary.canary_calls, canary.canary_count) = canaries.finish("canary calls", &mut limits);
    (canary.events, _) = redactions.finish("results with sensitive data", &mut limits);
    let (drift_list, drift_count) = drift_events.finish("drift events", &mut limits);

    let mut versions: Vec<PolicyVersion> = versions.into_values().collect();
    versions.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
    let access = AccessSection {
        controls: controls_of("access"),
        policy: inp.policy.summary(),
        versions,
        changes,
        principals: top(principals, 50),
    };

    let approvals = approvals(inp.reader, &inp.since, &mut limits)?;
    let api_keys = keys(inp.reader, &inp.since, now)?;
    let registry = registry(inp.registry);
    let tool_drift = drift(inp.reader, &inp.since, drift_list, drift_count)?;

    let v = inp.reader.verify_with(&VerifyOptions {
        public_keys: inp.trusted.to_vec(),
    })?;
    let integrity = IntegritySection {
        controls: controls_of("integrity"),
        ok: v.ok(),
        rows: v.rows,
        first_seq: v.first_seq,
        last_seq: v.last_seq,
        last_hash: v.last_hash.clone(),
        broken: v.broken.clone(),
        truncated: v.truncated.clone(),
        problems: v.problems.clone(),
        notes: v.notes.clone(),
        signed_head: v.checkpoints.last_verified.clone(),
        checkpoints: v.checkpoints.total,
        anchor: v.anchor.as_ref().map(|a| a.anchor.clone()),
        calls_without_outcome: v.calls_without_outcome.clone(),
        trusted_keys: inp.trusted.iter().map(PublicKey::id).collect(),
    };

    Ok(Report {
        title: "Steward compliance evidence".into(),
        generated_at: until.clone(),
        period: Period {
            since: inp.since.clone(),
            until,
        },
        sources: inp.sources,
        controls: controls(),
        access,
        decisions,
        approvals,
        denials,
        api_keys,
        registry,
        tool_drift,
        canaries_and_redaction: canary,
        integrity,
        limits,
    })
}

fn approvals(reader: &AuditReader, since: &str, limits: &mut Vec<String>) -> Result<ApprovalsSection, StoreError> {
    let (list, total) = reader.approvals_since(since, MAX_LISTED)?;
    if total > list.len() as u64 {
        limits.push(format!("approvals: the first {} of {total} are listed", list.len()));
    }
    let mut section = ApprovalsSection {
        controls: controls_of("approvals"),
        total,
        ..ApprovalsSection::default()
    };
    let mut waits = Vec::new();
    for a in list {
        *section.by_state.entry(a.state.as_str().to_string()).or_default() += 1;
        let created = parse(&a.created_at);
        let wait = match (created, a.decided_at.as_deref().and_then(parse)) {
            (Some(c), Some(d)) => Some((d - c).num_milliseconds() as f64 / 1000.0),
            _ => None,
        };
        if let Some(w) = wait {
            waits.push(w);
        }
        section.items.push(ApprovalItem {
            id: a.id,
            requester: a.principal,
            server: a.server,
            tool: a.tool,
            risk: a.risk,
            state: a.state.as_str().to_string(),
            mode: a.mode,
            reasons: a.reasons,
            approvers: a
                .approvals
                .into_iter()
                .map(|v| Vote {
                    by: v.by,
                    at: v.at,
                    reason: v.reason,
                })
                .collect(),
            decided_by: a.decided_by,
            decision_reason: a.decision_reason,
            created_at: a.created_at,
            decided_at: a.decided_at,
            wait_seconds: wait,
        });
    }
    waits.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| -> Option<f64> {
        if waits.is_empty() {
            return None;
        }
        let i = ((waits.len() - 1) as f64 * q).round() as usize;
        waits.get(i).copied()
    };
    let buckets: [(&str, f64); 6] = [
        ("<1m", 60.0),
        ("1-5m", 300.0),
        ("5-15m", 900.0),
        ("15-60m", 3600.0),
        ("1-4h", 14_400.0),
        (">4h", f64::INFINITY),
    ];
    let mut histogram: Vec<(String, u64)> = buckets.iter().map(|(l, _)| (l.to_string(), 0)).collect();
    for w in &waits {
        if let Some(i) = buckets.iter().position(|(_, max)| w < max) {
            histogram[i].1 += 1;
        }
    }
    section.wait = WaitStats {
        decided: waits.len() as u64,
        median_seconds: pick(0.5),
        p95_seconds: pick(0.95),
        max_seconds: waits.last().copied(),
        histogram,
    };
    Ok(section)
}

fn keys(reader: &AuditReader, since: &str, now: DateTime<Utc>) -> Result<KeysSection, StoreError> {
    let all = reader.api_keys()?;
    let mut s = KeysSection {
        controls: controls_of("api_keys"),
        total: all.len() as u64,
        ..KeysSection::default()
    };
    let now_s = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for k in all {
        let expired_now = k.expires.as_deref().and_then(parse).is_some_and(|e| e <= now);
        let item = KeyItem {
            id: k.id,
            name: k.name,
            principal: k.principal,
            roles: k.roles,
            created: k.created.clone(),
            expires: k.expires.clone(),
            revoked: k.revoked.clone(),
        };
        if k.revoked.is_none() && !expired_now {
            s.active += 1;
        }
        if k.created.as_str() >= since {
            s.created.push(item.clone());
        }
        if k.revoked.as_deref().is_some_and(|r| r >= since) {
            s.revoked.push(item.clone());
        }
        if k.expires.as_deref().is_some_and(|e| e >= since && e <= now_s.as_str()) {
            s.expired.push(item);
        }
    }
    Ok(s)
}

fn registry(r: Option<&Registry>) -> RegistrySection {
    let Some(r) = r else {
        return RegistrySection {
            controls: controls_of("registry"),
            ..RegistrySection::default()
        };
    };
    let today = steward_registry::today();
    let cadence = r
        .metadata
        .get("review_cadence_days")
        .and_then(Value::as_i64)
        .filter(|d| *d > 0);
    let mut s = RegistrySection {
        controls: controls_of("registry"),
        configured: true,
        source: Some(r.source_name.clone()),
        owner: r.metadata_str("owner").map(str::to_string),
        review_cadence_days: cadence,
        ..RegistrySection::default()
    };
    for a in &r.approved {
        let review = match (a.approved_date, cadence) {
            (Some(d), Some(days)) => d.checked_add_signed(chrono::Duration::days(days)),
            _ => None,
        };
        let expired = a.is_expired(today);
        let past_review = review.is_some_and(|d| d < today);
        s.expired += u64::from(expired);
        s.past_review += u64::from(past_review);
        s.entries.push(RegistryItem {
            name: a.name.clone(),
            status: "approved".into(),
            owner: a.approved_by.clone(),
            version: a.version.clone(),
            risk: Some(a.risk.as_str().to_string()),
            data_scope: Some(a.data_scope.as_str().to_string()),
            approved_date: a.approved_date.map(|d| d.to_string()),
            expires: a.expires.map(|d| d.to_string()),
            review_due: review.map(|d| d.to_string()),
            expired,
            past_review,
        });
    }
    for p in &r.pending_review {
        s.entries.push(RegistryItem {
            name: p.name.clone(),
            status: "pending_review".into(),
            owner: p.requested_by.clone(),
            version: p.version.clone(),
            risk: None,
            data_scope: None,
            approved_date: None,
            expires: None,
            review_due: None,
            expired: false,
            past_review: false,
        });
    }
    for d in &r.denied {
        s.entries.push(RegistryItem {
            name: d.name.clone(),
            status: "denied".into(),
            owner: d.denied_by.clone(),
            version: None,
            risk: None,
            data_scope: None,
            approved_date: d.denied_date.clone(),
            expires: None,
            review_due: None,
            expired: false,
            past_review: false,
        });
    }
    s
}

fn drift(reader: &AuditReader, since: &str, events: Vec<DriftEvent>, count: u64) -> Result<DriftSection, StoreError> {
    let pins = reader.pins()?;
    let item = |p: &steward_store::Pin| PinItem {
        server: p.server.clone(),
        tool: p.tool.clone(),
        fingerprint: p.fingerprint.clone(),
        current_fingerprint: p.current_fingerprint.clone(),
        drifted_at: p.drifted_at.clone(),
        approved_by: p.approved_by.clone(),
        approved_at: p.approved_at.clone(),
    };
    Ok(DriftSection {
        controls: controls_of("tool_drift"),
        events,
        event_count: count,
        drifted_now: pins
            .iter()
            .filter(|p| p.state == steward_store::PinState::Drifted)
            .map(item)
            .collect(),
        approved: pins
            .iter()
            .filter(|p| {
                p.source == steward_store::PinSource::Approved && p.approved_at.as_deref().is_some_and(|a| a >= since)
            })
            .map(item)
            .collect(),
    })
}
