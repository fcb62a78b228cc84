//! `steward hook`: the Claude Code hook door (PreToolUse, PostToolUse, SessionStart, ConfigChange).
//!
//! Fail closed: any error, malformed event, panic or time-out exits 2 with the reason on stderr,
//! which Claude Code treats as a block. Exit 1 is never used: Claude Code ignores it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::Value;
use steward_gateway::identity::os_user;
use steward_gateway::notify::{ApprovalLink, Notifier};
use steward_gateway::pipeline::{DenyKind, Use};
use steward_gateway::{CallContext, Door, Outcome, Relay, RelayParts, ServerInfo, Session};
use steward_policy::{Effect, Policy, Principal, digest};
use steward_registry::hook::{
    EventKind, HookEvent, MAX_EVENT_BYTES, context_output, message_output, outcome_of, pre_tool_use_output,
};
use steward_registry::tier::{POLICY_PATH, REGISTRY_PATH};
use steward_registry::{CheckOptions, Locations, Registry, check, discover, today};
use steward_store::{AuditReader, QueryFilter};

use crate::paths::default_audit_db;

/// The exit code Claude Code treats as "block, and show stderr to the model".
const BLOCK: u8 = 2;

#[derive(Args)]
#[command(
    after_help = "Wire it in .claude/settings.json (or run `steward init --tier standard`):\n  \
    {\"hooks\": {\"PreToolUse\": [{\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \"steward hook\"}]}]}}"
)]
pub struct HookArgs {
    /// Policy file (default: .claude/steward/policy.yaml in the event's cwd or a parent, else
    /// the built-in baseline policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// SQLite audit database (default: the proxy's, $XDG_DATA_HOME/steward/audit.db).
    #[arg(long, value_name = "PATH")]
    pub audit_db: Option<PathBuf>,
    /// Who is calling (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub principal: Option<String>,
    /// Registry for SessionStart and ConfigChange checks (default: .claude/steward/registry.yaml
    /// in the event's cwd or a parent).
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// Send decisions to the gateway's decision API (POST URL/v1/decide) instead of deciding
    /// locally; the API key comes from $STEWARD_API_KEY.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// Give up (and deny) after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub timeout: u64,
}

pub fn run(args: HookArgs) -> anyhow::Result<ExitCode> {
    let timeout = args.timeout.max(1);
    // A hung policy, audit database or stdin must not hang Claude Code: deny instead.
    let watchdog = std::thread::Builder::new()
        .name("steward-hook-watchdog".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(timeout));
            eprintln!("Steward denied the tool call: the hook did not finish within {timeout}s (fail closed).");
            std::process::exit(i32::from(BLOCK));
        });
    if let Err(e) = watchdog {
        return Ok(deny_now(&anyhow!("cannot start the hook watchdog: {e}")));
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(args))) {
        Ok(Ok(code)) => Ok(code),
        Ok(Err(e)) => Ok(deny_now(&e)),
        Err(_) => Ok(deny_now(&anyhow!("internal error in the hook"))),
    }
}

/// Reports a failure the way Claude Code blocks on: reason on stderr, exit 2.
fn deny_now(e: &anyhow::Error) -> ExitCode {
    eprintln!("Steward denied the tool call (fail closed): {e:#}");
    ExitCode::from(BLOCK)
}

fn handle(args: HookArgs) -> anyhow::Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_EVENT_BYTES as u64 + 1)
        .read_to_end(&mut input)
        .context("cannot read the hook event from stdin")?;
    let event = HookEvent::parse(&input)?;
    let cwd = event_cwd(&event)?;
    match event.kind() {
        EventKind::PreToolUse if args.remote.is_some() => pre_tool_use_remote(&args, &event),
        // The gateway audits remote decisions itself.
        EventKind::PostToolUse if args.remote.is_some() => Ok(ExitCode::SUCCESS),
        EventKind::PreToolUse => pre_tool_use(&args, &event, &cwd),
        EventKind::PostToolUse => post_tool_use(&args, &event, &cwd),
        EventKind::SessionStart => registry_report(&args, &event, &cwd, true),
        EventKind::ConfigChange => registry_report(&args, &event, &cwd, false),
        // Steward has no opinion on other events.
        EventKind::Other(_) => Ok(ExitCode::SUCCESS),
    }
}

