//! Byte-exact rewrites of a message: its id, a progress token, a cancelled request id. Everything
//! else in the message stays the bytes it came with.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::jsonrpc::Message;

/// `line` with the JSON value `raw` (a slice of `line`) replaced by `new` (JSON text).
pub fn replace_raw(line: &[u8], raw: &RawValue, new: &str) -> Option<Vec<u8>> {
    let old = raw.get().as_bytes();
    let start = (old.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    let end = start.checked_add(old.len())?;
    if end > line.len() || &line[start..end] != old {
        return None;
    }
    let mut out = Vec::with_capacity(line.len() + new.len());
    out.extend_from_slice(&line[..start]);
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&line[end..]);
    Some(out)
}

/// `line` with several JSON values (slices of `line`) replaced at once, whatever their order.
pub fn replace_many(line: &[u8], edits: &[(&RawValue, &str)]) -> Option<Vec<u8>> {
    let base = line.as_ptr() as usize;
    let mut spans: Vec<(usize, usize, &str)> = Vec::with_capacity(edits.len());
    for (raw, new) in edits {
        let old = raw.get().as_bytes();
        let start = (old.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(old.len())?;
        if end > line.len() || &line[start..end] != old {
            return None;
        }
        spans.push((start, end, new));
    }
    spans.sort_by_key(|s| s.0);
    if spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut at = 0;
    for (start, end, new) in spans {
        out.extend_from_slice(&line[at..start]);
        out.extend_from_slice(new.as_bytes());
        at = end;
    }
    out.extend_from_slice(&line[at..]);
    Some(out)
}

/// `line` with the id of `msg` (parsed from `line`) replaced by `new_id` (JSON text).
pub fn replace_id(line: &[u8], msg: &Message<'_>, new_id: &str) -> Option<Vec<u8>> {
    replace_raw(line, msg.id?, new_id)
}

#[derive(Deserialize)]
struct WithMeta<'a> {
    #[serde(borrow, rename = "_meta", default)]
    meta: Option<Meta<'a>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, rename = "progressToken", default)]
    progress_token: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WithToken<'a> {
    #[serde(borrow, rename = "progressToken", default)]
    progress_token: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WithRequestId<'a> {
    #[serde(borrow, rename = "requestId", default)]
    request_id: Option<&'a RawValue>,
}

fn valid_token(raw: &RawValue) -> bool {
    matches!(raw.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9'))
}

/// A request's `params._meta.progressToken` (a string or a number), borrowed from the line.
pub fn request_progress_token<'a>(msg: &Message<'a>) -> Option<&'a RawValue> {
    let params: WithMeta<'a> = serde_json::from_str(msg.params?.get()).ok()?;
    params.meta?.progress_token.filter(|t| valid_token(t))
}

/// A `notifications/progress`'s `params.progressToken`, borrowed from the line.
pub fn notification_progress_token<'a>(msg: &Message<'a>) -> Option<&'a RawValue> {
    let params: WithToken<'a> = serde_json::from_str(msg.params?.get()).ok()?;
    params.progress_token.filter(|t| valid_token(t))
}

/// A `notifications/cancelled`'s `params.requestId`, borrowed from the line.
pub fn cancelled_request_id<'a>(msg: &Message<'a>) -> Option<&'a RawValue> {
    let params: WithRequestId<'a> = serde_json::from_str(msg.params?.get()).ok()?;
    params.request_id.filter(|t| valid_token(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_what_it_names() {
        let line =
            br#"{"jsonrpc":"2.0", "id" : "abc","method":"x","params":{"id":"abc","_meta":{"progressToken": 5}}}"#;
        let msg = Message::parse(line).unwrap();
        let out = replace_id(line, &msg, "17").unwrap();
        assert_eq!(
            out,
            br#"{"jsonrpc":"2.0", "id" : 17,"method":"x","params":{"id":"abc","_meta":{"progressToken": 5}}}"#.to_vec()
        );
        let token = request_progress_token(&msg).unwrap();
        assert_eq!(token.get(), "5");
        let out = replace_raw(line, token, "99").unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with(r#""progressToken": 99}}}"#));

        let both = replace_many(line, &[(token, "99"), (msg.id.unwrap(), "17")]).unwrap();
        assert_eq!(
            both,
            br#"{"jsonrpc":"2.0", "id" : 17,"method":"x","params":{"id":"abc","_meta":{"progressToken": 99}}}"#
                .to_vec()
        );

        let note =
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#;
        let msg = Message::parse(note).unwrap();
        assert_eq!(notification_progress_token(&msg).unwrap().get(), "\"t\"");
        let cancel = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7.0}}"#;
        let msg = Message::parse(cancel).unwrap();
        assert_eq!(cancelled_request_id(&msg).unwrap().get(), "7.0");
    }
}
