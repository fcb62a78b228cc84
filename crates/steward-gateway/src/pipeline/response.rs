//! A message from the upstream: matched to what Steward forwarded, the client's id restored,
//! governed answers inspected. A message that looks like an answer but matches nothing Steward
//! sent is dropped, never passed on.

use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::rewrite::{cancelled_request_id, notification_progress_token, replace_id, replace_raw};
use steward_mcp::{Kind, Message, Method, steward_id};

use super::Relay;
use super::messages;
use super::session::{Expect, Pending, Session};
use super::verdict::Delivery;

/// Why a forwarded request will get no answer from its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandon {
    /// The upstream did not answer in time.
    Timeout,
    /// The upstream exited or closed the connection.
    UpstreamGone,
    /// The upstream could not take the request at all.
    Unreachable,
    /// The client went away first.
    ClientGone,
}

impl Abandon {
    fn outcome(self) -> &'static str {
        match self {
            Abandon::Timeout => "timeout",
            Abandon::UpstreamGone => "upstream_died",
            Abandon::Unreachable => "upstream_unavailable",
            Abandon::ClientGone => "client_gone",
        }
    }

    fn says(self) -> &'static str {
        match self {
            Abandon::Timeout => "did not answer in time",
            Abandon::UpstreamGone => "exited or closed the connection",
            Abandon::Unreachable => "could not be reached",
            Abandon::ClientGone => "lost its client",
        }
    }
}

impl Relay {
    /// Governs one message from the upstream of session `s`.
    pub fn from_upstream(&self, s: &Session, bytes: Vec<u8>) -> Delivery {
        let msg = match Message::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                // Not JSON-RPC (a server logging to stdout, say): no client could use it either.
                tracing::warn!(server = %s.server(), error = %e, "upstream sent a message that is not JSON-RPC; dropped");
                return Delivery::Drop;
            }
        };
        match msg.kind {
            Kind::Response => {
                let Some(sid) = msg.id.and_then(steward_id) else {
                    tracing::warn!(server = %s.server(), id = msg.raw_id().unwrap_or("null"), "upstream answered with an id Steward never sent; dropped");
                    return Delivery::Drop;
                };
                let Some(pending) = s.lock().take(sid) else {
                    tracing::warn!(server = %s.server(), id = sid, "upstream answer matches no pending request; dropped");
                    return Delivery::Drop;
                };
                match self.answer(s, &msg, &bytes, pending) {
                    Some(out) => Delivery::Answer {
                        bytes: out,
                        steward_id: sid,
                    },
                    None => Delivery::Drop,
                }
            }
            Kind::Request => {
                // A server→client request (sampling, elicitation, roots): relayed under an id of
                // Steward's, its params inspected like any answer.
                let Some(raw) = msg.raw_id() else {
                    return Delivery::Drop;
                };
                let ours = self.next_id();
                let Some(out) = replace_id(&bytes, &msg, &ours.to_string()) else {
                    return Delivery::Drop;
                };
                s.lock().server_requests.insert(ours, raw.into());
                match self.inspect_server_message(s, out) {
                    Some(out) => Delivery::Client(out),
                    None => {
                        s.lock().server_requests.remove(&ours);
                        Delivery::Drop
                    }
                }
            }
            Kind::Notification => match msg.method_kind() {
                Method::NotificationsProgress => {
                    let Some(raw) = notification_progress_token(&msg) else {
                        return Delivery::Drop;
                    };
                    let client = steward_id(raw).and_then(|t| s.lock().tokens.get(&t).cloned());
                    match client.and_then(|c| replace_raw(&bytes, raw, &c)) {
                        Some(out) => Delivery::Client(out),
                        None => {
                            tracing::debug!(server = %s.server(), "progress for no pending request; dropped");
                            Delivery::Drop
                        }
                    }
                }
                Method::NotificationsCancelled => {
                    // The server withdraws a request it sent the client: name it by Steward's id.
                    let theirs = cancelled_request_id(&msg).map(|r| r.get().to_string());
                    let ours = theirs.as_ref().and_then(|t| {
                        s.lock()
                            .server_requests
                            .iter()
                            .find(|(_, v)| v.as_ref() == t.as_str())
                            .map(|(k, _)| *k)
                    });
                    match (cancelled_request_id(&msg), ours) {
                        (Some(raw), Some(ours)) => replace_raw(&bytes, raw, &ours.to_string())
                            .map(Delivery::Client)
                            .unwrap_or(Delivery::Drop),
                        _ => Delivery::Drop,
                    }
                }
                Method::NotificationsMessage => match self.inspect_server_message(s, bytes) {
                    Some(out) => Delivery::Client(out),
                    None => Delivery::Drop,
                },
                // list_changed and the rest: byte for byte.
                _ => Delivery::Client(bytes),
            },
        }
    }

    fn answer(&self, s: &Session, msg: &Message<'_>, bytes: &[u8], p: Pending) -> Option<Vec<u8>> {
        let client_id = p.client_id.as_deref().unwrap_or("null").to_string();
        match p.expect {
            Expect::Internal(tx) => {
                let _ = tx.send(bytes.to_vec());
                None
            }
            Expect::Plain => Some(self.inspect_plain(s, msg, bytes, &client_id)),
            Expect::List { method, ctx } => {
                self.metrics.upstream_latency(&ctx.server, p.started.elapsed());
                Some(self.inspect_list(&ctx, method, msg, bytes, &client_id))
            }
            Expect::Use {
                method,
                target,
                decision_id,
                ctx,
                era,
                ..
            } => {
                self.metrics.upstream_latency(&ctx.server, p.started.elapsed());
                let used = super::inspect::Answered {
                    ctx: &ctx,
                    method,
                    target: &target,
                    decision_id: &decision_id,
                    era,
                    started: p.started,
                };
                Some(self.inspect_use(&used, msg, bytes, &client_id))
            }
        }
    }

    /// Gives up on a forwarded request: its outcome is recorded and the client gets an error
    /// (returned) with its own id.
    pub fn abandon(&self, s: &Session, steward_id: u64, why: Abandon) -> Option<Vec<u8>> {
        let p = s.lock().take(steward_id)?;
        let server = s.server();
        if let Expect::Use {
            method,
            target,
            decision_id,
            ctx,
            ..
        } = &p.expect
        {
            self.outcome(ctx, *method, target, decision_id, why.outcome(), p.started, None);
        }
        let client_id = p.client_id?;
        Some(error_response(
            Some(&client_id),
            ErrorCode::UpstreamUnavailable,
            &messages::upstream_gone(&server, why.says()),
            None,
        ))
    }

    /// Gives up on every forwarded request of `s` (its upstream is gone); the errors to send.
    pub fn abandon_all(&self, s: &Session, why: Abandon) -> Vec<Vec<u8>> {
        let ids: Vec<u64> = s.lock().pending.keys().copied().collect();
        ids.into_iter().filter_map(|id| self.abandon(s, id, why)).collect()
    }
}
