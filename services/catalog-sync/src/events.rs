//! Events the gateway delivers (`HandleEvent`): validated, checked against the newest event
//! already accepted for the same entity (webhooks arrive duplicated and out of order; an older
//! one must not undo a newer change), acted on, and recorded in an append-only ledger
//! (`event_log`, which also feeds the sync status).
//!
//! Bling product events sync the product into Bitrix24 ([`crate::products`]); Bitrix24 product
//! events export it into Bling when the tenant turned that on ([`crate::export`]); Bling order
//! events become Bitrix24 deals when the tenant turned that on ([`crate::orders`]); Bling product
//! events also reach CPLUG when the tenant serves its catalog there ([`crate::cplug_sync`]). An event
//! whose switch is off is answered SKIPPED naming the switch.
//!
//! An event's version is recorded only once it has been acted on: a sync that fails leaves the
//! entity's newest version where it was, so the gateway's retry is not taken for stale.

use crate::products::{Change, ProductSync};
use ponte_core::{
    TenantId,
    db::{Backend, Database},
    error::ServiceError,
    ratelimit::Priority,
    time::{from_timestamp, now_millis, to_datetime},
};
use ponte_proto::v1::{
    CatalogSyncServiceHandleEventRequest, CatalogSyncServiceHandleEventResponse, EventOutcome, InboundEvent, Provider,
};

const BLING_TYPES: &[&str] =
    &["product.created", "product.updated", "product.deleted", "order.created", "order.updated", "order.deleted"];
const BITRIX24_TYPES: &[&str] = &[
    "ONCRMPRODUCTADD",
    "ONCRMPRODUCTUPDATE",
    "ONCRMPRODUCTDELETE",
    "CATALOG.PRODUCT.ON.ADD",
    "CATALOG.PRODUCT.ON.UPDATE",
    "CATALOG.PRODUCT.ON.DELETE",
];

/// The checked parts of an event.
struct Checked<'a> {
    event: &'a InboundEvent,
    tenant: TenantId,
    source: &'static str,
    occurred: i64,
}

fn check(event: &InboundEvent) -> Result<Checked<'_>, ServiceError> {
    ServiceError::require("event.event_id", &event.event_id)?;
    let tenant = TenantId::field("event.tenant_id", &event.tenant_id)?;
    let (source, known) = match Provider::try_from(event.source) {
        Ok(Provider::Bling) => ("bling", BLING_TYPES),
        Ok(Provider::Bitrix24) => ("bitrix24", BITRIX24_TYPES),
        _ => return Err(ServiceError::invalid("event.source", "catalog-sync handles events from Bling and Bitrix24")),
    };
    ServiceError::require("event.event_type", &event.event_type)?;
    if !known.contains(&event.event_type.as_str()) {
        return Err(ServiceError::invalid(
            "event.event_type",
            format!("catalog-sync does not handle '{}' events from {source}", event.event_type),
        ));
    }
    match event.entity_key.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => {}
        _ => {
            return Err(ServiceError::invalid("event.entity_key", "must be '<kind>:<id>', e.g. 'product:16059781281'"));
        }
    }
    let occurred = event.occurred_at.as_ref().map(from_timestamp).ok_or_else(|| {
        ServiceError::invalid("event.occurred_at", "is required (it orders the events of one entity)")
    })?;
    Ok(Checked { event, tenant, source, occurred })
}

/// A change to `what` (e.g. "Bitrix24 product") as the ledger and the gateway keep it.
fn describe(change: Change, what: &str) -> (EventOutcome, String) {
    match change {
        Change::Created(id) => (EventOutcome::Applied, format!("created {what} {id}")),
        Change::Updated(id) => (EventOutcome::Applied, format!("updated {what} {id}")),
        Change::Deactivated(id) => (EventOutcome::Applied, format!("deactivated {what} {id}")),
        Change::Unchanged(id) => (EventOutcome::Skipped, format!("{what} {id} already up to date")),
        Change::Skipped(why) => (EventOutcome::Skipped, why.to_owned()),
    }
}

