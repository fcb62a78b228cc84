//! Output protection against labelled data:
//! - `tests/data/output_corpus.json`: texts with the kinds they must be found with, and texts
//!   in which nothing may be found (secrets and every PII kind on);
//! - `tests/data/get_env_result.json`: the real `get-env` result of server-everything, run
//!   with a fake AWS key pair, GitHub token and database URL in its environment.
//!
//! Run with `--nocapture` to see detection and false-positive rates.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};
use steward_scan::{self as scan, OutputAction, OutputPolicy, PiiKind};

fn data(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn labelled_positives_are_found_with_their_kinds() {
    let corpus = data("output_corpus.json");
    let positives = corpus["positives"].as_array().unwrap();
    let mut misses = Vec::new();
    for p in positives {
        let text = p["text"].as_str().unwrap();
        let want: BTreeSet<&str> = p["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let got: BTreeSet<&str> = scan::scan_text(text).iter().map(|m| m.kind).collect();
        if got != want {
            misses.push(format!("{text:?}: want {want:?}, got {got:?}"));
        }
    }
    eprintln!(
        "output positives: {}/{} found with exactly their kinds",
        positives.len() - misses.len(),
        positives.len()
    );
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

#[test]
fn labelled_negatives_raise_nothing() {
    let corpus = data("output_corpus.json");
    let negatives = corpus["negatives"].as_array().unwrap();
    let mut hits = Vec::new();
    for n in negatives {
        let text = n["text"].as_str().unwrap();
        let got: Vec<(&str, &str)> = scan::scan_text(text)
            .iter()
            .map(|m| (m.kind, &text[m.range.clone()]))
            .collect();
        if !got.is_empty() {
            hits.push(format!("{} ({}): {got:?}", text, n["why"]));
        }
    }
    eprintln!("output negatives: {}/{} false positives", hits.len(), negatives.len());
    assert!(hits.is_empty(), "{}", hits.join("\n"));
}

#[test]
fn redaction_leaves_no_positive_value_behind() {
    let corpus = data("output_corpus.json");
    for p in corpus["positives"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let values: Vec<String> = scan::scan_text(text)
            .iter()
            .map(|m| text[m.range.clone()].to_string())
            .collect();
        let mut result = json!({"content": [{"type": "text", "text": text}], "structuredContent": {"copy": text}});
        let report = scan::redact_result(&mut result, &OutputPolicy::all(OutputAction::Redact));
        let out = result.to_string();
        for v in &values {
            assert!(!out.contains(v.as_str()), "{v:?} left in {out}");
        }
        assert_eq!(result["content"][0]["text"], result["structuredContent"]["copy"]);
        assert!(report.changed());
    }
}

#[test]
fn get_env_result_is_redacted_and_the_report_names_kinds_only() {
    let mut result = data("get_env_result.json");
    let original = result.to_string();
    let report = scan::redact_result(&mut result, &OutputPolicy::baseline());
    let text = result["content"][0]["text"].as_str().unwrap();
    let env: Value = serde_json::from_str(text).expect("the redacted text is still the JSON it was");
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "[REDACTED:aws_access_key]");
    assert_eq!(env["AWS_SECRET_ACCESS_KEY"], "[REDACTED:aws_secret_key]");
    assert_eq!(env["GITHUB_TOKEN"], "[REDACTED:github_token]");
    assert_eq!(
        env["DATABASE_URL"],
        "postgres://app:[REDACTED:database_url]@db.internal:5432/app"
    );
    assert_eq!(env["HOME"], "/home/dev");
    // Personal data is not redacted by the baseline.
    assert_eq!(env["SUPPORT_EMAIL"], "help@example.com");
    assert_eq!(
        report.kinds(),
        BTreeSet::from(["aws_access_key", "aws_secret_key", "database_url", "github_token"])
    );
    assert!(report.findings.iter().all(|f| f.location == "content[0].text"));
    // What goes to the audit event: kinds and locations, none of the values.
    let audit = serde_json::to_string(&report.findings).unwrap();
    let before: Value = serde_json::from_str(&original).unwrap();
    let env_before: Value = serde_json::from_str(before["content"][0]["text"].as_str().unwrap()).unwrap();
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"] {
        let secret = env_before[key].as_str().unwrap();
        assert!(!audit.contains(secret) && !result.to_string().contains(secret), "{key}");
    }
    assert!(!audit.contains("Tr0ub4dor3xyz"));

    // With PII on, the email goes too.
    let mut again = data("get_env_result.json");
    let policy = OutputPolicy {
        pii: vec![PiiKind::Email],
        ..OutputPolicy::baseline()
    };
    scan::redact_result(&mut again, &policy);
    assert!(
        again["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("[REDACTED:email]")
    );
}

/// 64 KiB of log-like text with none of the secrets or PII the scanner looks for.
fn benign_log(size: usize) -> String {
    let mut out = String::with_capacity(size + 200);
    let mut i: u64 = 0;
    while out.len() < size {
        i += 1;
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        out.push_str(&format!(
            "2024-05-{:02}T10:{:02}:{:02}Z INFO request id={:016x} path=/api/v1/items/{} status=200 bytes={} took={}ms commit {:040x}\n",
            1 + i % 28,
            i % 60,
            (i * 7) % 60,
            h,
            i,
            h % 100_000,
            h % 997,
            u128::from(h) * 0x1_0000_0001
        ));
    }
    out
}

#[test]
fn a_64k_log_has_no_false_positives() {
    let log = benign_log(64 * 1024);
    let hits: Vec<_> = scan::scan_text(&log)
        .iter()
        .map(|m| (m.kind, log[m.range.clone()].to_string()))
        .take(5)
        .collect();
    assert!(hits.is_empty(), "{hits:?}");
}
