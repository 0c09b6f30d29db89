//! The audit trail: every create and delete of a mapping row, with actor and before/after.

use ponte_core::{
    TenantId,
    db::{Database, page},
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::AuditEntry;
use serde_json::Value;
use sqlx::{Any, Transaction};
use tonic::metadata::MetadataMap;

/// Metadata key naming who makes a change (an operator, a tool); "unknown" when absent.
pub const ACTOR_METADATA: &str = "x-ponte-actor";

pub fn actor(metadata: &MetadataMap) -> String {
    metadata
        .get(ACTOR_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The tables the trail speaks of, as its entries name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    PaymentMethod,
    Store,
    Situacao,
    FieldMapping,
    Link,
}

impl Table {
    fn as_str(self) -> &'static str {
        match self {
            Self::PaymentMethod => "payment_method",
            Self::Store => "store",
            Self::Situacao => "situacao",
            Self::FieldMapping => "field_mapping",
            Self::Link => "link",
        }
    }
}

/// One change to a row: a create carries the new value, a delete the previous one.
pub struct Change<'a> {
    tenant: &'a TenantId,
    table: Table,
    key: &'a str,
    actor: &'a str,
    previous: Option<Value>,
    new: Option<Value>,
}

impl<'a> Change<'a> {
    pub fn create(tenant: &'a TenantId, table: Table, key: &'a str, actor: &'a str, new: Value) -> Self {
        Self { tenant, table, key, actor, previous: None, new: Some(new) }
    }

    pub fn delete(tenant: &'a TenantId, table: Table, key: &'a str, actor: &'a str, previous: Value) -> Self {
        Self { tenant, table, key, actor, previous: Some(previous), new: None }
    }

    fn action(&self) -> &'static str {
        if self.new.is_some() { "create" } else { "delete" }
    }
}

/// Records a change inside the transaction that makes it, so neither exists without the other.
pub async fn record(tx: &mut Transaction<'_, Any>, change: Change<'_>) -> Result<(), ServiceError> {
    record_many(tx, vec![change]).await
}

/// Records many changes in one statement, inside the transaction that makes them.
pub async fn record_many(tx: &mut Transaction<'_, Any>, changes: Vec<Change<'_>>) -> Result<(), ServiceError> {
    const WIDTH: usize = 8;
    let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
    let now = now_millis();
    // Eight parameters a row, a few hundred rows a statement.
    for chunk in changes.chunks(100) {
        let sql = format!(
            "INSERT INTO audit_entries (tenant_id, table_name, row_key, action, actor, previous_value, new_value, \
             create_time) VALUES {}",
            ponte_core::sql::tuples(chunk.len(), WIDTH)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q
                .bind(c.tenant.as_str())
                .bind(c.table.as_str())
                .bind(c.key)
                .bind(c.action())
                .bind(c.actor)
                .bind(json(&c.previous))
                .bind(json(&c.new))
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// An entry as stored.
#[derive(sqlx::FromRow)]
struct Entry {
    seq: i64,
    tenant_id: String,
    table_name: String,
    row_key: String,
    action: String,
    actor: String,
    previous_value: String,
    new_value: String,
    create_time: i64,
}

/// A tenant's entries, newest first, paged by sequence number.
pub async fn list(
    db: &Database,
    tenant: &TenantId,
    page_size: u32,
    page_token: &str,
) -> Result<(Vec<AuditEntry>, String), ServiceError> {
    let before: i64 = match page::decode(page_token)?.as_str() {
        "" => i64::MAX,
        s => s.parse().map_err(|_| ServiceError::invalid("page_token", "is not a token this service issued"))?,
    };
    let size = page::size(page_size);
    let mut rows: Vec<Entry> = sqlx::query_as(
        "SELECT seq, tenant_id, table_name, row_key, action, actor, previous_value, new_value, create_time \
         FROM audit_entries WHERE tenant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(before)
    .bind(size + 1)
    .fetch_all(db.pool())
    .await?;
    let more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let next = match rows.last() {
        Some(last) if more => page::encode(&last.seq.to_string()),
        _ => String::new(),
    };
    let entries = rows
        .into_iter()
        .map(|e| AuditEntry {
            tenant_id: e.tenant_id,
            table: e.table_name,
            key: e.row_key,
            action: e.action,
            actor: e.actor,
            previous_value: e.previous_value,
            new_value: e.new_value,
            create_time: Some(to_timestamp(e.create_time)),
        })
        .collect();
    Ok((entries, next))
}
