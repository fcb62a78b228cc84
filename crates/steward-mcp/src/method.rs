//! The MCP methods Steward tells apart. Every door classifies a message through [`Method`];
//! nothing else in Steward matches method strings.

/// A JSON-RPC method, as far as Steward cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    ToolsCall,
    ToolsList,
    ResourcesRead,
    ResourcesList,
    ResourcesTemplatesList,
    PromptsGet,
    PromptsList,
    Initialize,
    Ping,
    ServerDiscover,
    NotificationsInitialized,
    NotificationsCancelled,
    NotificationsProgress,
    NotificationsMessage,
    /// Server → client requests Steward relays with remapped ids.
    SamplingCreateMessage,
    ElicitationCreate,
    RootsList,
    /// Anything else: relayed byte for byte.
    Other,
}

/// The governed methods: parsed, decided and inspected in both directions.
pub const GOVERNED: [Method; 7] = [
    Method::ToolsCall,
    Method::ToolsList,
    Method::ResourcesRead,
    Method::ResourcesList,
    Method::ResourcesTemplatesList,
    Method::PromptsGet,
    Method::PromptsList,
];

impl Method {
    pub fn parse(method: &str) -> Method {
        match method {
            "tools/call" => Method::ToolsCall,
            "tools/list" => Method::ToolsList,
            "resources/read" => Method::ResourcesRead,
            "resources/list" => Method::ResourcesList,
            "resources/templates/list" => Method::ResourcesTemplatesList,
            "prompts/get" => Method::PromptsGet,
            "prompts/list" => Method::PromptsList,
            "initialize" => Method::Initialize,
            "ping" => Method::Ping,
            "server/discover" => Method::ServerDiscover,
            "notifications/initialized" => Method::NotificationsInitialized,
            "notifications/cancelled" => Method::NotificationsCancelled,
            "notifications/progress" => Method::NotificationsProgress,
            "notifications/message" => Method::NotificationsMessage,
            "sampling/createMessage" => Method::SamplingCreateMessage,
            "elicitation/create" => Method::ElicitationCreate,
            "roots/list" => Method::RootsList,
            _ => Method::Other,
        }
    }

    /// The method string (`other` for methods Steward does not name; use it as a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::ToolsCall => "tools/call",
            Method::ToolsList => "tools/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesList => "resources/list",
            Method::ResourcesTemplatesList => "resources/templates/list",
            Method::PromptsGet => "prompts/get",
            Method::PromptsList => "prompts/list",
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ServerDiscover => "server/discover",
            Method::NotificationsInitialized => "notifications/initialized",
            Method::NotificationsCancelled => "notifications/cancelled",
            Method::NotificationsProgress => "notifications/progress",
            Method::NotificationsMessage => "notifications/message",
            Method::SamplingCreateMessage => "sampling/createMessage",
            Method::ElicitationCreate => "elicitation/create",
            Method::RootsList => "roots/list",
            Method::Other => "other",
        }
    }

    pub fn is_governed(self) -> bool {
        GOVERNED.contains(&self)
    }

    /// A call on one named thing (a tool, a resource, a prompt), decided by the policy.
    pub fn is_use(self) -> bool {
        matches!(self, Method::ToolsCall | Method::ResourcesRead | Method::PromptsGet)
    }

    /// A list whose entries are filtered for the principal.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Method::ToolsList | Method::ResourcesList | Method::ResourcesTemplatesList | Method::PromptsList
        )
    }

    /// For a list: the method that would use one of its entries (`tools/list` → `tools/call`).
    pub fn use_of_entries(self) -> Option<Method> {
        match self {
            Method::ToolsList => Some(Method::ToolsCall),
            Method::ResourcesList | Method::ResourcesTemplatesList => Some(Method::ResourcesRead),
            Method::PromptsList => Some(Method::PromptsGet),
            _ => None,
        }
    }

    /// For a list: the result member holding its entries.
    pub fn list_member(self) -> Option<&'static str> {
        match self {
            Method::ToolsList => Some("tools"),
            Method::ResourcesList => Some("resources"),
            Method::ResourcesTemplatesList => Some("resourceTemplates"),
            Method::PromptsList => Some("prompts"),
            _ => None,
        }
    }

    /// For a use: the params member naming its target (`name`, or `uri` for resources).
    pub fn target_member(self) -> Option<&'static str> {
        match self {
            Method::ToolsCall | Method::PromptsGet => Some("name"),
            Method::ResourcesRead => Some("uri"),
            _ => None,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_classes() {
        for m in GOVERNED {
            assert_eq!(Method::parse(m.as_str()), m);
            assert!(m.is_governed());
            assert!(m.is_use() != m.is_list());
        }
        assert_eq!(Method::parse("tools/cal"), Method::Other);
        assert!(!Method::Initialize.is_governed());
        assert_eq!(
            Method::ResourcesTemplatesList.use_of_entries(),
            Some(Method::ResourcesRead)
        );
        assert_eq!(Method::ResourcesRead.target_member(), Some("uri"));
    }
}
