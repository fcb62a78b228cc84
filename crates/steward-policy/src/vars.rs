//! The data a condition can read (`principal`, `server`, `tool`, `args`, `call`, `time`,
//! `request`), borrowed from the call, and its lazy conversion into CEL values.
//!
//! Most conditions are evaluated natively ([`crate::native`]) straight from [`Vars`]. Only
//! conditions outside that subset reach the `cel` interpreter, through [`Resolver`], which builds
//! each variable's CEL value on first use and borrows strings instead of copying them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp, CelUInt,
};
use cel::common::value::{CowVal, Val};
use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use crate::decide::Principal;
use crate::model::{Risk, ToolAnnotations};

/// Arguments nested deeper than this are cut off (as `null`): conditions never need them, and
/// hostile arguments must not make the conversion recurse without bound.
pub(crate) const MAX_DEPTH: usize = 32;

/// The standard CEL environment, built once: building it costs ~50 µs.
pub(crate) static CEL_ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// The variables a condition may name, in the order [`Resolver`] caches them.
pub(crate) const VARIABLES: [&str; 9] = [
    "principal",
    "server",
    "tool",
    "args",
    "call",
    "time",
    "request",
    "resource",
    "prompt",
];

/// The fields of each fixed-shape variable (`args` has none: it is the call's own JSON).
pub(crate) fn fields_of(var: &str) -> Option<&'static [&'static str]> {
    Some(match var {
        "principal" => &["id", "roles", "capabilities", "attributes", "auth"],
        "server" => &["name", "version", "data_scope", "risk", "status"],
        "tool" => &["name", "annotations"],
        "call" => &["method", "risk", "flags", "operation"],
        "time" => &["now", "hour", "minute", "weekday", "date"],
        "request" => &["client_name", "client_version", "door", "source"],
        "resource" => &["uri"],
        "prompt" => &["name"],
        _ => return None,
    })
}

/// Everything a condition can see about one call, at one stage of the decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub principal: &'a Principal,
    pub roles: &'a [&'a str],
    pub capabilities: &'a [&'a str],
    /// The policy's own attributes for this principal; they win over the door's.
    pub policy_attributes: Option<&'a serde_json::Map<String, serde_json::Value>>,
    pub server: &'a str,
    pub server_version: Option<&'a str>,
    pub server_data_scope: Option<&'a str>,
    pub server_risk: Option<Risk>,
    /// The registry's status of the server (`approved`, `pending_review`, …), if there is a registry.
    pub server_status: Option<&'a str>,
    pub tool: &'a str,
    /// `resource.uri`: set for `resources/read` and for a resource judged for a list.
    pub resource_uri: Option<&'a str>,
    /// `prompt.name`: set for `prompts/get` and for a prompt judged for a list.
    pub prompt_name: Option<&'a str>,
    pub annotations: Option<&'a ToolAnnotations>,
    pub args: &'a serde_json::Value,
    pub method: &'a str,
    pub risk: Risk,
    pub flags: &'a [&'a str],
    pub operation: Option<&'a str>,
    /// The call's time in the policy's time zone.
    pub now: DateTime<FixedOffset>,
    pub client_name: Option<&'a str>,
    pub client_version: Option<&'a str>,
    pub door: &'a str,
    pub source: Option<&'a str>,
}

impl<'a> Vars<'a> {
    /// A principal attribute: the policy's value, else the door's.
    pub fn attribute(&self, key: &str) -> Option<&'a serde_json::Value> {
        self.policy_attributes
            .and_then(|m| m.get(key))
            .or_else(|| self.principal.attributes.get(key))
    }

    pub fn has_attribute(&self, key: &str) -> bool {
        self.attribute(key).is_some()
    }

    pub fn weekday(&self) -> &'static str {
        weekday_name(self.now.weekday())
    }

    pub fn date(&self) -> String {
        self.now.format("%Y-%m-%d").to_string()
    }

    pub fn hour(&self) -> i64 {
        self.now.hour() as i64
    }

    pub fn minute(&self) -> i64 {
        self.now.minute() as i64
    }
}

pub(crate) fn weekday_name(d: chrono::Weekday) -> &'static str {
    match d {
        chrono::Weekday::Mon => "Mon",
        chrono::Weekday::Tue => "Tue",
        chrono::Weekday::Wed => "Wed",
        chrono::Weekday::Thu => "Thu",
        chrono::Weekday::Fri => "Fri",
        chrono::Weekday::Sat => "Sat",
        chrono::Weekday::Sun => "Sun",
    }
}

pub(crate) const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

type Boxed<'a> = Box<dyn Val + 'a>;

/// Feeds [`Vars`] to the `cel` interpreter, building each variable once, on first use.
pub(crate) struct Resolver<'a> {
    vars: Vars<'a>,
    cache: [OnceLock<Boxed<'a>>; VARIABLES.len()],
}

