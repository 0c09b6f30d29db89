//! Situação DE-PARA: which Bling order situação (default or custom) is which 360Envios shipping
//! status, and the one situação that releases an order to shipping. Each situação and each
//! shipping status is mapped at most once per tenant, so the table reads both ways.

use ponte_core::{
    db::Database,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{ShippingStatus, SituacaoMap, translate_situacao_request::From as SituacaoFrom};
use serde_json::json;
use sqlx::{Any, Row, Transaction, any::AnyRow};

use crate::audit::{self, Change};

const TABLE: &str = "situacao";

fn from_row(row: &AnyRow) -> Result<SituacaoMap, ServiceError> {
    let status: String = row.try_get("shipping_status")?;
    let status = ShippingStatus::from_str_name(&status)
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("unknown shipping status '{status}' stored")))?;
    Ok(SituacaoMap {
        tenant_id: row.try_get("tenant_id")?,
        bling_situacao_id: row.try_get("bling_situacao_id")?,
        bling_situacao_name: row.try_get("bling_situacao_name")?,
        shipping_status: status as i32,
        // Read as an integer: the Any driver cannot decode SQLite's BOOLEAN (PostgreSQL casts too).
        releases_to_shipping: row.try_get::<i64, _>("releases_to_shipping")? != 0,
        create_time: Some(to_timestamp(row.try_get("create_time")?)),
    })
}

fn as_json(m: &SituacaoMap) -> serde_json::Value {
    json!({"bling_situacao_id": m.bling_situacao_id, "bling_situacao_name": m.bling_situacao_name,
           "shipping_status": m.shipping_status().as_str_name(), "releases_to_shipping": m.releases_to_shipping})
}

fn status_of(field: &str, value: i32) -> Result<ShippingStatus, ServiceError> {
    match ShippingStatus::try_from(value) {
        Ok(ShippingStatus::Unspecified) | Err(_) => {
            Err(ServiceError::invalid(field, "must be a shipping status (SHIPPING_STATUS_RECEIVED … _CANCELLED)"))
        }
        Ok(s) => Ok(s),
    }
}

/// Checks a new map's fields, naming the first bad one under `at` (`map`).
pub fn validate(at: &str, m: &SituacaoMap) -> Result<(), ServiceError> {
    if m.bling_situacao_id <= 0 {
        return Err(ServiceError::invalid(format!("{at}.bling_situacao_id"), "must be a Bling id (a positive number)"));
    }
    let name = m.bling_situacao_name.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid(format!("{at}.bling_situacao_name"), "is required"));
    }
    if name.chars().count() > 100 {
        return Err(ServiceError::invalid(format!("{at}.bling_situacao_name"), "is longer than 100 characters"));
    }
    status_of(&format!("{at}.shipping_status"), m.shipping_status)?;
    Ok(())
}

const SELECT: &str = "SELECT tenant_id, bling_situacao_id, bling_situacao_name, shipping_status, \
                      CAST(releases_to_shipping AS INTEGER) AS releases_to_shipping, \
                      create_time FROM situacao_maps";

/// Which row to find.
enum By<'a> {
    Situacao(i64),
    Status(&'a str),
    Releasing,
}

async fn one_where<'e, E>(exec: E, tenant_id: &str, by: By<'_>) -> Result<Option<SituacaoMap>, ServiceError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let condition = match by {
        By::Situacao(_) => "bling_situacao_id = $2",
        By::Status(_) => "shipping_status = $2",
        By::Releasing => "releases_to_shipping = $2",
    };
    let sql = format!("{SELECT} WHERE tenant_id = $1 AND {condition}");
    let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
    let q = match by {
        By::Situacao(id) => q.bind(id),
        By::Status(s) => q.bind(s.to_owned()),
        By::Releasing => q.bind(true),
    };
    q.fetch_optional(exec).await?.as_ref().map(from_row).transpose()
}

