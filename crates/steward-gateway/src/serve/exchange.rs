//! One client message through the relay and the upstream connection, onto HTTP: the relay's
//! [`Action`] and [`Delivery`] mapped to a JSON answer, an SSE stream, or a status. Shared by
//! `/mcp/{server}`, the legacy SSE transport and the federated endpoint.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use steward_mcp::sse;
use steward_policy::Principal;
use tokio::sync::mpsc;

use super::reply;
use super::state::AppState;
use crate::pipeline::{Abandon, Action, ConnLink, Delivery, Forward, Held, Ingress, Progress, Session};
use crate::upstream::Conn;

/// SSE comments keep a stream alive through proxies while nothing else is said.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);

/// Where an exchange happens.
#[derive(Clone)]
pub struct Exchange {
    pub st: Arc<AppState>,
    pub session: Arc<Session>,
    pub principal: Principal,
    pub conn: Conn,
    /// How long the upstream may take to answer.
    pub timeout: Duration,
}

/// A forwarded request the client may stop waiting for: if its answer never reaches the
/// client, its outcome is still recorded.
struct InFlight {
    ex: Exchange,
    id: u64,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.ex.st.relay.abandon(&self.ex.session, self.id, Abandon::ClientGone);
        }
    }
}

/// The answer of one exchange, before it becomes an HTTP response.
pub enum Answered {
    /// The final answer.
    One(Vec<u8>),
    /// Messages before and including the final answer, for a client that takes a stream.
    Stream(mpsc::Receiver<Vec<u8>>),
    /// Nothing to answer (a notification, a response): 202.
    Accepted,
    /// A protocol error with its status.
    Rejected(StatusCode, Vec<u8>),
}

impl Answered {
    pub fn into_response(self, extra: HeaderMap) -> Response {
        match self {
            Answered::One(bytes) => reply::json(bytes, extra),
            Answered::Stream(rx) => sse_of(rx, extra),
            Answered::Accepted => {
                let mut r = StatusCode::ACCEPTED.into_response();
                r.headers_mut().extend(extra);
                r
            }
            Answered::Rejected(status, bytes) => {
                let mut r = (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
                r.headers_mut().extend(extra);
                r
            }
        }
    }
}

/// An SSE response of every message on `rx`, kept alive while quiet.
pub fn sse_of(rx: mpsc::Receiver<Vec<u8>>, extra: HeaderMap) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        match tokio::time::timeout(KEEPALIVE_EVERY, rx.recv()).await {
            Ok(Some(m)) => Some((Ok::<Bytes, Infallible>(Bytes::from(sse::encode_message(&m))), rx)),
            Ok(None) => None,
            Err(_) => Some((Ok(Bytes::from_static(sse::KEEPALIVE)), rx)),
        }
    });
    reply::sse_response(Body::from_stream(stream), extra)
}

impl Exchange {
    /// Runs one client message. `streams`: the client takes an SSE stream.
    pub async fn run(&self, body: &[u8], ingress: Ingress<'_>, streams: bool) -> Answered {
        let link = ConnLink(self.conn.clone());
        let ingress = Ingress {
            link: Some(&link),
            ..ingress
        };
        let action = self
            .st
            .relay
            .request(&self.session, &self.principal, body, ingress)
            .await;
        self.act(action, streams).await
    }

