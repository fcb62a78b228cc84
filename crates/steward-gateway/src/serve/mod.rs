//! `steward serve`: the central HTTP gateway.

// Handlers return early with ready-made responses; boxing them would buy nothing.
#![allow(clippy::result_large_err)]

pub(crate) mod activity_api;
mod admit;
pub(crate) mod approvals_api;
mod approver_mcp;
mod conn;
mod decide_api;
mod exchange;
mod federation;
pub(crate) mod guard;
mod legacy_sse;
mod mcp;
pub(crate) mod policy_api;
mod reply;
pub(crate) mod servers_api;
mod state;
pub(crate) mod stats_api;
mod stream;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use steward_policy::Policy;
use steward_store::KeyStore;

use crate::GatewayError;
use crate::auth::{self, Authenticator};
use crate::config::GatewayConfig;
use crate::pipeline::{Relay, RelayParts};
pub use state::AppState;

/// How long `/readyz` waits for PostgreSQL to answer.
const READY_PING: Duration = Duration::from_secs(2);

/// How long calls in flight may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(30);

/// Builds the gateway's state: policy, audit log, key store, authenticator.
pub async fn build_state(mut cfg: GatewayConfig, policy: Arc<Policy>) -> Result<Arc<AppState>, GatewayError> {
    cfg.auth
        .check_listen(cfg.listen)
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let registry = match &cfg.registry {
        Some(path) => {
            let r = steward_registry::Registry::from_file(path)
                .map_err(|e| GatewayError::Config(format!("registry: {e}")))?;
            for s in r.servable_servers(steward_registry::today()) {
                if cfg.servers.contains_key(s.name) {
                    continue;
                }
                if s.name == crate::approver::ENDPOINT_NAME {
                    tracing::warn!(
                        server = s.name,
                        "registry server left out: the name is the approver endpoint's"
                    );
                    continue;
                }
                match crate::config::server_from_approved(s.entry) {
                    Ok(server) => {
                        cfg.servers.insert(s.name.to_string(), server);
                    }
                    Err(e) => tracing::warn!(server = s.name, error = %e, "registry server left out"),
                }
            }
            Some(r)
        }
        None => None,
    };
    // Every gateway on one PostgreSQL names itself in the rows it writes.
    let instance = cfg.instance.clone().or_else(|| {
        cfg.store
            .is_postgres()
            .then(|| crate::config::default_instance(cfg.listen.port()))
    });
    let notifier = approval_notifier(&cfg);
    let (location, opening_policy) = (cfg.store.clone(), policy.clone());
    let mut parts =
        tokio::task::spawn_blocking(move || RelayParts::open(&location, instance, opening_policy, notifier))
            .await
            .map_err(|e| GatewayError::Config(format!("audit store: {e}")))?;
    if let Err(e) = &parts.audit {
        return Err(GatewayError::Config(format!("audit store: {e}")));
    }
    if parts.approvals.is_none() {
        return Err(GatewayError::Config(
            "approval store: cannot be opened (see the log)".into(),
        ));
    }
    let Some(store) = parts.store.clone() else {
        return Err(GatewayError::Config("store: cannot be opened (see the log)".into()));
    };
    let keys: Option<KeyStore> = if cfg.auth.api_keys {
        Some(
            store
                .keys()
                .map_err(|e| GatewayError::Config(format!("key store: {e}")))?,
        )
    } else {
        None
    };
    let authenticator = Authenticator::new(&cfg.auth, keys)
        .await
        .map_err(|e| GatewayError::Config(format!("auth: {e}")))?;
    parts.limits = cfg.limits.clone();
    let relay = Arc::new(Relay::new(parts));
    if let Some(log) = relay.audit() {
        crate::sandbox::startup_check(&cfg.servers, log);
    }
    let evidence =
        crate::evidence::Evidence::start(&cfg.audit, &store).map_err(|e| GatewayError::Config(e.to_string()))?;
    Ok(Arc::new(AppState {
        evidence,
        ..AppState::new(cfg, relay, authenticator, registry)
    }))
}

