//! `steward.yaml`: the gateway's configuration, with embedded defaults for every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The name of the built-in demo upstream served when no servers are configured.
pub const DEMO_SERVER: &str = "demo";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}\n  hint: {hint}")]
    Invalid {
        path: String,
        line: u64,
        column: u64,
        message: String,
        hint: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDoc {
    #[serde(default)]
    listen: Option<Spanned<String>>,
    #[serde(default)]
    store: Option<StoreConfig>,
    #[serde(default)]
    policy: Option<PathBuf>,
    #[serde(default)]
    registry: Option<PathBuf>,
    #[serde(default)]
    auth: Option<crate::auth::AuthConfig>,
    #[serde(default)]
    servers: BTreeMap<String, Spanned<ServerDoc>>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    session_idle_timeout: Option<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    approvals: ApprovalsConfig,
    #[serde(default)]
    audit: crate::evidence::AuditDoc,
    #[serde(default)]
    console: crate::console::ConsoleConfig,
    #[serde(default)]
    metrics: MetricsConfig,
}

/// `metrics:` in steward.yaml: who may read `/metrics`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `/metrics` asks for credentials like `/mcp` does (API key or token); off by default, for
    /// scrapers that cannot send one.
    #[serde(default)]
    pub auth: bool,
}

/// `approvals:` in steward.yaml: where new pending approvals are announced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// `[{url, format: json|slack}]`.
    #[serde(default)]
    pub webhooks: Vec<crate::notify::Webhook>,
    /// `slack: {signing_secret, users, bot_token}`: Approve and Deny buttons answered at
    /// `POST /v1/slack/interactions` (see docs/approvals.md).
    #[serde(default)]
    pub slack: Option<SlackConfig>,
}

/// `approvals.slack`: the Slack app whose buttons decide approvals.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The app's signing secret (Basic Information → App Credentials), usually `{env: NAME}`.
    pub signing_secret: SecretValue,
    /// Slack user id → Steward principal. A click from anyone else is refused.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// A bot token (`xoxb-…`) with which a Deny click opens a reason modal (`views.open`);
    /// without it a Deny click records "denied from Slack".
    #[serde(default)]
    pub bot_token: Option<SecretValue>,
    /// `signing_secret`, read at load.
    #[serde(skip)]
    pub secret: String,
    /// `bot_token`, read at load.
    #[serde(skip)]
    pub token: Option<String>,
}

// Secrets never reach logs: the derived Debug would print them.
impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("users", &self.users)
            .field("bot_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// Where durable state lives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub sqlite: Option<PathBuf>,
    /// `{url: "postgres://…", pool: 16}` or `{url: {env: STEWARD_PG_URL}}`: several gateways on
    /// one database (docs/scale-out.md).
    #[serde(default)]
    pub postgres: Option<PostgresDoc>,
    /// This gateway's name in the audit rows it writes (default: host name and listen port).
    #[serde(default)]
    pub instance: Option<String>,
}

/// `store.postgres`. The URL may carry a password: it is a secret value (`{env: …}`,
/// `{file: …}` or a literal with `${ENV}`) and is never printed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresDoc {
    pub url: SecretValue,
    #[serde(default)]
    pub pool: Option<usize>,
}

/// The name a gateway's audit rows carry when `store.instance` is not given: this machine's
/// name (`HOSTNAME`, else the kernel's) and the port it listens on.
pub fn default_instance(port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "steward".into());
    format!("{host}:{port}")
}

/// The most connections one gateway may keep to PostgreSQL.
const MAX_POOL: usize = 1024;

