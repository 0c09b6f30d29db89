//! The link registry: which id in one system is which id in another, per tenant and entity
//! kind. A pair is stored once, in a canonical order, and is unique both ways. A new link is
//! audited; repeating an existing one changes nothing and records nothing.

use ponte_core::{
    db::Database,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{EntityKind, EntityLink, Provider};
use serde_json::json;
use sqlx::Row;

use crate::audit::{self, Change};

fn kind_name(k: i32) -> Result<&'static str, ServiceError> {
    match EntityKind::try_from(k) {
        Ok(EntityKind::Product) => Ok("product"),
        Ok(EntityKind::Order) => Ok("order"),
        Ok(EntityKind::Contact) => Ok("contact"),
        Ok(EntityKind::Deal) => Ok("deal"),
        _ => Err(ServiceError::invalid("kind", "must be ENTITY_KIND_PRODUCT, _ORDER, _CONTACT or _DEAL")),
    }
}

fn system_name(field: &str, p: i32) -> Result<&'static str, ServiceError> {
    match Provider::try_from(p) {
        Ok(Provider::Bling) => Ok("bling"),
        Ok(Provider::Bitrix24) => Ok("bitrix24"),
        Ok(Provider::Envios360) => Ok("envios360"),
        Ok(Provider::Cplug) => Ok("cplug"),
        _ => Err(ServiceError::invalid(field, "must name a provider")),
    }
}

/// Stores a link; `false` when the same link already existed.
pub async fn link(db: &Database, l: &EntityLink, actor: &str) -> Result<bool, ServiceError> {
    let kind = kind_name(l.kind)?;
    let (mut a, mut b) = (
        (system_name("link.system_a", l.system_a)?, l.id_a.trim()),
        (system_name("link.system_b", l.system_b)?, l.id_b.trim()),
    );
    ServiceError::require("link.id_a", a.1)?;
    ServiceError::require("link.id_b", b.1)?;
    if a.0 == b.0 {
        return Err(ServiceError::invalid("link.system_b", "must differ from system_a"));
    }
    if a.0 > b.0 {
        std::mem::swap(&mut a, &mut b);
    }
    let t = l.tenant_id.as_str();
    if let Some(other) = counterpart(db, t, kind, a, b.0).await? {
        return if other == b.1 {
            Ok(false)
        } else {
            Err(ServiceError::AlreadyExists(format!("{kind} {} '{}' is already linked to {} '{other}'", a.0, a.1, b.0)))
        };
    }
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO links (tenant_id, kind, system_a, id_a, system_b, id_b, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(t)
    .bind(kind)
    .bind(a.0)
    .bind(a.1)
    .bind(b.0)
    .bind(b.1)
    .bind(now_millis())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {
            let key = format!("{kind} {}:{} {}:{}", a.0, a.1, b.0, b.1);
            let new = json!({"kind": kind, "system_a": a.0, "id_a": a.1, "system_b": b.0, "id_b": b.1});
            audit::record(
                &mut tx,
                Change {
                    tenant_id: &l.tenant_id,
                    table: "link",
                    key: &key,
                    action: "create",
                    actor,
                    previous: None,
                    new: Some(new),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        Err(e) if Database::is_unique_violation(&e) => {
            drop(tx);
            // A concurrent call may have stored this very pair; that is the idempotent case.
            if counterpart(db, t, kind, a, b.0).await?.as_deref() == Some(b.1) {
                return Ok(false);
            }
            let other = counterpart(db, t, kind, b, a.0).await?.unwrap_or_else(|| "another id".to_owned());
            Err(ServiceError::AlreadyExists(format!("{kind} {} '{}' is already linked to {} '{other}'", b.0, b.1, a.0)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The id in system `to` linked to `from` (a system and id), whichever order the pair is stored in.
async fn counterpart(
    db: &Database,
    tenant_id: &str,
    kind: &str,
    from: (&str, &str),
    to: &str,
) -> Result<Option<String>, ServiceError> {
    let sql = if from.0 < to {
        "SELECT id_b FROM links WHERE tenant_id = $1 AND kind = $2 AND system_a = $3 AND id_a = $4 AND system_b = $5"
    } else {
        "SELECT id_a FROM links WHERE tenant_id = $1 AND kind = $2 AND system_b = $3 AND id_b = $4 AND system_a = $5"
    };
    let row = sqlx::query(sql)
        .bind(tenant_id)
        .bind(kind)
        .bind(from.0)
        .bind(from.1)
        .bind(to)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The id in `to` linked to `from_id` in `from`.
pub async fn resolve(
    db: &Database,
    tenant_id: &str,
    kind: i32,
    from: i32,
    from_id: &str,
    to: i32,
) -> Result<Option<String>, ServiceError> {
    let kind = kind_name(kind)?;
    let (from, to) = (system_name("from_system", from)?, system_name("to_system", to)?);
    let from_id = ServiceError::require("from_id", from_id)?;
    if from == to {
        return Err(ServiceError::invalid("to_system", "must differ from from_system"));
    }
    counterpart(db, tenant_id, kind, (from, from_id), to).await
}

/// The stored form of a link, for answers.
pub fn answered(l: &EntityLink) -> EntityLink {
    EntityLink { create_time: Some(to_timestamp(now_millis())), ..l.clone() }
}
