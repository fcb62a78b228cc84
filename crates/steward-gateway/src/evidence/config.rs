//! The `audit:` block of steward.yaml (and of `steward proxy --audit-config FILE`).
//!
//! ```yaml
//! audit:
//!   sinks:
//!     - { type: syslog, address: "tcp://127.0.0.1:6514" }        # or tls://host:port, with ca/cert
//!     - { type: file, path: ./audit/steward.jsonl, rotate: { size: 100MiB, keep: 10 } }
//!     - { type: http, url: "https://siem.example/ingest", format: json }   # json | splunk_hec | elastic_bulk
//!     - { type: otlp, endpoint: "http://127.0.0.1:4318" }
//!   checkpoint: { every: 1000, interval: 5m }
//!   signing_key: { file: ./audit-signing.key }
//!   retention: 90d
//! ```
//!
//! Secrets in sink headers stay unresolved here (`${ENV}`, `{env: NAME}`, `{file: PATH}`) and
//! are read when the sink starts, so `steward audit sinks` or `prune` never need them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{SecretValue, parse_duration};

/// Events one delivery carries at most, unless a sink says otherwise.
pub const DEFAULT_BATCH: usize = 500;
const MAX_BATCH: usize = 10_000;
const MAX_SINKS: usize = 32;

/// `audit:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditDoc {
    #[serde(default)]
    sinks: Vec<SinkDoc>,
    #[serde(default)]
    checkpoint: Option<CheckpointDoc>,
    #[serde(default)]
    signing_key: Option<KeyDoc>,
    #[serde(default)]
    retention: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SinkDoc {
    Syslog(SyslogDoc),
    File(FileDoc),
    Http(HttpDoc),
    Otlp(OtlpDoc),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyslogDoc {
    #[serde(default)]
    name: Option<String>,
    address: String,
    #[serde(default)]
    ca: Option<PathBuf>,
    #[serde(default)]
    cert: Option<PathBuf>,
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    facility: Option<String>,
    #[serde(default)]
    batch: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    name: Option<String>,
    path: PathBuf,
    #[serde(default)]
    rotate: Option<RotateDoc>,
    #[serde(default)]
    batch: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateDoc {
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    keep: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpDoc {
    #[serde(default)]
    name: Option<String>,
    url: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, SecretValue>,
    #[serde(default)]
    index: Option<String>,
    #[serde(default)]
    sourcetype: Option<String>,
    #[serde(default)]
    ca: Option<PathBuf>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    batch: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OtlpDoc {
    #[serde(default)]
    name: Option<String>,
    endpoint: String,
    #[serde(default)]
    headers: BTreeMap<String, SecretValue>,
    #[serde(default)]
    ca: Option<PathBuf>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    batch: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointDoc {
    #[serde(default)]
    every: Option<u64>,
    #[serde(default)]
    interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    file: PathBuf,
}

/// The `audit:` block, checked, with paths resolved.
#[derive(Debug, Clone, Default)]
pub struct AuditConfig {
    pub sinks: Vec<SinkConfig>,
    /// When `steward serve` (and the proxy) checkpoint by themselves.
    pub checkpoint: Option<CheckpointPolicy>,
    /// The Ed25519 key that signs checkpoints and prune anchors.
    pub signing_key: Option<PathBuf>,
    /// Rows older than this are pruned (in the background, behind the sinks).
    pub retention: Option<Duration>,
}

impl AuditConfig {
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty() && self.checkpoint.is_none() && self.retention.is_none()
    }

    pub fn sink_names(&self) -> Vec<String> {
        self.sinks.iter().map(|s| s.name.clone()).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// After this many events.
    pub every: Option<u64>,
    /// After this long, when there is anything new.
    pub interval: Option<Duration>,
}

/// One sink.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Its cursor's name: `name:` or `TYPE:HOST:PORT/PATH` (never credentials or a query).
    pub name: String,
    pub batch: usize,
    pub kind: SinkKind,
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    Syslog(SyslogConfig),
    File(FileConfig),
    Http(HttpConfig),
    Otlp(OtlpConfig),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Syslog(_) => "syslog",
            SinkKind::File(_) => "file",
            SinkKind::Http(_) => "http",
            SinkKind::Otlp(_) => "otlp",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyslogConfig {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// PEM CA certificates to trust (default: the system's).
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) and key (PEM; default: in the `cert` file).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// RFC 5424 facility number.
    pub facility: u8,
}

#[derive(Debug, Clone)]
pub struct FileConfig {
    pub path: PathBuf,
    pub rotate_size: Option<u64>,
    pub rotate_interval: Option<Duration>,
    /// Rotated files kept (`FILE.1` … `FILE.keep`).
    pub keep: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFormat {
    /// A JSON array of events.
    Json,
    /// Splunk HTTP Event Collector: one `{time, host, source, sourcetype, event}` object per event.
    SplunkHec,
    /// Elasticsearch `_bulk`: `create` actions keyed by the row hash, so a resend is a no-op.
    ElasticBulk,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub url: String,
    pub format: HttpFormat,
    pub headers: BTreeMap<String, SecretValue>,
    pub index: Option<String>,
    pub sourcetype: Option<String>,
    pub ca: Option<PathBuf>,
    pub timeout: Duration,
    /// The directory relative `{file: …}` secrets are read from.
    pub base: PathBuf,
}

#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The full logs URL (`…/v1/logs`).
    pub url: String,
    pub headers: BTreeMap<String, SecretValue>,
    pub ca: Option<PathBuf>,
    pub timeout: Duration,
    pub base: PathBuf,
}

impl AuditDoc {
    /// Checks the block and resolves relative paths against `base` (the config file's
    /// directory). Errors name the sink and the key.
    pub fn resolve(self, base: &Path) -> Result<AuditConfig, String> {
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        if self.sinks.len() > MAX_SINKS {
            return Err(format!("audit.sinks: at most {MAX_SINKS} sinks"));
        }
        let mut sinks: Vec<SinkConfig> = Vec::new();
        for (i, doc) in self.sinks.into_iter().enumerate() {
            let at = |e: String| format!("audit.sinks[{i}]: {e}");
            let sink = resolve_sink(doc, base, &resolve).map_err(at)?;
            if sinks.iter().any(|s| s.name == sink.name) {
                return Err(at(format!("two sinks are named '{}'; give one a `name:`", sink.name)));
            }
            sinks.push(sink);
        }
        let checkpoint = match self.checkpoint {
            None => None,
            Some(c) => {
                let interval = c
                    .interval
                    .as_deref()
                    .map(parse_duration)
                    .transpose()
                    .map_err(|e| format!("audit.checkpoint.interval: {e}"))?;
                if c.every == Some(0) || interval.is_some_and(|d| d < Duration::from_secs(1)) {
                    return Err("audit.checkpoint: `every` must be at least 1 and `interval` at least 1s".into());
                }
                if c.every.is_none() && interval.is_none() {
                    return Err("audit.checkpoint needs `every: N` (events) or `interval: 5m`, or both".into());
                }
                Some(CheckpointPolicy {
                    every: c.every,
                    interval,
                })
            }
        };
        let retention = self
            .retention
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| format!("audit.retention: {e}"))?;
        if retention.is_some_and(|d| d < Duration::from_secs(3600)) {
            return Err("audit.retention: keep at least 1h (prune by hand with `steward audit prune`)".into());
        }
        Ok(AuditConfig {
            sinks,
            checkpoint,
            signing_key: self.signing_key.map(|k| resolve(k.file)),
            retention,
        })
    }
}

fn resolve_sink(doc: SinkDoc, base: &Path, resolve: &dyn Fn(PathBuf) -> PathBuf) -> Result<SinkConfig, String> {
    let batch = |b: Option<usize>| -> Result<usize, String> {
        match b {
            None => Ok(DEFAULT_BATCH),
            Some(n) if (1..=MAX_BATCH).contains(&n) => Ok(n),
            Some(_) => Err(format!("batch must be 1 to {MAX_BATCH}")),
        }
    };
    let timeout = |t: &Option<String>| -> Result<Duration, String> {
        match t {
            None => Ok(Duration::from_secs(10)),
            Some(t) => parse_duration(t).map_err(|e| format!("timeout: {e}")),
        }
    };
    let (name, batch, kind) = match doc {
        SinkDoc::Syslog(s) => {
            let (tls, rest) = if let Some(r) = s.address.strip_prefix("tcp://") {
                (false, r)
            } else if let Some(r) = s.address.strip_prefix("tls://") {
                (true, r)
            } else {
                return Err(format!(
                    "syslog address '{}' must be tcp://HOST:PORT or tls://HOST:PORT",
                    s.address
                ));
            };
            let (host, port) = split_host_port(rest).ok_or_else(|| {
                format!(
                    "syslog address '{}' must be tcp://HOST:PORT or tls://HOST:PORT",
                    s.address
                )
            })?;
            if !tls && (s.ca.is_some() || s.cert.is_some() || s.key.is_some()) {
                return Err("ca, cert and key are for tls:// addresses".into());
            }
            if s.key.is_some() && s.cert.is_none() {
                return Err("a client key needs its certificate (cert:)".into());
            }
            let facility = facility(s.facility.as_deref().unwrap_or("local0"))?;
            let name = s
                .name
                .unwrap_or_else(|| format!("syslog:{}:{port}", host.trim_matches(['[', ']'])));
            (
                name,
                batch(s.batch)?,
                SinkKind::Syslog(SyslogConfig {
                    host: host.trim_matches(['[', ']']).to_string(),
                    port,
                    tls,
                    ca: s.ca.map(resolve),
                    cert: s.cert.map(resolve),
                    key: s.key.map(resolve),
                    facility,
                }),
            )
        }
        SinkDoc::File(f) => {
            let path = resolve(f.path);
            let (rotate_size, rotate_interval, keep) = match f.rotate {
                None => (None, None, 0),
                Some(r) => {
                    let size = r
                        .size
                        .as_deref()
                        .map(parse_size)
                        .transpose()
                        .map_err(|e| format!("rotate.size: {e}"))?;
                    let interval = r
                        .interval
                        .as_deref()
                        .map(parse_duration)
                        .transpose()
                        .map_err(|e| format!("rotate.interval: {e}"))?;
                    if size.is_some_and(|s| s < 1024) || interval.is_some_and(|d| d < Duration::from_secs(1)) {
                        return Err("rotate: size at least 1KiB, interval at least 1s".into());
                    }
                    if size.is_none() && interval.is_none() {
                        return Err("rotate needs `size: 100MiB` or `interval: 1d`, or both".into());
                    }
                    let keep = r.keep.unwrap_or(10);
                    if keep > 1000 {
                        return Err("rotate.keep: at most 1000 files".into());
                    }
                    (size, interval, keep)
                }
            };
            let name = f.name.unwrap_or_else(|| format!("file:{}", path.display()));
            (
                name,
                batch(f.batch)?,
                SinkKind::File(FileConfig {
                    path,
                    rotate_size,
                    rotate_interval,
                    keep,
                }),
            )
        }
        SinkDoc::Http(h) => {
            let url = crate::config::expand(&h.url).map_err(|e| format!("url: {e}"))?;
            let label = url_label(&url)?;
            let format = match h.format.as_deref().unwrap_or("json") {
                "json" => HttpFormat::Json,
                "splunk_hec" => HttpFormat::SplunkHec,
                "elastic_bulk" => HttpFormat::ElasticBulk,
                other => return Err(format!("format '{other}': use json, splunk_hec or elastic_bulk")),
            };
            (
                h.name.unwrap_or_else(|| format!("http:{label}")),
                batch(h.batch)?,
                SinkKind::Http(HttpConfig {
                    url,
                    format,
                    headers: h.headers,
                    index: h.index,
                    sourcetype: h.sourcetype,
                    ca: h.ca.map(resolve),
                    timeout: timeout(&h.timeout)?,
                    base: base.to_path_buf(),
                }),
            )
        }
        SinkDoc::Otlp(o) => {
            let endpoint = crate::config::expand(&o.endpoint).map_err(|e| format!("endpoint: {e}"))?;
            let trimmed = endpoint.trim_end_matches('/');
            let url = if trimmed.ends_with("/v1/logs") {
                trimmed.to_string()
            } else {
                format!("{trimmed}/v1/logs")
            };
            let label = url_label(&url)?;
            (
                o.name.unwrap_or_else(|| format!("otlp:{label}")),
                batch(o.batch)?,
                SinkKind::Otlp(OtlpConfig {
                    url,
                    headers: o.headers,
                    ca: o.ca.map(resolve),
                    timeout: timeout(&o.timeout)?,
                    base: base.to_path_buf(),
                }),
            )
        }
    };
    check_name(&name)?;
    Ok(SinkConfig { name, batch, kind })
}

/// Sink names become metric labels and cursor keys: short, printable, no quotes.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'' | '`'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sink name '{name}' must be 1 to 200 visible ASCII characters without quotes or backslashes (set `name:`)"
        ))
    }
}

