//! Counters every gateway on one PostgreSQL store shares: the repeat breaker's runs and the
//! budgets' sliding windows, so a principal who spreads calls over several gateways meets one
//! breaker and one budget.
//!
//! A budget window is [`BUCKETS`] buckets of `window / BUCKETS` each, numbered by wall-clock
//! time so every gateway means the same bucket. Admitting a call locks its keys (advisory
//! locks, in key order), reads their live buckets, and counts the call in each only when no
//! budget is exceeded: one transaction, so two gateways cannot both take the last call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{Pg, STATEMENT_TIMEOUT};
use crate::StoreError;
use crate::db::DbError;

/// Buckets per budget window (the window slides in steps of a sixtieth of its length).
pub const BUCKETS: i64 = 60;

/// One budget a call counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetKey {
    /// The budget rule, the same text on every gateway (its scope, window and limits).
    pub rule: String,
    /// Whose use it counts: the principal, the tool or `principal/tool`.
    pub key: String,
    pub window: Duration,
    pub max_calls: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// A call refused by a budget: which one (its index in the keys given), what is used up,
/// and when the window will have slid far enough for one more call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRefusal {
    pub index: usize,
    /// `calls` or `result_bytes`.
    pub what: &'static str,
    pub used: u64,
    pub limit: u64,
    pub retry_after: Duration,
}

/// The shared counters of a PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct SharedCounters {
    pub(crate) pg: Arc<Pg>,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters")
            .field("store", &self.pg.target)
            .finish()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn step_ms(window: Duration) -> i64 {
    (window.as_millis() as i64 / BUCKETS).max(1)
}

impl SharedCounters {
    /// Counts a call of `tool` with arguments digest `digest` by `principal` in its run of
    /// identical calls, and returns the run's length with this call. A different call, or a
    /// pause of `reset_after`, starts a new run.
    pub async fn breaker(
        &self,
        principal: &str,
        tool: &str,
        digest: &str,
        reset_after: Duration,
    ) -> Result<u32, StoreError> {
        let pg = self.pg.clone();
        let (p, t, d) = (principal.to_string(), tool.to_string(), digest.to_string());
        let idle = reset_after.as_millis() as i64;
        let run = self
            .pg
            .run(async move {
                bounded(&pg, async {
                let client = pg.client().await?;
                let stmt = client
                    .prepare_cached(
                        "INSERT INTO runaway_breaker (principal, tool, digest, count, last_ms) VALUES ($1, $2, $3, 1, $4) \
                         ON CONFLICT (principal) DO UPDATE SET \
                         count = CASE WHEN runaway_breaker.tool = excluded.tool AND runaway_breaker.digest = excluded.digest \
                                      AND excluded.last_ms - runaway_breaker.last_ms < $5 \
                                 THEN runaway_breaker.count + 1 ELSE 1 END, \
                         tool = excluded.tool, digest = excluded.digest, last_ms = excluded.last_ms \
                         RETURNING count",
                    )
                    .await
                    .map_err(|e| pg.error(e))?;
                let row = client
                    .query_one(&stmt, &[&p, &t, &d, &now_ms(), &idle])
                    .await
                    .map_err(|e| pg.error(e))?;
                row.try_get::<_, i64>(0).map_err(|e| pg.error(e))
                })
                .await
            })
            .await??;
        Ok(run.clamp(0, u32::MAX as i64) as u32)
    }

    /// Admits one call against every budget in `keys`, counting it in each, or refuses it
    /// (counted nowhere) naming the first budget it would exceed.
    pub async fn admit(&self, keys: Vec<BudgetKey>) -> Result<Option<BudgetRefusal>, StoreError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let pg = self.pg.clone();
        Ok(self
            .pg
            .run(async move { bounded(&pg, admit(&pg, keys)).await })
            .await??)
    }

    /// Adds `bytes` of a result to the budgets in `keys` that limit bytes.
    pub async fn record_bytes(&self, keys: Vec<BudgetKey>, bytes: u64) -> Result<(), StoreError> {
        let pg = self.pg.clone();
        Ok(self
            .pg
            .run(async move { record_bytes(&pg, keys, bytes).await })
            .await??)
    }

    /// [`SharedCounters::record_bytes`] without waiting: the result is already on its way to
    /// the client. A failure is logged; the next admission fails closed if the store is down.
    pub fn record_bytes_nowait(&self, keys: Vec<BudgetKey>, bytes: u64) {
        let pg = self.pg.clone();
        self.pg.spawn(async move {
            if let Err(e) = record_bytes(&pg, keys, bytes).await {
                tracing::warn!(store = %pg.target, error = %e, "result bytes not counted in the shared budgets");
            }
        });
    }
}

/// Bounds one counter operation: a hung connection must not hold a call for ever.
async fn bounded<T>(pg: &Pg, fut: impl Future<Output = Result<T, DbError>>) -> Result<T, DbError> {
    tokio::time::timeout(STATEMENT_TIMEOUT, fut).await.unwrap_or_else(|_| {
        Err(DbError::Unavailable(format!(
            "{} did not answer within {}s",
            pg.target,
            STATEMENT_TIMEOUT.as_secs()
        )))
    })
}

