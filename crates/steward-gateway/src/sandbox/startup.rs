//! The gateway's start-up check of every sandboxed server: what will be skipped (logged and
//! audited once here; each spawn logs again) and which servers will refuse to start.

use std::collections::BTreeMap;

use steward_store::{AuditEvent, AuditLog, EventKind};

use crate::config::{ServerConfig, Transport};

/// Checks each sandboxed stdio server against this kernel; logs and audits the result.
pub fn startup_check(servers: &BTreeMap<String, ServerConfig>, audit: &AuditLog) {
    for (name, cfg) in servers {
        let (Transport::Stdio { command, args, env }, Some(spec)) = (&cfg.transport, &cfg.sandbox) else {
            continue;
        };
        let mut cmd = std::process::Command::new(command);
        cmd.args(args).envs(env);
        let event = match super::preflight(&cmd, spec) {
            Ok(skipped) => {
                if skipped.is_empty() {
                    tracing::info!(server = %name, profile = %spec.profile(), "sandbox: every facility is available");
                }
                for s in &skipped {
                    if s.required {
                        tracing::warn!(server = %name, "sandbox will start without {} (best_effort): {}", s.facility, s.effect);
                    } else {
                        tracing::info!(server = %name, "sandbox hardening not available: {}", s);
                    }
                }
                super::skipped_event(name, "gateway", Some(spec.profile()), &skipped)
            }
            Err(e) => {
                tracing::error!(server = %name, "{e}");
                let mut ev = AuditEvent::new(EventKind::System);
                ev.server = Some(name.clone());
                ev.door = Some("gateway".into());
                ev.reason = Some("sandbox cannot be enforced; the server will not start".into());
                ev.detail = Some(serde_json::json!({ "sandbox": { "error": e.to_string() } }));
                Some(ev)
            }
        };
        if let Some(ev) = event
            && let Err(e) = audit.append_nowait(ev)
        {
            tracing::error!(error = %e, "cannot record the sandbox start-up check");
        }
    }
}
