//! Batched POSTs to a collector: a JSON array, Splunk HEC events, or an Elasticsearch `_bulk`
//! request. A batch succeeds as a whole (2xx, and for `_bulk` no item failed except as a
//! duplicate) or is sent again after a back-off by the shipper.
//!
//! `_bulk` uses `create` with the row hash as `_id`, so a batch sent twice stores each event once.

use serde_json::{Value, json};
use steward_store::AuditRow;

use super::{Delivered, SinkError, clip, http_client, http_error, status_error};
use crate::evidence::config::{HttpConfig, HttpFormat};

pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    format: HttpFormat,
    headers: reqwest::header::HeaderMap,
    index: Option<String>,
    sourcetype: String,
    host: String,
}

impl HttpSink {
    pub fn new(cfg: &HttpConfig) -> Result<HttpSink, SinkError> {
        Ok(HttpSink {
            client: http_client(cfg.ca.as_deref(), cfg.timeout)?,
            url: cfg.url.clone(),
            format: cfg.format,
            headers: super::headers(&cfg.headers, &cfg.base)?,
            index: cfg.index.clone(),
            sourcetype: cfg.sourcetype.clone().unwrap_or_else(|| "steward:audit".into()),
            host: crate::evidence::host_name(),
        })
    }

    pub async fn deliver(&mut self, rows: &[AuditRow]) -> Result<Delivered, SinkError> {
        let (body, content_type) = body(self.format, rows, self.index.as_deref(), &self.sourcetype, &self.host);
        let resp = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(http_error)?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        if self.format == HttpFormat::ElasticBulk {
            let answer: Value = resp.json().await.map_err(http_error)?;
            bulk_failures(&answer)?;
        }
        Ok(Delivered::default())
    }
}

/// The request body and its content type.
pub(crate) fn body(
    format: HttpFormat,
    rows: &[AuditRow],
    index: Option<&str>,
    sourcetype: &str,
    host: &str,
) -> (String, &'static str) {
    match format {
        HttpFormat::Json => (
            Value::Array(rows.iter().map(AuditRow::to_json).collect()).to_string(),
            "application/json",
        ),
        HttpFormat::SplunkHec => {
            let mut out = String::new();
            for r in rows {
                let time = super::epoch_nanos(&r.ts) as f64 / 1e9;
                let mut ev = json!({
                    "time": (time * 1000.0).round() / 1000.0,
                    "host": host,
                    "source": "steward",
                    "sourcetype": sourcetype,
                    "event": r.to_json(),
                });
                if let Some(index) = index {
                    ev["index"] = json!(index);
                }
                out.push_str(&ev.to_string());
                out.push('\n');
            }
            (out, "application/json")
        }
        HttpFormat::ElasticBulk => {
            let mut out = String::new();
            let index = index.unwrap_or("steward-audit");
            for r in rows {
                out.push_str(&json!({ "create": { "_index": index, "_id": r.hash } }).to_string());
                out.push('\n');
                let mut doc = r.to_json();
                doc["@timestamp"] = json!(r.ts);
                out.push_str(&doc.to_string());
                out.push('\n');
            }
            (out, "application/x-ndjson")
        }
    }
}

/// A `_bulk` answer with item errors other than "already exists" (409: a resend) fails.
pub(crate) fn bulk_failures(answer: &Value) -> Result<(), SinkError> {
    if answer.get("errors").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut failed = 0usize;
    let mut first = None;
    for item in &items {
        let Some(op) = item.as_object().and_then(|o| o.values().next()) else {
            continue;
        };
        let status = op.get("status").and_then(Value::as_u64).unwrap_or(0);
        if (200..300).contains(&status) || status == 409 {
            continue;
        }
        failed += 1;
        if first.is_none() {
            first = Some(format!(
                "status {status}: {}",
                op.get("error").map(|e| clip(&e.to_string(), 300)).unwrap_or_default()
            ));
        }
    }
    if failed == 0 {
        return Ok(());
    }
    Err(SinkError::Delivery(format!(
        "_bulk: {failed} of {} item(s) failed; first {}",
        items.len(),
        first.unwrap_or_default()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_store::{AuditEvent, EventKind};

    fn row(seq: i64) -> AuditRow {
        let mut e = AuditEvent::new(EventKind::Decision);
        e.ts = "2026-11-21T12:00:00.250Z".into();
        e.principal = Some("alice".into());
        AuditRow::from_event(e, seq, "00".repeat(32))
    }

    #[test]
    fn the_three_shapes() {
        let rows = [row(1), row(2)];
        let (json, ct) = body(HttpFormat::Json, &rows, None, "steward:audit", "h");
        assert_eq!(ct, "application/json");
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[1]["seq"], 2);

        let (hec, _) = body(HttpFormat::SplunkHec, &rows, None, "steward:audit", "h");
        let first: Value = serde_json::from_str(hec.lines().next().unwrap()).unwrap();
        assert_eq!(first["time"], 1795262400.25);
        assert_eq!(first["sourcetype"], "steward:audit");
        assert_eq!(first["event"]["principal"], "alice");

        let (bulk, ct) = body(HttpFormat::ElasticBulk, &rows, Some("audit"), "", "h");
        assert_eq!(ct, "application/x-ndjson");
        let lines: Vec<Value> = bulk.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["create"]["_id"], rows[0].hash);
        assert_eq!(lines[1]["@timestamp"], "2026-11-21T12:00:00.250Z");
        assert!(bulk.ends_with('\n'));
    }

    #[test]
    fn bulk_duplicates_pass_other_item_errors_fail() {
        let dup = json!({"errors": true, "items": [{"create": {"status": 201}}, {"create": {"status": 409}}]});
        assert!(bulk_failures(&dup).is_ok());
        let bad = json!({"errors": true, "items": [{"create": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}]});
        let err = bulk_failures(&bad).unwrap_err().to_string();
        assert!(err.contains("1 of 1") && err.contains("mapper_parsing"), "{err}");
    }
}
