//! Who is calling, through which door, on which server: the context every governed message is
//! decided in.

use steward_policy::Principal;

/// The door a message came through. Audit rows name it; the policy sees [`Door::policy_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Door {
    /// `steward proxy`: stdio around one server.
    Proxy,
    /// `steward serve`: `/mcp/{server}`, streamable HTTP in both eras.
    Gateway,
    /// `steward serve`: the deprecated HTTP+SSE transport (`/sse/{server}`, `/messages/{server}`).
    LegacySse,
    /// `steward serve`: the federated endpoint `/mcp`.
    Federation,
    /// `POST /v1/decide`.
    DecideApi,
    /// `steward hook` (Claude Code).
    Hook,
}

impl Door {
    /// The name in audit rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Proxy => "proxy",
            Door::Gateway => "gateway",
            Door::LegacySse => "gateway-sse",
            Door::Federation => "federation",
            Door::DecideApi => "api",
            Door::Hook => "hook",
        }
    }

    /// The name policies see as `request.door`: the gateway's three MCP transports are one door.
    pub fn policy_name(self) -> &'static str {
        match self {
            Door::Proxy => "proxy",
            Door::Gateway | Door::LegacySse | Door::Federation => "gateway",
            Door::DecideApi => "api",
            Door::Hook => "hook",
        }
    }

    /// Whether the door can keep a client waiting for a human (hold mode). The others answer
    /// queue-style: the approval id now, one identical retry after approval.
    pub fn can_hold(self) -> bool {
        matches!(self, Door::Proxy | Door::Gateway | Door::LegacySse | Door::Federation)
    }

    /// Whether the door actually runs what it allows (and so uses up a one-time approval grant).
    /// The decision API only says what would happen.
    pub fn enforces(self) -> bool {
        self != Door::DecideApi
    }
}

/// What the approved-server registry says about a server, for `server.*` in policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub version: Option<String>,
    pub data_scope: Option<String>,
    pub risk: Option<steward_policy::Risk>,
    /// `approved`, `pending_review`, `denied`, `expired`, `unlisted`; `None` without a registry.
    pub status: Option<String>,
}

impl ServerInfo {
    /// What `registry` says about `server` today, servable or not.
    pub fn from_registry(registry: &steward_registry::Registry, server: &str) -> ServerInfo {
        let today = steward_registry::today();
        let mut info = ServerInfo {
            status: Some(registry.policy_status(server, today).to_string()),
            ..ServerInfo::default()
        };
        if let Some(steward_registry::Entry::Approved(a)) = registry.lookup(server) {
            info.version = a.version.clone();
            info.data_scope = Some(a.data_scope.as_str().to_string());
            info.risk = Some(a.risk);
        }
        info
    }
}

/// Who is calling through which door, for one message.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub principal: Principal,
    pub server: String,
    pub server_info: ServerInfo,
    pub door: Door,
    /// The session label audit rows carry (never a session secret).
    pub session: String,
    pub client_name: Option<String>,
    pub client_version: Option<String>,
}

impl CallContext {
    pub fn new(principal: Principal, server: impl Into<String>, door: Door, session: impl Into<String>) -> CallContext {
        CallContext {
            principal,
            server: server.into(),
            server_info: ServerInfo::default(),
            door,
            session: session.into(),
            client_name: None,
            client_version: None,
        }
    }

    /// `name/version` of the client, for audit rows.
    pub fn client(&self) -> Option<String> {
        self.client_name.as_ref().map(|n| match &self.client_version {
            Some(v) => format!("{n}/{v}"),
            None => n.clone(),
        })
    }

    /// `server/name`, the way messages and policies name a target.
    pub fn target(&self, name: &str) -> String {
        format!("{}/{name}", self.server)
    }
}
