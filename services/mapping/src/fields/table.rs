//! A tenant's own field mappings in `field_mappings` (transforms stored as JSON): create, list and
//! delete, each audited in the transaction that makes it. The builtins are not rows: they live in
//! code, are listed first and cannot be deleted.

use ponte_core::{
    TenantId,
    db::Database,
    error::{ServiceError, quote},
    time::now_millis,
};
use ponte_proto::v1::FieldMapping;
use sqlx::{Any, Executor};

use super::spec::{Direction, Spec, Target, builtins, check_conflicts, is_builtin};
use crate::audit::{self, Change, Table};

/// A stored mapping: its id, creation time and spec.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    id: String,
    create_time: i64,
    spec: Spec,
}

#[derive(sqlx::FromRow)]
struct Row {
    mapping_id: String,
    target: String,
    bling_field: String,
    target_field: String,
    direction: String,
    transforms: String,
    create_time: i64,
}

impl TryFrom<Row> for Stored {
    type Error = ServiceError;

    fn try_from(r: Row) -> Result<Self, ServiceError> {
        let id = r.mapping_id;
        let bad = |what: &str| ServiceError::Internal(anyhow::anyhow!("field mapping {id} has an unreadable {what}"));
        let spec = Spec {
            target: Target::parse(&r.target).ok_or_else(|| bad("target"))?,
            bling_field: r.bling_field,
            target_field: r.target_field,
            direction: Direction::parse(&r.direction).ok_or_else(|| bad("direction"))?,
            transforms: serde_json::from_str(&r.transforms).map_err(|_| bad("transform list"))?,
        };
        Ok(Self { id, create_time: r.create_time, spec })
    }
}

const SELECT: &str =
    "SELECT mapping_id, target, bling_field, target_field, direction, transforms, create_time FROM field_mappings";

async fn select<'e, E: Executor<'e, Database = Any>>(
    exec: E,
    tenant: &TenantId,
    mapping_id: Option<&str>,
) -> Result<Vec<Stored>, ServiceError> {
    let rows: Vec<Row> = match mapping_id {
        None => {
            let sql = format!("{SELECT} WHERE tenant_id = $1 ORDER BY target, target_field");
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str()).fetch_all(exec).await?
        }
        Some(id) => {
            let sql = format!("{SELECT} WHERE tenant_id = $1 AND mapping_id = $2");
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.as_str()).bind(id.to_owned()).fetch_all(exec).await?
        }
    };
    rows.into_iter().map(Stored::try_from).collect()
}

/// The tenant's own mappings, by target and target field.
pub(super) async fn stored(db: &Database, tenant: &TenantId) -> Result<Vec<Stored>, ServiceError> {
    select(db.pool(), tenant, None).await
}

/// The builtins, then the tenant's own mappings, each with its id.
pub(super) fn all_of(tenant_rows: Vec<Stored>) -> Vec<(String, Spec)> {
    builtins()
        .into_iter()
        .map(|(id, s)| (id.to_owned(), s))
        .chain(tenant_rows.into_iter().map(|s| (s.id, s.spec)))
        .collect()
}

fn as_json(spec: &Spec) -> serde_json::Value {
    serde_json::to_value(spec).unwrap_or(serde_json::Value::Null)
}

/// Stores a mapping that conflicts with none of the tenant's (builtins included).
pub(super) async fn create(
    db: &Database,
    tenant: &TenantId,
    spec: Spec,
    actor: &str,
) -> Result<FieldMapping, ServiceError> {
    let mut tx = db.pool().begin().await?;
    let existing = all_of(select(&mut *tx, tenant, None).await?);
    check_conflicts(tenant.as_str(), &spec, &existing)?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_millis();
    let transforms = serde_json::to_string(&spec.transforms).map_err(|e| ServiceError::Internal(e.into()))?;
    let inserted = sqlx::query(
        "INSERT INTO field_mappings \
         (tenant_id, mapping_id, target, bling_field, target_field, direction, transforms, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant.as_str())
    .bind(&id)
    .bind(spec.target.as_str())
    .bind(&spec.bling_field)
    .bind(&spec.target_field)
    .bind(spec.direction.as_str())
    .bind(&transforms)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // Another create won a race the check above could not see.
        Err(e) if Database::is_unique_violation(&e) => {
            return Err(ServiceError::AlreadyExists(format!(
                "{} field '{}' of tenant '{tenant}' (or Bling field '{}' two-way) is already mapped",
                spec.target.label(),
                spec.target_field,
                spec.bling_field
            )));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(&mut tx, Change::create(tenant, Table::FieldMapping, &id, actor, as_json(&spec))).await?;
    tx.commit().await?;
    Ok(spec.to_proto(tenant.as_str(), &id, false, Some(now)))
}

/// The builtins first, then the tenant's own mappings; only `target` when one is given.
pub(super) async fn list(
    db: &Database,
    tenant: &TenantId,
    target: Option<Target>,
) -> Result<Vec<FieldMapping>, ServiceError> {
    let mut out: Vec<FieldMapping> = builtins()
        .into_iter()
        .filter(|(_, s)| target.is_none_or(|t| t == s.target))
        .map(|(id, s)| s.to_proto(tenant.as_str(), id, true, None))
        .collect();
    out.extend(
        stored(db, tenant)
            .await?
            .into_iter()
            .filter(|s| target.is_none_or(|t| t == s.spec.target))
            .map(|s| s.spec.to_proto(tenant.as_str(), &s.id, false, Some(s.create_time))),
    );
    Ok(out)
}

/// Deletes one of the tenant's own mappings; a builtin is refused.
pub(super) async fn delete(
    db: &Database,
    tenant: &TenantId,
    mapping_id: &str,
    actor: &str,
) -> Result<(), ServiceError> {
    if is_builtin(mapping_id) {
        return Err(ServiceError::invalid(
            "mapping_id",
            format!("'{mapping_id}' is part of the fixed Bitrix24 set and cannot be deleted"),
        ));
    }
    let mut tx = db.pool().begin().await?;
    let Some(previous) = select(&mut *tx, tenant, Some(mapping_id)).await?.pop() else {
        return Err(ServiceError::NotFound(format!(
            "field mapping {} of tenant '{tenant}' does not exist",
            quote(mapping_id)
        )));
    };
    sqlx::query("DELETE FROM field_mappings WHERE tenant_id = $1 AND mapping_id = $2")
        .bind(tenant.as_str())
        .bind(mapping_id)
        .execute(&mut *tx)
        .await?;
    let change = Change::delete(tenant, Table::FieldMapping, mapping_id, actor, as_json(&previous.spec));
    audit::record(&mut tx, change).await?;
    tx.commit().await?;
    Ok(())
}