impl StoreConfig {
    /// Where the store is: PostgreSQL when `postgres` is given, else the SQLite file
    /// (`sqlite`, resolved against `base`, or `default_sqlite`).
    pub fn location(&self, base: &Path, default_sqlite: &Path) -> Result<steward_store::StoreLocation, String> {
        match (&self.sqlite, &self.postgres) {
            (Some(_), Some(_)) => Err("store: name either sqlite or postgres, not both".into()),
            (_, Some(pg)) => {
                let url = resolve_secret(&pg.url, base).map_err(|e| format!("store.postgres.url: {e}"))?;
                let url = url.trim().to_string();
                if url.is_empty() {
                    return Err("store.postgres.url is empty".into());
                }
                let pool = pg.pool.unwrap_or(steward_store::DEFAULT_POOL);
                if pool == 0 || pool > MAX_POOL {
                    return Err(format!("store.postgres.pool must be between 1 and {MAX_POOL}"));
                }
                Ok(steward_store::StoreLocation::Postgres(steward_store::PostgresConfig {
                    url,
                    pool,
                }))
            }
            (Some(p), None) => Ok(steward_store::StoreLocation::Sqlite(if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            })),
            (None, None) => Ok(steward_store::StoreLocation::Sqlite(default_sqlite.to_path_buf())),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerDoc {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, SecretValue>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, SecretValue>,
    /// `per_session` (default) or `shared`.
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    idle_timeout: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    /// Stdio servers only: see docs/sandbox.md.
    #[serde(default)]
    sandbox: Option<crate::sandbox::SandboxSpec>,
}

/// A credential value: a literal with `${ENV}` references, or `{ file: PATH }` / `{ env: NAME }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretValue {
    Text(String),
    File { file: PathBuf },
    Env { env: String },
}

/// Limits on use, per principal and per tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Calls per minute per principal (0 = unlimited).
    #[serde(default)]
    pub calls_per_minute: u32,
    /// Calls per minute per principal and tool (0 = unlimited).
    #[serde(default)]
    pub tool_calls_per_minute: u32,
    /// Concurrent calls in flight per principal (0 = unlimited).
    #[serde(default)]
    pub concurrent_calls: u32,
    /// Open sessions per principal (each may own a child process).
    #[serde(default = "default_sessions_per_principal")]
    pub sessions_per_principal: usize,
    /// Open sessions in all.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Child processes started for one principal's sessions (per-session servers).
    #[serde(default = "default_children_per_principal")]
    pub children_per_principal: usize,
    /// Child processes started for sessions, in all.
    #[serde(default = "default_max_children")]
    pub max_children: usize,
    /// From accept (or the first byte after an idle spell) to a complete request head.
    #[serde(default = "default_header_read_timeout", deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// From a request's authenticated head to the end of its body.
    #[serde(default = "default_body_read_timeout", deserialize_with = "duration")]
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection with no request in flight stays open.
    #[serde(default = "default_idle_timeout", deserialize_with = "duration")]
    pub idle_timeout: Duration,
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// A positive duration written `500ms`, `10s`, `5m`.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    match parse_duration(&text) {
        Ok(v) if !v.is_zero() => Ok(v),
        Ok(_) => Err(serde::de::Error::custom(format!(
            "'{text}' is zero: a time-out must be positive"
        ))),
        Err(e) => Err(serde::de::Error::custom(format!(
            "{e} (durations look like 500ms, 10s, 5m)"
        ))),
    }
}

fn default_sessions_per_principal() -> usize {
    32
}

fn default_children_per_principal() -> usize {
    8
}

fn default_max_sessions() -> usize {
    1024
}

fn default_max_children() -> usize {
    64
}

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: default_max_body(),
            calls_per_minute: 0,
            tool_calls_per_minute: 0,
            concurrent_calls: 0,
            sessions_per_principal: default_sessions_per_principal(),
            max_sessions: default_max_sessions(),
            children_per_principal: default_children_per_principal(),
            max_children: default_max_children(),
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

/// How an upstream server is reached.
#[derive(Debug, Clone)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
    Demo,
}

/// One upstream server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    pub transport: Transport,
    /// One child per client session (false) or one shared child (true).
    pub shared: bool,
    pub idle_timeout: Duration,
    pub timeout: Duration,
    /// The sandbox a stdio server starts in (`sandbox:`); `None`: unconfined.
    pub sandbox: Option<crate::sandbox::SandboxSpec>,
}

