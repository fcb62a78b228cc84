//! `steward proxy`: a stdio MCP proxy wrapped around one upstream server.
//!
//! Two loops share one relay session: the client loop reads the client's stdin and does what
//! [`Relay::request`] says; the upstream loop reads the server's stdout and delivers what
//! [`Relay::from_upstream`] says. Neither decides anything itself.

mod client;
mod stdio;
mod upstream;

pub use upstream::stop as stop_child;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_mcp::{IdKey, LineReader, LineWriter};
use steward_policy::{Policy, Principal};
use tokio::io::BufReader;

use crate::GatewayError;
use crate::pipeline::{Door, Relay, RelayParts, Session};

/// Everything `steward proxy` needs to run.
pub struct ProxyOptions {
    pub policy: Arc<Policy>,
    pub server: String,
    pub principal: Principal,
    pub audit_db: PathBuf,
    pub command: Vec<String>,
    /// Largest message accepted from the client; longer lines are refused.
    pub max_client_message: usize,
    /// Largest message accepted from the upstream; longer lines are dropped.
    pub max_upstream_message: usize,
    /// How long the upstream gets to exit after its stdin closes, and again after SIGTERM.
    pub shutdown_grace: Duration,
    /// Where new pending approvals are announced (`--webhook`).
    pub webhooks: Vec<crate::notify::Webhook>,
    /// The file `policy` was loaded from: watched, and re-read on change or SIGHUP.
    pub policy_path: Option<PathBuf>,
    /// The sandbox the upstream starts in (`--sandbox PROFILE`); `None`: unconfined.
    pub sandbox: Option<crate::sandbox::SandboxSpec>,
    /// `audit:` from `--audit-config`: sinks, checkpoints, retention on `audit_db`.
    pub audit: crate::evidence::AuditConfig,
}

impl ProxyOptions {
    pub const DEFAULT_MAX_CLIENT_MESSAGE: usize = 4 * 1024 * 1024;
    pub const DEFAULT_MAX_UPSTREAM_MESSAGE: usize = 64 * 1024 * 1024;
}

/// How the proxy ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyExit {
    /// The client closed its input (or Steward was asked to stop) and the upstream was shut down.
    Clean,
    /// The upstream exited or closed its output on its own.
    UpstreamDied { status: String },
}

/// State the two loops share.
pub(crate) struct Proxy {
    pub relay: Relay,
    pub session: Session,
    pub principal: Principal,
    pub client_out: LineWriter,
    pub upstream_in: LineWriter,
    /// Requests held for approval or confirmation, by client id: aborted when the client cancels
    /// them or goes away (their approvals stay pending and become grants if approved).
    pub held: Mutex<HashMap<IdKey, tokio::task::AbortHandle>>,
}

/// Runs the proxy until the client or the upstream goes away.
pub async fn run_proxy(opts: ProxyOptions) -> Result<ProxyExit, GatewayError> {
    let Some((program, args)) = opts.command.split_first() else {
        return Err(GatewayError::NoCommand);
    };
    // Sinks, checkpoints and retention (`--audit-config`), on the same database.
    let _evidence = crate::evidence::Evidence::start(&opts.audit, &opts.audit_db)
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    // The sandbox lives as long as the child: dropping it ends what is left in its cgroup.
    let (mut child, sandboxed) = upstream::spawn(program, args, opts.sandbox.as_ref())?;
    sandboxed.log(&opts.server);
    let child_stdin = child.stdin.take().ok_or(GatewayError::Io {
        what: "upstream stdin",
        error: std::io::Error::other("not piped"),
    })?;
    let child_stdout = child.stdout.take().ok_or(GatewayError::Io {
        what: "upstream stdout",
        error: std::io::Error::other("not piped"),
    })?;

    let (client_out, client_writer) = LineWriter::spawn(stdio::Output::stdout());
    let (upstream_in, upstream_writer) = LineWriter::spawn(child_stdin);
    let link = crate::notify::ApprovalLink::Cli {
        db: opts.audit_db.display().to_string(),
    };
    let notifier = crate::notify::Notifier::new(opts.webhooks.clone(), link);
    let relay = Relay::new(RelayParts::sqlite(opts.policy.clone(), &opts.audit_db, notifier));
    let session = Session::new(opts.server.clone(), Door::Proxy, uuid::Uuid::new_v4().to_string());
    if let (Some(event), Some(log)) = (sandboxed.audit_event(&opts.server, "proxy"), relay.audit()) {
        let _ = log.append_nowait(event);
    }
    let session = Arc::new(Proxy {
        relay,
        session,
        principal: opts.principal.clone(),
        client_out,
        upstream_in: upstream_in.clone(),
        held: Mutex::new(HashMap::new()),
    });

    // Hot reload: a new policy that loads replaces the one in force; one that does not is
    // rejected and logged (see crate::reload). Dropped (and stopped) when the proxy returns.
    let _policy_watch = opts.policy_path.clone().map(|path| {
        let target = session.clone();
        crate::reload::spawn(crate::reload::Reloader::new(
            path,
            opts.policy.version().to_string(),
            move |p| target.relay.replace_policy(p),
        ))
    });

    let client_reader = LineReader::new(BufReader::new(stdio::Input::stdin()), opts.max_client_message);
    drop(upstream_in);
    let mut client_task = tokio::spawn(client::run(session.clone(), client_reader));
    let upstream_reader = LineReader::new(BufReader::new(child_stdout), opts.max_upstream_message);
    let mut upstream_task = tokio::spawn(upstream::run(session.clone(), upstream_reader));

    let exit = tokio::select! {
        _ = &mut client_task => {
            // The client is gone: close the upstream's stdin, let it answer what is in flight,
            // then stop it.
            session.upstream_in.close();
            let _ = tokio::time::timeout(opts.shutdown_grace, upstream_writer).await;
            let _ = tokio::time::timeout(opts.shutdown_grace, &mut upstream_task).await;
            upstream::stop(&mut child, opts.shutdown_grace).await;
            ProxyExit::Clean
        }
        _ = shutdown_signal() => {
            client_task.abort();
            session.upstream_in.close();
            let _ = tokio::time::timeout(opts.shutdown_grace, upstream_writer).await;
            let _ = tokio::time::timeout(opts.shutdown_grace, &mut upstream_task).await;
            upstream::stop(&mut child, opts.shutdown_grace).await;
            ProxyExit::Clean
        }
        _ = &mut upstream_task => {
            client_task.abort();
            let status = upstream::reap(&mut child, opts.shutdown_grace).await;
            for error in session.relay.abandon_all(&session.session, crate::pipeline::Abandon::UpstreamGone) {
                session.client_out.send(error);
            }
            ProxyExit::UpstreamDied { status }
        }
    };

    // Everything queued for the client and the audit log goes out before we return.
    session.client_out.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), client_writer).await;
    session.relay.close().await;
    Ok(exit)
}

/// Resolves on SIGTERM or SIGINT: how every long-running door learns to stop.
/// The handlers are installed when this is called (inside the runtime), not when the future is
/// first polled: a signal that arrives in between is not the default "terminate now".
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let (Ok(mut term), Ok(mut int)) = signals else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
