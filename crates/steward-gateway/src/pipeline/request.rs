//! A message from the client: classified, decided when governed, and turned into an [`Action`].

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::rewrite::{cancelled_request_id, replace_id, replace_many, replace_raw, request_progress_token};
use steward_mcp::tools::{META_DECISION_ID, UseParams, refusal_result};
use steward_mcp::{Era, IdKey, Kind, Message, Method, steward_id};
use steward_policy::Principal;

use super::Relay;
use super::headers::{self, ClientHeaders};
use super::link::UpstreamLink;
use super::messages;
use super::session::{Expect, Pending, Session};
use super::verdict::{Action, Forward, Held, Outcome, UpstreamHeaders, Use};

/// Pages of `tools/list` Steward reads when it fetches a list itself.
const MAX_PAGES: usize = 20;
/// How long Steward waits for a list it fetches itself.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// What a door knows about one message beyond its bytes.
#[derive(Default, Clone, Copy)]
pub struct Ingress<'a> {
    /// The door's way back to the upstream, for the requests Steward makes itself.
    pub link: Option<&'a dyn UpstreamLink>,
    /// Routing headers the client sent (HTTP doors), checked against the body.
    pub headers: Option<ClientHeaders<'a>>,
    /// The request belongs to the 2026-07-28 era (routing headers are required).
    pub stateless: bool,
}

/// What a refused use answers with: a tool error result for a tool (the model reads it), a
/// JSON-RPC error naming the decision for a resource or a prompt.
pub(crate) fn refusal(method: Method, raw_id: &str, text: &str, decision_id: &str, era: Era) -> Vec<u8> {
    match method {
        Method::ToolsCall => refusal_result(raw_id, text, decision_id, era),
        _ => error_response(
            Some(raw_id),
            ErrorCode::Refused,
            text,
            Some(json!({ META_DECISION_ID: decision_id })),
        ),
    }
}

