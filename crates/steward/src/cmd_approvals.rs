//! `steward approvals`: list, show, approve and deny approvals, out of band, against the local
//! store (the stdio proxy's audit database, or the gateway's, through its steward.yaml).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use steward_gateway::identity::os_user;
use steward_policy::Policy;
use steward_store::{Actor, Approval, ApprovalError, ApprovalState, ApprovalStore, MAX_LIST};

use crate::output::{self, clip};
use crate::store_location;

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals, newest first.
    List {
        #[command(flatten)]
        source: Source,
        /// Only approvals in this state: pending, approved, denied, expired, cancelled, executed, failed.
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one approval: the call, its arguments (redacted), who approved it.
    Show {
        id: String,
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending call. The requester cannot approve their own call.
    Approve {
        id: String,
        #[command(flatten)]
        source: Source,
        /// Who approves (default: the OS user); their roles come from the policy's `principals:`.
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Deny a pending call; its client gets an error result with the reason.
    Deny {
        id: String,
        #[command(flatten)]
        source: Source,
        /// Who denies (default: the OS user).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
    },
}

/// Which store, and which policy resolves approvers' roles.
#[derive(Args)]
pub struct Source {
    /// The SQLite store: a proxy's --audit-db or a gateway's store.sqlite (default: ./steward-data/steward.db
    /// when it exists, else $XDG_DATA_HOME/steward/audit.db).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub db: Option<PathBuf>,
    /// The gateway's steward.yaml: its `store.sqlite` and `policy`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Without --config: the policy whose `principals:` give approvers their roles.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub policy: Option<PathBuf>,
}

struct Opened {
    store: ApprovalStore,
    policy: Option<Policy>,
}

impl Source {
    fn open(&self) -> anyhow::Result<Opened> {
        let found = store_location::locate(self.db.as_deref(), self.config.as_deref())?;
        found.announce();
        let policy_path = found.policy.clone().or_else(|| self.policy.clone());
        let policy = match policy_path {
            Some(p) => Some(Policy::from_file(&p).with_context(|| format!("cannot load policy {}", p.display()))?),
            None => None,
        };
        let store = match &found.location {
            steward_store::StoreLocation::Sqlite(db) => ApprovalStore::open_existing(db)?,
            _ => found.open()?.approvals()?,
        };
        Ok(Opened { store, policy })
    }
}

pub fn run(cmd: ApprovalsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ApprovalsCommand::List { source, state, json } => list(&source, state.as_deref(), json),
        ApprovalsCommand::Show { id, source, json } => show(&source, &id, json),
        ApprovalsCommand::Approve {
            id,
            source,
            actor,
            reason,
        } => approve(&source, &id, actor, reason),
        ApprovalsCommand::Deny {
            id,
            source,
            actor,
            reason,
        } => deny(&source, &id, actor, &reason),
    }
}

fn list(source: &Source, state: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let state = state
        .map(str::parse::<ApprovalState>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let opened = source.open()?;
    opened.store.expire_due()?;
    let approvals = opened.store.list(state, MAX_LIST)?;
    if json {
        for a in &approvals {
            output::json_line(a)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if approvals.is_empty() {
        println!(
            "no approvals{}",
            state.map(|s| format!(" in state {s}")).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = output::table([
        "ID",
        "STATE",
        "RISK",
        "PRINCIPAL",
        "SERVER/TOOL",
        "APPROVALS",
        "EXPIRES",
        "REASON",
    ]);
    for a in &approvals {
        t.add_row([
            a.id.clone(),
            a.state.as_str().to_string(),
            a.risk.clone(),
            a.principal.clone(),
            a.target(),
            a.progress(),
            a.expires_at.clone(),
            clip(&a.reasons.join("; "), 200),
        ]);
    }
    output::print_table(&t);
    Ok(ExitCode::SUCCESS)
}

fn show(source: &Source, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let opened = source.open()?;
    opened.store.expire_due()?;
    let a = opened
        .store
        .get(id)?
        .ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
    if json {
        output::json_line(&a)?;
    } else {
        print_approval(&a);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_approval(a: &Approval) {
    println!("approval   {}", a.id);
    println!("state      {}", a.state);
    println!(
        "call       {} by {} (risk {}, {} mode)",
        a.target(),
        a.principal,
        a.risk,
        a.mode
    );
    println!("arguments  {}", a.args);
    println!("digest     {}", a.args_digest);
    for r in &a.reasons {
        println!("reason     {r}");
    }
    if !a.rule_ids.is_empty() {
        println!("rules      {}", a.rule_ids.join(", "));
    }
    if !a.flags.is_empty() {
        println!("flags      {}", a.flags.join(", "));
    }
    let roles = format!("role {}", a.approver_roles().join(" or "));
    println!(
        "approvers  {} needed ({roles}); {} given",
        a.required_count,
        a.approvals.len()
    );
    for v in &a.approvals {
        println!(
            "           ✓ {} at {}{}",
            v.by,
            v.at,
            v.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        );
    }
    println!("created    {}", a.created_at);
    println!("expires    {}", a.expires_at);
    if let (Some(at), Some(by)) = (&a.decided_at, &a.decided_by) {
        println!(
            "decided    {at} by {by}{}",
            a.decision_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(until) = &a.grant_expires_at {
        println!("grant      until {until}{}", if a.consumed() { " (used)" } else { "" });
    }
    if let Some(at) = &a.finished_at {
        println!("finished   {at}");
    }
    println!("decision   {} (policy {})", a.decision_id, a.policy_version);
}

/// The acting person and their roles, from the policy's `principals:` (none for a principal
/// it marks `kind: agent`: agents never decide approvals).
fn actor(name: Option<String>, policy: Option<&Policy>) -> Actor {
    let name = name.filter(|n| !n.trim().is_empty()).unwrap_or_else(os_user);
    let principal = steward_policy::Principal::new(name.as_str(), "cli");
    match policy {
        Some(p) => steward_gateway::approver::actor(p, &principal),
        None => Actor {
            name,
            roles: Vec::new(),
        },
    }
}

/// A refusal, with a hint when roles could not be resolved for lack of a policy.
fn refusal(e: ApprovalError, policy: Option<&Policy>) -> anyhow::Error {
    match (&e, policy) {
        (ApprovalError::MissingRole { .. }, None) => anyhow::Error::new(e)
            .context("approver roles come from a policy's `principals:`; pass --policy FILE or --config FILE"),
        _ => e.into(),
    }
}

fn approve(source: &Source, id: &str, name: Option<String>, reason: Option<String>) -> anyhow::Result<ExitCode> {
    let opened = source.open()?;
    let actor = actor(name, opened.policy.as_ref());
    let done = opened
        .store
        .approve(id, &actor, reason.as_deref())
        .map_err(|e| refusal(e, opened.policy.as_ref()))?;
    let a = &done.approval;
    if done.complete {
        println!(
            "approved {} ({}) by {}: {} may now run once for {}",
            a.id,
            a.progress(),
            actor.name,
            a.target(),
            a.principal
        );
    } else {
        println!(
            "recorded {}'s approval of {} ({}); it needs {} more approver(s) other than {} and {}",
            actor.name,
            a.id,
            a.progress(),
            a.required_count as usize - a.approvals.len(),
            a.principal,
            a.approvals.iter().map(|v| v.by.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn deny(source: &Source, id: &str, name: Option<String>, reason: &str) -> anyhow::Result<ExitCode> {
    if reason.trim().is_empty() {
        bail!("deny needs a reason: --reason TEXT (the requesting client is told it)");
    }
    let opened = source.open()?;
    let actor = actor(name, opened.policy.as_ref());
    let a = opened
        .store
        .deny(id, &actor, reason)
        .map_err(|e| refusal(e, opened.policy.as_ref()))?;
    println!("{} {} by {}: {reason}", a.id, a.state, actor.name);
    Ok(ExitCode::SUCCESS)
}
