//! Hot reload of the policy file: watch its directory (editors save by writing a new file and
//! renaming it over the old one), re-read it after changes settle or on SIGHUP, and put it in
//! force only when it loads. A policy that fails to load is rejected with a log line and the
//! previous one stays in force: never fail open, never drop to no policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::notify::{EventKind, RecursiveMode, Watcher};
use steward_policy::Policy;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Changes closer together than this are taken as one (an editor's save is several events).
const DEBOUNCE: Duration = Duration::from_millis(250);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new policy is in force.
    Applied { old_version: String, new_version: String },
    /// The file holds the policy already in force.
    Unchanged,
    /// The file did not load; the previous policy stays in force.
    Rejected(String),
}

/// Re-reads one policy file and hands each new, valid policy to `apply`.
pub struct Reloader {
    path: PathBuf,
    version: String,
    apply: Box<dyn Fn(Arc<Policy>) + Send + Sync>,
}

impl Reloader {
    /// `version` is the version of the policy in force (loaded from `path`).
    pub fn new(path: PathBuf, version: String, apply: impl Fn(Arc<Policy>) + Send + Sync + 'static) -> Reloader {
        Reloader {
            path,
            version,
            apply: Box::new(apply),
        }
    }

    /// Reads the file now and applies it when it loads and differs from the policy in force.
    pub fn reload(&mut self) -> ReloadOutcome {
        let path = self.path.display().to_string();
        match Policy::from_file(&self.path) {
            Ok(p) if p.version() == self.version => ReloadOutcome::Unchanged,
            Ok(p) => {
                let new_version = p.version().to_string();
                (self.apply)(Arc::new(p));
                let old_version = std::mem::replace(&mut self.version, new_version.clone());
                tracing::info!(policy = %path, %old_version, %new_version, "policy reloaded");
                ReloadOutcome::Applied {
                    old_version,
                    new_version,
                }
            }
            Err(e) => {
                tracing::error!(policy = %path, version_in_force = %self.version, "policy reload rejected; the previous policy stays in force:\n{e}");
                ReloadOutcome::Rejected(e.to_string())
            }
        }
    }
}

/// A running watch; dropping it stops watching.
pub struct PolicyWatcher {
    task: JoinHandle<()>,
    // Kept alive for as long as the watch runs.
    _watcher: Option<::notify::RecommendedWatcher>,
}

impl Drop for PolicyWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `reloader`'s file (and listening for SIGHUP) on the current tokio runtime.
/// When the file system cannot be watched, SIGHUP still reloads, and a warning says so.
pub fn spawn(reloader: Reloader) -> PolicyWatcher {
    spawn_with(reloader, |_| {})
}

/// [`spawn`], calling `observe` after every reload attempt (for tests and metrics).
pub fn spawn_with(mut reloader: Reloader, observe: impl Fn(&ReloadOutcome) + Send + 'static) -> PolicyWatcher {
    // One pending signal is enough: a reload reads the file as it is then.
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let watcher = watch_dir(&reloader.path, tx.clone());
    let hup = tx;
    let task = tokio::spawn(async move {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let signalled = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() {
                        break;
                    }
                    // Let the burst of events of one save settle.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                }
                _ = signalled => {
                    tracing::info!(policy = %reloader.path.display(), "SIGHUP: re-reading the policy");
                }
            }
            let outcome = reloader.reload();
            observe(&outcome);
        }
        drop(hup);
    });
    PolicyWatcher {
        task,
        _watcher: watcher,
    }
}

