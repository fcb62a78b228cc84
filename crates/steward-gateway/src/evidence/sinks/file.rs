//! JSON lines for Filebeat, Vector or Fluent Bit: one `audit query --json` object per line,
//! fsynced before the cursor moves, rotated by size and age (`FILE.1` is the newest rotated
//! file, `FILE.keep` the oldest kept).
//!
//! After a crash the batch in flight may already be in the file: the sink reads the last line's
//! `seq` when it opens the file and skips what is there, so the file holds every event once.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use steward_store::AuditRow;

use super::{Delivered, SinkError};
use crate::evidence::config::FileConfig;

pub struct FileSink {
    state: Arc<Mutex<State>>,
}

struct State {
    cfg: FileConfig,
    file: Option<File>,
    size: u64,
    opened: SystemTime,
    /// Rows up to this seq are already in the file.
    written_through: i64,
}

impl FileSink {
    pub fn new(cfg: &FileConfig) -> FileSink {
        FileSink {
            state: Arc::new(Mutex::new(State {
                cfg: cfg.clone(),
                file: None,
                size: 0,
                opened: SystemTime::now(),
                written_through: 0,
            })),
        }
    }

    pub async fn deliver(&mut self, rows: &[AuditRow]) -> Result<Delivered, SinkError> {
        let lines: Vec<(i64, String)> = rows.iter().map(|r| (r.seq, r.to_json().to_string())).collect();
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.write(&lines).map_err(|e| {
                // Reopen next time: the handle may point at a file that was moved or is broken.
                st.file = None;
                SinkError::Delivery(format!("{}: {e}", st.cfg.path.display()))
            })
        })
        .await
        .map_err(|e| SinkError::Delivery(format!("file writer: {e}")))??;
        Ok(Delivered::default())
    }
}

impl State {
    fn write(&mut self, lines: &[(i64, String)]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        if self.due() {
            self.rotate()?;
        }
        let mut buf = String::new();
        let mut last = self.written_through;
        for (seq, line) in lines {
            if *seq <= self.written_through {
                continue;
            }
            buf.push_str(line);
            buf.push('\n');
            last = *seq;
        }
        if buf.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("the file is not open"));
        };
        file.write_all(buf.as_bytes())?;
        file.sync_data()?;
        self.size += buf.len() as u64;
        self.written_through = last;
        Ok(())
    }

    fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.cfg.path)?;
        let meta = file.metadata()?;
        self.size = meta.len();
        self.opened = meta
            .created()
            .or_else(|_| meta.modified())
            .unwrap_or_else(|_| SystemTime::now());
        self.written_through = self.written_through.max(last_seq(&mut file, self.size));
        self.file = Some(file);
        Ok(())
    }

    fn due(&self) -> bool {
        if self.size == 0 {
            return false;
        }
        let by_size = self.cfg.rotate_size.is_some_and(|max| self.size >= max);
        let by_age = self
            .cfg
            .rotate_interval
            .is_some_and(|max| self.opened.elapsed().is_ok_and(|age| age >= max));
        by_size || by_age
    }

    /// `FILE` → `FILE.1` → … → `FILE.keep`; what falls off the end is removed.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let keep = self.cfg.keep;
        let numbered = |n: usize| -> PathBuf {
            let mut p = self.cfg.path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            p.into()
        };
        if keep == 0 {
            std::fs::remove_file(&self.cfg.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(keep));
            for n in (1..keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.cfg.path, numbered(1))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.cfg.path)?;
        file.flush()?;
        self.file = Some(file);
        self.size = 0;
        self.opened = SystemTime::now();
        Ok(())
    }
}

/// The `seq` of the last complete line of `file` (0 when there is none).
fn last_seq(file: &mut File, size: u64) -> i64 {
    let tail = size.min(64 * 1024);
    if tail == 0 || file.seek(SeekFrom::Start(size - tail)).is_err() {
        return 0;
    }
    let mut buf = Vec::with_capacity(tail as usize);
    if file.take(tail).read_to_end(&mut buf).is_err() {
        return 0;
    }
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("seq").and_then(serde_json::Value::as_i64))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use steward_store::{AuditEvent, EventKind};

    fn rows(from: i64, n: i64) -> Vec<AuditRow> {
        (from..from + n)
            .map(|seq| {
                let mut e = AuditEvent::new(EventKind::System);
                e.ts = "2026-11-21T12:00:00.000Z".into();
                e.reason = Some("x".repeat(200));
                AuditRow::from_event(e, seq, "00".repeat(32))
            })
            .collect()
    }

    fn seqs(path: &Path) -> Vec<i64> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn rotates_by_size_and_never_writes_a_row_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/steward.jsonl");
        let cfg = FileConfig {
            path: path.clone(),
            rotate_size: Some(2048),
            rotate_interval: None,
            keep: 2,
        };
        let mut sink = FileSink::new(&cfg);
        for start in [1, 5, 9, 13, 17] {
            sink.deliver(&rows(start, 4)).await.unwrap();
        }
        let all = || -> Vec<i64> {
            let mut all = Vec::new();
            for p in [
                path.with_extension("jsonl.2"),
                path.with_extension("jsonl.1"),
                path.clone(),
            ] {
                all.extend(seqs(&p));
            }
            all
        };
        assert!(!path.with_extension("jsonl.3").exists());
        let before = all();
        assert!(before.windows(2).all(|w| w[0] + 1 == w[1]), "{before:?}");
        assert_eq!(before.last(), Some(&20));
        // A new sink over the same file (a restart) skips what the file already holds.
        let mut again = FileSink::new(&cfg);
        again.deliver(&rows(19, 4)).await.unwrap();
        let after = all();
        assert!(after.windows(2).all(|w| w[0] + 1 == w[1]), "{after:?}");
        assert_eq!(after.last(), Some(&22));
    }
}