/// Why `m` cannot join the tenant's table, if it cannot: the situação, its shipping status, or
/// the release to shipping is already taken.
async fn taken(tx: &mut Transaction<'_, Any>, m: &SituacaoMap) -> Result<Option<String>, ServiceError> {
    let t = &m.tenant_id;
    if let Some(o) = one_where(&mut **tx, t, By::Situacao(m.bling_situacao_id)).await? {
        return Ok(Some(format!(
            "situação {} of tenant '{t}' is already mapped (as '{}')",
            o.bling_situacao_id, o.bling_situacao_name
        )));
    }
    let status = m.shipping_status().as_str_name();
    if let Some(o) = one_where(&mut **tx, t, By::Status(status)).await? {
        return Ok(Some(format!(
            "{status} of tenant '{t}' is already mapped to situação {} '{}'",
            o.bling_situacao_id, o.bling_situacao_name
        )));
    }
    if m.releases_to_shipping
        && let Some(o) = one_where(&mut **tx, t, By::Releasing).await?
    {
        return Ok(Some(format!(
            "tenant '{t}' already releases orders to shipping at situação {} '{}'",
            o.bling_situacao_id, o.bling_situacao_name
        )));
    }
    Ok(None)
}

/// A new map as it would be stored: checked, its name trimmed.
pub fn prepare(mut m: SituacaoMap) -> Result<SituacaoMap, ServiceError> {
    validate("map", &m)?;
    m.bling_situacao_name = m.bling_situacao_name.trim().to_owned();
    Ok(m)
}

pub async fn create(db: &Database, m: SituacaoMap, actor: &str) -> Result<SituacaoMap, ServiceError> {
    let mut m = prepare(m)?;
    let now = now_millis();
    let mut tx = db.pool().begin().await?;
    if let Some(why) = taken(&mut tx, &m).await? {
        return Err(ServiceError::AlreadyExists(why));
    }
    let inserted = sqlx::query(
        "INSERT INTO situacao_maps (tenant_id, bling_situacao_id, bling_situacao_name, shipping_status, \
         releases_to_shipping, create_time) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&m.tenant_id)
    .bind(m.bling_situacao_id)
    .bind(&m.bling_situacao_name)
    .bind(m.shipping_status().as_str_name())
    .bind(m.releases_to_shipping)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // A concurrent create took the situação, the status or the release first.
        Err(e) if Database::is_unique_violation(&e) => {
            return Err(ServiceError::AlreadyExists(format!(
                "situação {} or {} of tenant '{}' was mapped meanwhile",
                m.bling_situacao_id,
                m.shipping_status().as_str_name(),
                m.tenant_id
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
            key: &m.bling_situacao_id.to_string(),
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

pub async fn list(db: &Database, tenant_id: &str) -> Result<Vec<SituacaoMap>, ServiceError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE tenant_id = $1 ORDER BY bling_situacao_id")))
        .bind(tenant_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(db: &Database, tenant_id: &str, situacao_id: i64, actor: &str) -> Result<(), ServiceError> {
    if situacao_id <= 0 {
        return Err(ServiceError::invalid("bling_situacao_id", "must be a Bling id (a positive number)"));
    }
    let mut tx = db.pool().begin().await?;
    let Some(previous) = one_where(&mut *tx, tenant_id, By::Situacao(situacao_id)).await? else {
        return Err(ServiceError::NotFound(format!("situação {situacao_id} of tenant '{tenant_id}' is not mapped")));
    };
    sqlx::query("DELETE FROM situacao_maps WHERE tenant_id = $1 AND bling_situacao_id = $2")
        .bind(tenant_id)
        .bind(situacao_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Change {
            tenant_id,
            table: TABLE,
            key: &situacao_id.to_string(),
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

/// The row for a Bling situação, or for a shipping status; NOT_FOUND says which is unmapped.
pub async fn translate(
    db: &Database,
    tenant_id: &str,
    from: Option<SituacaoFrom>,
) -> Result<SituacaoMap, ServiceError> {
    match from {
        None => Err(ServiceError::invalid("from", "set bling_situacao_id or shipping_status")),
        Some(SituacaoFrom::BlingSituacaoId(id)) => {
            if id <= 0 {
                return Err(ServiceError::invalid("bling_situacao_id", "must be a Bling id (a positive number)"));
            }
            one_where(db.pool(), tenant_id, By::Situacao(id)).await?.ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "Bling situação {id} of tenant '{tenant_id}' has no shipping status mapped"
                ))
            })
        }
        Some(SituacaoFrom::ShippingStatus(s)) => {
            let status = status_of("shipping_status", s)?.as_str_name();
            one_where(db.pool(), tenant_id, By::Status(status)).await?.ok_or_else(|| {
                ServiceError::NotFound(format!("{status} of tenant '{tenant_id}' has no Bling situação mapped"))
            })
        }
    }
}
