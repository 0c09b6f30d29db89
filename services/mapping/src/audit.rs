//! The audit trail: every create and delete of a mapping row, with actor and before/after.

use ponte_core::{
    db::page,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::AuditEntry;
use sqlx::{Any, Row, Transaction};
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

pub struct Change<'a> {
    pub tenant_id: &'a str,
    pub table: &'a str,
    pub key: &'a str,
    pub action: &'a str,
    pub actor: &'a str,
    pub previous: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
}

/// Records a change inside the transaction that makes it, so neither exists without the other.
pub async fn record(tx: &mut Transaction<'_, Any>, c: Change<'_>) -> Result<(), ServiceError> {
    let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
    sqlx::query(
        "INSERT INTO audit_entries (tenant_id, table_name, row_key, action, actor, previous_value, new_value, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.tenant_id)
    .bind(c.table)
    .bind(c.key)
    .bind(c.action)
    .bind(c.actor)
    .bind(json(c.previous))
    .bind(json(c.new))
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records many changes in one statement, inside the transaction that makes them.
pub async fn record_many(tx: &mut Transaction<'_, Any>, changes: Vec<Change<'_>>) -> Result<(), ServiceError> {
    let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
    let now = now_millis();
    // Eight parameters a row, a few hundred rows a statement.
    for chunk in changes.chunks(100) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let n = r * 8;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7,
                    n + 8
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_entries (tenant_id, table_name, row_key, action, actor, previous_value, new_value, \
             create_time) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q
                .bind(c.tenant_id)
                .bind(c.table)
                .bind(c.key)
                .bind(c.action)
                .bind(c.actor)
                .bind(json(c.previous.clone()))
                .bind(json(c.new.clone()))
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// A tenant's entries, newest first, paged by sequence number.
pub async fn list(
    db: &ponte_core::db::Database,
    tenant_id: &str,
    page_size: u32,
    page_token: &str,
) -> Result<(Vec<AuditEntry>, String), ServiceError> {
    let before: i64 = match page::decode(page_token)?.as_str() {
        "" => i64::MAX,
        s => s.parse().map_err(|_| ServiceError::invalid("page_token", "is not a token this service issued"))?,
    };
    let size = page::size(page_size);
    let rows = sqlx::query(
        "SELECT seq, tenant_id, table_name, row_key, action, actor, previous_value, new_value, create_time \
         FROM audit_entries WHERE tenant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(before)
    .bind(size + 1)
    .fetch_all(db.pool())
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    let mut last_seq = 0_i64;
    for row in rows.iter().take(size as usize) {
        last_seq = row.try_get("seq")?;
        entries.push(AuditEntry {
            tenant_id: row.try_get("tenant_id")?,
            table: row.try_get("table_name")?,
            key: row.try_get("row_key")?,
            action: row.try_get("action")?,
            actor: row.try_get("actor")?,
            previous_value: row.try_get("previous_value")?,
            new_value: row.try_get("new_value")?,
            create_time: Some(to_timestamp(row.try_get("create_time")?)),
        });
    }
    let next = if rows.len() as i64 > size { page::encode(&last_seq.to_string()) } else { String::new() };
    Ok((entries, next))
}
