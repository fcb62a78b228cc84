//! RFC 5424 syslog over TCP or TLS, octet-counted (RFC 6587 §3.4.1: `LEN SP MSG`), so a field
//! holding a line break cannot split a message.
//!
//! Each event is one message: `<PRI>1 TS HOST steward PID KIND [steward@32473 seq="…" …] MSG`.
//! The structured data carries every field of the event (SD-PARAM values escape `"`, `\` and
//! `]`); MSG is a one-line summary. TCP has no acknowledgement: a write that succeeded reached
//! the receiver's socket, not necessarily its disk. The connection is checked for a close by the
//! peer before each batch, so a restarted receiver does not silently swallow one.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use steward_store::AuditRow;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types};

use super::{Delivered, Field, SinkError, clip, fields, list_items, summary};
use crate::evidence::config::SyslogConfig;

/// The SD-ID: `steward` under IANA's private enterprise number reserved for documentation
/// (RFC 5612); receivers match on the name.
const SD_ID: &str = "steward@32473";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long fields are cut to this many bytes (and named in `truncated`), keeping messages under
/// the 8 KiB most receivers accept by default.
const MAX_VALUE: usize = 1024;
const MAX_LONG_VALUE: usize = 2048;

trait Stream: AsyncWrite + Unpin + Send + Sync {
    /// The TCP socket underneath, to notice a close by the peer.
    fn tcp(&self) -> &TcpStream;
}

impl Stream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Stream for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

pub struct SyslogSink {
    cfg: SyslogConfig,
    tls: Option<(Arc<rustls::ClientConfig>, pki_types::ServerName<'static>)>,
    host: String,
    pid: u32,
    conn: Option<Box<dyn Stream>>,
}

impl SyslogSink {
    pub fn new(cfg: &SyslogConfig) -> Result<SyslogSink, SinkError> {
        let tls = if cfg.tls {
            let name = pki_types::ServerName::try_from(cfg.host.clone())
                .map_err(|_| SinkError::Setup(format!("'{}' is not a TLS server name", cfg.host)))?;
            Some((Arc::new(tls_config(cfg)?), name))
        } else {
            None
        };
        Ok(SyslogSink {
            cfg: cfg.clone(),
            tls,
            host: crate::evidence::host_name(),
            pid: std::process::id(),
            conn: None,
        })
    }

    pub fn reset(&mut self) {
        self.conn = None;
    }

    pub async fn deliver(&mut self, rows: &[AuditRow]) -> Result<Delivered, SinkError> {
        let mut frames = Vec::with_capacity(rows.len() * 600);
        for r in rows {
            let msg = message(r, self.cfg.facility, &self.host, self.pid);
            let _ = write!(frames, "{} ", msg.len());
            frames.extend_from_slice(&msg);
        }
        if self.conn.as_ref().is_some_and(|c| closed_by_peer(c.tcp())) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(SinkError::Delivery("not connected".into()));
        };
        let sent = async {
            conn.write_all(&frames).await?;
            conn.flush().await
        }
        .await;
        if let Err(e) = sent {
            self.conn = None;
            return Err(SinkError::Delivery(format!(
                "write to {}:{}: {e}",
                self.cfg.host, self.cfg.port
            )));
        }
        Ok(Delivered::default())
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, SinkError> {
        let target = format!("{}:{}", self.cfg.host, self.cfg.port);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target))
            .await
            .map_err(|_| SinkError::Delivery(format!("connect to {target}: timed out")))?
            .map_err(|e| SinkError::Delivery(format!("connect to {target}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((config, name)) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| SinkError::Delivery(format!("TLS handshake with {target}: timed out")))?
                    .map_err(|e| SinkError::Delivery(format!("TLS handshake with {target}: {e}")))?;
                Ok(Box::new(tls))
            }
        }
    }
}