/// What an accepted event does, with the detail the ledger and the gateway keep.
async fn act(db: &Database, sync: &ProductSync, c: &Checked<'_>) -> Result<(EventOutcome, String), ServiceError> {
    let e = c.event;
    let settings = sync.settings.get(db, &c.tenant).await?;
    let (kind, id) = e.entity_key.split_once(':').unwrap_or_default();
    match (c.source, kind) {
        ("bling", "product") => {
            let bling_id: i64 = id
                .parse()
                .map_err(|_| ServiceError::invalid("event.entity_key", format!("'{id}' is not a Bling product id")))?;
            let crm = describe(
                sync.bling_to_bitrix24(&c.tenant, bling_id, &settings, Priority::Live).await?,
                "Bitrix24 product",
            );
            if !settings.catalog_to_cplug || e.event_type == "product.deleted" {
                return Ok(crm);
            }
            let sent =
                serde_json::from_slice::<serde_json::Value>(&e.payload).ok().and_then(|v| v.get("data").cloned());
            // Both targets are written idempotently: a failure of either retries the event,
            // and the other finds nothing left to change.
            let pos = describe(
                sync.bling_to_cplug(&c.tenant, bling_id, sent.as_ref(), &settings, Priority::Live).await?,
                "CPLUG product",
            );
            let outcome = if crm.0 == EventOutcome::Applied || pos.0 == EventOutcome::Applied {
                EventOutcome::Applied
            } else {
                EventOutcome::Skipped
            };
            Ok((outcome, format!("{}; {}", crm.1, pos.1)))
        }
        ("bling", _) if !settings.orders_to_bitrix24 => {
            Ok((EventOutcome::Skipped, "orders are not sent to Bitrix24 (switch off)".into()))
        }
        ("bling", _) => {
            let order_id: i64 = id
                .parse()
                .map_err(|_| ServiceError::invalid("event.entity_key", format!("'{id}' is not a Bling order id")))?;
            let change = sync.order_to_bitrix24(&c.tenant, order_id, &settings.deal_stages, Priority::Live).await?;
            Ok(describe(change, "Bitrix24 deal"))
        }
        (_, _) if !settings.bitrix24_export_to_bling => {
            Ok((EventOutcome::Skipped, "Bitrix24 products are not exported to Bling (switch off)".into()))
        }
        (_, _) => {
            let change = sync.bitrix24_to_bling(&c.tenant, id, Priority::Live).await?;
            Ok(describe(change, "Bling product"))
        }
    }
}

/// Handles one delivered event: STALE when a newer event of the entity was already accepted,
/// otherwise acted on and recorded as the entity's newest.
pub async fn handle(
    db: &Database,
    sync: &ProductSync,
    req: CatalogSyncServiceHandleEventRequest,
) -> Result<CatalogSyncServiceHandleEventResponse, ServiceError> {
    let event = req.event.ok_or_else(|| ServiceError::invalid("event", "is required"))?;
    let c = check(&event)?;
    let e = c.event;
    let newest: Option<i64> =
        sqlx::query_scalar("SELECT version_time FROM entity_versions WHERE tenant_id = $1 AND entity_key = $2")
            .bind(&e.tenant_id)
            .bind(&e.entity_key)
            .fetch_optional(db.pool())
            .await?;
    // Equal times are accepted: Bling dates have one-second resolution, and the gateway hands
    // over the events of one entity one at a time, in order.
    if let Some(newest) = newest.filter(|n| *n > c.occurred) {
        let detail = format!(
            "{} already has an event from {}; this one is from {}",
            e.entity_key,
            to_datetime(newest).to_rfc3339(),
            to_datetime(c.occurred).to_rfc3339()
        );
        record(db, &c, EventOutcome::Stale, &detail, false).await?;
        return Ok(CatalogSyncServiceHandleEventResponse { outcome: EventOutcome::Stale as i32, detail });
    }
    let (outcome, detail) = match act(db, sync, &c).await {
        Ok(done) => done,
        Err(err) => {
            // Kept for the sync status; the gateway retries or parks the event by the error.
            if let Err(log_err) = log(db.pool(), &c, "failed", &err.to_string()).await {
                tracing::warn!(error = %log_err, "could not record a failed event");
            }
            return Err(err);
        }
    };
    record(db, &c, outcome, &detail, true).await?;
    tracing::debug!(entity = %e.entity_key, event_type = %e.event_type, outcome = outcome.label(), "event handled");
    Ok(CatalogSyncServiceHandleEventResponse { outcome: outcome as i32, detail })
}

