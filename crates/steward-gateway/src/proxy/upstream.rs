//! The upstream side: the child process, and the loop from its stdout to the client.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::{Kind, Line, LineReader, Message};
use tokio::io::AsyncBufRead;
use tokio::process::{Child, Command};

use super::Session;
use super::pending::Waiting;
use crate::GatewayError;

pub(crate) fn spawn(
    program: &str,
    args: &[String],
    sandbox: Option<&crate::sandbox::SandboxSpec>,
) -> Result<(Child, crate::sandbox::Sandboxed), GatewayError> {
    let line = || {
        std::iter::once(program)
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // The server's own diagnostics go where Steward's go.
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let sandboxed =
        crate::sandbox::apply(&mut cmd, sandbox).map_err(|error| GatewayError::Sandbox { command: line(), error })?;
    let child = cmd.spawn().map_err(|e| GatewayError::Spawn {
        command: line(),
        source: std::io::Error::new(e.kind(), sandboxed.spawn_error(&e)),
    })?;
    Ok((child, sandboxed))
}

pub(crate) async fn run<R: AsyncBufRead + Unpin>(session: Arc<Session>, mut input: LineReader<R>) {
    loop {
        let bytes = match input.next().await {
            Ok(Some(Line::Message(bytes))) => bytes,
            Ok(Some(Line::TooLong { bytes })) => {
                tracing::error!(bytes, "upstream message exceeds the size limit; dropped");
                continue;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read from the upstream");
                return;
            }
        };
        let msg = match Message::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                // Not MCP (a server logging to stdout, say): the client could not use it either.
                let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
                tracing::warn!(error = %e, line = %preview, "upstream wrote a line that is not JSON-RPC; dropped");
                continue;
            }
        };
        if msg.kind != Kind::Response {
            // Notifications and server→client requests (sampling, elicitation, roots) pass as they are.
            session.client_out.send(bytes);
            continue;
        }
        let Some(pending) = msg.id_key().and_then(|id| session.pending.take(&id)) else {
            session.client_out.send(bytes);
            continue;
        };
        match pending.what {
            Waiting::ToolsList => {
                let out = session
                    .pipeline
                    .govern_tools_list(&session.ctx(), &bytes)
                    .unwrap_or(bytes);
                session.client_out.send(out);
            }
            Waiting::ToolCall { decision_id, tool } => {
                let out = session
                    .pipeline
                    .govern_result(&session.ctx(), &decision_id, &tool, bytes, pending.started);
                session.client_out.send(out);
            }
            Waiting::Other => {
                session.client_out.send(bytes);
            }
        }
    }
}

/// Every request still waiting gets an error: its answer will never come.
pub(crate) fn fail_pending(session: &Session, status: &str) {
    let ctx = session.ctx();
    for (id, pending) in session.pending.drain() {
        let message = format!("upstream server '{}' exited ({status}) before answering", ctx.server);
        session.client_out.send(error_response(
            Some(id.as_json()),
            ErrorCode::UpstreamUnavailable,
            &message,
            None,
        ));
        if let Waiting::ToolCall { decision_id, tool } = pending.what {
            session
                .pipeline
                .outcome(&ctx, &decision_id, &tool, "upstream_died", pending.started);
        }
    }
}

/// Waits briefly for an upstream that closed its output, killing it if it lingers; returns its status.
pub(crate) async fn reap(child: &mut Child, grace: Duration) -> String {
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) => describe(status),
        Ok(Err(e)) => format!("status unknown: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            "closed its output but kept running; killed".to_string()
        }
    }
}

/// Stops the upstream after its stdin was closed: wait, then SIGTERM, then SIGKILL.
pub async fn stop(child: &mut Child, grace: Duration) {
    if tokio::time::timeout(grace, child.wait()).await.is_ok() {
        return;
    }
    if let Some(pid) = child.id() {
        tracing::info!(pid, "upstream still running after its input closed; sending SIGTERM");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    tracing::warn!("upstream ignored SIGTERM; killing it");
    let _ = child.kill().await;
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}