impl Relay {
    /// Governs one message from the client of session `s`, sent with `principal`'s credential.
    pub async fn request(&self, s: &Session, principal: &Principal, bytes: &[u8], ing: Ingress<'_>) -> Action {
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "malformed message from the client; refused");
                self.refused_message(&s.ctx_for(principal), None, &format!("malformed message: {e}"));
                return Action::Reject {
                    status: 400,
                    bytes: error_response(None, e.code(), &e.to_string(), None),
                    was_request: true,
                };
            }
        };
        let headers = match ing.headers {
            Some(h) => match headers::check(&msg, h, ing.stateless) {
                Ok(u) => u,
                Err(problem) => {
                    return Action::Reject {
                        status: 400,
                        bytes: error_response(
                            msg.raw_id(),
                            ErrorCode::HeaderMismatch,
                            &format!("Header mismatch: {problem}"),
                            None,
                        ),
                        was_request: msg.kind == Kind::Request,
                    };
                }
            },
            None => headers::derive(&msg),
        };
        let method = msg.method_kind();
        if matches!(method, Method::Initialize) || ing.stateless {
            if let Some((name, version)) = steward_mcp::era::client_info(msg.params) {
                s.note_client(name, version);
            }
            // Only the stdio door can put Steward's own question to the client.
            if method == Method::Initialize && s.door() == super::Door::Proxy {
                s.asks.note_capabilities(msg.params);
            }
        }
        match msg.kind {
            Kind::Request => {
                let (Some(key), Some(raw)) = (msg.id_key(), msg.raw_id()) else {
                    return Action::Nothing;
                };
                if s.lock().in_use(&key) {
                    tracing::warn!(id = raw, "client reused the id of a pending request; refused");
                    return Action::Answer(error_response(
                        Some(raw),
                        ErrorCode::InvalidRequest,
                        &messages::id_in_use(raw),
                        None,
                    ));
                }
                if method.is_use() {
                    return self.use_request(s, principal, &msg, bytes, headers, key, ing).await;
                }
                let expect = if method.is_list() {
                    Expect::List {
                        method,
                        ctx: Box::new(s.ctx_for(principal)),
                    }
                } else {
                    Expect::Plain
                };
                self.forward(s, &msg, bytes, key, expect, headers)
            }
            Kind::Notification => self.client_notification(s, principal, &msg, bytes, method, headers),
            Kind::Response => {
                if s.asks.answer(&msg, bytes) {
                    return Action::Nothing;
                }
                let server_id = msg.id.and_then(steward_id);
                let original = server_id.and_then(|id| s.lock().server_requests.remove(&id));
                match original.and_then(|orig| replace_id(bytes, &msg, &orig)) {
                    Some(out) => Action::Forward(Forward {
                        bytes: out,
                        steward_id: None,
                        headers,
                    }),
                    None => {
                        tracing::debug!("client answered a request Steward did not relay; dropped");
                        Action::Nothing
                    }
                }
            }
        }
    }

    fn client_notification(
        &self,
        s: &Session,
        principal: &Principal,
        msg: &Message<'_>,
        bytes: &[u8],
        method: Method,
        headers: UpstreamHeaders,
    ) -> Action {
        if method.is_governed() {
            // A governed method without an id cannot be answered, so it cannot be governed.
            tracing::warn!(%method, "governed method sent as a notification (no id); dropped");
            self.refused_message(
                &s.ctx_for(principal),
                Some(method.as_str()),
                "governed method sent without an id; dropped",
            );
            return Action::Reject {
                status: 400,
                bytes: error_response(
                    None,
                    ErrorCode::InvalidRequest,
                    &messages::needs_id(method.as_str()),
                    None,
                ),
                was_request: false,
            };
        }
        if method == Method::NotificationsCancelled {
            let Some(rid) = cancelled_request_id(msg) else {
                return Action::Nothing;
            };
            let key = IdKey::from_raw(rid);
            let mut table = s.lock();
            if table.is_held(&key) {
                // The upstream never saw the held request: nothing to tell it.
                table.release(&key);
                return Action::Cancel(key);
            }
            return match table
                .forwarded(&key)
                .and_then(|sid| replace_raw(bytes, rid, &sid.to_string()))
            {
                Some(out) => Action::Forward(Forward {
                    bytes: out,
                    steward_id: None,
                    headers,
                }),
                None => Action::Nothing,
            };
        }
        Action::Forward(Forward {
            bytes: bytes.to_vec(),
            steward_id: None,
            headers,
        })
    }

    /// Forwards a request under a Steward id (and progress token), remembering how to answer it.
    pub(crate) fn forward(
        &self,
        s: &Session,
        msg: &Message<'_>,
        bytes: &[u8],
        key: IdKey,
        expect: Expect,
        headers: UpstreamHeaders,
    ) -> Action {
        let (Some(id_raw), Some(client_id)) = (msg.id, msg.raw_id()) else {
            return Action::Nothing;
        };
        let sid = self.next_id();
        let sid_text = sid.to_string();
        let token = request_progress_token(msg).map(|t| (t, self.next_id()));
        let token_text = token.map(|(_, n)| n.to_string());
        let rewritten = match (&token, &token_text) {
            (Some((raw, _)), Some(text)) => replace_many(bytes, &[(id_raw, &sid_text), (*raw, text)]),
            _ => replace_id(bytes, msg, &sid_text),
        };
        let Some(out) = rewritten else {
            return Action::Answer(error_response(
                Some(client_id),
                ErrorCode::InternalError,
                "Steward could not rewrite the request id",
                None,
            ));
        };
        s.lock().insert(
            sid,
            Pending {
                client_id: Some(client_id.into()),
                key: Some(key),
                token: token.map(|(_, n)| n),
                expect,
                started: Instant::now(),
            },
            token.map(|(raw, n)| (n, raw.get().into())),
        );
        Action::Forward(Forward {
            bytes: out,
            steward_id: Some(sid),
            headers,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn use_request(
        &self,
        s: &Session,
        principal: &Principal,
        msg: &Message<'_>,
        bytes: &[u8],
        headers: UpstreamHeaders,
        key: IdKey,
        ing: Ingress<'_>,
    ) -> Action {
        let method = msg.method_kind();
        let raw = msg.raw_id().unwrap_or("null");
        let era = if ing.stateless {
            Era::Stateless
        } else {
            Era::of_params(msg.params).unwrap_or(Era::Legacy)
        };
        let ctx = s.ctx_for(principal);
        let call = match UseParams::parse(method, msg.params) {
            Ok(p) => Use {
                method,
                target: p.target,
                args: p.args,
            },
            Err(e) => {
                let decision_id = self.refused_use(&ctx, method, None, &e);
                return Action::Answer(error_response(
                    Some(raw),
                    ErrorCode::InvalidParams,
                    &e,
                    Some(json!({ META_DECISION_ID: decision_id })),
                ));
            }
        };
        let target = ctx.target(&call.target);
        let permit = match self.limiter.admit(&principal.id, &target) {
            Ok(p) => Some(p),
            Err(limited) => {
                self.metrics.rate_limited();
                let decision_id = self.refused_use(&ctx, method, Some(&call.target), &limited.reason);
                let text = messages::limited(&target, &limited.reason, limited.retry_after, &decision_id);
                return Action::Answer(refusal(method, raw, &text, &decision_id, era));
            }
        };
        let mut known = None;
        // Canaries are Steward's own decoys: no server lists them, and the decision refuses them.
        let canary = self
            .policy()
            .protections()
            .canaries
            .iter()
            .any(|c| c.name == call.target);
        if method == Method::ToolsCall && !canary {
            known = self.catalog.get(&ctx.server, &call.target);
            if known.is_none()
                && let Some(link) = ing.link
            {
                // Never seen listed (a restart, a client that calls without listing): ask the
                // server what the tool is before anything runs.
                // A tool the fresh list does not name is decided on the policy alone (the server
                // will most likely refuse it itself); a list that cannot be fetched refuses it.
                let meta = (era == Era::Stateless)
                    .then(|| steward_mcp::era::request_meta(msg.params))
                    .flatten();
                if let Err(e) = self.fetch_tools(s, link, meta).await {
                    let reason = messages::list_unavailable(&ctx.server, &call.target, &e);
                    tracing::warn!(%target, %reason, "call to a tool Steward cannot check; refused");
                    let decision_id = self.refused_use(&ctx, method, Some(&call.target), &reason);
                    let text = format!("Steward refused the call to {target}: {reason}. Decision {decision_id}.");
                    return Action::Answer(refusal(method, raw, &text, &decision_id, era));
                }
                known = self.catalog.get(&ctx.server, &call.target);
            }
        }
        let decided = self.decide(&ctx, &call, known.as_deref(), s.can_elicit()).await;
        match &decided.outcome {
            Outcome::Allowed { .. } => {
                let expect = Expect::Use {
                    method,
                    target: call.target,
                    decision_id: decided.decision_id,
                    ctx: Box::new(ctx),
                    era,
                    _permit: permit,
                };
                self.forward(s, msg, bytes, key, expect, headers)
            }
            Outcome::Denied { message, .. } => {
                tracing::info!(%target, decision = %decided.decision_id, "call refused");
                Action::Answer(refusal(method, raw, message, &decided.decision_id, era))
            }
            Outcome::Pending { ticket, message } => {
                if ticket.mode == steward_policy::ApprovalMode::Queue {
                    return Action::Answer(refusal(method, raw, message, &decided.decision_id, era));
                }
                s.lock().hold(key.clone());
                Action::Hold(Box::new(Held {
                    progress_token: super::approval::Progress::token(msg.params),
                    ctx,
                    call,
                    decided,
                    key,
                    era,
                    bytes: bytes.to_vec(),
                    headers,
                    permit,
                }))
            }
            Outcome::Ask => {
                s.lock().hold(key.clone());
                Action::Ask(Box::new(Held {
                    progress_token: None,
                    ctx,
                    call,
                    decided,
                    key,
                    era,
                    bytes: bytes.to_vec(),
                    headers,
                    permit,
                }))
            }
        }
    }

    /// Fetches the server's tool list through `link` and learns it (pins, scans, annotations).
    /// `meta`: a 2026-07-28 client's request `_meta`, whose protocol members (version, client
    /// info and capabilities) Steward's own request carries too.
    pub(crate) async fn fetch_tools(
        &self,
        s: &Session,
        link: &dyn UpstreamLink,
        meta: Option<serde_json::Map<String, Value>>,
    ) -> Result<(), String> {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let sid = self.next_id();
            let mut params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let mut headers = UpstreamHeaders {
                method: Some(Method::ToolsList.as_str().into()),
                ..Default::default()
            };
            if let Some(meta) = &meta {
                let protocol: serde_json::Map<String, Value> = meta
                    .iter()
                    .filter(|(k, _)| k.starts_with("io.modelcontextprotocol/"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                headers.protocol_version = protocol
                    .get(steward_mcp::era::META_PROTOCOL_VERSION)
                    .and_then(Value::as_str)
                    .map(str::to_string);
                params["_meta"] = Value::Object(protocol);
            }
            let line = json!({ "jsonrpc": "2.0", "id": sid, "method": "tools/list", "params": params })
                .to_string()
                .into_bytes();
            let (tx, mut rx) = tokio::sync::oneshot::channel();
            s.lock().insert(
                sid,
                Pending {
                    client_id: None,
                    key: None,
                    token: None,
                    expect: Expect::Internal(tx),
                    started: Instant::now(),
                },
                None,
            );
            let deadline = tokio::time::Instant::now() + FETCH_TIMEOUT;
            let answer = match link.send(line, headers).await {
                Err(e) => {
                    s.lock().take(sid);
                    return Err(e);
                }
                Ok(Some(mut replies)) => loop {
                    tokio::select! {
                        a = &mut rx => break a.ok(),
                        m = tokio::time::timeout_at(deadline, replies.recv()) => match m {
                            Ok(Some(m)) => { let _ = self.from_upstream(s, m); }
                            Ok(None) | Err(_) => break rx.try_recv().ok(),
                        },
                    }
                },
                Ok(None) => tokio::time::timeout_at(deadline, rx).await.ok().and_then(Result::ok),
            };
            let Some(answer) = answer else {
                s.lock().take(sid);
                return Err(format!("no answer within {} s", FETCH_TIMEOUT.as_secs()));
            };
            let page: Value = steward_mcp::json::parse_deep(&answer).map_err(|e| e.to_string())?;
            if let Some(e) = page.get("error") {
                return Err(format!(
                    "the server answered with an error: {}",
                    steward_scan::redact::redact_text(&e.to_string())
                ));
            }
            let tools = page
                .pointer("/result/tools")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            self.catalog.learn(&s.server(), &tools);
            cursor = page
                .pointer("/result/nextCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
            if cursor.is_none() {
                return Ok(());
            }
        }
        Ok(())
    }
}