impl<'a> Resolver<'a> {
    pub fn new(vars: Vars<'a>) -> Resolver<'a> {
        Resolver {
            vars,
            cache: Default::default(),
        }
    }

    fn build(&self, slot: usize) -> Boxed<'a> {
        let v = &self.vars;
        let s = |x: &'a str| -> Boxed<'a> { Box::new(CelString::from(x)) };
        let opt = |x: Option<&'a str>| -> Boxed<'a> {
            match x {
                Some(x) => Box::new(CelString::from(x)),
                None => Box::new(CelNull),
            }
        };
        match slot {
            0 => {
                let mut attributes: HashMap<CelMapKey<'a>, Boxed<'a>> = HashMap::new();
                for (k, val) in v
                    .principal
                    .attributes
                    .iter()
                    .chain(v.policy_attributes.into_iter().flatten())
                {
                    attributes.insert(CelMapKey::from(k.as_str()), json(val, 1));
                }
                map([
                    ("id", s(&v.principal.id)),
                    ("roles", strs(v.roles.iter().copied())),
                    ("capabilities", strs(v.capabilities.iter().copied())),
                    ("attributes", Box::new(CelMap::from(attributes))),
                    ("auth", s(&v.principal.auth)),
                ])
            }
            1 => map([
                ("name", s(v.server)),
                ("version", opt(v.server_version)),
                ("data_scope", opt(v.server_data_scope)),
                ("risk", opt(v.server_risk.map(Risk::as_str))),
                ("status", opt(v.server_status)),
            ]),
            2 => {
                let mut annotations: HashMap<CelMapKey<'a>, Boxed<'a>> = HashMap::new();
                for (k, val) in annotation_entries(v.annotations) {
                    annotations.insert(CelMapKey::from(k), Box::new(CelBool::from(val)));
                }
                map([
                    ("name", s(v.tool)),
                    ("annotations", Box::new(CelMap::from(annotations))),
                ])
            }
            3 => json(v.args, 0),
            4 => map([
                ("method", s(v.method)),
                ("risk", s(v.risk.as_str())),
                ("flags", strs(v.flags.iter().copied())),
                ("operation", opt(v.operation)),
            ]),
            5 => map([
                ("now", Box::new(CelTimestamp::from(v.now))),
                ("hour", Box::new(CelInt::from(v.hour()))),
                ("minute", Box::new(CelInt::from(v.minute()))),
                ("weekday", s(v.weekday())),
                ("date", Box::new(CelString::from(v.date()))),
            ]),
            6 => map([
                ("client_name", opt(v.client_name)),
                ("client_version", opt(v.client_version)),
                ("door", s(v.door)),
                ("source", opt(v.source)),
            ]),
            7 => map([("uri", opt(v.resource_uri))]),
            _ => map([("name", opt(v.prompt_name))]),
        }
    }
}

impl cel::context::VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let slot = VARIABLES.iter().position(|v| *v == variable)?;
        let value = self.cache[slot].get_or_init(|| self.build(slot));
        Some(CowVal::Borrowed(value.as_ref()))
    }
}

/// The annotation hints that are set, by their MCP names.
pub(crate) fn annotation_entries(a: Option<&ToolAnnotations>) -> impl Iterator<Item = (&'static str, bool)> {
    let a = a.cloned().unwrap_or_default();
    [
        ("readOnlyHint", a.read_only_hint),
        ("destructiveHint", a.destructive_hint),
        ("idempotentHint", a.idempotent_hint),
        ("openWorldHint", a.open_world_hint),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
}

fn map<'a, const N: usize>(entries: [(&'static str, Boxed<'a>); N]) -> Boxed<'a> {
    let map: HashMap<CelMapKey<'a>, Boxed<'a>> = entries.into_iter().map(|(k, v)| (CelMapKey::from(k), v)).collect();
    Box::new(CelMap::from(map))
}

fn strs<'a>(items: impl Iterator<Item = &'a str>) -> Boxed<'a> {
    Box::new(CelList::from(
        items
            .map(|x| Box::new(CelString::from(x)) as Boxed<'a>)
            .collect::<Vec<_>>(),
    ))
}

/// A JSON value as a CEL value, strings borrowed.
pub(crate) fn json(v: &serde_json::Value, depth: usize) -> Boxed<'_> {
    if depth > MAX_DEPTH {
        return Box::new(CelNull);
    }
    match v {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(b) => Box::new(CelBool::from(*b)),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        serde_json::Value::String(s) => Box::new(CelString::from(s.as_str())),
        serde_json::Value::Array(a) => {
            Box::new(CelList::from(a.iter().map(|x| json(x, depth + 1)).collect::<Vec<_>>()))
        }
        serde_json::Value::Object(o) => {
            let map: HashMap<CelMapKey<'_>, Boxed<'_>> = o
                .iter()
                .map(|(k, x)| (CelMapKey::from(k.as_str()), json(x, depth + 1)))
                .collect();
            Box::new(CelMap::from(map))
        }
    }
}
