//! `steward proxy --approvals`: the approver's MCP server over stdio, for a local approver's
//! assistant (Claude Code, Claude Desktop), against the proxy's approvals in its audit
//! database. There is no upstream; the principal is the one the command names (or the OS user).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use steward_mcp::jsonrpc::error_response;
use steward_mcp::{Era, Line, LineReader, LineWriter, Message};
use steward_policy::{Policy, Principal};
use tokio::io::BufReader;

use super::{Channel, Desk, Via, mcp};
use crate::GatewayError;
use crate::notify::{ApprovalLink, Notifier};
use crate::pipeline::{Relay, RelayParts};

/// What `steward proxy --approvals` runs with.
pub struct StdioOptions {
    pub policy: Arc<Policy>,
    /// The file `policy` came from: re-read on change, so roles and agents stay current.
    pub policy_path: Option<PathBuf>,
    /// Who approves: `--principal`, or the OS user.
    pub principal: Principal,
    pub audit_db: PathBuf,
    /// Longest message accepted from the client.
    pub max_message: usize,
}

/// Serves the approver tools on stdin/stdout until the client closes stdin or Steward is asked
/// to stop.
pub async fn run(opts: StdioOptions) -> Result<(), GatewayError> {
    let link = ApprovalLink::Cli {
        db: opts.audit_db.display().to_string(),
    };
    let relay = Arc::new(Relay::new(RelayParts::sqlite(
        opts.policy.clone(),
        &opts.audit_db,
        Notifier::none(link),
    )));
    if relay.approvals().is_none() {
        return Err(GatewayError::Config(format!(
            "cannot open the approvals in {} (see the log)",
            opts.audit_db.display()
        )));
    }
    let _policy_watch = opts.policy_path.clone().map(|path| {
        let target = relay.clone();
        crate::reload::spawn(crate::reload::Reloader::new(
            path,
            opts.policy.version().to_string(),
            move |p| target.replace_policy(p),
        ))
    });
    let desk = Desk::new(relay.clone());
    let via = Via::new(Channel::Stdio);
    let (out, writer) = LineWriter::spawn(tokio::io::stdout());
    let mut input = LineReader::new(BufReader::new(tokio::io::stdin()), opts.max_message);
    tracing::info!(principal = %opts.principal.id, audit_db = %opts.audit_db.display(), "steward approver (stdio) ready");
    let stop = crate::proxy::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let line = tokio::select! {
            l = input.next() => l,
            _ = &mut stop => break,
        };
        let bytes = match line {
            Ok(Some(Line::Message(b))) => b,
            Ok(Some(Line::TooLong { bytes })) => {
                out.send(error_response(
                    None,
                    steward_mcp::ErrorCode::InvalidRequest,
                    &format!(
                        "message of {bytes} bytes is longer than the limit of {}",
                        opts.max_message
                    ),
                    None,
                ));
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the client's input");
                break;
            }
        };
        let msg = match Message::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                out.send(error_response(None, e.code(), &e.to_string(), None));
                continue;
            }
        };
        let stateless = Era::of_params(msg.params) == Some(Era::Stateless);
        // Roles and agents as the policy in force says now.
        let who = desk.approver(&opts.principal);
        if let Some(answer) = mcp::answer(&desk, &who, &msg, stateless, &via).await {
            out.send(answer);
        }
    }
    out.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    relay.close().await;
    Ok(())
}
