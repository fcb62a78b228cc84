//! OpenTelemetry logs over OTLP/HTTP (protobuf, `POST …/v1/logs`), messages from the
//! `opentelemetry-proto` crate. Each event is a log record whose attributes are the event's
//! fields (`steward.seq`, `steward.principal`, …); the body is the one-line summary.
//!
//! A receiver that answers with a partial success has rejected records for good (the OTLP
//! spec forbids retrying them): the cursor moves on and the rejection is the sink's last error.

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use steward_store::AuditRow;

use super::{
    Delivered, Field, SinkError, epoch_nanos, fields, http_client, http_error, list_items, status_error, summary,
};
use crate::evidence::config::OtlpConfig;

pub struct OtlpSink {
    client: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
    host: String,
}

impl OtlpSink {
    pub fn new(cfg: &OtlpConfig) -> Result<OtlpSink, SinkError> {
        Ok(OtlpSink {
            client: http_client(cfg.ca.as_deref(), cfg.timeout)?,
            url: cfg.url.clone(),
            headers: super::headers(&cfg.headers, &cfg.base)?,
            host: crate::evidence::host_name(),
        })
    }

    pub async fn deliver(&mut self, rows: &[AuditRow]) -> Result<Delivered, SinkError> {
        let body = request(rows, &self.host).encode_to_vec();
        let resp = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await
            .map_err(http_error)?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let bytes = resp.bytes().await.map_err(http_error)?;
        let warning = ExportLogsServiceResponse::decode(bytes.as_ref())
            .ok()
            .and_then(|r| r.partial_success)
            .filter(|p| p.rejected_log_records > 0)
            .map(|p| {
                format!(
                    "the receiver rejected {} of {} record(s): {}",
                    p.rejected_log_records,
                    rows.len(),
                    super::clip(&p.error_message, 300)
                )
            });
        Ok(Delivered { warning })
    }
}

fn text(s: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value,
        ..Default::default()
    }
}

/// Severity number and text (OTLP: INFO 9, INFO2 10, WARN 13, ERROR 17).
fn severity(r: &AuditRow) -> (i32, &'static str) {
    match (r.effect.as_deref(), r.outcome.as_deref()) {
        (_, Some("error" | "upstream_died")) => (17, "ERROR"),
        (Some("deny"), _) | (_, Some("denied" | "timed_out")) => (13, "WARN"),
        (Some("approve" | "ask"), _) => (10, "INFO2"),
        _ => (9, "INFO"),
    }
}

pub(crate) fn record(r: &AuditRow) -> LogRecord {
    let attributes = fields(r)
        .into_iter()
        .map(|(name, value)| {
            let v = match value {
                Field::Int(n) => any_value::Value::IntValue(n),
                Field::Float(f) => any_value::Value::DoubleValue(f),
                Field::Text(t) => any_value::Value::StringValue(t.to_string()),
                Field::List(l) => any_value::Value::ArrayValue(ArrayValue {
                    values: list_items(l).into_iter().filter_map(text).collect(),
                }),
            };
            kv(&format!("steward.{name}"), Some(AnyValue { value: Some(v) }))
        })
        .collect();
    let (severity_number, severity_text) = severity(r);
    LogRecord {
        time_unix_nano: epoch_nanos(&r.ts),
        observed_time_unix_nano: epoch_nanos(&steward_store::now_rfc3339()),
        severity_number,
        severity_text: severity_text.to_string(),
        body: text(summary(r)),
        attributes,
        ..Default::default()
    }
}

pub(crate) fn request(rows: &[AuditRow], host: &str) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text("steward")),
                    kv("service.version", text(env!("CARGO_PKG_VERSION"))),
                    kv("host.name", text(host)),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "steward.audit".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                log_records: rows.iter().map(record).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_store::{AuditEvent, EventKind};

    #[test]
    fn fields_become_attributes_and_the_request_round_trips() {
        let mut e = AuditEvent::new(EventKind::Decision);
        e.ts = "2026-11-21T12:00:00.000Z".into();
        e.principal = Some("alice".into());
        e.effect = Some("deny".into());
        e.rule_ids = vec!["r1".into(), "r2".into()];
        let row = AuditRow::from_event(e, 3, "00".repeat(32));
        let bytes = request(std::slice::from_ref(&row), "h").encode_to_vec();
        let back = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
        let rec = &back.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.time_unix_nano, 1_795_262_400_000_000_000);
        assert_eq!(rec.severity_text, "WARN");
        let attr = |k: &str| rec.attributes.iter().find(|a| a.key == k).and_then(|a| a.value.clone());
        assert_eq!(
            attr("steward.seq").and_then(|v| v.value),
            Some(any_value::Value::IntValue(3))
        );
        assert_eq!(
            attr("steward.principal").and_then(|v| v.value),
            Some(any_value::Value::StringValue("alice".into()))
        );
        match attr("steward.rule_ids").and_then(|v| v.value) {
            Some(any_value::Value::ArrayValue(a)) => assert_eq!(a.values.len(), 2),
            other => panic!("{other:?}"),
        }
    }
}