fn event_cwd(event: &HookEvent) -> anyhow::Result<PathBuf> {
    match event.cwd.as_deref().filter(|c| !c.is_empty()) {
        Some(c) if Path::new(c).is_absolute() => Ok(PathBuf::from(c)),
        Some(c) => Err(anyhow!("the hook event's cwd '{c}' is not an absolute path")),
        None => std::env::current_dir().context("the hook event has no cwd and the current directory is unknown"),
    }
}

/// `rel` in `start` or its nearest parent that has it.
fn find_up(start: &Path, rel: &str) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join(rel)).find(|p| p.is_file())
}

fn load_policy(args: &HookArgs, cwd: &Path) -> anyhow::Result<Policy> {
    let path = args.policy.clone().or_else(|| find_up(cwd, POLICY_PATH)).or_else(|| {
        std::env::var_os("CLAUDE_PROJECT_DIR")
            .map(|d| PathBuf::from(d).join(POLICY_PATH))
            .filter(|p| p.is_file())
    });
    match path {
        Some(p) => Policy::from_file(&p).with_context(|| format!("cannot load policy {}", p.display())),
        None => Ok(Policy::baseline()),
    }
}

/// The hook's relay: the same decisions, audit log and approvals as every other door.
struct HookDoor {
    relay: Relay,
    ctx: CallContext,
    runtime: tokio::runtime::Runtime,
}