/// Logs the event's outcome and, when it was acted on, makes it the entity's newest version
/// (never over a newer one), atomically: one statement on PostgreSQL, a transaction on SQLite.
async fn record(
    db: &Database,
    c: &Checked<'_>,
    outcome: EventOutcome,
    detail: &str,
    acted: bool,
) -> Result<(), ServiceError> {
    const VERSION: &str = "INSERT INTO entity_versions (tenant_id, entity_key, version_time, event_id, update_time) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, entity_key) DO UPDATE SET version_time = excluded.version_time, \
         event_id = excluded.event_id, update_time = excluded.update_time \
         WHERE entity_versions.version_time <= excluded.version_time";
    let e = c.event;
    if !acted {
        log(db.pool(), c, outcome.label(), detail).await?;
        return Ok(());
    }
    if db.backend() == Backend::Postgres {
        let sql = format!(
            "WITH v AS ({VERSION}) INSERT INTO event_log (tenant_id, entity_key, event_id, source, source_event_id, \
             event_type, occurred_time, attempt, outcome, detail, handle_time) \
             VALUES ($1, $2, $4, $6, $7, $8, $3, $9, $10, $11, $5)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&e.tenant_id)
            .bind(&e.entity_key)
            .bind(c.occurred)
            .bind(&e.event_id)
            .bind(now_millis())
            .bind(c.source)
            .bind(&e.source_event_id)
            .bind(&e.event_type)
            .bind(i64::from(e.attempt))
            .bind(outcome.label())
            .bind(detail)
            .execute(db.pool())
            .await?;
        return Ok(());
    }
    let mut tx = db.pool().begin().await?;
    sqlx::query(VERSION)
        .bind(&e.tenant_id)
        .bind(&e.entity_key)
        .bind(c.occurred)
        .bind(&e.event_id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
    log(&mut *tx, c, outcome.label(), detail).await?;
    tx.commit().await?;
    Ok(())
}

async fn log<'e, E>(executor: E, c: &Checked<'_>, outcome: &str, detail: &str) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let e = c.event;
    sqlx::query(
        "INSERT INTO event_log (tenant_id, entity_key, event_id, source, source_event_id, event_type, \
         occurred_time, attempt, outcome, detail, handle_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&e.tenant_id)
    .bind(&e.entity_key)
    .bind(&e.event_id)
    .bind(c.source)
    .bind(&e.source_event_id)
    .bind(&e.event_type)
    .bind(c.occurred)
    .bind(i64::from(e.attempt))
    .bind(outcome)
    .bind(detail)
    .bind(now_millis())
    .execute(executor)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> InboundEvent {
        InboundEvent {
            event_id: "0193-e".into(),
            tenant_id: "loja".into(),
            source: Provider::Bling as i32,
            source_event_id: "b-1".into(),
            event_type: "product.updated".into(),
            entity_key: "product:16059781281".into(),
            occurred_at: Some(ponte_core::time::to_timestamp(1_700_000_000_000)),
            ..Default::default()
        }
    }

    #[test]
    fn bad_events_name_the_field() {
        for (mutate, field) in [
            (Box::new(|e: &mut InboundEvent| e.tenant_id.clear()) as Box<dyn Fn(&mut InboundEvent)>, "event.tenant_id"),
            (Box::new(|e: &mut InboundEvent| e.source = Provider::Cplug as i32), "event.source"),
            (Box::new(|e: &mut InboundEvent| e.event_type = "stock.updated".into()), "event.event_type"),
            (Box::new(|e: &mut InboundEvent| e.entity_key = "product".into()), "event.entity_key"),
            (Box::new(|e: &mut InboundEvent| e.occurred_at = None), "event.occurred_at"),
        ] {
            let mut e = event();
            mutate(&mut e);
            let err = check(&e).err().unwrap_or_else(|| panic!("{field} accepted"));
            assert!(err.to_string().starts_with(field), "{err}");
        }
        assert!(check(&event()).is_ok());
        let b = InboundEvent {
            source: Provider::Bitrix24 as i32,
            event_type: "ONCRMPRODUCTUPDATE".into(),
            entity_key: "bitrix24_product:759".into(),
            ..event()
        };
        assert!(check(&b).is_ok());
    }
}