/// The loaded configuration, with defaults filled in and paths resolved.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    /// The SQLite file (`store.sqlite`, or the default); unused when `store` is PostgreSQL.
    pub sqlite: PathBuf,
    /// Where durable state lives: `sqlite` above, or PostgreSQL.
    pub store: steward_store::StoreLocation,
    /// This gateway's name in audit rows (`store.instance`); `None`: host name and port.
    pub instance: Option<String>,
    pub policy: Option<PathBuf>,
    /// The approved-server registry: when set, only its servable servers are served.
    pub registry: Option<PathBuf>,
    pub auth: crate::auth::AuthConfig,
    pub servers: BTreeMap<String, ServerConfig>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub limits: LimitsConfig,
    pub session_idle_timeout: Duration,
    /// The URL clients use to reach the gateway (for OAuth metadata), when not derivable.
    pub public_url: Option<String>,
    pub approvals: ApprovalsConfig,
    /// `audit:`: sinks, checkpoints, signing key, retention (see [`crate::evidence`]).
    pub audit: crate::evidence::AuditConfig,
    /// `/ui`: see docs/console.md.
    pub console: crate::console::ConsoleConfig,
    pub metrics: MetricsConfig,
}

impl GatewayConfig {
    /// Embedded defaults: loopback, SQLite under ./steward-data, baseline policy, the demo upstream.
    pub fn embedded() -> GatewayConfig {
        let mut servers = BTreeMap::new();
        servers.insert(
            DEMO_SERVER.to_string(),
            ServerConfig {
                name: DEMO_SERVER.into(),
                transport: Transport::Demo,
                shared: true,
                idle_timeout: Duration::from_secs(1800),
                timeout: Duration::from_secs(60),
                sandbox: None,
            },
        );
        GatewayConfig {
            source: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            sqlite: PathBuf::from("steward-data/steward.db"),
            store: steward_store::StoreLocation::Sqlite(PathBuf::from("steward-data/steward.db")),
            instance: None,
            policy: None,
            registry: None,
            // No configuration at all: a loopback demo, open to local callers (said loudly at start).
            auth: crate::auth::AuthConfig {
                none: true,
                ..crate::auth::AuthConfig::default()
            },
            servers,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            limits: LimitsConfig::default(),
            session_idle_timeout: Duration::from_secs(1800),
            public_url: None,
            approvals: ApprovalsConfig::default(),
            audit: crate::evidence::AuditConfig::default(),
            console: crate::console::ConsoleConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }

    pub fn from_file(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: display.clone(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = GatewayConfig::from_yaml(&text, &display, &base)?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses config YAML; relative paths are resolved against `base` (the config file's directory).
    pub fn from_yaml(text: &str, name: &str, base: &Path) -> Result<GatewayConfig, ConfigError> {
        let invalid = |line: u64, column: u64, message: String, hint: &str| ConfigError::Invalid {
            path: name.to_string(),
            line,
            column,
            message,
            hint: hint.to_string(),
        };
        if text.len() > 4 * 1024 * 1024 {
            return Err(invalid(
                1,
                1,
                "config is larger than 4 MiB".into(),
                "a gateway config is small YAML",
            ));
        }
        let doc: ConfigDoc = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            let message = e
                .without_snippet()
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .to_string();
            invalid(
                line,
                column,
                message,
                "see docs/gateway.md for every key steward.yaml may have",
            )
        })?;
        let mut cfg = GatewayConfig::embedded();
        if let Some(listen) = doc.listen {
            cfg.listen = listen.value.parse().map_err(|e| {
                invalid(
                    listen.referenced.line(),
                    listen.referenced.column(),
                    format!("listen address '{}': {e}", listen.value),
                    "write HOST:PORT, e.g. 127.0.0.1:8787 or 0.0.0.0:8787",
                )
            })?;
        }
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let store = doc.store.unwrap_or_default();
        cfg.sqlite = resolve(store.sqlite.clone().unwrap_or(cfg.sqlite));
        cfg.store = store.location(base, &cfg.sqlite).map_err(|e| {
            invalid(
                0,
                0,
                e,
                "write store: {postgres: {url: {env: STEWARD_PG_URL}, pool: 16}} or store: {sqlite: PATH}",
            )
        })?;
        cfg.instance = store.instance.filter(|i| !i.trim().is_empty());
        cfg.policy = doc.policy.map(resolve);
        cfg.registry = doc.registry.map(resolve);
        // A config file without `auth:` requires API keys: open access must be asked for.
        cfg.auth = doc.auth.unwrap_or(crate::auth::AuthConfig {
            api_keys: true,
            ..crate::auth::AuthConfig::default()
        });
        if !doc.servers.is_empty() || cfg.registry.is_some() {
            cfg.servers.clear();
        }
        for (name, server) in doc.servers {
            let (line, column) = (server.referenced.line(), server.referenced.column());
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                || name.contains("__")
            {
                return Err(invalid(
                    line,
                    column,
                    format!("server name '{name}' is not usable in a URL path"),
                    "use letters, digits, '-', '_' and '.', and no '__' (it separates server and tool in federation)",
                ));
            }
            if name == crate::approver::ENDPOINT_NAME {
                return Err(invalid(
                    line,
                    column,
                    format!("server name '{name}' is reserved: /mcp/{name} is Steward's approver endpoint"),
                    "give the server another name",
                ));
            }
            let s = server.value;
            let expand_all = |m: &BTreeMap<String, SecretValue>| -> Result<BTreeMap<String, String>, ConfigError> {
                m.iter()
                    .map(|(k, v)| {
                        resolve_secret(v, base).map(|v| (k.clone(), v)).map_err(|e| {
                            invalid(
                                line,
                                column,
                                format!("server '{name}', {k}: {e}"),
                                "set the environment variable or fix the file path",
                            )
                        })
                    })
                    .collect()
            };
            let transport = match (&s.command, &s.url) {
                (Some(command), None) => Transport::Stdio {
                    command: command.clone(),
                    args: s.args.clone(),
                    env: expand_all(&s.env)?,
                },
                (None, Some(url)) => {
                    let url = expand(url).map_err(|e| {
                        invalid(
                            line,
                            column,
                            format!("server '{name}' url: {e}"),
                            "set the environment variable",
                        )
                    })?;
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(invalid(
                            line,
                            column,
                            format!("server '{name}' url must start with http:// or https://"),
                            "e.g. url: http://127.0.0.1:3001/mcp",
                        ));
                    }
                    if s.transport
                        .as_deref()
                        .is_some_and(|t| t != "streamable_http" && t != "http")
                    {
                        return Err(invalid(
                            line,
                            column,
                            format!(
                                "server '{name}': transport '{}' is not supported",
                                s.transport.as_deref().unwrap_or_default()
                            ),
                            "HTTP upstreams speak streamable HTTP (transport: streamable_http)",
                        ));
                    }
                    Transport::Http {
                        url,
                        headers: expand_all(&s.headers)?,
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        line,
                        column,
                        format!("server '{name}' has both command and url"),
                        "a server is either a stdio command or an HTTP url",
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        line,
                        column,
                        format!("server '{name}' has neither command nor url"),
                        "add `command: ...` (stdio) or `url: http://...` (HTTP)",
                    ));
                }
            };
            if s.sandbox.is_some() && !matches!(transport, Transport::Stdio { .. }) {
                return Err(invalid(
                    line,
                    column,
                    format!("server '{name}' has a sandbox but is not a stdio server"),
                    "a sandbox confines a process Steward starts; remove `sandbox:` from HTTP servers",
                ));
            }
            let shared = match s.mode.as_deref() {
                None | Some("per_session") => false,
                Some("shared") => true,
                Some(other) => {
                    return Err(invalid(
                        line,
                        column,
                        format!("server '{name}': unknown mode '{other}'"),
                        "mode is per_session (default) or shared",
                    ));
                }
            };
            let dur = |v: &Option<String>, default: u64, what: &str| -> Result<Duration, ConfigError> {
                match v {
                    None => Ok(Duration::from_secs(default)),
                    Some(t) => parse_duration(t).map_err(|e| {
                        invalid(
                            line,
                            column,
                            format!("server '{name}' {what}: {e}"),
                            "durations look like 30s, 5m, 1h",
                        )
                    }),
                }
            };
            cfg.servers.insert(
                name.clone(),
                ServerConfig {
                    name: name.clone(),
                    transport,
                    shared,
                    idle_timeout: dur(&s.idle_timeout, 1800, "idle_timeout")?,
                    timeout: dur(&s.timeout, 300, "timeout")?,
                    sandbox: s.sandbox.clone(),
                },
            );
        }
        cfg.allowed_hosts = doc.allowed_hosts;
        cfg.allowed_origins = doc.allowed_origins;
        cfg.limits = doc.limits;
        if let Some(t) = doc.session_idle_timeout {
            cfg.session_idle_timeout = parse_duration(&t).map_err(|e| {
                invalid(
                    0,
                    0,
                    format!("session_idle_timeout: {e}"),
                    "durations look like 30s, 5m, 1h",
                )
            })?;
        }
        cfg.public_url = doc.public_url;
        for hook in &doc.approvals.webhooks {
            hook.validate().map_err(|e| {
                invalid(
                    0,
                    0,
                    format!("approvals.webhooks: {e}"),
                    "webhooks are {url: https://..., format: json|slack}",
                )
            })?;
        }
        cfg.approvals = doc.approvals;
        if let Some(slack) = cfg.approvals.slack.as_mut() {
            resolve_slack(slack, base).map_err(|(message, hint)| invalid(0, 0, message, hint))?;
        }
        cfg.audit = doc
            .audit
            .resolve(base)
            .map_err(|e| invalid(0, 0, e, "see docs/sinks.md for the audit: block"))?;
        cfg.console = doc.console;
        if let Some(o) = cfg.console.oidc.as_mut()
            && let Some(secret) = &o.client_secret
        {
            o.secret = Some(resolve_secret(secret, base).map_err(|e| {
                invalid(
                    0,
                    0,
                    format!("console.oidc.client_secret: {e}"),
                    "set the environment variable or fix the file path",
                )
            })?);
        }
        cfg.console
            .validate(&cfg.auth)
            .map_err(|e| invalid(0, 0, e, "see docs/console.md for the console: keys"))?;
        cfg.metrics = doc.metrics;
        Ok(cfg)
    }

