//! The upstream side: the child process, and the loop from its stdout to the client.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use steward_mcp::{Line, LineReader};
use tokio::io::AsyncBufRead;
use tokio::process::{Child, Command};

use super::Proxy;
use crate::GatewayError;
use crate::pipeline::Delivery;

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
        error: std::io::Error::new(e.kind(), sandboxed.spawn_error(&e)),
    })?;
    Ok((child, sandboxed))
}

pub(crate) async fn run<R: AsyncBufRead + Unpin>(proxy: Arc<Proxy>, mut input: LineReader<R>) {
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
        match proxy.relay.from_upstream(&proxy.session, bytes) {
            Delivery::Client(out) | Delivery::Answer { bytes: out, .. } => {
                proxy.client_out.send(out);
            }
            Delivery::Drop => {}
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
