//! Change notifications between gateways: every approval transition and pin change on a
//! PostgreSQL store sends `NOTIFY steward_changes` in its transaction (delivered when it
//! commits), and each process listens on a connection of its own.
//!
//! While that connection is down nothing is heard, so every reconnect announces
//! [`Change::Resync`]: whoever keeps state from notifications reads the store again.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;

use super::Pg;
use crate::db::{Db, DbError, Dialect, vals};

/// The channel every notification goes on.
pub(crate) const CHANNEL: &str = "steward_changes";

/// What changed in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The approval with this id changed state.
    Approval(String),
    /// A pin of this server changed.
    Pins(String),
    /// Notifications may have been missed (the listener reconnected): read everything again.
    Resync,
}

impl Change {
    fn payload(&self) -> String {
        match self {
            Change::Approval(id) => format!("approval:{id}"),
            Change::Pins(server) => format!("pins:{server}"),
            Change::Resync => "resync".into(),
        }
    }

    fn parse(payload: &str) -> Option<Change> {
        let (kind, what) = payload.split_once(':').unwrap_or((payload, ""));
        match kind {
            "approval" => Some(Change::Approval(what.to_string())),
            "pins" => Some(Change::Pins(what.to_string())),
            "resync" => Some(Change::Resync),
            _ => None,
        }
    }
}

/// Sends `change` when the caller's transaction commits (PostgreSQL); nothing on SQLite,
/// whose readers share the process or poll.
pub(crate) fn notify(db: &mut dyn Db, change: &Change) -> Result<(), DbError> {
    if db.dialect() == Dialect::Postgres {
        db.query("SELECT pg_notify($1, $2)", &vals![CHANNEL, change.payload()])?;
    }
    Ok(())
}

/// The process's listener: one task and one connection, shared by every subscriber.
pub(crate) struct Changes {
    tx: broadcast::Sender<Change>,
}

impl Changes {
    pub fn start(pg: Arc<Pg>) -> Changes {
        let (tx, _) = broadcast::channel(1024);
        let weak = Arc::downgrade(&pg);
        pg.spawn(listen(weak, tx.clone()));
        Changes { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

async fn listen(pg: Weak<Pg>, tx: broadcast::Sender<Change>) {
    let mut backoff = Duration::from_millis(200);
    let mut connected_before = false;
    loop {
        let attempt = match pg.upgrade() {
            Some(pg) => pg.dedicated().await.map(|c| (c, pg.target.clone())),
            None => return,
        };
        let ((client, mut connection), target) = match attempt {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for store changes; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let (heard, mut inbox) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if heard.send(n.payload().to_string()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the store's change listener lost its connection");
                        return;
                    }
                    None => return,
                }
            }
        });
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            tracing::warn!(error = %e, "cannot listen for store changes; retrying");
            driver.abort();
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(200);
        if connected_before {
            tracing::info!(store = %target, "listening for store changes again");
        }
        // Anything may have happened while nobody listened (and before the first LISTEN).
        let _ = tx.send(Change::Resync);
        connected_before = true;
        loop {
            tokio::select! {
                payload = inbox.recv() => match payload {
                    Some(p) => {
                        if let Some(change) = Change::parse(&p) {
                            let _ = tx.send(change);
                        }
                    }
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_secs(5)) => {
                    if pg.strong_count() == 0 {
                        driver.abort();
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Change::Resync);
        drop(client);
        tokio::time::sleep(backoff).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for c in [
            Change::Approval("apr-0123456789ab".into()),
            Change::Pins("it-ops".into()),
            Change::Resync,
        ] {
            assert_eq!(Change::parse(&c.payload()), Some(c));
        }
        assert_eq!(Change::parse("nonsense"), None);
    }
}
