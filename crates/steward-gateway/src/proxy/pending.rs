//! Requests forwarded upstream and not yet answered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use steward_mcp::IdKey;

/// What a forwarded request was, so its response can be handled.
#[derive(Debug, Clone)]
pub(crate) enum Waiting {
    ToolsList,
    ToolCall { decision_id: String, tool: String },
    Other,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub what: Waiting,
    pub started: Instant,
}

/// Client requests waiting for the upstream's answer, by id.
#[derive(Default)]
pub(crate) struct PendingRequests {
    map: Mutex<HashMap<IdKey, Pending>>,
}

impl PendingRequests {
    pub fn insert(&self, id: IdKey, what: Waiting) {
        self.lock().insert(
            id,
            Pending {
                what,
                started: Instant::now(),
            },
        );
    }

    pub fn take(&self, id: &IdKey) -> Option<Pending> {
        self.lock().remove(id)
    }

    pub fn drain(&self) -> Vec<(IdKey, Pending)> {
        self.lock().drain().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IdKey, Pending>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}
