//! `steward proxy`: a stdio MCP proxy wrapped around one upstream server.
//!
//! Two loops share one session: the client loop reads the client's stdin, governs `tools/call`
//! and forwards everything else byte for byte; the upstream loop reads the server's stdout,
//! filters `tools/list` answers, records outcomes and forwards everything else byte for byte.

mod ask;
mod client;
mod pending;
mod upstream;

pub use upstream::stop as stop_child;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_mcp::{LineReader, LineWriter};
use steward_policy::{Policy, Principal};
use steward_store::AuditLog;
use tokio::io::BufReader;

use crate::GatewayError;
use crate::pipeline::{CallContext, Pipeline};
use pending::PendingRequests;

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
pub(crate) struct Session {
    pub pipeline: Pipeline,
    pub ctx: Mutex<CallContext>,
    pub pending: PendingRequests,
    pub client_out: LineWriter,
    /// Tool calls held for approval, by request id: aborted when the client cancels them or
    /// goes away (their approvals stay pending and become grants if approved).
    pub held: Mutex<HashMap<steward_mcp::IdKey, tokio::task::AbortHandle>>,
    /// Steward's own questions to the client (`effect: ask`).
    pub asks: ask::Asks,
}

impl Session {
    pub fn ctx(&self) -> CallContext {
        self.ctx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs the proxy until the client or the upstream goes away.
pub async fn run_proxy(opts: ProxyOptions) -> Result<ProxyExit, GatewayError> {
    let Some((program, args)) = opts.command.split_first() else {
        return Err(GatewayError::NoCommand);
    };
    let audit = AuditLog::open_sqlite(&opts.audit_db).map_err(|e| {
        tracing::error!("{e}; every tool call will be refused until this is fixed");
        e.to_string()
    });
    let _evidence = crate::evidence::Evidence::start(&opts.audit, &opts.audit_db)
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let mut child = upstream::spawn(program, args)?;
    let child_stdin = child.stdin.take().ok_or(GatewayError::Io {
        what: "upstream stdin",
        source: std::io::Error::other("not piped"),
    })?;
    let child_stdout = child.stdout.take().ok_or(GatewayError::Io {
        what: "upstream stdout",
        source: std::io::Error::other("not piped"),
    })?;

    let (client_out, client_writer) = LineWriter::spawn(tokio::io::stdout());
    let (upstream_in, upstream_writer) = LineWriter::spawn(child_stdin);
    let pipeline = Pipeline::new(opts.policy.clone(), audit);
    let link = crate::notify::ApprovalLink::Cli {
        db: opts.audit_db.display().to_string(),
    };
    let pipeline = match crate::approval::Approvals::open(
        &opts.audit_db,
        crate::notify::Notifier::new(opts.webhooks.clone(), link),
    ) {
        Ok(a) => pipeline.with_approvals(a),
        Err(e) => {
            tracing::error!("approvals unavailable ({e}); calls that need approval will be refused");
            pipeline
        }
    };
    let session = Arc::new(Session {
        pipeline,
        ctx: Mutex::new(CallContext {
            principal: opts.principal.clone(),
            server: opts.server.clone(),
            server_info: Default::default(),
            door: "proxy",
            session: uuid::Uuid::new_v4().to_string(),
            client_name: None,
            client_version: None,
        }),
        pending: PendingRequests::default(),
        client_out,
        held: Mutex::new(HashMap::new()),
        asks: ask::Asks::new(),
    });

    // Hot reload: a new policy that loads replaces the one in force; one that does not is
    // rejected and logged (see crate::reload). Dropped (and stopped) when the proxy returns.
    let _policy_watch = opts.policy_path.clone().map(|path| {
        let target = session.clone();
        crate::reload::spawn(crate::reload::Reloader::new(
            path,
            opts.policy.version().to_string(),
            move |p| target.pipeline.replace_policy(p),
        ))
    });

    let client_reader = LineReader::new(BufReader::new(tokio::io::stdin()), opts.max_client_message);
    let mut client_task = tokio::spawn(client::run(session.clone(), client_reader, upstream_in));
    let upstream_reader = LineReader::new(BufReader::new(child_stdout), opts.max_upstream_message);
    let mut upstream_task = tokio::spawn(upstream::run(session.clone(), upstream_reader));

    let exit = tokio::select! {
        _ = &mut client_task => {
            // The client is gone: close the upstream's stdin (the writer ends once the client
            // loop's handle is dropped), let it answer what is in flight, then stop it.
            let _ = tokio::time::timeout(opts.shutdown_grace, upstream_writer).await;
            let _ = tokio::time::timeout(opts.shutdown_grace, &mut upstream_task).await;
            upstream::stop(&mut child, opts.shutdown_grace).await;
            ProxyExit::Clean
        }
        _ = shutdown_signal() => {
            client_task.abort();
            let _ = tokio::time::timeout(opts.shutdown_grace, upstream_writer).await;
            let _ = tokio::time::timeout(opts.shutdown_grace, &mut upstream_task).await;
            upstream::stop(&mut child, opts.shutdown_grace).await;
            ProxyExit::Clean
        }
        _ = &mut upstream_task => {
            client_task.abort();
            let status = upstream::reap(&mut child, opts.shutdown_grace).await;
            upstream::fail_pending(&session, &status);
            ProxyExit::UpstreamDied { status }
        }
    };

    // Everything queued for the client and the audit log goes out before we return.
    session.client_out.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), client_writer).await;
    if let Some(approvals) = session.pipeline.approvals() {
        approvals.flush().await;
    }
    if let Some(log) = session.pipeline.audit() {
        log.close();
    }
    Ok(exit)
}

/// Resolves on SIGTERM or SIGINT: how every long-running door learns to stop.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
