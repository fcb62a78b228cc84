//! Which `tools` entry and which rules apply to a server/tool pair.
//!
//! Matching every glob of a 100-rule policy costs microseconds; a deployment calls a few dozen
//! distinct tools. So the answer for each pair is computed once and kept, up to a bound (tool
//! names come from clients and servers, and must not grow memory without limit).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::model::{Rule, ToolClass};

/// Pairs remembered per policy; beyond this, answers are computed on every call.
const MAX_ENTRIES: usize = 4096;

/// What applies to one server/tool pair.
#[derive(Debug)]
pub(crate) struct Applicable {
    /// Index of the first matching `tools` entry.
    pub class: Option<usize>,
    /// Indexes of the rules whose `match` covers the pair, in policy order (any method).
    pub rules: Box<[usize]>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    entries: RwLock<HashMap<String, HashMap<String, Arc<Applicable>>>>,
    count: std::sync::atomic::AtomicUsize,
}

impl Index {
    pub fn lookup(&self, tools: &[ToolClass], rules: &[Rule], server: &str, tool: &str) -> Arc<Applicable> {
        if let Some(found) = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(server)
            .and_then(|m| m.get(tool))
        {
            return found.clone();
        }
        let computed = Arc::new(compute(tools, rules, server, tool));
        use std::sync::atomic::Ordering::Relaxed;
        if self.count.load(Relaxed) < MAX_ENTRIES {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            let slot = entries.entry(server.to_string()).or_default();
            if !slot.contains_key(tool) {
                slot.insert(tool.to_string(), computed.clone());
                self.count.fetch_add(1, Relaxed);
            }
        }
        computed
    }
}

fn compute(tools: &[ToolClass], rules: &[Rule], server: &str, tool: &str) -> Applicable {
    Applicable {
        class: tools
            .iter()
            .position(|t| t.patterns.iter().any(|p| p.matches(server, tool))),
        rules: rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.patterns.iter().any(|p| p.matches(server, tool)))
            .map(|(i, _)| i)
            .collect(),
    }
}