/// Watches the directory of `path`; events that touch the file (by name, or any event when the
/// file is a symbolic link, as mounted configuration often is) send on `tx`.
fn watch_dir(path: &Path, tx: mpsc::Sender<()>) -> Option<::notify::RecommendedWatcher> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_os_string());
    let linked = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let handler = move |event: ::notify::Result<::notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if linked
            || event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
        {
            let _ = tx.try_send(());
        }
    };
    let watched =
        ::notify::recommended_watcher(handler).and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the policy's directory; send SIGHUP to reload the policy");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const V1: &str = "version: 1\ndefault: allow\n";
    const V2: &str = "version: 1\ndefault: deny\n";
    const BROKEN: &str = "version: 1\ndefault: allow\nrules:\n  - id: r\n    when: 'args.x ==== 1'\n    effect: deny\n";

    /// Replaces the file the way editors do: write a new file, rename it over the old one.
    fn save(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn setup() -> (tempfile::TempDir, PathBuf, Arc<Mutex<Vec<String>>>, Reloader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, V1).unwrap();
        let applied = Arc::new(Mutex::new(Vec::new()));
        let sink = applied.clone();
        let reloader = Reloader::new(path.clone(), Policy::version_of(V1), move |p| {
            sink.lock().unwrap().push(p.version().to_string())
        });
        (dir, path, applied, reloader)
    }

    #[test]
    fn a_valid_change_applies_and_a_broken_one_is_rejected() {
        let (_dir, path, applied, mut reloader) = setup();
        assert_eq!(reloader.reload(), ReloadOutcome::Unchanged);
        save(&path, V2);
        assert_eq!(
            reloader.reload(),
            ReloadOutcome::Applied {
                old_version: Policy::version_of(V1),
                new_version: Policy::version_of(V2)
            }
        );
        save(&path, BROKEN);
        let ReloadOutcome::Rejected(why) = reloader.reload() else {
            panic!("a broken policy must be rejected")
        };
        assert!(why.contains("CEL syntax error"), "{why}");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(reloader.reload(), ReloadOutcome::Rejected(_)));
        // Only the valid policy was ever handed over.
        assert_eq!(*applied.lock().unwrap(), vec![Policy::version_of(V2)]);
    }

    /// The next reload outcome; no test waits longer than 20 s for one.
    async fn next(rx: &mut mpsc::UnboundedReceiver<ReloadOutcome>) -> ReloadOutcome {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a reload within 20 s")
            .expect("the watcher runs")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_watcher_sees_atomic_saves() {
        let (_dir, path, applied, reloader) = setup();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _watch = spawn_with(reloader, move |o| {
            let _ = tx.send(o.clone());
        });
        // The watch is in place when spawn_with returns; the assertions wait on events.
        save(&path, V2);
        let mut outcome = next(&mut rx).await;
        while outcome == ReloadOutcome::Unchanged {
            outcome = next(&mut rx).await;
        }
        assert!(matches!(outcome, ReloadOutcome::Applied { .. }), "{outcome:?}");
        save(&path, BROKEN);
        let mut outcome = next(&mut rx).await;
        while outcome == ReloadOutcome::Unchanged {
            outcome = next(&mut rx).await;
        }
        assert!(matches!(outcome, ReloadOutcome::Rejected(_)), "{outcome:?}");
        assert_eq!(*applied.lock().unwrap(), vec![Policy::version_of(V2)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reloads_change_decisions_and_are_audited() {
        use crate::pipeline::{Relay, RelayParts};
        use serde_json::json;
        use steward_policy::{Call, Effect, Principal};
        use steward_store::{AuditReader, QueryFilter};

        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, V1).unwrap();
        let pipeline = Arc::new(Relay::new(RelayParts::sqlite(
            Arc::new(Policy::from_file(&path).unwrap()),
            &db,
            crate::notify::Notifier::new(Vec::new(), crate::notify::ApprovalLink::Cli { db: String::new() }),
        )));
        let target = pipeline.clone();
        let mut reloader = Reloader::new(path.clone(), Policy::version_of(V1), move |p| target.replace_policy(p));
        let who = Principal::new("alice", "test");
        let args = json!({});
        let effect = |p: &Relay| p.policy().decide(&Call::tool_call(&who, "s", "t", &args)).effect;
        assert_eq!(effect(&pipeline), Effect::Allow);

        save(&path, V2);
        assert!(matches!(reloader.reload(), ReloadOutcome::Applied { .. }));
        assert_eq!(effect(&pipeline), Effect::Deny);
        save(&path, BROKEN);
        assert!(matches!(reloader.reload(), ReloadOutcome::Rejected(_)));
        assert_eq!(effect(&pipeline), Effect::Deny, "the previous policy stays in force");

        let log = pipeline.audit().unwrap();
        log.flush().await;
        let rows = AuditReader::open(&db)
            .unwrap()
            .query(&QueryFilter {
                kind: Some("system".into()),
                ..Default::default()
            })
            .unwrap();
        let reloads: Vec<_> = rows
            .iter()
            .filter(|r| r.reason.as_deref() == Some("policy reloaded"))
            .collect();
        assert_eq!(reloads.len(), 1, "{rows:?}");
        assert_eq!(
            reloads[0].policy_version.as_deref(),
            Some(Policy::version_of(V2).as_str())
        );
        let detail: serde_json::Value = serde_json::from_str(reloads[0].detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["old_version"], Policy::version_of(V1));
        log.close();
    }

    /// Not a reload, but the pipeline's other policy hook: a shadow decision runs the call and
    /// the audit event says what would have happened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shadow_decisions_forward_and_are_audited_as_such() {
        use crate::pipeline::{CallContext, Door, Outcome, Relay, RelayParts, Use};
        use steward_policy::Principal;
        use steward_store::{AuditReader, QueryFilter};

        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.db");
        let yaml = "version: 1\ndefault: allow\nrules:\n  - { id: trial, match: s/t, mode: shadow, when: 'args.x == 1', effect: deny, reason: x is one }\n";
        let policy = Arc::new(Policy::from_yaml(yaml, "p.yaml").unwrap());
        let pipeline = Relay::new(RelayParts::sqlite(
            policy,
            &db,
            crate::notify::Notifier::new(Vec::new(), crate::notify::ApprovalLink::Cli { db: String::new() }),
        ));
        let ctx = CallContext::new(Principal::new("alice", "test"), "s", Door::Proxy, "session");
        let call = Use {
            method: steward_mcp::Method::ToolsCall,
            target: "t".into(),
            args: serde_json::json!({"x": 1}),
        };
        let decided = pipeline.decide(&ctx, &call, None, false).await;
        assert!(matches!(decided.outcome, Outcome::Allowed { .. }), "{decided:?}");
        let log = pipeline.audit().unwrap();
        log.flush().await;
        let rows = AuditReader::open(&db)
            .unwrap()
            .query(&QueryFilter {
                kind: Some("decision".into()),
                ..Default::default()
            })
            .unwrap();
        let row = rows.iter().find(|r| r.tool.as_deref() == Some("t")).unwrap();
        assert_eq!(row.effect.as_deref(), Some("allow"));
        assert_eq!(row.reason.as_deref(), Some("[shadow] would deny: x is one"));
        let detail: serde_json::Value = serde_json::from_str(row.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["shadow_effect"], "deny");
        assert_eq!(detail["shadow_rule_ids"], serde_json::json!(["trial"]));
        log.close();
    }
}
