//! The `sales` table and each sale's history: a sale stored once under its id, the lease that
//! lets one worker at a time drive it (taken with a token, renewed before each outside call,
//! checked by every write, expiring by itself after a crash), each step recorded with its
//! history entry in one transaction, and the reads the API and the worker need.

use ponte_core::{
    TenantId,
    db::Database,
    error::ServiceError,
    sql::Statement,
    telemetry::{current_trace_id, current_traceparent},
    time::now_millis,
};

use crate::{
    sale::Sale,
    state::{Park, State},
};

/// One sale and where it stands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Row {
    pub tenant_id: String,
    pub sale_id: String,
    pub store_id: String,
    pub state: String,
    pub park_reason: String,
    pub reason: String,
    pub sale_json: String,
    pub bling_order_id: i64,
    pub order_attempted: i64,
    pub stock_deposito_id: i64,
    pub cancel_requested: i64,
    pub move_to_store: String,
    pub attempts: i64,
    pub receive_time: i64,
    pub update_time: i64,
}

const COLUMNS: &str = "tenant_id, sale_id, store_id, state, park_reason, reason, sale_json, bling_order_id, \
     order_attempted, stock_deposito_id, cancel_requested, move_to_store, attempts, receive_time, update_time";

impl Row {
    pub fn state(&self) -> State {
        State::from_label(&self.state)
    }

    pub fn park(&self) -> Option<Park> {
        Park::from_label(&self.park_reason)
    }

    /// The state the API and the counts show: a parked sale being re-checked (taken up again
    /// with its park reason kept until a step succeeds) is still parked, for the reason it
    /// waits on, until the re-check posts it or parks it again; it never blinks out of the
    /// parked list.
    pub fn shown_state(&self) -> State {
        shown(self.state(), self.park())
    }

    /// The stored sale; `None` for a cancellation that arrived before its sale.
    pub fn sale(&self) -> Result<Option<Sale>, ServiceError> {
        if self.sale_json.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&self.sale_json).map(Some).map_err(|e| ServiceError::Internal(e.into()))
    }

    pub fn key(&self) -> Key {
        Key { tenant: TenantId::from_stored(self.tenant_id.clone()), sale_id: self.sale_id.clone() }
    }
}

/// See [`Row::shown_state`].
pub(crate) fn shown(state: State, park: Option<Park>) -> State {
    match (state, park) {
        (State::Received | State::OrderCreated, Some(_)) => State::Parked,
        (state, _) => state,
    }
}

/// [`shown`] in SQL, over a row of `sales`.
fn shown_sql() -> String {
    format!(
        "(CASE WHEN state IN ('{}', '{}') AND park_reason <> '' THEN '{}' ELSE state END)",
        State::Received.label(),
        State::OrderCreated.label(),
        State::Parked.label()
    )
}

/// Which sale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub tenant: TenantId,
    pub sale_id: String,
}

/// A history entry: what happened, how it came out, and the detail a person reads.
pub(crate) struct Entry<'a> {
    pub action: &'a str,
    pub outcome: &'a str,
    pub detail: String,
}

impl<'a> Entry<'a> {
    pub fn new(action: &'a str, outcome: &'a str, detail: impl Into<String>) -> Self {
        Self { action, outcome, detail: detail.into() }
    }
}

/// A stored history entry.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct HistoryRow {
    pub event_time: i64,
    pub action: String,
    pub outcome: String,
    pub detail: String,
    pub trace_id: String,
}

/// A column's new value.
pub(crate) enum Val {
    I(i64),
    S(String),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Self::I(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Self::S(v.to_owned())
    }
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Self::S(v)
    }
}

async fn log<'e, E>(executor: E, key: &Key, e: &Entry<'_>) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO sale_history (tenant_id, sale_id, event_time, action, outcome, detail, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .bind(now_millis())
    .bind(e.action)
    .bind(e.outcome)
    .bind(e.detail.chars().take(2000).collect::<String>())
    .bind(current_trace_id().unwrap_or_default())
    .execute(executor)
    .await?;
    Ok(())
}

/// Appends a history entry on its own.
pub(crate) async fn note(db: &Database, key: &Key, e: Entry<'_>) -> Result<(), ServiceError> {
    log(db.pool(), key, &e).await?;
    Ok(())
}

pub(crate) async fn get(db: &Database, key: &Key) -> Result<Option<Row>, ServiceError> {
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM sales WHERE tenant_id = $1 AND sale_id = $2"
    )))
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row)
}

