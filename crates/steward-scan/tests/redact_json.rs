//! `redact_json` on the shapes the relay hands it: keys, split secrets, encoded blobs, error
//! objects, notifications, and the limits that make a report incomplete.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use steward_scan::{MAX_JSON_DEPTH, OutputAction, OutputPolicy, redact_json};

// Fakes assembled at run time so this file does not trip secret scanners.
fn aws() -> String {
    format!("AKIA{}", "Z7QK4M2XW9PL3RTB")
}
fn ghp() -> String {
    format!("ghp_{}", "9f8e7d6c5b4a3210ZYXWVUTSRQPONMLKJIHG")
}

#[test]
fn object_keys_are_redacted_and_stay_distinct() {
    let mut v = json!({"structuredContent": {aws(): "first", ghp(): "second", "plain": "x"}});
    let report = redact_json(&mut v, &OutputPolicy::baseline());
    let sc = v["structuredContent"].as_object().unwrap();
    let keys: Vec<&String> = sc.keys().collect();
    assert_eq!(keys, ["[REDACTED:aws_access_key]", "[REDACTED:github_token]", "plain"]);
    assert_eq!(sc["[REDACTED:aws_access_key]"], "first");
    assert!(report.findings.iter().any(|f| f.location.ends_with("#key")));
    assert!(!v.to_string().contains(&aws()));

    // Two keys that redact to the same text keep both entries.
    let mut v = json!({aws(): 1, format!("AKIA{}", "Q2W3E4R5T6Y7U8I9"): 2});
    redact_json(&mut v, &OutputPolicy::baseline());
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
}

#[test]
fn a_secret_split_over_adjacent_items_is_redacted_in_both() {
    let key = aws();
    let (a, b) = key.split_at(9);
    let mut v = json!({"content": [
        {"type": "text", "text": format!("your key is {a}")},
        {"type": "text", "text": format!("{b} (rotate it)")},
    ]});
    let report = redact_json(&mut v, &OutputPolicy::baseline());
    assert_eq!(v["content"][0]["text"], "your key is [REDACTED:aws_access_key]");
    assert_eq!(v["content"][1]["text"], "[REDACTED:aws_access_key] (rotate it)");
    assert!(report.findings.iter().any(|f| f.location == "content[1].text#split"));

    // Prompt messages and plain string arrays too.
    let (a, b) = key.split_at(4);
    let mut p = json!({"messages": [
        {"role": "user", "content": {"type": "text", "text": a}},
        {"role": "user", "content": {"type": "text", "text": b}},
    ]});
    redact_json(&mut p, &OutputPolicy::baseline());
    assert!(!p.to_string().contains(b), "{p}");
    let mut lines = json!([a, b]);
    redact_json(&mut lines, &OutputPolicy::baseline());
    assert!(!lines.to_string().contains(b), "{lines}");
}

#[test]
fn a_blob_that_decodes_to_text_with_a_secret_is_re_encoded_redacted() {
    let text = format!("[default]\naws_access_key_id = {}\nregion = eu-west-1\n", aws());
    let blob = STANDARD.encode(&text);
    let mut v =
        json!({"contents": [{"uri": "file:///home/u/.aws/credentials", "mimeType": "text/plain", "blob": blob}]});
    let report = redact_json(&mut v, &OutputPolicy::baseline());
    let out = v["contents"][0]["blob"].as_str().unwrap();
    let decoded = String::from_utf8(STANDARD.decode(out).unwrap()).unwrap();
    assert_eq!(
        decoded,
        "[default]\naws_access_key_id = [REDACTED:aws_access_key]\nregion = eu-west-1\n"
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == "aws_access_key" && f.location == "contents[0].blob#base64")
    );
    assert!(report.changed() && !report.incomplete);
}

#[test]
fn encoded_runs_inside_text_are_redacted_whole() {
    let run = STANDARD.encode(format!("GITHUB_TOKEN={}", ghp()));
    let hex_run = hex::encode(format!("token {}", ghp()));
    let mut v = json!({"content": [{"type": "text", "text": format!("env dump: {run} / {hex_run} end")}]});
    let report = redact_json(&mut v, &OutputPolicy::baseline());
    assert_eq!(
        v["content"][0]["text"],
        "env dump: [REDACTED:github_token] / [REDACTED:github_token] end"
    );
    assert!(report.findings.iter().any(|f| f.location == "content[0].text#base64"));
    assert!(report.findings.iter().any(|f| f.location == "content[0].text#hex"));
}

#[test]
fn error_objects_notifications_and_requests_are_plain_json() {
    let mut err =
        json!({"code": -32000, "message": format!("auth failed for token {}", ghp()), "data": {"key": aws()}});
    redact_json(&mut err, &OutputPolicy::baseline());
    assert_eq!(err["message"], "auth failed for token [REDACTED:github_token]");
    assert_eq!(err["data"]["key"], "[REDACTED:aws_access_key]");
    let mut note = json!({"level": "info", "logger": "db", "data": format!("connecting with {}", aws())});
    redact_json(&mut note, &OutputPolicy::baseline());
    assert!(!note.to_string().contains(&aws()));
    let mut sampling =
        json!({"messages": [{"role": "user", "content": {"type": "text", "text": ghp()}}], "maxTokens": 10});
    redact_json(&mut sampling, &OutputPolicy::baseline());
    assert!(!sampling.to_string().contains(&ghp()));
}

fn nested(depth: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

fn unnest(mut v: Value) {
    // Dropping deep values recursively could exhaust the test thread's stack.
    while let Value::Array(mut items) = v {
        v = items.pop().unwrap_or(Value::Null);
    }
}

#[test]
fn deep_json_is_walked_without_recursion_and_past_the_limit_is_incomplete() {
    let mut ok = nested(1100, json!(aws()));
    let report = redact_json(&mut ok, &OutputPolicy::baseline());
    assert!(!report.incomplete, "{report:?}");
    assert_eq!(report.redacted, 1);
    unnest(ok);

    let mut deep = nested(MAX_JSON_DEPTH + 5, json!(aws()));
    let report = redact_json(&mut deep, &OutputPolicy::baseline());
    assert!(
        report.incomplete && report.incomplete_reasons.contains("depth"),
        "{report:?}"
    );
    unnest(deep);
}

#[test]
fn the_match_cap_makes_the_report_incomplete() {
    let many: String = (0..5000).map(|i| format!("AKIA{:016} ", i)).collect();
    let mut v = json!({"content": [{"type": "text", "text": many}]});
    let report = redact_json(&mut v, &OutputPolicy::baseline());
    assert!(
        report.incomplete && report.incomplete_reasons.contains("count"),
        "{:?}",
        report.incomplete_reasons
    );
}

#[test]
fn a_clean_answer_is_complete_and_unchanged() {
    let mut v = json!({"content": [{"type": "text", "text": "42 files, 3 directories"}], "isError": false});
    let before = v.clone();
    let report = redact_json(&mut v, &OutputPolicy::all(OutputAction::Redact));
    assert_eq!(v, before);
    assert!(!report.incomplete && !report.changed() && report.findings.is_empty());
}
