//! Evidence: the audit log shipped to SIEM sinks, checkpointed, kept for its retention, and
//! rendered as a compliance report.
//!
//! `steward serve` and `steward proxy` call [`Evidence::start`] once with the `audit:` block;
//! the returned handle renders the sinks' state for `/metrics` and `/readyz` and stops the
//! background tasks when dropped.

pub mod config;
pub mod report;
mod ship;
pub mod sinks;
mod upkeep;

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use steward_store::signing::{KeyFileError, SigningKey};
use steward_store::{EvidenceStore, StoreError};
use tokio::sync::watch;

pub use config::{AuditConfig, AuditDoc, EvidenceFile, SinkConfig, SinkKind};
pub use ship::{LEASE_TTL, SinkState};

/// A metric: name, type, help, and its value for one sink.
type Series = (&'static str, &'static str, &'static str, fn(&SinkState) -> String);

/// Why the evidence tasks could not start.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("audit store: {0}")]
    Store(#[from] StoreError),
    #[error("audit signing key: {0}")]
    Key(#[from] KeyFileError),
    #[error("audit sink {name}: {source}")]
    Sink {
        name: String,
        #[source]
        source: sinks::SinkError,
    },
    #[error("the evidence tasks need a Tokio runtime")]
    NoRuntime,
}

/// The running sinks, checkpointer and retention of one process.
pub struct Evidence {
    sinks: Vec<Arc<SinkState>>,
    upkeep: Option<Arc<upkeep::UpkeepState>>,
    stop: watch::Sender<bool>,
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence::none()
    }
}

impl Drop for Evidence {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Evidence {
    /// Nothing configured: no tasks.
    pub fn none() -> Evidence {
        Evidence {
            sinks: Vec::new(),
            upkeep: None,
            stop: watch::channel(false).0,
        }
    }

    /// Starts a shipper per sink, and the checkpointer and retention when configured, on the
    /// audit database at `db`. Fails (and starts nothing) when a sink's TLS files or secrets,
    /// or the signing key, cannot be read.
    pub fn start(cfg: &AuditConfig, db: &Path) -> Result<Evidence, EvidenceError> {
        if cfg.is_empty() {
            return Ok(Evidence::none());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| EvidenceError::NoRuntime)?;
        let key = cfg
            .signing_key
            .as_deref()
            .map(SigningKey::from_file)
            .transpose()?
            .map(Arc::new);
        let mut built = Vec::new();
        for s in &cfg.sinks {
            let sink = sinks::Sink::build(s).map_err(|source| EvidenceError::Sink {
                name: s.name.clone(),
                source,
            })?;
            // One connection per task: a prune or a slow query never holds another task up.
            built.push((s.clone(), sink, Arc::new(EvidenceStore::open_sqlite(db)?)));
        }
        let (stop, _) = watch::channel(false);
        let mut states = Vec::new();
        for (s, sink, store) in built {
            let state = Arc::new(SinkState::new(&s));
            states.push(state.clone());
            runtime.spawn(ship::run(s, sink, store, state, stop.subscribe()));
        }
        let upkeep = Arc::new(upkeep::UpkeepState::default());
        if let Some(policy) = cfg.checkpoint {
            let store = Arc::new(EvidenceStore::open_sqlite(db)?);
            runtime.spawn(upkeep::checkpoints(
                store,
                policy,
                key.clone(),
                upkeep.clone(),
                stop.subscribe(),
            ));
        }
        if let Some(keep) = cfg.retention {
            let store = Arc::new(EvidenceStore::open_sqlite(db)?);
            runtime.spawn(upkeep::retention(
                store,
                keep,
                cfg.sink_names(),
                key,
                upkeep.clone(),
                stop.subscribe(),
            ));
        }
        Ok(Evidence {
            sinks: states,
            upkeep: Some(upkeep),
            stop,
        })
    }

    pub fn sinks(&self) -> &[Arc<SinkState>] {
        &self.sinks
    }

    /// Prometheus text for the sinks and checkpoints (empty when nothing is configured).
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        if self.sinks.is_empty() && self.upkeep.is_none() {
            return out;
        }
        let series: [Series; 5] = [
            (
                "steward_audit_sink_lag_events",
                "gauge",
                "Committed audit events a sink has not delivered yet.",
                |s| s.lag().to_string(),
            ),
            (
                "steward_audit_sink_cursor_seq",
                "gauge",
                "The last audit seq a sink delivered.",
                |s| s.cursor().to_string(),
            ),
            (
                "steward_audit_sink_delivered_total",
                "counter",
                "Audit events this process delivered to a sink.",
                |s| s.delivered().to_string(),
            ),
            (
                "steward_audit_sink_failures_total",
                "counter",
                "Failed deliveries to a sink.",
                |s| s.failures().to_string(),
            ),
            (
                "steward_audit_sink_up",
                "gauge",
                "Whether the sink's latest delivery attempt succeeded.",
                |s| u8::from(s.up()).to_string(),
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for s in &self.sinks {
                let _ = writeln!(
                    out,
                    "{name}{{sink=\"{}\",type=\"{}\"}} {}",
                    label(&s.name),
                    s.kind,
                    value(s)
                );
            }
        }
        if let Some(u) = &self.upkeep {
            let _ = writeln!(
                out,
                "# HELP steward_audit_checkpoints_total Checkpoints this process wrote.\n# TYPE steward_audit_checkpoints_total counter\nsteward_audit_checkpoints_total {}",
                u.checkpoints.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "# HELP steward_audit_last_checkpoint_seq The seq the latest checkpoint of this process signed.\n# TYPE steward_audit_last_checkpoint_seq gauge\nsteward_audit_last_checkpoint_seq {}",
                u.last_checkpoint_seq.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "# HELP steward_audit_pruned_total Audit rows retention removed.\n# TYPE steward_audit_pruned_total counter\nsteward_audit_pruned_total {}",
                u.pruned.load(Ordering::Relaxed)
            );
        }
        out
    }

    /// One line per sink for `/readyz`: where it is, how far behind, its latest error. A sink
    /// never makes the gateway unready (that would stop decisions for a collector's sake).
    pub fn readiness(&self) -> String {
        let mut out = String::new();
        for s in &self.sinks {
            let _ = write!(out, "sink {} ({}): ", s.name, s.kind);
            match s.standby() {
                Some(owner) => {
                    let _ = write!(out, "standby, shipped by {owner}; ");
                }
                None if s.up() => out.push_str("ok; "),
                None => out.push_str("failing; "),
            }
            let _ = write!(out, "delivered through seq {}, {} behind", s.cursor(), s.lag());
            if let Some((at, e)) = s.last_error() {
                let _ = write!(out, "; last error at {at}: {e}");
            }
            out.push('\n');
        }
        out
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// This machine's host name (for syslog HOSTNAME, HEC `host`, OTLP `host.name`, lease owners).
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = if rc == 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let name: String = name.chars().filter(|c| c.is_ascii_graphic()).collect();
    if name.is_empty() { "localhost".into() } else { name }
}

/// Lease owners of this process that are running: a lease held under this process's pid by an
/// owner not in this set belongs to an earlier process that had the same pid (PID 1 in a
/// restarted container) and is dead.
static LIVE_OWNERS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Who holds a sink lease: `HOST/PID/NONCE`. Registered as live until [`owner_done`].
pub(crate) fn owner_id() -> String {
    let nonce: u32 = rand::random();
    let id = format!("{}/{}/{nonce:08x}", host_name(), std::process::id());
    LIVE_OWNERS.lock().unwrap_or_else(|e| e.into_inner()).push(id.clone());
    id
}

/// `owner` stopped shipping.
pub(crate) fn owner_done(owner: &str) {
    LIVE_OWNERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|o| o != owner);
}

/// Whether `owner` is a process of this host that no longer runs (its lease can be taken).
pub(crate) fn is_dead_local(owner: &str) -> bool {
    let mut parts = owner.split('/');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if host != host_name() || pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return !LIVE_OWNERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|o| o == owner);
    }
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_local_owner_is_recognised() {
        let me = owner_id();
        assert!(!is_dead_local(&me), "this process is alive");
        // The same pid under another nonce: an earlier process (PID 1 in a restarted container).
        let earlier = format!("{}/{}/deadbeef", host_name(), std::process::id());
        assert!(is_dead_local(&earlier));
        owner_done(&me);
        assert!(is_dead_local(&me), "an owner that stopped is no longer live");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(is_dead_local(&format!("{}/{pid}/0", host_name())));
        assert!(!is_dead_local(&format!("elsewhere/{pid}/0")));
        assert!(!is_dead_local("garbage"));
    }
}