/// `host:port/path` of an http(s) URL, for a default sink name: never its credentials or query.
fn url_label(url: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("the URL must start with http:// or https://".into());
    }
    let host = u.host_str().ok_or("the URL has no host")?;
    let port = u.port_or_known_default().unwrap_or(0);
    Ok(format!("{host}:{port}{}", u.path().trim_end_matches('/')))
}

fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    if host.is_empty() || host.contains('/') {
        return None;
    }
    Some((host, port.parse().ok().filter(|p| *p > 0)?))
}

fn facility(name: &str) -> Result<u8, String> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
        "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|p| p as u8)
        .ok_or_else(|| format!("unknown syslog facility '{name}' (e.g. local0, auth, authpriv, audit)"))
}

/// `100MiB`, `512KiB`, `1GiB`, `10MB` (powers of 1000), or a number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("cannot read size '{s}'"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown unit '{other}' in '{s}' (use KiB, MiB, GiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size '{s}' is too large"))
}

/// The parts of a steward.yaml that audit commands read; every other key is ignored, so they
/// work without the upstreams' secrets in the environment.
#[derive(Debug, Clone)]
pub struct EvidenceFile {
    pub path: PathBuf,
    /// The store (`store.sqlite`, default `steward-data/steward.db` beside the file).
    pub sqlite: PathBuf,
    /// Where the store is: `sqlite` above, or the config's `store.postgres`.
    pub store: steward_store::StoreLocation,
    /// The gateway's name in audit rows (`store.instance`, else, on PostgreSQL, host name and
    /// listen port): what commands run with this config write under.
    pub instance: Option<String>,
    pub audit: AuditConfig,
    pub policy: Option<PathBuf>,
    pub registry: Option<PathBuf>,
}