pub(crate) async fn require(db: &Database, key: &Key) -> Result<Row, ServiceError> {
    get(db, key).await?.ok_or_else(|| ServiceError::NotFound(format!("sale '{}' is not known", key.sale_id)))
}

/// What storing a sale came to.
pub(crate) enum Stored {
    New(Row),
    /// The sale was already stored (a retry, a duplicate, a replay): the stored row.
    Existing(Row),
}

/// Stores `sale` as received at `received` (Unix ms: the gateway's receipt of its webhook, or
/// now for a gRPC call), once: the first copy of a sale id wins. A sale whose cancellation came
/// first is kept as cancelled, its body recorded.
pub(crate) async fn receive(
    db: &Database,
    key: &Key,
    sale: &Sale,
    how: &str,
    received: i64,
) -> Result<Stored, ServiceError> {
    let now = received;
    let traceparent = current_traceparent().unwrap_or_default();
    let json = serde_json::to_string(sale).map_err(|e| ServiceError::Internal(e.into()))?;
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO sales (tenant_id, sale_id, store_id, state, sale_json, total_cents, next_attempt_time, \
         receive_time, update_time, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, $8) \
         ON CONFLICT (tenant_id, sale_id) DO NOTHING",
    )
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .bind(&sale.store_id)
    .bind(State::Received.label())
    .bind(&json)
    .bind(sale.total_cents)
    .bind(now)
    .bind(&traceparent)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        log(&mut *tx, key, &Entry::new("received", "ok", format!("sale received ({how})"))).await?;
    } else {
        // A cancellation that came first keeps the sale cancelled; a copy refused as bad data
        // is replaced by a good one, which goes on to be posted.
        let arrived_late = sqlx::query(
            "UPDATE sales SET sale_json = $3, store_id = $4, total_cents = $5, update_time = $6, \
             state = CASE WHEN state = $7 THEN $8 ELSE state END, \
             reason = CASE WHEN state = $7 THEN '' ELSE reason END, next_attempt_time = $6, traceparent = $9 \
             WHERE tenant_id = $1 AND sale_id = $2 AND sale_json = ''",
        )
        .bind(key.tenant.as_str())
        .bind(&key.sale_id)
        .bind(&json)
        .bind(&sale.store_id)
        .bind(sale.total_cents)
        .bind(now)
        .bind(State::Failed.label())
        .bind(State::Received.label())
        .bind(&traceparent)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let entry = if arrived_late {
            Entry::new(
                "received",
                "ok",
                format!("sale received ({how}) where only a cancellation or a refused copy was"),
            )
        } else {
            Entry::new("received", "skipped", format!("sale received again ({how}): already stored"))
        };
        log(&mut *tx, key, &entry).await?;
    }
    tx.commit().await?;
    let row = require(db, key).await?;
    Ok(if inserted { Stored::New(row) } else { Stored::Existing(row) })
}

/// Stores a sale the point of sale sent that cannot be posted as it is (bad data), as failed
/// with `reason`, once.
pub(crate) async fn receive_failed(
    db: &Database,
    key: &Key,
    store_id: &str,
    raw: &str,
    reason: &str,
) -> Result<Row, ServiceError> {
    let now = now_millis();
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO sales (tenant_id, sale_id, store_id, state, reason, last_error, next_attempt_time, \
         receive_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) \
         ON CONFLICT (tenant_id, sale_id) DO NOTHING",
    )
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .bind(store_id)
    .bind(State::Failed.label())
    .bind(reason)
    .bind(raw.chars().take(4000).collect::<String>())
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let entry = if inserted {
        Entry::new("received", "failed", format!("the sale cannot be posted as sent: {reason}"))
    } else {
        Entry::new("received", "skipped", format!("a copy that cannot be posted was ignored: {reason}"))
    };
    log(&mut *tx, key, &entry).await?;
    tx.commit().await?;
    require(db, key).await
}

/// Takes the sale's lease with `token` when nobody holds it; the row, or `None` when another
/// worker drives it.
pub(crate) async fn claim(db: &Database, key: &Key, token: &str, lease_ms: i64) -> Result<Option<Row>, ServiceError> {
    let now = now_millis();
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE sales SET lease_owner = $1, lease_until = $2 WHERE tenant_id = $3 AND sale_id = $4 \
         AND (lease_until < $5 OR lease_owner = $1) RETURNING {COLUMNS}"
    )))
    .bind(token)
    .bind(now + lease_ms)
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    Ok(row)
}