/// Whether the peer closed (or reset) the connection: a syslog receiver never sends anything,
/// so a readable socket means it is gone.
fn closed_by_peer(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    !matches!(tcp.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

fn tls_config(cfg: &SyslogConfig) -> Result<rustls::ClientConfig, SinkError> {
    use pki_types::pem::PemObject;
    let setup = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        SinkError::Setup(format!("{what} {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca {
        Some(ca) => {
            for cert in pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| setup("ca", ca, &e))? {
                let cert = cert.map_err(|e| setup("ca", ca, &e))?;
                roots.add(cert).map_err(|e| setup("ca", ca, &e))?;
            }
            if roots.is_empty() {
                return Err(SinkError::Setup(format!("ca {}: no certificate in it", ca.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(SinkError::Setup(
                    "no system CA certificates found; set `ca:` for the syslog sink".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Setup(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    match &cfg.cert {
        None => Ok(builder.with_no_client_auth()),
        Some(cert) => {
            let chain: Vec<_> = pki_types::CertificateDer::pem_file_iter(cert)
                .map_err(|e| setup("cert", cert, &e))?
                .collect::<Result<_, _>>()
                .map_err(|e| setup("cert", cert, &e))?;
            let key_file = cfg.key.as_ref().unwrap_or(cert);
            let key = pki_types::PrivateKeyDer::from_pem_file(key_file).map_err(|e| setup("key", key_file, &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| setup("cert", cert, &e))
        }
    }
}

/// Severity of a row: warning for denials and errors, notice for approvals, info otherwise.
fn severity(r: &AuditRow) -> u8 {
    match (r.effect.as_deref(), r.outcome.as_deref()) {
        (Some("deny"), _) | (_, Some("error" | "upstream_died" | "denied" | "timed_out")) => 4,
        (Some("approve" | "ask"), _) => 5,
        _ if r.kind == "checkpoint" => 5,
        _ => 6,
    }
}

/// One RFC 5424 message (without its octet count).
pub(crate) fn message(r: &AuditRow, facility: u8, host: &str, pid: u32) -> Vec<u8> {
    let pri = u16::from(facility) * 8 + u16::from(severity(r));
    let ts = if chrono::DateTime::parse_from_rfc3339(&r.ts).is_ok() {
        r.ts.as_str()
    } else {
        "-"
    };
    let mut sd = format!("[{SD_ID}");
    let mut truncated: Vec<&str> = Vec::new();
    for (name, value) in fields(r) {
        let text = match value {
            Field::Int(n) => n.to_string(),
            Field::Float(f) => f.to_string(),
            Field::Text(t) => t.to_string(),
            Field::List(l) => list_items(l).join(","),
        };
        let max = if matches!(name, "args" | "detail") {
            MAX_LONG_VALUE
        } else {
            MAX_VALUE
        };
        let cut = clip(&text, max);
        if cut.len() != text.len() {
            truncated.push(name);
        }
        sd.push(' ');
        sd.push_str(name);
        sd.push_str("=\"");
        sd.push_str(&sd_escape(&cut));
        sd.push('"');
    }
    if !truncated.is_empty() {
        sd.push_str(&format!(" truncated=\"{}\"", truncated.join(",")));
    }
    sd.push(']');
    let mut out = format!(
        "<{pri}>1 {ts} {} steward {pid} {} {sd} ",
        header_token(host, 255),
        header_token(&r.kind, 32)
    )
    .into_bytes();
    // The BOM says MSG is UTF-8 (RFC 5424 §6.4).
    out.extend_from_slice("\u{feff}".as_bytes());
    out.extend_from_slice(summary(r).as_bytes());
    out
}

fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` when empty.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if t.is_empty() { "-".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_store::{AuditEvent, EventKind};

    #[test]
    fn structured_data_escapes_and_carries_every_field() {
        let mut e = AuditEvent::new(EventKind::Decision);
        e.ts = "2026-11-21T12:00:00.123Z".into();
        e.principal = Some("al\"ice".into());
        e.server = Some("it-ops".into());
        e.tool = Some("a]b\\c\nd".into());
        e.effect = Some("deny".into());
        e.flags = vec!["x".into(), "y".into()];
        e.args = Some(serde_json::json!({ "big": "z".repeat(5000) }));
        let row = AuditRow::from_event(e, 7, "00".repeat(32));
        let msg = String::from_utf8(message(&row, 16, "gw 1", 42)).unwrap();
        assert!(
            msg.starts_with("<132>1 2026-11-21T12:00:00.123Z gw1 steward 42 decision [steward@32473 seq=\"7\" "),
            "{msg}"
        );
        assert!(msg.contains(r#"principal="al\"ice""#), "{msg}");
        assert!(msg.contains("tool=\"a\\]b\\\\c\nd\""), "{msg}");
        assert!(msg.contains(r#"flags="x,y""#), "{msg}");
        assert!(msg.contains(r#" truncated="args"]"#), "{msg}");
        assert!(msg.contains(&format!("hash=\"{}\"", row.hash)), "{msg}");
        assert!(
            msg.ends_with("\u{feff}decision deny it-ops/a]b\\c d by al\"ice"),
            "{msg}"
        );
        assert!(msg.len() < 8192);
    }
}
