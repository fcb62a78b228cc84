//! The client loop: client stdin → relay → upstream stdin (or an answer straight back).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::{Line, LineReader};
use tokio::io::AsyncBufRead;

use super::Proxy;
use crate::pipeline::{Abandon, Action, Ingress, Progress, UpstreamHeaders, UpstreamLink};
use crate::upstream::Replies;

/// The proxy's way to its upstream for Steward's own requests: the same pipe; the answer comes
/// back through the upstream loop.
struct Pipe(Arc<Proxy>);

impl UpstreamLink for Pipe {
    fn send(&self, bytes: Vec<u8>, _headers: UpstreamHeaders) -> BoxFuture<'_, Result<Option<Replies>, String>> {
        Box::pin(async move {
            if self.0.upstream_in.send(bytes) {
                Ok(None)
            } else {
                Err("the upstream's input is closed".into())
            }
        })
    }
}

pub(crate) async fn run<R: AsyncBufRead + Unpin>(proxy: Arc<Proxy>, mut input: LineReader<R>) {
    let _held = AbortHeld(proxy.clone());
    let link = Pipe(proxy.clone());
    loop {
        let line = match input.next().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read from the client; shutting down");
                return;
            }
        };
        let bytes = match line {
            Line::Message(bytes) => bytes,
            Line::TooLong { bytes } => {
                tracing::warn!(bytes, "client message exceeds the size limit; refused");
                proxy.relay.refused_message(
                    &proxy.session.ctx_for(&proxy.principal),
                    None,
                    &format!("message of {bytes} bytes exceeds the limit"),
                );
                proxy.client_out.send(error_response(
                    None,
                    ErrorCode::InvalidRequest,
                    &format!("message of {bytes} bytes exceeds Steward's limit; it was not forwarded"),
                    None,
                ));
                continue;
            }
        };
        let ingress = Ingress {
            link: Some(&link),
            ..Ingress::default()
        };
        let action = proxy
            .relay
            .request(&proxy.session, &proxy.principal, &bytes, ingress)
            .await;
        act(&proxy, action);
    }
}

/// Carries out what the relay said.
fn act(proxy: &Arc<Proxy>, action: Action) {
    match action {
        Action::Forward(f) => {
            if !proxy.upstream_in.send(f.bytes)
                && let Some(id) = f.steward_id
                && let Some(error) = proxy.relay.abandon(&proxy.session, id, Abandon::Unreachable)
            {
                proxy.client_out.send(error);
            }
        }
        Action::Answer(bytes) => {
            proxy.client_out.send(bytes);
        }
        Action::Reject { bytes, was_request, .. } => {
            if was_request {
                proxy.client_out.send(bytes);
            }
        }
        Action::Hold(held) => {
            let key = held.key().clone();
            tracing::info!(target = %held.target(), approval = held.approval_id().unwrap_or_default(), decision = held.decision_id(), "call held for approval");
            let progress = held.progress_token.clone().map(|t| {
                let out = proxy.client_out.clone();
                Progress::new(t, move |line| out.send(line))
            });
            let task_proxy = proxy.clone();
            let task_key = key.clone();
            spawn_held(proxy, key, async move {
                let next = task_proxy.relay.release(&task_proxy.session, *held, progress).await;
                task_proxy
                    .held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&task_key);
                act(&task_proxy, next);
            });
        }
        Action::Ask(held) => {
            let key = held.key().clone();
            tracing::info!(target = %held.target(), decision = held.decision_id(), "asking the user to confirm the call");
            let task_proxy = proxy.clone();
            let task_key = key.clone();
            spawn_held(proxy, key, async move {
                let out = task_proxy.client_out.clone();
                let send = move |line: Vec<u8>| out.send(line);
                let next = task_proxy.relay.ask(&task_proxy.session, *held, &send).await;
                task_proxy
                    .held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&task_key);
                act(&task_proxy, next);
            });
        }
        Action::Cancel(key) => {
            if let Some(task) = proxy.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&key) {
                tracing::info!(request = %key.as_json(), "client cancelled a held call; its approval stays pending");
                task.abort();
            }
        }
        Action::Nothing => {}
    }
}

/// Waits for a human in a task of its own, so the client loop keeps reading.
fn spawn_held(
    proxy: &Arc<Proxy>,
    key: steward_mcp::IdKey,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut held = proxy.held.lock().unwrap_or_else(|e| e.into_inner());
    let task = tokio::spawn(work);
    // Inserted under the lock the task needs to remove itself: it cannot finish first.
    held.insert(key, task.abort_handle());
}

/// Held calls end with the client: their approvals stay pending (and become grants if approved).
struct AbortHeld(Arc<Proxy>);

impl Drop for AbortHeld {
    fn drop(&mut self) {
        for (_, task) in self.0.held.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            task.abort();
        }
    }
}