/// Announces new pending approvals; links in webhook messages point at this gateway's API.
fn approval_notifier(cfg: &GatewayConfig) -> crate::notify::Notifier {
    let base = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cfg.listen));
    let link = if cfg.console.enabled {
        crate::notify::ApprovalLink::Console(base)
    } else {
        crate::notify::ApprovalLink::Http(base)
    };
    crate::notify::Notifier::new(cfg.approvals.webhooks.clone(), link)
}

/// The largest console form (sign-in, a reason for a decision).
const CONSOLE_FORM_LIMIT: usize = 64 * 1024;

/// The gateway's routes. Every route that does work authenticates its caller on the headers
/// before its body is read ([`admit`]).
pub fn router(st: Arc<AppState>) -> Router {
    let max_body = st.cfg.limits.max_body_bytes;
    // Console forms are small; they are read before the handler checks the session cookie, so
    // they get a small limit of their own.
    let console = match st.console {
        Some(_) => crate::console::router().layer(DefaultBodyLimit::max(CONSOLE_FORM_LIMIT)),
        None => Router::new(),
    };
    let authenticated = Router::new()
        .route(
            "/mcp",
            post(federation::post).delete(federation::delete).get(|| async {
                (
                    StatusCode::METHOD_NOT_ALLOWED,
                    "the federated endpoint has no GET stream",
                )
            }),
        )
        // A static segment wins over `{server}`; no upstream may be named `_approvals`.
        .route(
            "/mcp/_approvals",
            post(approver_mcp::post)
                .get(approver_mcp::no_stream)
                .delete(approver_mcp::no_stream),
        )
        .route("/mcp/{server}", post(mcp::post).get(stream::get).delete(stream::delete))
        .route("/sse/{server}", get(legacy_sse::open))
        .route("/messages/{server}", post(legacy_sse::message))
        .route("/v1/decide", post(decide_api::decide))
        .route("/v1/approvals", get(approvals_api::list))
        .route("/v1/approvals/{id}", get(approvals_api::show))
        .route("/v1/approvals/{id}/approve", post(approvals_api::approve))
        .route("/v1/approvals/{id}/deny", post(approvals_api::deny))
        .route("/v1/activity", get(activity_api::list))
        .route("/v1/activity/stream", get(activity_api::stream))
        .route("/v1/activity/{seq}", get(activity_api::row))
        .route("/v1/stats", get(stats_api::show))
        .route("/v1/servers", get(servers_api::list))
        .route("/v1/servers/{server}/pins/approve", post(servers_api::approve))
        .route("/v1/policy", get(policy_api::show))
        .route("/v1/policy/explain", post(policy_api::explain_api))
        .route_layer(axum::middleware::from_fn_with_state(st.clone(), admit::admit));
    // Slack authenticates its posts by signature, not with a Steward credential.
    let slack = match &st.cfg.approvals.slack {
        Some(cfg) => {
            let door = crate::approver::slack::SlackDoor::new(
                crate::approver::Desk::new(st.relay.clone()),
                cfg.clone(),
                st.cfg.limits.body_read_timeout,
            );
            Router::new()
                .route("/v1/slack/interactions", post(crate::approver::slack::interactions))
                .with_state(Arc::new(door))
        }
        None => Router::new(),
    };
    Router::new()
        .merge(authenticated)
        .merge(console)
        .merge(slack)
        .route("/.well-known/oauth-protected-resource", get(resource_metadata_root))
        .route(
            "/.well-known/oauth-protected-resource/mcp/{server}",
            get(resource_metadata_server),
        )
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(st.clone(), guard::origin_layer))
        // Probes come from load balancers and orchestrators by address, and carry no data.
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(st)
}

/// Binds the listen address (before anything says the gateway listens).
pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, GatewayError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| GatewayError::Bind { addr, error })
}

