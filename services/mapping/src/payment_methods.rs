//! Payment-method DE-PARA: which Bling forma de pagamento a CPLUG payment method posts as.

use ponte_core::{
    db::Database,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::PaymentMethodMap;
use serde_json::json;
use sqlx::{Row, any::AnyRow};

use crate::audit::{self, Change};

const TABLE: &str = "payment_method";

fn from_row(row: &AnyRow) -> Result<PaymentMethodMap, sqlx::Error> {
    Ok(PaymentMethodMap {
        tenant_id: row.try_get("tenant_id")?,
        cplug_method: row.try_get("cplug_method")?,
        bling_forma_pagamento_id: row.try_get("bling_forma_pagamento_id")?,
        // Read as an integer: the Any driver cannot decode SQLite's BOOLEAN (PostgreSQL casts too).
        is_default: row.try_get::<i64, _>("is_default")? != 0,
        create_time: Some(to_timestamp(row.try_get("create_time")?)),
    })
}

fn as_json(m: &PaymentMethodMap) -> serde_json::Value {
    json!({"cplug_method": m.cplug_method, "bling_forma_pagamento_id": m.bling_forma_pagamento_id, "is_default": m.is_default})
}

/// Checks a new map's fields, naming the first bad one.
pub fn validate(m: &PaymentMethodMap) -> Result<(), ServiceError> {
    let method = m.cplug_method.trim();
    if method.is_empty() {
        return Err(ServiceError::invalid("map.cplug_method", "is required"));
    }
    if method.chars().count() > 64 {
        return Err(ServiceError::invalid("map.cplug_method", "is longer than 64 characters"));
    }
    if m.bling_forma_pagamento_id <= 0 {
        return Err(ServiceError::invalid("map.bling_forma_pagamento_id", "must be a Bling id (a positive number)"));
    }
    Ok(())
}

/// A new map as it would be stored: checked, its method trimmed.
pub fn prepare(mut m: PaymentMethodMap) -> Result<PaymentMethodMap, ServiceError> {
    validate(&m)?;
    m.cplug_method = m.cplug_method.trim().to_owned();
    Ok(m)
}

pub async fn create(db: &Database, m: PaymentMethodMap, actor: &str) -> Result<PaymentMethodMap, ServiceError> {
    let mut m = prepare(m)?;
    let now = now_millis();
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO payment_method_maps (tenant_id, cplug_method, bling_forma_pagamento_id, is_default, create_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&m.tenant_id)
    .bind(&m.cplug_method)
    .bind(m.bling_forma_pagamento_id)
    .bind(m.is_default)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if Database::is_unique_violation(&e) => {
            let what = if m.is_default && exists(db, &m.tenant_id, &m.cplug_method).await?.is_none() {
                format!("tenant '{}' already has a default payment method", m.tenant_id)
            } else {
                format!("payment method '{}' of tenant '{}' is already mapped", m.cplug_method, m.tenant_id)
            };
            return Err(ServiceError::AlreadyExists(what));
        }
        Err(e) => return Err(e.into()),
    }
    m.create_time = Some(to_timestamp(now));
    audit::record(
        &mut tx,
        Change {
            tenant_id: &m.tenant_id,
            table: TABLE,
            key: &m.cplug_method,
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

async fn exists(db: &Database, tenant_id: &str, method: &str) -> Result<Option<PaymentMethodMap>, ServiceError> {
    let row = sqlx::query(
        "SELECT tenant_id, cplug_method, bling_forma_pagamento_id, CAST(is_default AS INTEGER) AS is_default, \
         create_time \
         FROM payment_method_maps WHERE tenant_id = $1 AND cplug_method = $2",
    )
    .bind(tenant_id)
    .bind(method)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn list(db: &Database, tenant_id: &str) -> Result<Vec<PaymentMethodMap>, ServiceError> {
    let rows = sqlx::query(
        "SELECT tenant_id, cplug_method, bling_forma_pagamento_id, CAST(is_default AS INTEGER) AS is_default, \
         create_time \
         FROM payment_method_maps WHERE tenant_id = $1 ORDER BY cplug_method",
    )
    .bind(tenant_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub async fn delete(db: &Database, tenant_id: &str, method: &str, actor: &str) -> Result<(), ServiceError> {
    let mut tx = db.pool().begin().await?;
    let Some(previous) = exists(db, tenant_id, method).await? else {
        return Err(ServiceError::NotFound(format!("payment method '{method}' of tenant '{tenant_id}' is not mapped")));
    };
    sqlx::query("DELETE FROM payment_method_maps WHERE tenant_id = $1 AND cplug_method = $2")
        .bind(tenant_id)
        .bind(method)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Change {
            tenant_id,
            table: TABLE,
            key: method,
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

/// The Bling forma de pagamento for a method: its own mapping, else the tenant's default.
pub async fn translate(db: &Database, tenant_id: &str, method: &str, store: &str) -> Result<(i64, bool), ServiceError> {
    if let Some(m) = exists(db, tenant_id, method).await? {
        return Ok((m.bling_forma_pagamento_id, false));
    }
    let row = sqlx::query(
        "SELECT bling_forma_pagamento_id FROM payment_method_maps WHERE tenant_id = $1 AND is_default = $2",
    )
    .bind(tenant_id)
    .bind(true)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(row) => Ok((row.try_get("bling_forma_pagamento_id")?, true)),
        None => {
            let of_store = if store.is_empty() { String::new() } else { format!(" of store '{store}'") };
            Err(ServiceError::NotFound(format!(
                "payment method '{method}'{of_store} has no Bling mapping and tenant '{tenant_id}' has no default"
            )))
        }
    }
}