#[derive(Deserialize)]
struct LooseDoc {
    #[serde(default)]
    store: Option<LooseStore>,
    #[serde(default)]
    audit: Option<AuditDoc>,
    #[serde(default)]
    policy: Option<PathBuf>,
    #[serde(default)]
    registry: Option<PathBuf>,
    #[serde(default)]
    listen: Option<String>,
}

#[derive(Deserialize)]
struct LooseStore {
    #[serde(default)]
    sqlite: Option<PathBuf>,
    #[serde(default)]
    postgres: Option<crate::config::PostgresDoc>,
    #[serde(default)]
    instance: Option<String>,
}

impl EvidenceFile {
    pub fn load(path: &Path) -> Result<EvidenceFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if text.len() > 4 * 1024 * 1024 {
            return Err(format!("{} is larger than 4 MiB", path.display()));
        }
        let doc: LooseDoc = serde_saphyr::from_str(&text).map_err(|e| {
            format!(
                "{}: {}",
                path.display(),
                e.without_snippet().to_string().lines().next().unwrap_or("invalid YAML")
            )
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let loose = doc.store.unwrap_or(LooseStore {
            sqlite: None,
            postgres: None,
            instance: None,
        });
        let sqlite = resolve(
            loose
                .sqlite
                .clone()
                .unwrap_or_else(|| PathBuf::from("steward-data/steward.db")),
        );
        let store = crate::config::StoreConfig {
            sqlite: loose.sqlite,
            postgres: loose.postgres,
            instance: None,
        }
        .location(&base, &sqlite)
        .map_err(|e| format!("{}: {e}", path.display()))?;
        let port = doc
            .listen
            .as_deref()
            .and_then(|l| l.parse::<std::net::SocketAddr>().ok())
            .map_or(8787, |a| a.port());
        let instance = loose
            .instance
            .filter(|i| !i.trim().is_empty())
            .or_else(|| store.is_postgres().then(|| crate::config::default_instance(port)));
        let audit = doc
            .audit
            .unwrap_or_default()
            .resolve(&base)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(EvidenceFile {
            path: path.to_path_buf(),
            sqlite,
            store,
            instance,
            audit,
            policy: doc.policy.map(resolve),
            registry: doc.registry.map(resolve),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<AuditConfig, String> {
        let doc: AuditDoc = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        doc.resolve(Path::new("/etc/steward"))
    }

    #[test]
    fn the_documented_block_parses() {
        let cfg = parse(
            r#"
sinks:
  - { type: syslog, address: "tcp://127.0.0.1:6514" }
  - { type: file, path: ./audit/steward.jsonl, rotate: { size: 100MiB, keep: 10 } }
  - { type: http, url: "https://user:pw@siem.example/ingest?token=x", format: splunk_hec }
  - { type: otlp, endpoint: "http://127.0.0.1:4318" }
checkpoint: { every: 1000, interval: 5m }
signing_key: { file: ./audit-signing.key }
retention: 90d
"#,
        )
        .unwrap();
        assert_eq!(
            cfg.sink_names(),
            [
                "syslog:127.0.0.1:6514",
                "file:/etc/steward/./audit/steward.jsonl",
                "http:siem.example:443/ingest",
                "otlp:127.0.0.1:4318/v1/logs"
            ]
        );
        match &cfg.sinks[1].kind {
            SinkKind::File(f) => assert_eq!((f.rotate_size, f.keep), (Some(100 << 20), 10)),
            other => panic!("{other:?}"),
        }
        match &cfg.sinks[3].kind {
            SinkKind::Otlp(o) => assert_eq!(o.url, "http://127.0.0.1:4318/v1/logs"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            cfg.checkpoint,
            Some(CheckpointPolicy {
                every: Some(1000),
                interval: Some(Duration::from_secs(300))
            })
        );
        assert_eq!(cfg.signing_key, Some(PathBuf::from("/etc/steward/./audit-signing.key")));
        assert_eq!(cfg.retention, Some(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn mistakes_are_named() {
        for (yaml, needle) in [
            ("sinks: [{ type: syslog, address: \"udp://x:1\" }]", "tcp://HOST:PORT"),
            (
                "sinks: [{ type: syslog, address: \"tcp://x:1\", ca: ./ca.pem }]",
                "tls://",
            ),
            (
                "sinks: [{ type: http, url: \"https://a/b\", format: xml }]",
                "splunk_hec",
            ),
            ("sinks: [{ type: kafka, url: x }]", "unknown variant"),
            ("sinks: [{ type: file, path: a, rotat: {} }]", "unknown field"),
            ("sinks: [{ type: file, path: a }, { type: file, path: a }]", "two sinks"),
            ("checkpoint: {}", "every"),
            ("retention: 10m", "at least 1h"),
            (
                "sinks: [{ type: syslog, address: \"tcp://x:1\", facility: bogus }]",
                "facility",
            ),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
