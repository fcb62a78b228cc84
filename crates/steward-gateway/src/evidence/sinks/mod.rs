//! Where audit events are shipped: syslog (RFC 5424 over TCP or TLS), JSON-lines files, HTTP
//! collectors (JSON, Splunk HEC, Elasticsearch `_bulk`) and OTLP/HTTP logs.
//!
//! A sink delivers a batch of committed rows or fails as a whole; the shipper only moves the
//! cursor after a success, so a failed batch is sent again (at least once, in order).

mod file;
mod http;
mod otlp;
mod syslog;

use steward_store::AuditRow;

use super::config::{SinkConfig, SinkKind};

/// Why a sink could not be built or could not deliver. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Delivery(String),
}

/// A delivery that went through; `warning` is recorded as the sink's last error but does not
/// hold the cursor back (an OTLP receiver that rejected records for good, say).
#[derive(Debug, Default)]
pub struct Delivered {
    pub warning: Option<String>,
}

pub enum Sink {
    Syslog(syslog::SyslogSink),
    File(file::FileSink),
    Http(http::HttpSink),
    Otlp(otlp::OtlpSink),
}

impl Sink {
    /// Builds a sink: reads its TLS files and secrets now, connects on first delivery.
    pub fn build(cfg: &SinkConfig) -> Result<Sink, SinkError> {
        Ok(match &cfg.kind {
            SinkKind::Syslog(c) => Sink::Syslog(syslog::SyslogSink::new(c)?),
            SinkKind::File(c) => Sink::File(file::FileSink::new(c)),
            SinkKind::Http(c) => Sink::Http(http::HttpSink::new(c)?),
            SinkKind::Otlp(c) => Sink::Otlp(otlp::OtlpSink::new(c)?),
        })
    }

    pub async fn deliver(&mut self, rows: &[AuditRow]) -> Result<Delivered, SinkError> {
        match self {
            Sink::Syslog(s) => s.deliver(rows).await,
            Sink::File(s) => s.deliver(rows).await,
            Sink::Http(s) => s.deliver(rows).await,
            Sink::Otlp(s) => s.deliver(rows).await,
        }
    }

    /// Drops any open connection (after a failure, or before a long pause).
    pub fn reset(&mut self) {
        if let Sink::Syslog(s) = self {
            s.reset();
        }
    }
}

/// One field of an event as sinks carry it.
pub(crate) enum Field<'a> {
    Int(i64),
    Float(f64),
    Text(&'a str),
    /// A column holding a JSON array of strings.
    List(&'a str),
}

/// Every present field of a row, by its name in `audit query --json`, in a fixed order.
pub(crate) fn fields(r: &AuditRow) -> Vec<(&'static str, Field<'_>)> {
    let mut out = vec![
        ("seq", Field::Int(r.seq)),
        ("ts", Field::Text(&r.ts)),
        ("kind", Field::Text(&r.kind)),
    ];
    let text = [
        ("decision_id", &r.decision_id),
        ("principal", &r.principal),
        ("client", &r.client),
        ("session", &r.session),
        ("door", &r.door),
        ("server", &r.server),
        ("tool", &r.tool),
        ("method", &r.method),
        ("operation", &r.operation),
        ("args", &r.args),
        ("args_digest", &r.args_digest),
        ("effect", &r.effect),
        ("risk", &r.risk),
    ];
    for (k, v) in text {
        if let Some(v) = v {
            out.push((k, Field::Text(v)));
        }
    }
    if let Some(v) = &r.flags {
        out.push(("flags", Field::List(v)));
    }
    if let Some(v) = &r.reason {
        out.push(("reason", Field::Text(v)));
    }
    if let Some(v) = &r.rule_ids {
        out.push(("rule_ids", Field::List(v)));
    }
    for (k, v) in [("policy_version", &r.policy_version), ("approval_id", &r.approval_id)] {
        if let Some(v) = v {
            out.push((k, Field::Text(v)));
        }
    }
    if let Some(v) = &r.approvers {
        out.push(("approvers", Field::List(v)));
    }
    if let Some(v) = &r.outcome {
        out.push(("outcome", Field::Text(v)));
    }
    if let Some(d) = r.duration_ms {
        out.push(("duration_ms", Field::Float(d)));
    }
    if let Some(v) = &r.detail {
        out.push(("detail", Field::Text(v)));
    }
    out.push(("hash", Field::Text(&r.hash)));
    out.push(("prev_hash", Field::Text(&r.prev_hash)));
    out
}

/// The strings of a JSON-array column (empty when it is not one).
pub(crate) fn list_items(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// A one-line human summary: `decision deny it-ops/ssh-exec by alice: reason`.
pub(crate) fn summary(r: &AuditRow) -> String {
    let mut s = r.kind.clone();
    if let Some(v) = r.effect.as_deref().or(r.outcome.as_deref()) {
        s.push(' ');
        s.push_str(v);
    }
    match (&r.server, &r.tool) {
        (Some(server), Some(tool)) if !tool.is_empty() => s.push_str(&format!(" {server}/{tool}")),
        (Some(server), _) => s.push_str(&format!(" {server} {}", r.method.as_deref().unwrap_or(""))),
        _ => {}
    }
    if let Some(p) = &r.principal {
        s.push_str(&format!(" by {p}"));
    }
    if let Some(reason) = &r.reason {
        s.push_str(": ");
        s.push_str(reason);
    }
    let s: String = s
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip(&s, 1000)
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max.saturating_sub(3);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// Epoch nanoseconds of an RFC 3339 time (0 when it is not one).
pub(crate) fn epoch_nanos(ts: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// A client for an HTTP sink: time-out, optional extra CA, no redirects (a redirect would carry
/// the headers elsewhere).
pub(crate) fn http_client(
    ca: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, SinkError> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| SinkError::Setup(format!("ca {}: {e}", ca.display())))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| SinkError::Setup(format!("ca {}: {e}", ca.display())))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| SinkError::Setup(format!("HTTP client: {e}")))
}

/// The configured headers with their secrets read.
pub(crate) fn headers(
    map: &std::collections::BTreeMap<String, crate::config::SecretValue>,
    base: &std::path::Path,
) -> Result<reqwest::header::HeaderMap, SinkError> {
    let mut out = reqwest::header::HeaderMap::new();
    for (k, v) in map {
        let value = crate::config::resolve_secret(v, base).map_err(|e| SinkError::Setup(format!("header {k}: {e}")))?;
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| SinkError::Setup(format!("'{k}' is not a header name")))?;
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| SinkError::Setup(format!("header {k}: the value is not valid in a header")))?;
        value.set_sensitive(true);
        out.insert(name, value);
    }
    Ok(out)
}

/// What a failed HTTP exchange says, without the URL's query (it may hold a token).
pub(crate) fn http_error(e: reqwest::Error) -> SinkError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    SinkError::Delivery(text)
}

/// A non-2xx answer as an error: the status and the start of the body.
pub(crate) async fn status_error(resp: reqwest::Response) -> SinkError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    SinkError::Delivery(format!(
        "HTTP {status}: {}",
        clip(&body.replace(['\n', '\r'], " "), 300)
    ))
}
