//! Webhooks: a new pending approval is POSTed to a local listener in Slack's format, with
//! retries; a webhook that keeps failing is audited (without its secret path).

mod approvals_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use approvals_support::{Env, WAIT, policy, result_text};
use serde_json::{Value, json};

/// Serves HTTP on 127.0.0.1: answers the first request 500 and the others 204, and hands over
/// every request's path and body.
fn listener() -> (String, std::sync::mpsc::Receiver<(String, Value)>) {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hooks/T000/secret-path", server.local_addr().expect("addr"));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for (n, stream) in server.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "204 No Content"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
            let _ = tx.send((path, serde_json::from_slice(&body).unwrap_or(Value::Null)));
        }
    });
    (url, rx)
}

#[test]
fn a_pending_approval_is_posted_to_a_slack_webhook() {
    let env = Env::new(&policy("{ roles: [admin], count: 1 }", "approvals: { mode: queue }"));
    let (url, requests) = listener();
    let mut proxy = env.proxy(&["--webhook", &url, "--webhook-format", "slack"]);
    proxy.call(
        1,
        "run",
        json!({"command": "sudo systemctl restart nginx", "token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"}),
        None,
    );
    let (text, _) = result_text(&proxy.response(1));
    let id = env.wait_pending();
    assert!(text.contains(&id));

    // The first delivery is answered 500; the retry gets through.
    let (first_path, first) = requests.recv_timeout(WAIT).expect("a webhook request");
    let (_, payload) = requests
        .recv_timeout(WAIT)
        .expect("the webhook was retried after a 500");
    assert_eq!(first_path, "/hooks/T000/secret-path");
    assert_eq!(first, payload, "a retry sends the same payload");

    let summary = payload["text"].as_str().expect("Slack payloads have text");
    assert!(
        summary.contains("alice wants to run ops/run") && summary.contains("CRITICAL") && summary.contains(&id),
        "{summary}"
    );
    let blocks = payload["blocks"].as_array().expect("Slack payloads have blocks");
    let all = serde_json::to_string(blocks).unwrap_or_default();
    assert!(all.contains("*Risk*") && all.contains("CRITICAL"), "{all}");
    let buttons: Vec<&serde_json::Value> = blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().into_iter().flatten())
        .collect();
    let ids: Vec<(&str, &str)> = buttons
        .iter()
        .map(|b| (b["action_id"].as_str().unwrap_or(""), b["value"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        ids,
        [("steward_approve", id.as_str()), ("steward_deny", id.as_str())],
        "Approve and Deny buttons carry the approval id: {all}"
    );
    assert!(
        all.contains("*Reasons*") && all.contains("CRITICAL risk calls need approval"),
        "the reasons are in the message: {all}"
    );
    assert!(
        all.contains(&format!("steward approvals show {id} --db")),
        "a link to the approval: {all}"
    );
    assert!(
        all.contains("sudo systemctl restart nginx"),
        "the arguments are shown: {all}"
    );
    assert!(!all.contains("ghp_abc"), "secrets in arguments are redacted: {all}");
    proxy.close();
}

#[test]
fn a_webhook_that_keeps_failing_is_audited_without_blocking_the_call() {
    let env = Env::new(&policy("{ roles: [admin], count: 1 }", "approvals: { mode: queue }"));
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}/secret-path");
    let mut proxy = env.proxy(&["--webhook", &url]);
    proxy.call(1, "run", json!({"command": "sudo reboot"}), None);
    // The decision does not wait for the webhook.
    assert!(result_text(&proxy.response(1)).1);
    let id = env.wait_pending();

    let deadline = Instant::now() + WAIT;
    let row = loop {
        if let Some(r) = env.audit().into_iter().find(|r| r["outcome"] == "notify_failed") {
            break r;
        }
        assert!(Instant::now() < deadline, "no notify_failed audit row within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    proxy.close();
    assert_eq!(row["approval_id"], json!(id));
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("127.0.0.1:{port}")) && !reason.contains("secret-path"),
        "{reason}"
    );
    env.verify();
}