    fn act(&self, action: Action, streams: bool) -> BoxFuture<'_, Answered> {
        Box::pin(self.act_now(action, streams))
    }

    async fn act_now(&self, action: Action, streams: bool) -> Answered {
        match action {
            Action::Forward(f) => self.forward(f, streams).await,
            Action::Answer(bytes) => Answered::One(bytes),
            Action::Reject { status, bytes, .. } => {
                Answered::Rejected(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), bytes)
            }
            Action::Hold(held) if streams => {
                // The stream starts now: progress while the call waits, then its answer.
                let (tx, rx) = mpsc::channel(32);
                let ex = self.clone();
                tokio::spawn(async move { ex.hold_into(*held, tx).await });
                Answered::Stream(rx)
            }
            Action::Hold(held) => {
                // A JSON answer carries no progress: the relay answers queue-style after the
                // policy's `approvals.hold_without_progress`.
                let next = self.st.relay.release(&self.session, *held, None).await;
                self.act(next, false).await
            }
            // HTTP sessions never offer elicitation to Steward, so the relay does not ask here;
            // if it did, the question could not be delivered and the call is refused.
            Action::Ask(held) => {
                let next = self.st.relay.ask(&self.session, *held, &|_| false).await;
                self.act(next, streams).await
            }
            Action::Cancel(_) | Action::Nothing => Answered::Accepted,
        }
    }

    /// Holds a call, sending progress and then the answer (or the refusal) into `tx`.
    async fn hold_into(&self, held: Held, tx: mpsc::Sender<Vec<u8>>) {
        let progress = held.progress_token.clone().map(|t| {
            let tx = tx.clone();
            Progress::new(t, move |line| tx.try_send(line).is_ok())
        });
        let next = tokio::select! {
            next = self.st.relay.release(&self.session, held, progress) => next,
            // The client went away: stop waiting; the approval stays pending.
            _ = tx.closed() => return,
        };
        match self.act(next, true).await {
            Answered::One(bytes) | Answered::Rejected(_, bytes) => {
                let _ = tx.send(bytes).await;
            }
            Answered::Stream(mut rx) => {
                while let Some(m) = rx.recv().await {
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
            }
            Answered::Accepted => {}
        }
    }

    async fn forward(&self, f: Forward, streams: bool) -> Answered {
        let Some(id) = f.steward_id else {
            // A notification or a response: nothing comes back for it.
            return match self.conn.send(&f.bytes, &f.headers).await {
                Ok(()) => Answered::Accepted,
                Err(e) => Answered::Rejected(
                    StatusCode::BAD_GATEWAY,
                    steward_mcp::jsonrpc::error_response(
                        None,
                        steward_mcp::ErrorCode::UpstreamUnavailable,
                        &e.to_string(),
                        None,
                    ),
                ),
            };
        };
        let mut guard = InFlight {
            ex: self.clone(),
            id,
            done: false,
        };
        let mut replies = match self.conn.request(&f.bytes, &f.headers).await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!(error = %e, "upstream unavailable");
                guard.done = true;
                return Answered::One(self.give_up(id, Abandon::Unreachable));
            }
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        // The first messages decide the shape: a lone answer is JSON; anything before it means
        // a stream (for a client that takes one; others get the answer alone).
        let mut early = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, replies.recv()).await;
            match next {
                Ok(Some(m)) => match self.st.relay.from_upstream(&self.session, m) {
                    Delivery::Answer { bytes, steward_id } if steward_id == id => {
                        guard.done = true;
                        if early.is_empty() || !streams {
                            return Answered::One(bytes);
                        }
                        early.push(bytes);
                        return Answered::Stream(channel_of(early));
                    }
                    // An answer to another request of this session (a shared channel): its own
                    // handler is gone; nothing else may receive it.
                    Delivery::Answer { .. } | Delivery::Drop => {}
                    Delivery::Client(bytes) if streams => {
                        early.push(bytes);
                        guard.done = true;
                        return Answered::Stream(self.stream_rest(early, replies, id, deadline));
                    }
                    Delivery::Client(_) => {}
                },
                Ok(None) => {
                    guard.done = true;
                    return Answered::One(self.give_up(id, Abandon::UpstreamGone));
                }
                Err(_) => {
                    guard.done = true;
                    return Answered::One(self.give_up(id, Abandon::Timeout));
                }
            }
        }
    }

    /// Streams the rest of a request's replies after `early`, until its answer.
    fn stream_rest(
        &self,
        early: Vec<Vec<u8>>,
        mut replies: crate::upstream::Replies,
        id: u64,
        deadline: tokio::time::Instant,
    ) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(64);
        let ex = self.clone();
        tokio::spawn(async move {
            let mut guard = InFlight {
                ex: ex.clone(),
                id,
                done: false,
            };
            for m in early {
                if tx.send(m).await.is_err() {
                    return;
                }
            }
            loop {
                let next = tokio::select! {
                    n = tokio::time::timeout_at(deadline, replies.recv()) => n,
                    _ = tx.closed() => return,
                };
                match next {
                    Ok(Some(m)) => match ex.st.relay.from_upstream(&ex.session, m) {
                        Delivery::Answer { bytes, steward_id } if steward_id == id => {
                            guard.done = true;
                            let _ = tx.send(bytes).await;
                            return;
                        }
                        Delivery::Client(bytes) => {
                            if tx.send(bytes).await.is_err() {
                                return;
                            }
                        }
                        Delivery::Answer { .. } | Delivery::Drop => {}
                    },
                    Ok(None) => {
                        guard.done = true;
                        let _ = tx.send(ex.give_up(id, Abandon::UpstreamGone)).await;
                        return;
                    }
                    Err(_) => {
                        guard.done = true;
                        let _ = tx.send(ex.give_up(id, Abandon::Timeout)).await;
                        return;
                    }
                }
            }
        });
        rx
    }

    fn give_up(&self, id: u64, why: Abandon) -> Vec<u8> {
        self.st.relay.abandon(&self.session, id, why).unwrap_or_else(|| {
            steward_mcp::jsonrpc::error_response(
                None,
                steward_mcp::ErrorCode::UpstreamUnavailable,
                "the upstream did not answer",
                None,
            )
        })
    }
}

fn channel_of(messages: Vec<Vec<u8>>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(messages.len().max(1));
    for m in messages {
        let _ = tx.try_send(m);
    }
    rx
}
