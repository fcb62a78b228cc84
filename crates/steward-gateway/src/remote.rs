//! A client for another gateway's decision API (`POST /v1/decide`), for doors that decide
//! centrally (e.g. `steward hook --remote URL`).

use std::time::Duration;

use serde_json::Value;

/// The largest decision answer accepted.
const MAX_ANSWER: usize = 1024 * 1024;

/// Asks the gateway at `base_url` for a decision. `body` is `{server, tool, args, ...}`.
pub async fn decide(base_url: &str, api_key: Option<&str>, body: &Value, timeout: Duration) -> Result<Value, String> {
    let url = format!("{}/v1/decide", base_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.post(&url).json(body);
    if let Some(key) = api_key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer from {url}: {e}"))?;
    if bytes.len() > MAX_ANSWER {
        return Err(format!("the answer from {url} is larger than {MAX_ANSWER} bytes"));
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        return Err(format!("{url} answered HTTP {status}: {text}"));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{url} answered something that is not a decision: {e}"))
}
