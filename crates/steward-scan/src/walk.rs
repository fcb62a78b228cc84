//! A depth-first walk over a JSON value with an explicit stack, so input nested a thousand
//! levels deep costs memory in proportion to its depth and never the thread's stack.

use serde_json::{Map, Value};

/// What the walk hands the visitor: every node before its children, with its location.
pub(crate) enum Node<'a> {
    Str(&'a mut String),
    /// An object, before its entries are visited (the visitor may rename keys).
    Obj(&'a mut Map<String, Value>),
    /// An array, before its items are visited (the visitor may change items).
    Arr(&'a mut Vec<Value>),
}

enum Children<'a> {
    Arr(std::iter::Enumerate<std::slice::IterMut<'a, Value>>),
    Obj(serde_json::map::IterMut<'a>),
}

struct Frame<'a> {
    children: Children<'a>,
    /// Length of the location string at this container.
    path_len: usize,
}

/// Visits every node of `root` in document order; containers nested deeper than `max_depth`
/// are not entered. Returns false when some part was not entered.
pub(crate) fn walk(root: &mut Value, max_depth: usize, visit: &mut dyn FnMut(Node<'_>, &str)) -> bool {
    let mut path = String::new();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut complete = true;
    if let Some(frame) = enter(root, &path, visit) {
        stack.push(frame);
    }
    while let Some(top) = stack.last_mut() {
        let path_len = top.path_len;
        let next = match &mut top.children {
            Children::Arr(it) => it.next().map(|(i, v)| (Segment::Index(i), v)),
            Children::Obj(it) => it.next().map(|(k, v)| (Segment::Key(k.as_str()), v)),
        };
        let Some((segment, child)) = next else {
            stack.pop();
            continue;
        };
        path.truncate(path_len);
        match segment {
            Segment::Index(i) => {
                path.push('[');
                path.push_str(&i.to_string());
                path.push(']');
            }
            Segment::Key(k) => {
                if !path.is_empty() {
                    path.push('.');
                }
                push_segment(&mut path, k);
            }
        }
        if matches!(child, Value::Array(_) | Value::Object(_)) && stack.len() >= max_depth {
            complete = false;
            continue;
        }
        if let Some(frame) = enter(child, &path, visit) {
            stack.push(frame);
        }
    }
    complete
}

enum Segment<'a> {
    Index(usize),
    Key(&'a str),
}

fn enter<'a>(v: &'a mut Value, path: &str, visit: &mut dyn FnMut(Node<'_>, &str)) -> Option<Frame<'a>> {
    let path_len = path.len();
    match v {
        Value::String(s) => {
            visit(Node::Str(s), path);
            None
        }
        Value::Array(items) => {
            visit(Node::Arr(items), path);
            Some(Frame {
                children: Children::Arr(items.iter_mut().enumerate()),
                path_len,
            })
        }
        Value::Object(map) => {
            visit(Node::Obj(map), path);
            Some(Frame {
                children: Children::Obj(map.iter_mut()),
                path_len,
            })
        }
        _ => None,
    }
}

/// Identifiers as they are; anything else quoted and escaped to ASCII, at most 64 bytes
/// (keys come from the server, and locations go to logs and terminals).
pub(crate) fn push_segment(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | '@'));
    if plain {
        path.push_str(key);
    } else {
        let (short, _) = super::clip(key, 64);
        path.push_str(&format!("[\"{}\"]", short.escape_default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn visits_in_document_order_with_locations() {
        let mut v = json!({"a": ["x", {"b c": "y"}], "d": "z"});
        let mut seen = Vec::new();
        assert!(walk(&mut v, 64, &mut |n, p| {
            if let Node::Str(s) = n {
                seen.push(format!("{p}={s}"));
            }
        }));
        assert_eq!(seen, ["a[0]=x", "a[1].[\"b c\"]=y", "d=z"]);
    }

    #[test]
    fn deep_input_does_not_overflow_and_reports_the_limit() {
        let mut v = json!("bottom");
        for _ in 0..5000 {
            v = Value::Array(vec![v]);
        }
        let mut strings = 0;
        assert!(!walk(&mut v, 1024, &mut |n, _| {
            if matches!(n, Node::Str(_)) {
                strings += 1;
            }
        }));
        assert_eq!(strings, 0);
        let mut strings = 0;
        assert!(walk(&mut v, 10_000, &mut |n, _| {
            if matches!(n, Node::Str(_)) {
                strings += 1;
            }
        }));
        assert_eq!(strings, 1);
        // Dropping 5000 nested arrays recursively is serde_json's business; keep the test's
        // own stack small by unwinding it here.
        let mut cur = v;
        while let Value::Array(mut items) = cur {
            cur = items.pop().unwrap_or(Value::Null);
        }
    }
}