impl HookDoor {
    fn open(args: &HookArgs, event: &HookEvent, cwd: &Path, server: &str) -> anyhow::Result<HookDoor> {
        let policy = load_policy(args, cwd)?;
        let audit_db = args.audit_db.clone().unwrap_or_else(default_audit_db);
        let principal = match &args.principal {
            Some(p) => Principal::new(p.clone(), "asserted"),
            None => Principal::new(os_user(), "os-user"),
        };
        let notifier = Notifier::new(
            Vec::new(),
            ApprovalLink::Cli {
                db: audit_db.display().to_string(),
            },
        );
        let store = steward_store::StoreLocation::Sqlite(audit_db.clone());
        let relay = Relay::new(RelayParts::open(&store, None, Arc::new(policy), notifier));
        let session = Session::new(
            server,
            Door::Hook,
            event.session_id.clone().unwrap_or_else(|| "claude-code".into()),
        )
        .with_server_info(server_info(args, cwd, server));
        session.note_client("claude-code".into(), None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(HookDoor {
            ctx: session.ctx_for(&principal),
            relay,
            runtime,
        })
    }

    fn close(&self) {
        self.runtime.block_on(self.relay.close());
    }
}

/// What the project's registry says about an MCP server (`server.status` in policy): nothing
/// for Claude Code's own tools or without a registry.
fn server_info(args: &HookArgs, cwd: &Path, server: &str) -> ServerInfo {
    if server == steward_registry::hook::CLAUDE_CODE_SERVER {
        return ServerInfo::default();
    }
    let Some(path) = args.registry.clone().or_else(|| find_up(cwd, REGISTRY_PATH)) else {
        return ServerInfo::default();
    };
    match Registry::from_file(&path) {
        Ok(r) => ServerInfo::from_registry(&r, server),
        // A registry that cannot be read vouches for nothing.
        Err(_) => ServerInfo {
            status: Some("unlisted".into()),
            ..ServerInfo::default()
        },
    }
}

fn pre_tool_use(args: &HookArgs, event: &HookEvent, cwd: &Path) -> anyhow::Result<ExitCode> {
    let call = event.tool_call().context("PreToolUse without a tool")?;
    let door = HookDoor::open(args, event, cwd, &call.server)?;
    let known = door.relay.catalog().get(&call.server, &call.tool);
    let used = Use {
        method: steward_mcp::Method::ToolsCall,
        target: call.tool.clone(),
        args: call.args.clone(),
    };
    // Claude Code can ask its user: only `effect: ask` becomes its `ask`.
    let decided = door
        .runtime
        .block_on(door.relay.decide(&door.ctx, &used, known.as_deref(), true));
    door.close();
    let d = &decided.decision;
    let target = format!("{}/{}", call.server, call.tool);
    let id = &decided.decision_id;
    let (effect, text) = match &decided.outcome {
        Outcome::Allowed { approval } => {
            let via = approval
                .as_ref()
                .map(|a| format!(" on approval {a}"))
                .unwrap_or_default();
            let reason = steward_scan::redact::redact_text(&d.reason());
            (
                Effect::Allow,
                format!("Steward allowed {target}{via}: {reason}. Decision {id}."),
            )
        }
        // Refused, or waiting for an approver (the text names the approval and says to retry
        // the identical call once it is approved): Claude Code must not run it now.
        Outcome::Denied { message, .. } | Outcome::Pending { message, .. } => (Effect::Deny, message.clone()),
        Outcome::Ask => {
            let reason = steward_scan::redact::redact_text(&d.reason());
            (
                Effect::Ask,
                format!(
                    "Steward asks you to confirm {target}: {reason}. Risk {}. Decision {id}.",
                    d.risk
                ),
            )
        }
    };
    if let Outcome::Denied {
        kind: DenyKind::FailClosed,
        ..
    } = &decided.outcome
    {
        tracing::error!(%target, "the hook refused a call it could not decide or record");
    }
    println!("{}", pre_tool_use_output(effect, &text));
    Ok(ExitCode::SUCCESS)
}

/// PreToolUse decided by the organisation's gateway: the same policy and audit log as every door.
fn pre_tool_use_remote(args: &HookArgs, event: &HookEvent) -> anyhow::Result<ExitCode> {
    let url = args.remote.as_deref().unwrap_or_default();
    let call = event.tool_call().context("PreToolUse without a tool")?;
    let key = std::env::var("STEWARD_API_KEY").ok().filter(|k| !k.is_empty());
    let body = serde_json::json!({ "server": call.server, "tool": call.tool, "args": call.args, "client": "claude-code", "enforce": true });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let timeout = Duration::from_secs(args.timeout.clamp(1, 60));
    let answer = runtime
        .block_on(steward_gateway::remote::decide(url, key.as_deref(), &body, timeout))
        .map_err(|e| anyhow!("the gateway's decision API failed: {e}"))?;
    let effect = match answer.get("effect").and_then(Value::as_str) {
        Some("allow") => Effect::Allow,
        // Pending approval: Claude Code must not run it now (the message names the approval).
        Some("approve") | Some("deny") => Effect::Deny,
        Some("ask") => Effect::Ask,
        other => return Err(anyhow!("the gateway answered an unknown effect {other:?}")),
    };
    let reasons = answer
        .get("reasons")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        .unwrap_or_default();
    let id = answer.get("decision_id").and_then(Value::as_str).unwrap_or("?");
    let target = format!("{}/{}", call.server, call.tool);
    let text = match effect {
        Effect::Allow => format!("Steward allowed {target}: {reasons}. Decision {id}."),
        Effect::Approve | Effect::Ask => {
            format!("Steward asks you to confirm {target}: {reasons}. Decision {id}.")
        }
        Effect::Deny => answer
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("Steward denied {target}: {reasons}. Decision {id}.")),
    };
    println!("{}", pre_tool_use_output(effect, &text));
    Ok(ExitCode::SUCCESS)
}