/// Serves on `listener` until `shutdown` resolves, then finishes in-flight calls, stops
/// upstreams and flushes the audit log.
pub async fn run(
    st: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let reaper = tokio::spawn(reap_sessions(st.clone()));
    let app = router(st.clone());
    let signal_state = st.clone();
    let signal = async move {
        shutdown.await;
        // Open streams (GET, legacy SSE) end now; calls in flight get DRAIN to finish.
        signal_state.stopping.send_replace(true);
    };
    let limits = conn::ConnLimits {
        header_read: st.cfg.limits.header_read_timeout,
        idle: st.cfg.limits.idle_timeout,
    };
    let server = conn::serve(listener, app, limits, signal);
    let stopped = st.stopped();
    tokio::select! {
        _ = server => {}
        _ = async { stopped.await; tokio::time::sleep(DRAIN).await } => {
            tracing::warn!("calls still in flight after {}s; stopping anyway", DRAIN.as_secs());
        }
    }
    reaper.abort();
    for s in st.sessions.drain() {
        close_session(&st, &s).await;
    }
    st.upstreams.close_all().await;
    st.relay.close().await;
    Ok(())
}

/// Closes a session's upstream connection if it owns one.
pub(crate) async fn close_session(st: &AppState, s: &state::Session) {
    st.metrics().session_closed();
    if s.owns_conn {
        s.conn.close().await;
    }
}

async fn reap_sessions(st: Arc<AppState>) {
    let every = (st.sessions.idle_timeout() / 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        for s in st.sessions.expire() {
            tracing::info!(session = %state::session_label(&s.id), server = %s.server, "session expired");
            close_session(&st, &s).await;
        }
        let gone = st.federation.expire(st.sessions.idle_timeout());
        for _ in 0..gone {
            st.metrics().session_closed();
        }
    }
}

async fn metrics(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    // `metrics: {auth: true}`: scrapers authenticate like MCP clients do.
    if st.cfg.metrics.auth
        && let Err(refused) = guard::authenticate(&st, &headers, "").await
    {
        return refused;
    }
    let depth = st.relay.audit().map(|a| a.queue_depth()).unwrap_or(0);
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (mut body, content_type) = st.metrics().render(depth, openmetrics);
    // The sinks' series go before OpenMetrics' closing `# EOF`.
    let sinks = st.evidence.render_metrics();
    match body.rfind("# EOF") {
        Some(at) => body.insert_str(at, &sinks),
        None => body.push_str(&sinks),
    }
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Ready while the audit log can be written: a gateway that cannot audit refuses every governed
/// call, so a load balancer should send its traffic elsewhere. The body says why, and how each
/// audit sink fares (a sink never makes the gateway unready).
async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let sinks: Vec<String> = st.evidence.readiness().lines().map(str::to_string).collect();
    let audit = match st.relay.audit() {
        None => Err(serde_json::json!({ "error": "the audit log could not be opened" })),
        Some(log) => log
            .health()
            .map_err(|h| serde_json::json!({ "error": h.error, "since": h.since })),
    };
    // A shared database can go away while this gateway is idle: ask it.
    let audit = match (audit, st.relay.store().filter(|s| s.is_postgres()).cloned()) {
        (Ok(()), Some(store)) => {
            let asked = tokio::time::timeout(READY_PING, tokio::task::spawn_blocking(move || store.ping())).await;
            match asked {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(serde_json::json!({ "error": e.to_string() })),
                Ok(Err(e)) => Err(serde_json::json!({ "error": format!("the store check failed: {e}") })),
                Err(_) => Err(serde_json::json!({ "error": "PostgreSQL did not answer within 2 s" })),
            }
        }
        (other, _) => other,
    };
    let (status, body) = match audit {
        Ok(()) => (
            StatusCode::OK,
            serde_json::json!({ "status": "ready", "audit": "ok", "sinks": sinks }),
        ),
        Err(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "not ready", "audit": detail, "sinks": sinks }),
        ),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn metadata(st: &AppState, headers: &HeaderMap, path: &str) -> Response {
    let resource = format!("{}{path}", guard::base_url(st, headers));
    let issuers: Vec<String> = st.cfg.auth.oidc.iter().map(|o| o.issuer.clone()).collect();
    let body = auth::protected_resource_metadata(&resource, &issuers, &[]);
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn resource_metadata_root(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    metadata(&st, &headers, "/mcp")
}

async fn resource_metadata_server(
    State(st): State<Arc<AppState>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    if st.upstreams.config(&server).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    metadata(&st, &headers, &format!("/mcp/{server}"))
}
