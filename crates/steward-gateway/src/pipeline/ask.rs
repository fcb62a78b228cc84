//! Asking the user: Steward's own `elicitation/create` requests to the client, for calls the
//! policy marks `effect: ask`, and the routing of the client's answers back to them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;
use steward_mcp::Message;
use steward_policy::Decision;
use tokio::sync::oneshot;

use super::approval::{Confirmation, STEWARD_REQUEST_PREFIX, elicitation_request};

/// Steward's requests to the client that wait for an answer.
pub struct Asks {
    /// `steward-<random>`: request ids no client or server uses.
    prefix: String,
    seq: AtomicU64,
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    can_elicit: AtomicBool,
}

impl Default for Asks {
    fn default() -> Self {
        Asks::new()
    }
}

impl Asks {
    pub fn new() -> Asks {
        let random: [u8; 4] = rand::random();
        let prefix = format!(
            "{STEWARD_REQUEST_PREFIX}{}",
            random.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        Asks {
            prefix,
            seq: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
            can_elicit: AtomicBool::new(false),
        }
    }

    /// Learns from `initialize` whether the client can show a form elicitation.
    pub fn note_capabilities(&self, params: Option<&RawValue>) {
        let params: Value = params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        let form = match params.get("capabilities").and_then(|c| c.get("elicitation")) {
            // `{}` means form mode (backwards compatibility); otherwise form must be listed.
            Some(Value::Object(modes)) => modes.is_empty() || modes.contains_key("form"),
            _ => false,
        };
        self.can_elicit.store(form, Ordering::Relaxed);
    }

    pub fn can_elicit(&self) -> bool {
        self.can_elicit.load(Ordering::Relaxed)
    }

    /// Takes a client response addressed to one of Steward's requests; false when it is not
    /// one (it then goes upstream as usual).
    pub fn answer(&self, msg: &Message<'_>, bytes: &[u8]) -> bool {
        let Some(id) = msg.id.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok()) else {
            return false;
        };
        if !id.starts_with(&self.prefix) {
            return false;
        }
        let waiter = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match (waiter, serde_json::from_slice::<Value>(bytes)) {
            (Some(w), Ok(v)) => {
                let _ = w.send(v);
            }
            // Ours, but nobody waits any more (a late answer): nothing else should see it.
            _ => tracing::debug!(%id, "late or unreadable answer to a Steward request; dropped"),
        }
        true
    }

    /// Asks the user to confirm a call and waits for the answer, up to `timeout`.
    pub async fn ask(
        &self,
        send: &(dyn Fn(Vec<u8>) -> bool + Send + Sync),
        target: &str,
        args: &Value,
        decision: &Decision,
        timeout: Duration,
    ) -> Confirmation {
        let id = format!("{}-{}", self.prefix, self.seq.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), tx);
        let answer = if !send(elicitation_request(&id, target, args, decision)) {
            Confirmation::Unanswered("the client is gone".into())
        } else {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(response)) => Confirmation::from_response(&response),
                Ok(Err(_)) => Confirmation::Unanswered("the client is gone".into()),
                Err(_) => {
                    Confirmation::Unanswered(format!("no answer within {}", steward_store::human_duration(timeout)))
                }
            }
        };
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        answer
    }
}