    /// Whether the gateway listens on loopback only.
    pub fn loopback(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}

/// The upstream for an approved registry entry (`config: {command, args, env, sandbox} | {url}`).
/// An entry with `sandbox: required` whose config declares no sandbox is not served.
pub fn server_from_registry(name: &str, c: &steward_registry::ServerConfig) -> Result<ServerConfig, String> {
    server_from_entry(name, c, false)
}

/// [`server_from_registry`] for an approved entry, which may require a sandbox.
pub fn server_from_approved(entry: &steward_registry::ApprovedServer) -> Result<ServerConfig, String> {
    let config = entry
        .config
        .as_ref()
        .ok_or_else(|| "the registry entry has no config".to_string())?;
    server_from_entry(&entry.name, config, entry.sandbox_required)
}

fn server_from_entry(
    name: &str,
    c: &steward_registry::ServerConfig,
    sandbox_required: bool,
) -> Result<ServerConfig, String> {
    let transport = match (&c.command, &c.url) {
        (Some(command), _) => Transport::Stdio {
            command: command.clone(),
            args: c.args.clone(),
            env: c
                .env
                .iter()
                .map(|(k, v)| expand(v).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        },
        (None, Some(url)) => Transport::Http {
            url: expand(url)?,
            headers: BTreeMap::new(),
        },
        (None, None) => return Err("the registry entry has no command or url".into()),
    };
    let sandbox = c
        .sandbox
        .as_ref()
        .map(|v| serde_json::from_value::<crate::sandbox::SandboxSpec>(v.clone()))
        .transpose()
        .map_err(|e| format!("config.sandbox: {e}"))?;
    if sandbox_required && sandbox.is_none() {
        return Err(
            "the registry entry requires a sandbox (`sandbox: required`) but its config declares none; add `sandbox:` to its config (docs/sandbox.md)".into(),
        );
    }
    if sandbox.is_some() && !matches!(transport, Transport::Stdio { .. }) {
        return Err("config.sandbox is for stdio servers (command), not url".into());
    }
    Ok(ServerConfig {
        name: name.to_string(),
        transport,
        shared: false,
        idle_timeout: Duration::from_secs(1800),
        timeout: Duration::from_secs(300),
        sandbox,
    })
}

/// Reads `approvals.slack`'s secrets and checks its user map; `Err((message, hint))`.
fn resolve_slack(slack: &mut SlackConfig, base: &Path) -> Result<(), (String, &'static str)> {
    let hint = "set the environment variable or fix the file path";
    slack.secret = resolve_secret(&slack.signing_secret, base)
        .map_err(|e| (format!("approvals.slack.signing_secret: {e}"), hint))?;
    if slack.secret.trim().is_empty() {
        return Err((
            "approvals.slack.signing_secret is empty".into(),
            "use the app's signing secret (Basic Information → App Credentials)",
        ));
    }
    if let Some(t) = &slack.bot_token {
        slack.token = Some(resolve_secret(t, base).map_err(|e| (format!("approvals.slack.bot_token: {e}"), hint))?);
    }
    for (user, principal) in &slack.users {
        let id_ok =
            !user.is_empty() && user.len() <= 32 && user.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !id_ok || principal.trim().is_empty() {
            return Err((
                format!("approvals.slack.users: '{user}: {principal}' is not a Slack user id and a principal"),
                "map Slack user ids (like U024BE7LH, from a profile's \"Copy member ID\") to principals",
            ));
        }
    }
    Ok(())
}

/// Expands `${NAME}` references from the environment; a missing variable is an error, not "".
pub fn expand(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "unterminated ${...}".to_string())?;
        let var = &after[..end];
        let v = std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) fn resolve_secret(v: &SecretValue, base: &Path) -> Result<String, String> {
    match v {
        SecretValue::Text(t) => expand(t),
        SecretValue::Env { env } => std::env::var(env).map_err(|_| format!("environment variable {env} is not set")),
        SecretValue::File { file } => {
            let path = if file.is_absolute() {
                file.clone()
            } else {
                base.join(file)
            };
            let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.len() > 64 * 1024 {
                return Err(format!("{} is larger than 64 KiB", path.display()));
            }
            std::fs::read_to_string(&path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

/// `30s`, `5m`, `2h`, `1d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("cannot read duration '{s}'"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        other => return Err(format!("unknown unit '{other}' in '{s}'")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_postgres_takes_a_secret_url_and_a_pool() {
        // SAFETY: tests in this module read distinct variables.
        unsafe { std::env::set_var("STEWARD_TEST_PG_URL", "postgres://u:pw@db/steward") };
        let base = Path::new("/etc/steward");
        let cfg = GatewayConfig::from_yaml(
            "store: { postgres: { url: { env: STEWARD_TEST_PG_URL }, pool: 4 }, instance: gw-a }\n",
            "steward.yaml",
            base,
        )
        .unwrap();
        assert_eq!(
            cfg.store,
            steward_store::StoreLocation::Postgres(steward_store::PostgresConfig {
                url: "postgres://u:pw@db/steward".into(),
                pool: 4
            })
        );
        assert_eq!(cfg.instance.as_deref(), Some("gw-a"));
        assert!(!format!("{cfg:?}").contains("pw@"), "the password never prints");
        let pg =
            GatewayConfig::from_yaml("store: { postgres: { url: \"postgres://db/s\" } }\n", "s.yaml", base).unwrap();
        assert!(pg.store.is_postgres());
        for bad in [
            "store: { postgres: { url: \"postgres://db/s\", pool: 0 } }\n",
            "store: { postgres: { url: \"\" } }\n",
            "store: { sqlite: ./s.db, postgres: { url: \"postgres://db/s\" } }\n",
            "store: { postgres: { url: { env: STEWARD_TEST_PG_UNSET } } }\n",
        ] {
            assert!(GatewayConfig::from_yaml(bad, "s.yaml", base).is_err(), "{bad}");
        }
        let lite = GatewayConfig::from_yaml("store: { sqlite: ./data/s.db }\n", "s.yaml", base).unwrap();
        assert_eq!(
            lite.store,
            steward_store::StoreLocation::Sqlite(Path::new("/etc/steward/./data/s.db").to_path_buf())
        );
    }

    #[test]
    fn approvals_slack_reads_its_secrets_and_checks_its_users() {
        // SAFETY: tests in this module are the only ones touching this variable.
        unsafe { std::env::set_var("STEWARD_TEST_SLACK_SECRET", "slack-secret") };
        let yaml = "approvals:\n  slack:\n    signing_secret: { env: STEWARD_TEST_SLACK_SECRET }\n    users: { U024BE7LH: bob }\n";
        let cfg = GatewayConfig::from_yaml(yaml, "steward.yaml", Path::new("/")).unwrap();
        let slack = cfg.approvals.slack.as_ref().expect("approvals.slack");
        assert_eq!(slack.secret, "slack-secret");
        assert_eq!(slack.users["U024BE7LH"], "bob");
        assert!(slack.token.is_none());
        assert!(
            !format!("{cfg:?}").contains("slack-secret"),
            "secrets stay out of Debug"
        );

        let unset = "approvals:\n  slack:\n    signing_secret: { env: STEWARD_SURELY_UNSET_SLACK }\n";
        let e = GatewayConfig::from_yaml(unset, "steward.yaml", Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("approvals.slack.signing_secret"), "{e}");
        let bad_user = "approvals:\n  slack:\n    signing_secret: x\n    users: { bob: bob }\n";
        let e = GatewayConfig::from_yaml(bad_user, "steward.yaml", Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("approvals.slack.users"), "{e}");
    }

    #[test]
    fn no_upstream_takes_the_approver_endpoints_name() {
        let yaml = "servers:\n  _approvals: { command: x }\n";
        let e = GatewayConfig::from_yaml(yaml, "steward.yaml", Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    #[test]
    fn parses_the_documented_shape() {
        // SAFETY: tests in this module are the only ones touching this variable.
        unsafe { std::env::set_var("STEWARD_TEST_TOKEN", "tok") };
        let yaml = r#"
listen: 127.0.0.1:9999
store: { sqlite: ./data/s.db }
policy: ./policy.yaml
servers:
  everything: { command: npx, args: ["-y", "@modelcontextprotocol/server-everything", "stdio"] }
  github:     { command: github-mcp-server, args: [stdio], env: { GITHUB_TOKEN: "${STEWARD_TEST_TOKEN}" } }
  remote:     { url: "http://127.0.0.1:3001/mcp" }
"#;
        let cfg = GatewayConfig::from_yaml(yaml, "steward.yaml", Path::new("/etc/steward")).unwrap();
        assert_eq!(cfg.listen.port(), 9999);
        assert_eq!(cfg.sqlite, PathBuf::from("/etc/steward/./data/s.db"));
        assert_eq!(cfg.servers.len(), 3);
        match &cfg.servers["github"].transport {
            Transport::Stdio { env, .. } => assert_eq!(env["GITHUB_TOKEN"], "tok"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(cfg.servers["remote"].transport, Transport::Http { .. }));
    }

    #[test]
    fn connection_time_outs_have_safe_defaults_and_read_durations() {
        let cfg = GatewayConfig::from_yaml("auth: { api_keys: true }\n", "s.yaml", Path::new(".")).unwrap();
        assert_eq!(
            (
                cfg.limits.header_read_timeout,
                cfg.limits.body_read_timeout,
                cfg.limits.idle_timeout
            ),
            (
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(60)
            )
        );
        assert!(!cfg.metrics.auth);
        let cfg = GatewayConfig::from_yaml(
            "limits: { header_read_timeout: 500ms, body_read_timeout: 2s, idle_timeout: 1m }\nmetrics: { auth: true }\n",
            "s.yaml",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(cfg.limits.header_read_timeout, Duration::from_millis(500));
        assert_eq!(cfg.limits.body_read_timeout, Duration::from_secs(2));
        assert_eq!(cfg.limits.idle_timeout, Duration::from_secs(60));
        assert!(cfg.metrics.auth);
        for bad in [
            "limits: { idle_timeout: 0s }\n",
            "limits: { header_read_timeout: soon }\n",
        ] {
            let err = GatewayConfig::from_yaml(bad, "s.yaml", Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("s.yaml:1:"), "{err}");
        }
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = GatewayConfig::from_yaml("listen: nowhere\n", "s.yaml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.yaml:1:"), "{err}");
        let err = GatewayConfig::from_yaml("servers:\n  x: { args: [a] }\n", "s.yaml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither command nor url"), "{err}");
        let err = GatewayConfig::from_yaml("srevers: {}\n", "s.yaml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
        let err = GatewayConfig::from_yaml(
            "servers:\n  x: { command: a, env: { T: \"${STEWARD_SURELY_UNSET_VAR}\" } }\n",
            "s.yaml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("STEWARD_SURELY_UNSET_VAR"), "{err}");
    }
}
