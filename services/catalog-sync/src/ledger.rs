//! The event ledger: every delivered event's outcome in the append-only `event_log` (which
//! also feeds the sync status), and each entity's newest accepted version in
//! `entity_versions`, against which a late event is found stale. `event_log` is also each
//! entity's history, with the trace that handled each event.

use ponte_core::{
    TenantId,
    db::{Backend, Database},
    error::ServiceError,
    telemetry::current_trace_id,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{EventOutcome, RecordHistoryEntry};

/// What the ledger records of an event: what handling it came to, or that it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Handled(EventOutcome),
    /// Kept for the sync status; the gateway retries or parks the event by the error.
    Failed,
}

impl Entry {
    /// `event_log.outcome`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Handled(outcome) => outcome.label(),
            Self::Failed => "failed",
        }
    }
}

/// One event as the ledger keeps it.
pub(crate) struct Event<'a> {
    pub tenant_id: &'a TenantId,
    pub entity_key: &'a str,
    pub event_id: &'a str,
    /// `event_log.source`: `bling` or `bitrix24`.
    pub source: &'static str,
    pub source_event_id: &'a str,
    pub event_type: &'a str,
    /// Unix ms: when the source says it happened.
    pub occurred: i64,
    pub attempt: i64,
}

/// The newest version accepted for the event's entity (unix ms), if any.
pub(crate) async fn newest(db: &Database, e: &Event<'_>) -> Result<Option<i64>, ServiceError> {
    let newest =
        sqlx::query_scalar("SELECT version_time FROM entity_versions WHERE tenant_id = $1 AND entity_key = $2")
            .bind(e.tenant_id.as_str())
            .bind(e.entity_key)
            .fetch_optional(db.pool())
            .await?;
    Ok(newest)
}

/// Logs the event's entry and, when it was acted on, makes it the entity's newest version
/// (never over a newer one), atomically: one statement on PostgreSQL, a transaction on SQLite.
pub(crate) async fn record(
    db: &Database,
    e: &Event<'_>,
    entry: Entry,
    detail: &str,
    acted: bool,
) -> Result<(), ServiceError> {
    const VERSION: &str = "INSERT INTO entity_versions (tenant_id, entity_key, version_time, event_id, update_time) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, entity_key) DO UPDATE SET version_time = excluded.version_time, \
         event_id = excluded.event_id, update_time = excluded.update_time \
         WHERE entity_versions.version_time <= excluded.version_time";
    if !acted {
        log(db.pool(), e, entry, detail).await?;
        return Ok(());
    }
    if db.backend() == Backend::Postgres {
        let sql = format!(
            "WITH v AS ({VERSION}) INSERT INTO event_log (tenant_id, entity_key, event_id, source, source_event_id, \
             event_type, occurred_time, attempt, outcome, detail, handle_time, trace_id) \
             VALUES ($1, $2, $4, $6, $7, $8, $3, $9, $10, $11, $5, $12)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(e.tenant_id.as_str())
            .bind(e.entity_key)
            .bind(e.occurred)
            .bind(e.event_id)
            .bind(now_millis())
            .bind(e.source)
            .bind(e.source_event_id)
            .bind(e.event_type)
            .bind(e.attempt)
            .bind(entry.label())
            .bind(detail)
            .bind(current_trace_id().unwrap_or_default())
            .execute(db.pool())
            .await?;
        return Ok(());
    }
    let mut tx = db.pool().begin().await?;
    sqlx::query(VERSION)
        .bind(e.tenant_id.as_str())
        .bind(e.entity_key)
        .bind(e.occurred)
        .bind(e.event_id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
    log(&mut *tx, e, entry, detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Appends the event's entry to `event_log`.
pub(crate) async fn log<'e, E>(executor: E, e: &Event<'_>, entry: Entry, detail: &str) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO event_log (tenant_id, entity_key, event_id, source, source_event_id, event_type, \
         occurred_time, attempt, outcome, detail, handle_time, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(e.tenant_id.as_str())
    .bind(e.entity_key)
    .bind(e.event_id)
    .bind(e.source)
    .bind(e.source_event_id)
    .bind(e.event_type)
    .bind(e.occurred)
    .bind(e.attempt)
    .bind(entry.label())
    .bind(detail)
    .bind(now_millis())
    .bind(current_trace_id().unwrap_or_default())
    .execute(executor)
    .await?;
    Ok(())
}

/// The most history entries one entity answers with (its newest).
const MAX_HISTORY: i64 = 500;

#[derive(sqlx::FromRow)]
struct HistoryRow {
    event_id: String,
    source: String,
    event_type: String,
    attempt: i64,
    outcome: String,
    detail: String,
    handle_time: i64,
    trace_id: String,
}

/// Every event logged for the entity, oldest first (its newest [`MAX_HISTORY`]).
pub(crate) async fn history(
    db: &Database,
    tenant: &TenantId,
    entity_key: &str,
) -> Result<Vec<RecordHistoryEntry>, ServiceError> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT event_id, source, event_type, attempt, outcome, detail, handle_time, trace_id FROM event_log \
         WHERE tenant_id = $1 AND entity_key = $2 ORDER BY seq DESC LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(entity_key)
    .bind(MAX_HISTORY)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .rev()
        .map(|r| RecordHistoryEntry {
            time: Some(to_timestamp(r.handle_time)),
            component: "catalog-sync".into(),
            action: if r.attempt > 1 {
                format!("handled {} {} (attempt {})", r.source, r.event_type, r.attempt)
            } else {
                format!("handled {} {}", r.source, r.event_type)
            },
            outcome: r.outcome,
            detail: r.detail,
            event_id: r.event_id,
            trace_id: r.trace_id,
            trace_url: String::new(),
        })
        .collect())
}