/// Takes the leases of up to `limit` sales due for work (oldest due first) with `token`; each
/// with the trace context of the request that brought it in (empty when there was none).
pub(crate) async fn claim_due(
    db: &Database,
    token: &str,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<(Key, String)>, ServiceError> {
    let now = now_millis();
    let active: Vec<String> = State::ACTIVE.iter().map(|s| format!("'{}'", s.label())).collect();
    let rows: Vec<(String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE sales SET lease_owner = $1, lease_until = $2 WHERE lease_until < $3 AND (tenant_id, sale_id) IN \
         (SELECT tenant_id, sale_id FROM sales WHERE (state IN ({}) OR (state = '{}' AND cancel_requested = 1)) \
          AND next_attempt_time <= $3 AND lease_until < $3 ORDER BY next_attempt_time LIMIT $4) \
          RETURNING tenant_id, sale_id, traceparent",
        active.join(", "),
        // Posted with a cancellation pending: its worker stopped before reversing it.
        State::Posted.label()
    )))
    .bind(token)
    .bind(now + lease_ms)
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(|(t, s, tp)| (Key { tenant: TenantId::from_stored(t), sale_id: s }, tp)).collect())
}

/// Extends the lease; false when another worker took the sale over.
pub(crate) async fn renew(db: &Database, key: &Key, token: &str, lease_ms: i64) -> Result<bool, ServiceError> {
    let done =
        sqlx::query("UPDATE sales SET lease_until = $1 WHERE tenant_id = $2 AND sale_id = $3 AND lease_owner = $4")
            .bind(now_millis() + lease_ms)
            .bind(key.tenant.as_str())
            .bind(&key.sale_id)
            .bind(token)
            .execute(db.pool())
            .await?
            .rows_affected();
    Ok(done == 1)
}

/// Gives the lease back.
pub(crate) async fn release(db: &Database, key: &Key, token: &str) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE sales SET lease_owner = '', lease_until = 0 WHERE tenant_id = $1 AND sale_id = $2 AND lease_owner = $3",
    )
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .bind(token)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// `UPDATE sales SET update_time = now, <set> WHERE <the sale>`, for a condition to follow.
fn update(key: &Key, set: Vec<(&'static str, Val)>) -> Statement {
    let mut s = Statement::new("UPDATE sales SET update_time = ");
    s.bind(now_millis());
    for (column, value) in set {
        s.push(", ").push(column).push(" = ");
        match value {
            Val::I(v) => s.bind(v),
            Val::S(v) => s.bind(v),
        };
    }
    s.push(" WHERE tenant_id = ").bind(key.tenant.as_str().to_owned());
    s.push(" AND sale_id = ").bind(key.sale_id.clone());
    s
}

/// Runs `s` and, when it changed the sale, appends `entry`, atomically; the row after, or
/// `None` when nothing was changed.
async fn apply(db: &Database, key: &Key, s: Statement, entry: Entry<'_>) -> Result<Option<Row>, ServiceError> {
    let mut tx = db.pool().begin().await?;
    if s.query().execute(&mut *tx).await?.rows_affected() != 1 {
        return Ok(None);
    }
    log(&mut *tx, key, &entry).await?;
    tx.commit().await?;
    get(db, key).await
}

/// Writes `set` to the sale held with `token` and appends `entry`; the row after, or `None`
/// when the lease was lost (nothing written).
pub(crate) async fn step(
    db: &Database,
    key: &Key,
    token: &str,
    set: Vec<(&'static str, Val)>,
    entry: Entry<'_>,
) -> Result<Option<Row>, ServiceError> {
    let mut s = update(key, set);
    s.push(" AND lease_owner = ").bind(token.to_owned());
    apply(db, key, s, entry).await
}

/// Writes `set` to the sale whoever holds it, when `condition` (SQL over its columns) holds;
/// appends `entry` then. The row after, or `None` when the condition did not hold.
pub(crate) async fn update_if(
    db: &Database,
    key: &Key,
    condition: &str,
    set: Vec<(&'static str, Val)>,
    entry: Entry<'_>,
) -> Result<Option<Row>, ServiceError> {
    let mut s = update(key, set);
    s.push(" AND (").push(condition).push(")");
    apply(db, key, s, entry).await
}

/// Records a cancellation of a sale not stored yet: it is cancelled, and the sale, when it
/// comes, is never posted. `None` when the sale is stored already.
pub(crate) async fn cancel_unknown(db: &Database, key: &Key, reason: &str) -> Result<Option<Row>, ServiceError> {
    let now = now_millis();
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO sales (tenant_id, sale_id, state, reason, receive_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (tenant_id, sale_id) DO NOTHING",
    )
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .bind(State::Cancelled.label())
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(None);
    }
    let detail = format!("cancelled before the sale arrived ({reason}); it will not be posted");
    log(&mut *tx, key, &Entry::new("cancel requested", "ok", detail)).await?;
    tx.commit().await?;
    get(db, key).await
}

pub(crate) async fn history(db: &Database, key: &Key) -> Result<Vec<HistoryRow>, ServiceError> {
    let rows = sqlx::query_as(
        "SELECT event_time, action, outcome, detail, trace_id FROM sale_history \
         WHERE tenant_id = $1 AND sale_id = $2 ORDER BY seq",
    )
    .bind(key.tenant.as_str())
    .bind(&key.sale_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows)
}

/// A page of the tenant's sales in `states` (and of `park`, when given), newest first, after
/// the page key `after` (`<receive_time>/<sale_id>`).
pub(crate) async fn list(
    db: &Database,
    tenant: &TenantId,
    states: &[State],
    park: Option<Park>,
    after: &str,
    limit: i64,
    oldest_first: bool,
) -> Result<Vec<Row>, ServiceError> {
    let mut s = Statement::new(format!("SELECT {COLUMNS} FROM sales WHERE tenant_id = "));
    s.bind(tenant.as_str().to_owned());
    s.push(&format!(" AND {} IN (", shown_sql()));
    for (i, st) in states.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.bind(st.label());
    }
    s.push(")");
    if let Some(p) = park {
        s.push(" AND park_reason = ").bind(p.label());
    }
    if let Some((time, id)) = after.split_once('/').and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id))) {
        let (cmp, cmp_eq) = if oldest_first { (">", ">") } else { ("<", "<") };
        s.push(&format!(" AND (receive_time {cmp} ")).bind(time);
        s.push(" OR (receive_time = ").bind(time);
        s.push(&format!(" AND sale_id {cmp_eq} ")).bind(id.to_owned());
        s.push("))");
    }
    let order = if oldest_first { "ASC" } else { "DESC" };
    s.push(&format!(" ORDER BY receive_time {order}, sale_id {order} LIMIT ")).bind(limit);
    Ok(s.query_as().fetch_all(db.pool()).await?)
}

