//! The audit writer's PostgreSQL sink: one connection of its own, one transaction per batch,
//! ordered against every other gateway's by the locked head row.
//!
//! A batch takes two round trips: `BEGIN` with the head row read `FOR UPDATE`, then the rows
//! (one `INSERT … SELECT FROM unnest(…)` for the whole batch), the new head and `COMMIT`,
//! pipelined. A failure anywhere drops the connection (its transaction state is unknown) and
//! the next batch starts on a fresh one.

use std::sync::Arc;

use deadpool_postgres::Object;

use super::{Pg, STATEMENT_TIMEOUT};
use crate::StoreError;
use crate::db::DbError;
use crate::event::AuditRow;
use crate::writer::Sink;

const HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";
const SET_HEAD: &str = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1";
const INSERT: &str = "INSERT INTO audit_events (seq, ts, kind, decision_id, principal, client, session, door, server, \
    tool, method, operation, args, args_digest, effect, risk, flags, reason, rule_ids, policy_version, approval_id, \
    approvers, outcome, duration_ms, detail, prev_hash, hash, instance) \
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], \
    $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::float8[], \
    $25::text[], $26::text[], $27::text[], $28::text[])";

pub(crate) struct PgSink {
    pg: Arc<Pg>,
    client: Option<Object>,
}

impl PgSink {
    pub fn new(pg: Arc<Pg>) -> PgSink {
        PgSink { pg, client: None }
    }
}

impl Sink for PgSink {
    fn commit(&mut self, rows: Vec<AuditRow>) -> Result<Vec<i64>, StoreError> {
        let pg = self.pg.clone();
        let client = self.client.take();
        let (client, result) = self.pg.call(async move { commit(&pg, client, rows).await })?;
        self.client = client;
        Ok(result?)
    }

    fn probe(&mut self) -> Result<(), StoreError> {
        let pg = self.pg.clone();
        let client = self.client.take();
        let (client, result) = self.pg.call(async move {
            let client = match usable(&pg, client).await {
                Ok(c) => c,
                Err(e) => return (None, Err(e)),
            };
            match client.query_one("SELECT seq FROM audit_head WHERE id = 1", &[]).await {
                Ok(_) => (Some(client), Ok(())),
                Err(e) => (None, Err(pg.error(e))),
            }
        })?;
        self.client = client;
        Ok(result?)
    }
}

/// The connection kept, or a fresh one when it was lost.
async fn usable(pg: &Pg, client: Option<Object>) -> Result<Object, DbError> {
    match client {
        Some(c) if !c.is_closed() => Ok(c),
        _ => pg.client().await,
    }
}

async fn commit(pg: &Pg, client: Option<Object>, rows: Vec<AuditRow>) -> (Option<Object>, Result<Vec<i64>, DbError>) {
    let client = match usable(pg, client).await {
        Ok(c) => c,
        Err(e) => return (None, Err(e)),
    };
    match tokio::time::timeout(STATEMENT_TIMEOUT, write(pg, &client, rows)).await {
        Ok(Ok(seqs)) => (Some(client), Ok(seqs)),
        Ok(Err(e)) => {
            drop(Object::take(client));
            (None, Err(e))
        }
        Err(_) => {
            drop(Object::take(client));
            (
                None,
                Err(DbError::Unavailable(format!(
                    "PostgreSQL at {} did not commit the audit batch within {}s",
                    pg.target,
                    STATEMENT_TIMEOUT.as_secs()
                ))),
            )
        }
    }
}

/// The batch's columns, one array each, for `unnest`.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    ts: Vec<String>,
    kind: Vec<String>,
    text: [Vec<Option<String>>; 20],
    duration_ms: Vec<Option<f64>>,
    detail: Vec<Option<String>>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
    instance: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, r: AuditRow) {
        self.seq.push(r.seq);
        self.ts.push(r.ts);
        self.kind.push(r.kind);
        let texts = [
            r.decision_id,
            r.principal,
            r.client,
            r.session,
            r.door,
            r.server,
            r.tool,
            r.method,
            r.operation,
            r.args,
            r.args_digest,
            r.effect,
            r.risk,
            r.flags,
            r.reason,
            r.rule_ids,
            r.policy_version,
            r.approval_id,
            r.approvers,
            r.outcome,
        ];
        for (col, v) in self.text.iter_mut().zip(texts) {
            col.push(v);
        }
        self.duration_ms.push(r.duration_ms);
        self.detail.push(r.detail);
        self.prev_hash.push(r.prev_hash);
        self.hash.push(r.hash);
        self.instance.push(r.instance);
    }
}

async fn write(pg: &Pg, client: &Object, rows: Vec<AuditRow>) -> Result<Vec<i64>, DbError> {
    let err = |e| pg.error(e);
    let head = client.prepare_cached(HEAD).await.map_err(err)?;
    let insert = client.prepare_cached(INSERT).await.map_err(err)?;
    let set_head = client.prepare_cached(SET_HEAD).await.map_err(err)?;
    let (begun, head_row) =
        futures_util::future::join(client.batch_execute("BEGIN"), client.query_one(&head, &[])).await;
    begun.map_err(err)?;
    let head_row = head_row.map_err(err)?;
    let mut seq: i64 = head_row.try_get(0).map_err(err)?;
    let mut prev: String = head_row.try_get(1).map_err(err)?;
    let mut cols = Columns::default();
    let mut seqs = Vec::with_capacity(rows.len());
    for mut row in rows {
        seq += 1;
        row.seal(seq, prev);
        prev = row.hash.clone();
        seqs.push(seq);
        cols.push(row);
    }
    let t = &cols.text;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 28] = [
        &cols.seq,
        &cols.ts,
        &cols.kind,
        &t[0],
        &t[1],
        &t[2],
        &t[3],
        &t[4],
        &t[5],
        &t[6],
        &t[7],
        &t[8],
        &t[9],
        &t[10],
        &t[11],
        &t[12],
        &t[13],
        &t[14],
        &t[15],
        &t[16],
        &t[17],
        &t[18],
        &t[19],
        &cols.duration_ms,
        &cols.detail,
        &cols.prev_hash,
        &cols.hash,
        &cols.instance,
    ];
    // Pipelined; when the insert or the head update fails, PostgreSQL turns the COMMIT into a
    // rollback, so success needs all three.
    let (inserted, moved, committed) = futures_util::future::join3(
        client.execute(&insert, &params),
        client.execute(&set_head, &[&seq, &prev]),
        client.batch_execute("COMMIT"),
    )
    .await;
    inserted.map_err(err)?;
    moved.map_err(err)?;
    committed.map_err(err)?;
    Ok(seqs)
}
