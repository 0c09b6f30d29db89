//! Store DE-PARA: which Bling loja (sales channel) and depósito a CPLUG store's sales go to.

use ponte_core::{
    db::Database,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::StoreMap;
use serde_json::json;
use sqlx::{Row, any::AnyRow};

use crate::audit::{self, Change};

const TABLE: &str = "store";

fn from_row(row: &AnyRow) -> Result<StoreMap, sqlx::Error> {
    Ok(StoreMap {
        tenant_id: row.try_get("tenant_id")?,
        cplug_store_id: row.try_get("cplug_store_id")?,
        bling_loja_id: row.try_get("bling_loja_id")?,
        bling_deposito_id: row.try_get("bling_deposito_id")?,
        create_time: Some(to_timestamp(row.try_get("create_time")?)),
    })
}

fn as_json(m: &StoreMap) -> serde_json::Value {
    json!({"cplug_store_id": m.cplug_store_id, "bling_loja_id": m.bling_loja_id,
           "bling_deposito_id": m.bling_deposito_id})
}

/// Checks a new map's fields, naming the first bad one under `at` (`map`).
pub fn validate(at: &str, m: &StoreMap) -> Result<(), ServiceError> {
    let store = m.cplug_store_id.trim();
    if store.is_empty() {
        return Err(ServiceError::invalid(format!("{at}.cplug_store_id"), "is required"));
    }
    if store.chars().count() > 64 {
        return Err(ServiceError::invalid(format!("{at}.cplug_store_id"), "is longer than 64 characters"));
    }
    if m.bling_loja_id <= 0 {
        return Err(ServiceError::invalid(format!("{at}.bling_loja_id"), "must be a Bling id (a positive number)"));
    }
    if m.bling_deposito_id <= 0 {
        return Err(ServiceError::invalid(format!("{at}.bling_deposito_id"), "must be a Bling id (a positive number)"));
    }
    Ok(())
}

const SELECT: &str = "SELECT tenant_id, cplug_store_id, bling_loja_id, bling_deposito_id, create_time FROM store_maps";

/// A new map as it would be stored: checked, its store id trimmed.
pub fn prepare(mut m: StoreMap) -> Result<StoreMap, ServiceError> {
    validate("map", &m)?;
    m.cplug_store_id = m.cplug_store_id.trim().to_owned();
    Ok(m)
}

pub async fn create(db: &Database, m: StoreMap, actor: &str) -> Result<StoreMap, ServiceError> {
    let mut m = prepare(m)?;
    let now = now_millis();
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO store_maps (tenant_id, cplug_store_id, bling_loja_id, bling_deposito_id, create_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&m.tenant_id)
    .bind(&m.cplug_store_id)
    .bind(m.bling_loja_id)
    .bind(m.bling_deposito_id)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if Database::is_unique_violation(&e) => {
            return Err(ServiceError::AlreadyExists(format!(
                "store '{}' of tenant '{}' is already mapped",
                m.cplug_store_id, m.tenant_id
            )));
        }
        Err(e) => return Err(e.into()),
    }
    m.create_time = Some(to_timestamp(now));
    audit::record(
        &mut tx,
        Change {
            tenant_id: &m.tenant_id,
            table: TABLE,
            key: &m.cplug_store_id,
            action: "create",
            actor,
            previous: None,
            new: Some(as_json(&m)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(m)
}

pub async fn get(db: &Database, tenant_id: &str, store: &str) -> Result<Option<StoreMap>, ServiceError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE tenant_id = $1 AND cplug_store_id = $2")))
        .bind(tenant_id)
        .bind(store)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn list(db: &Database, tenant_id: &str) -> Result<Vec<StoreMap>, ServiceError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE tenant_id = $1 ORDER BY cplug_store_id")))
        .bind(tenant_id)
        .fetch_all(db.pool())
        .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub async fn delete(db: &Database, tenant_id: &str, store: &str, actor: &str) -> Result<(), ServiceError> {
    let mut tx = db.pool().begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE tenant_id = $1 AND cplug_store_id = $2")))
        .bind(tenant_id)
        .bind(store)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(previous) = row.as_ref().map(from_row).transpose()? else {
        return Err(ServiceError::NotFound(format!("store '{store}' of tenant '{tenant_id}' is not mapped")));
    };
    sqlx::query("DELETE FROM store_maps WHERE tenant_id = $1 AND cplug_store_id = $2")
        .bind(tenant_id)
        .bind(store)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Change {
            tenant_id,
            table: TABLE,
            key: store,
            action: "delete",
            actor,
            previous: Some(as_json(&previous)),
            new: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The Bling loja and depósito of a CPLUG store; NOT_FOUND names the store.
pub async fn resolve(db: &Database, tenant_id: &str, store: &str) -> Result<StoreMap, ServiceError> {
    get(db, tenant_id, store).await?.ok_or_else(|| {
        ServiceError::NotFound(format!("store '{store}' of tenant '{tenant_id}' has no Bling loja and depósito mapped"))
    })
}
