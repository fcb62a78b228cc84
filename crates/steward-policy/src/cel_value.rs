//! Conversion of call data into CEL values.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value;
use cel::objects::{Key, Map};

/// Arguments nested deeper than this are cut off: conditions never need them, and hostile
/// arguments must not make the conversion recurse without bound.
const MAX_DEPTH: usize = 32;

pub(crate) fn from_json(v: &serde_json::Value) -> Value {
    from_json_depth(v, 0)
}

fn from_json_depth(v: &serde_json::Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(a) => Value::List(Arc::new(
            a.iter().map(|x| from_json_depth(x, depth + 1)).collect(),
        )),
        serde_json::Value::Object(o) => {
            let map: HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), from_json_depth(v, depth + 1)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

pub(crate) fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_string()))
}

pub(crate) fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    Value::List(Arc::new(items.into_iter().map(string).collect()))
}

pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    let map: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}