/// Makes the tenant's parked sales due now (a mapping changed; a person asked), optionally only
/// `ids`; how many.
pub(crate) async fn wake_parked(db: &Database, tenant: &TenantId, ids: &[String]) -> Result<u64, ServiceError> {
    let mut s = Statement::new("UPDATE sales SET next_attempt_time = ");
    s.bind(now_millis());
    s.push(" WHERE tenant_id = ").bind(tenant.as_str().to_owned());
    s.push(" AND state = ").bind(State::Parked.label());
    if !ids.is_empty() {
        s.push(" AND sale_id IN (");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.bind(id.clone());
        }
        s.push(")");
    }
    Ok(s.query().execute(db.pool()).await?.rows_affected())
}

/// Parked sales whose re-check time has come go back to the step they stopped at; how many.
pub(crate) async fn requeue_due_parked(db: &Database) -> Result<u64, ServiceError> {
    let now = now_millis();
    let done = sqlx::query(
        "UPDATE sales SET state = CASE WHEN bling_order_id > 0 THEN $1 ELSE $2 END \
         WHERE state = $3 AND next_attempt_time <= $4 AND lease_until < $4",
    )
    .bind(State::OrderCreated.label())
    .bind(State::Received.label())
    .bind(State::Parked.label())
    .bind(now)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(done)
}

/// The tenants with parked sales.
pub(crate) async fn parked_tenants(db: &Database) -> Result<Vec<TenantId>, ServiceError> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM sales WHERE state = $1")
        .bind(State::Parked.label())
        .fetch_all(db.pool())
        .await?;
    Ok(rows.into_iter().map(TenantId::from_stored).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_sale_being_rechecked_is_shown_parked_until_a_step_succeeds() {
        let park = Some(Park::UnmappedPaymentMethod);
        assert_eq!(shown(State::Received, park), State::Parked);
        assert_eq!(shown(State::OrderCreated, park), State::Parked);
        assert_eq!(shown(State::Received, None), State::Received);
        assert_eq!(shown(State::OrderCreated, None), State::OrderCreated);
        assert_eq!(shown(State::Posted, None), State::Posted);
        assert_eq!(shown(State::Cancelled, park), State::Cancelled);
    }
}
