//! Reading the JSON that Steward governs: deep enough for real servers, bounded for hostile ones,
//! and strict about duplicate keys.
//!
//! `serde_json` stops at 128 levels; real servers nest deeper (JSON Schemas of schemas), and a
//! governed message that cannot be read must be refused, never forwarded. So governed content is
//! read with a limit of [`MAX_DEPTH`] levels, checked by a byte scan before any recursion, and
//! deserialised on a growable stack (`serde_stacker`). Duplicate keys are refused: a peer that keeps
//! the first value must never act on a value the policy did not see.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The deepest nesting of objects and arrays Steward reads in governed content.
pub const MAX_DEPTH: usize = 1024;

/// Why governed JSON could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    #[error("duplicate key \"{0}\"")]
    DuplicateKey(String),
    #[error("invalid JSON: {0}")]
    Invalid(String),
}

/// The deepest nesting of `bytes` (objects and arrays), counting only brackets outside strings,
/// or `None` once it passes `limit`. Linear, no allocation.
pub fn depth_within(bytes: &[u8], limit: usize) -> Option<usize> {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return None;
                }
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Some(max)
}

/// Parses governed JSON: at most [`MAX_DEPTH`] levels, no duplicate keys anywhere.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, JsonError> {
    depth_within(bytes, MAX_DEPTH).ok_or(JsonError::TooDeep)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = {
        let stacked = serde_stacker::Deserializer::new(&mut de);
        StrictSeed.deserialize(stacked).map_err(|e| classify(e.to_string()))?
    };
    de.end().map_err(|e| JsonError::Invalid(e.to_string()))?;
    Ok(value)
}

/// Like [`parse_strict`], but the last of duplicate keys wins (for answers, where Steward only
/// reads and rewrites: what it forwards is what it inspected).
pub fn parse_deep(bytes: &[u8]) -> Result<Value, JsonError> {
    depth_within(bytes, MAX_DEPTH).ok_or(JsonError::TooDeep)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = {
        let stacked = serde_stacker::Deserializer::new(&mut de);
        serde::Deserialize::deserialize(stacked).map_err(|e: serde_json::Error| JsonError::Invalid(e.to_string()))?
    };
    de.end().map_err(|e| JsonError::Invalid(e.to_string()))?;
    Ok(value)
}

const DUPLICATE: &str = "duplicate key \"";

fn classify(message: String) -> JsonError {
    match message.strip_prefix(DUPLICATE).and_then(|m| m.split('"').next()) {
        Some(key) => JsonError::DuplicateKey(key.to_string()),
        None => JsonError::Invalid(message),
    }
}

/// Builds a `Value`, refusing an object that names a key twice.
struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictSeed.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}\"")));
            }
            let value = map.next_value_seed(StrictSeed)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn reads_what_real_servers_nest_and_refuses_more() {
        assert!(parse_strict(nested(500).as_bytes()).is_ok());
        assert!(parse_deep(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(parse_strict(nested(MAX_DEPTH + 1).as_bytes()), Err(JsonError::TooDeep));
        assert_eq!(parse_deep(nested(10_000).as_bytes()), Err(JsonError::TooDeep));
        // Brackets inside strings do not count.
        let s = format!("{{\"a\":\"{}\"}}", "[".repeat(5000));
        assert_eq!(depth_within(s.as_bytes(), MAX_DEPTH), Some(1));
        assert!(parse_strict(s.as_bytes()).is_ok());
        let escaped = r#"{"a":"\"[[["}"#;
        assert_eq!(depth_within(escaped.as_bytes(), 8), Some(1));
    }

    #[test]
    fn duplicate_keys_are_refused_anywhere() {
        assert_eq!(
            parse_strict(br#"{"a":{"b":1,"b":2}}"#),
            Err(JsonError::DuplicateKey("b".into()))
        );
        assert_eq!(
            parse_strict(br#"{"command":"ls","command":"rm -rf /"}"#),
            Err(JsonError::DuplicateKey("command".into()))
        );
        // Escaped spellings of the same key are the same key.
        assert!(matches!(
            parse_strict(br#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateKey(_))
        ));
        assert_eq!(parse_deep(br#"{"a":1,"a":2}"#).unwrap()["a"], 2);
        assert!(matches!(parse_strict(b"{\"a\":1} x"), Err(JsonError::Invalid(_))));
        let v = parse_strict(br#"{"n":1.5,"i":-3,"u":18446744073709551615,"s":"x","z":null,"t":[true]}"#).unwrap();
        assert_eq!(v["u"], serde_json::json!(18446744073709551615u64));
    }
}