fn post_tool_use(args: &HookArgs, event: &HookEvent, cwd: &Path) -> anyhow::Result<ExitCode> {
    let call = event.tool_call().context("PostToolUse without a tool")?;
    let audit_db = args.audit_db.clone().unwrap_or_else(default_audit_db);
    let door = HookDoor::open(args, event, cwd, &call.server)?;
    let decision_id = find_decision(&audit_db, &door.ctx, &call.server, &call.tool, &call.args)
        .or_else(|| event.tool_use_id.as_ref().map(|t| format!("tool_use:{t}")))
        .unwrap_or_default();
    let started = event
        .duration_ms
        .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1.0e10)
        .and_then(|d| Instant::now().checked_sub(Duration::from_secs_f64(d / 1000.0)))
        .unwrap_or_else(Instant::now);
    door.relay.outcome(
        &door.ctx,
        steward_mcp::Method::ToolsCall,
        &call.tool,
        &decision_id,
        outcome_of(event.tool_response.as_ref()),
        started,
        None,
    );
    door.close();
    Ok(ExitCode::SUCCESS)
}

/// The PreToolUse decision this outcome belongs to: the newest decision in this session for the
/// same tool and arguments.
fn find_decision(audit_db: &Path, ctx: &CallContext, server: &str, tool: &str, args: &Value) -> Option<String> {
    let reader = AuditReader::open(audit_db).ok()?;
    let filter = QueryFilter {
        kind: Some("decision".into()),
        tool: Some(format!("{server}/{tool}")),
        principal: Some(ctx.principal.id.clone()),
        limit: Some(200),
        ..QueryFilter::default()
    };
    let digest = digest::args_digest(args);
    reader
        .query(&filter)
        .ok()?
        .into_iter()
        .rev()
        .find(|r| {
            r.session.as_deref() == Some(ctx.session.as_str()) && r.args_digest.as_deref() == Some(digest.as_str())
        })
        .and_then(|r| r.decision_id)
}

/// SessionStart and ConfigChange: check this project's MCP servers against the registry.
fn registry_report(args: &HookArgs, event: &HookEvent, cwd: &Path, session_start: bool) -> anyhow::Result<ExitCode> {
    let text = registry_summary(args, cwd);
    let out = if session_start {
        context_output(&event.hook_event_name, &text)
    } else {
        message_output(&text)
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn registry_summary(args: &HookArgs, cwd: &Path) -> String {
    let Some(path) = args.registry.clone().or_else(|| find_up(cwd, REGISTRY_PATH)) else {
        return format!(
            "Steward: no MCP server registry for this project ({REGISTRY_PATH}); MCP servers are not checked against an approved list."
        );
    };
    let registry = match Registry::from_file(&path) {
        Ok(r) => r,
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            return format!(
                "Steward: the MCP server registry {} cannot be loaded: {first}",
                path.display()
            );
        }
    };
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    // Without a home directory only the project's own configs are read.
    let home = home.unwrap_or_else(|| cwd.join(".claude/steward/.no-home"));
    let mut loc = Locations::new(home, cwd);
    loc.all_projects = false;
    let report = check(&registry, &discover(&loc), today(), &CheckOptions::default());
    let bad: Vec<_> = report.results.iter().filter(|r| r.status.is_violation()).collect();
    if bad.is_empty() {
        return format!(
            "Steward registry check ({}): {} MCP server(s) configured, all approved.",
            path.display(),
            report.results.len()
        );
    }
    let mut text = format!(
        "Steward registry check ({}): {} of {} MCP server(s) are not approved. Do not use them; tell the user.\n",
        path.display(),
        bad.len(),
        report.results.len()
    );
    for r in bad.iter().take(20) {
        text.push_str(&format!(
            "- {} '{}' ({} {}, {}): {}\n",
            r.status, r.server, r.client, r.scope, r.config_path, r.detail
        ));
    }
    if bad.len() > 20 {
        text.push_str(&format!(
            "- ... and {} more (run `steward registry check`)\n",
            bad.len() - 20
        ));
    }
    text.trim_end().to_string()
}