async fn record_bytes(pg: &Pg, keys: Vec<BudgetKey>, bytes: u64) -> Result<(), DbError> {
    let keys: Vec<BudgetKey> = keys.into_iter().filter(|k| k.max_bytes.is_some()).collect();
    if keys.is_empty() || bytes == 0 {
        return Ok(());
    }
    bounded(pg, async {
        let client = pg.client().await?;
        let (rules, names, buckets, expires) = bucket_columns(&keys, now_ms());
        let bytes = bytes.min(i64::MAX as u64) as i64;
        client
            .execute(
                "INSERT INTO runaway_budget (rule, key, bucket, calls, bytes, expires_ms) \
                 SELECT r, k, b, 0, $5, e FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS t(r, k, b, e) \
                 ON CONFLICT (rule, key, bucket) DO UPDATE SET bytes = runaway_budget.bytes + excluded.bytes",
                &[&rules, &names, &buckets, &expires, &bytes],
            )
            .await
            .map_err(|e| pg.error(e))?;
        Ok(())
    })
    .await
}

/// For each key: its rule, its name, the bucket `now` falls in and when that bucket leaves
/// the window.
fn bucket_columns(keys: &[BudgetKey], now: i64) -> (Vec<String>, Vec<String>, Vec<i64>, Vec<i64>) {
    let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in keys {
        let step = step_ms(k.window);
        let bucket = now / step;
        cols.0.push(k.rule.clone());
        cols.1.push(k.key.clone());
        cols.2.push(bucket);
        cols.3.push((bucket + BUCKETS) * step);
    }
    cols
}

async fn admit(pg: &Pg, keys: Vec<BudgetKey>) -> Result<Option<BudgetRefusal>, DbError> {
    let err = |e| pg.error(e);
    let mut client = pg.client().await?;
    let now = now_ms();
    let (rules, names, buckets, expires) = bucket_columns(&keys, now);
    let lock_names: Vec<String> = rules.iter().zip(&names).map(|(r, k)| format!("{r}\u{1f}{k}")).collect();
    let tx = client.transaction().await.map_err(err)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(n, 0)) FROM (SELECT n FROM unnest($1::text[]) AS n ORDER BY n) AS s",
        &[&lock_names],
    )
    .await
    .map_err(err)?;
    let live = tx
        .query(
            "SELECT rule, key, bucket, calls, bytes FROM runaway_budget \
             WHERE (rule, key) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND expires_ms > $3",
            &[&rules, &names, &now],
        )
        .await
        .map_err(err)?;
    for (index, k) in keys.iter().enumerate() {
        let now_bucket = buckets[index];
        let mut mine: Vec<(i64, u64, u64)> = Vec::new();
        for r in &live {
            let (rule, key): (String, String) = (r.try_get(0).map_err(err)?, r.try_get(1).map_err(err)?);
            let bucket: i64 = r.try_get(2).map_err(err)?;
            if rule == k.rule && key == k.key && bucket <= now_bucket && now_bucket - bucket < BUCKETS {
                let calls: i64 = r.try_get(3).map_err(err)?;
                let bytes: i64 = r.try_get(4).map_err(err)?;
                mine.push((bucket, calls.max(0) as u64, bytes.max(0) as u64));
            }
        }
        mine.sort_by_key(|b| b.0);
        let step = Duration::from_millis(step_ms(k.window) as u64);
        let calls: u64 = mine.iter().map(|b| b.1).sum();
        let bytes: u64 = mine.iter().map(|b| b.2).fold(0, u64::saturating_add);
        let refusal = match (k.max_calls, k.max_bytes) {
            (Some(max), _) if calls >= max => Some((
                "calls",
                calls,
                max,
                buckets_until_below(&mine, now_bucket, max, |b| b.1),
            )),
            (_, Some(max)) if bytes >= max => Some((
                "result_bytes",
                bytes,
                max,
                buckets_until_below(&mine, now_bucket, max, |b| b.2),
            )),
            _ => None,
        };
        if let Some((what, used, limit, n)) = refusal {
            tx.rollback().await.map_err(err)?;
            return Ok(Some(BudgetRefusal {
                index,
                what,
                used,
                limit,
                retry_after: step * n as u32,
            }));
        }
    }
    tx.execute(
        "INSERT INTO runaway_budget (rule, key, bucket, calls, bytes, expires_ms) \
         SELECT r, k, b, 1, 0, e FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS t(r, k, b, e) \
         ON CONFLICT (rule, key, bucket) DO UPDATE SET calls = runaway_budget.calls + 1",
        &[&rules, &names, &buckets, &expires],
    )
    .await
    .map_err(err)?;
    // Buckets that left every window go now and then, by whoever happens to pass.
    if rand::random::<u8>() == 0 {
        tx.execute("DELETE FROM runaway_budget WHERE expires_ms <= $1", &[&now])
            .await
            .map_err(err)?;
    }
    tx.commit().await.map_err(err)?;
    Ok(None)
}

/// Buckets until usage drops below `limit`, oldest bucket first (as the in-memory budgets).
fn buckets_until_below(
    live: &[(i64, u64, u64)],
    now_bucket: i64,
    limit: u64,
    get: impl Fn(&(i64, u64, u64)) -> u64,
) -> i64 {
    let mut used: u64 = live.iter().map(&get).fold(0, u64::saturating_add);
    for b in live {
        used = used.saturating_sub(get(b));
        if used < limit {
            return b.0 + BUCKETS - now_bucket;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_counts_buckets_until_the_oldest_use_leaves() {
        // 3 calls in buckets 10, 20, 30; limit 3; now bucket 40: the bucket-10 call leaves at 70.
        let live = vec![(10, 1, 0), (20, 1, 0), (30, 1, 0)];
        assert_eq!(buckets_until_below(&live, 40, 3, |b| b.1), 30);
        assert_eq!(step_ms(Duration::from_secs(60)), 1000);
    }
}
