//! Events the gateway delivers (`HandleEvent`): validated, checked against the newest event
//! already accepted for the same entity (webhooks arrive duplicated and out of order; an older
//! one must not undo a newer change), acted on, and recorded in the event ledger
//! ([`crate::ledger`], which also feeds the sync status).
//!
//! Bling product events sync the product into Bitrix24 ([`crate::products`]); Bitrix24 product
//! events export it into Bling when the tenant turned that on ([`crate::export`]); Bling order
//! events become Bitrix24 deals when the tenant turned that on ([`crate::orders`]); Bling product
//! events also reach CPLUG when the tenant serves its catalog there ([`crate::cplug_sync`]). An event
//! whose switch is off is answered SKIPPED naming the switch.
//!
//! An event's version is recorded only once it has been acted on: a sync that fails leaves the
//! entity's newest version where it was, so the gateway's retry is not taken for stale.

use ponte_connectors::{
    bitrix24::{self, ProductId},
    bling,
};
use ponte_core::{
    BlingId, TenantId,
    error::{ServiceError, quote},
    ratelimit::Priority,
    time::{from_timestamp, to_datetime},
};
use ponte_proto::v1::{
    CatalogSyncServiceHandleEventRequest, CatalogSyncServiceHandleEventResponse, EventOutcome, Flow, InboundEvent,
    Provider,
};

use crate::{
    context::Context,
    cplug_sync, export,
    ledger::{self, Entry},
    orders, products,
};

/// The checked parts of an event.
struct Checked<'a> {
    event: &'a InboundEvent,
    tenant: TenantId,
    source: Provider,
    /// `event_log.source`.
    label: &'static str,
    occurred: i64,
}

impl Checked<'_> {
    fn ledger(&self) -> ledger::Event<'_> {
        let e = self.event;
        ledger::Event {
            tenant_id: &self.tenant,
            entity_key: &e.entity_key,
            event_id: &e.event_id,
            source: self.label,
            source_event_id: &e.source_event_id,
            event_type: &e.event_type,
            occurred: self.occurred,
            attempt: i64::from(e.attempt),
        }
    }
}

fn check(event: &InboundEvent) -> Result<Checked<'_>, ServiceError> {
    ServiceError::require("event.event_id", &event.event_id)?;
    let tenant = TenantId::field("event.tenant_id", &event.tenant_id)?;
    let (source, label) = match Provider::try_from(event.source) {
        Ok(p @ Provider::Bling) => (p, "bling"),
        Ok(p @ Provider::Bitrix24) => (p, "bitrix24"),
        _ => return Err(ServiceError::invalid("event.source", "catalog-sync handles events from Bling and Bitrix24")),
    };
    ServiceError::require("event.event_type", &event.event_type)?;
    // The types ponte subscribes to, as each sender's vocabulary lists them.
    let known = match source {
        Provider::Bling => event.event_type.parse::<bling::webhooks::EventType>().is_ok(),
        _ => event.event_type.parse::<bitrix24::events::EventType>().is_ok(),
    };
    if !known {
        return Err(ServiceError::invalid(
            "event.event_type",
            format!("catalog-sync does not handle {} events from {label}", quote(&event.event_type)),
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
    Ok(Checked { event, tenant, source, label, occurred })
}

/// Records a flow's write of an event in `ponte_sync_latency_seconds` (its receipt at the gateway
/// to now, the write's answer): only when the flow wrote something.
fn written(flow: Flow, e: &InboundEvent, outcome: EventOutcome) {
    if outcome == EventOutcome::Applied
        && let Some(received) = e.received_at.as_ref().map(from_timestamp)
    {
        ponte_core::metrics::record_sync(flow, received);
    }
}

/// What an accepted event does, with the detail the ledger and the gateway keep.
async fn act(ctx: &Context, c: &Checked<'_>) -> Result<(EventOutcome, String), ServiceError> {
    let e = c.event;
    let settings = ctx.settings.get(&ctx.db, &c.tenant).await?;
    let (kind, id) = e.entity_key.split_once(':').unwrap_or_default();
    let bling_id = |what: &str| {
        BlingId::parse(id)
            .map_err(|_| ServiceError::invalid("event.entity_key", format!("{} is not a Bling {what} id", quote(id))))
    };
    match (c.source, kind) {
        (Provider::Bling, "product") => {
            let bling_id = bling_id("product")?;
            let (to_crm, crm_detail) =
                products::sync(ctx, &c.tenant, bling_id, &settings, Priority::Live).await?.describe("Bitrix24 product");
            written(Flow::BlingToBitrix24Products, e, to_crm);
            let deleted = e.event_type.parse::<bling::webhooks::EventType>().is_ok_and(|t| t.is_deletion());
            if !settings.catalog_to_cplug || deleted {
                return Ok((to_crm, crm_detail));
            }
            let sent =
                serde_json::from_slice::<serde_json::Value>(&e.payload).ok().and_then(|v| v.get("data").cloned());
            // Both targets are written idempotently: a failure of either retries the event,
            // and the other finds nothing left to change.
            let (to_pos, pos_detail) =
                cplug_sync::sync(ctx, &c.tenant, bling_id, sent.as_ref(), &settings, Priority::Live)
                    .await?
                    .describe("CPLUG product");
            written(Flow::BlingToCplugProducts, e, to_pos);
            let applied = [to_crm, to_pos].contains(&EventOutcome::Applied);
            let outcome = if applied { EventOutcome::Applied } else { EventOutcome::Skipped };
            Ok((outcome, format!("{crm_detail}; {pos_detail}")))
        }
        (Provider::Bling, _) if !settings.orders_to_bitrix24 => {
            Ok((EventOutcome::Skipped, "orders are not sent to Bitrix24 (switch off)".into()))
        }
        (Provider::Bling, _) => {
            let order_id = bling_id("order")?;
            let change = orders::sync(ctx, &c.tenant, order_id, &settings.deal_stages, Priority::Live).await?;
            let (outcome, detail) = change.describe("Bitrix24 deal");
            written(Flow::BlingToBitrix24Orders, e, outcome);
            Ok((outcome, detail))
        }
        (_, _) if !settings.bitrix24_export_to_bling => {
            Ok((EventOutcome::Skipped, "Bitrix24 products are not exported to Bling (switch off)".into()))
        }
        (_, _) => {
            let product_id: ProductId = id.parse().map_err(|_| {
                ServiceError::invalid("event.entity_key", format!("{} is not a Bitrix24 product id", quote(id)))
            })?;
            let change = export::sync(ctx, &c.tenant, product_id, Priority::Live).await?;
            let (outcome, detail) = change.describe("Bling product");
            written(Flow::Bitrix24ToBlingProducts, e, outcome);
            Ok((outcome, detail))
        }
    }
}

/// Handles one delivered event: STALE when a newer event of the entity was already accepted,
/// otherwise acted on and recorded as the entity's newest.
pub(crate) async fn handle(
    ctx: &Context,
    req: CatalogSyncServiceHandleEventRequest,
) -> Result<CatalogSyncServiceHandleEventResponse, ServiceError> {
    let event = req.event.ok_or_else(|| ServiceError::invalid("event", "is required"))?;
    let c = check(&event)?;
    let entry = c.ledger();
    // Equal times are accepted: Bling dates have one-second resolution, and the gateway hands
    // over the events of one entity one at a time, in order.
    if let Some(newest) = ledger::newest(&ctx.db, &entry).await?.filter(|n| *n > c.occurred) {
        let detail = format!(
            "{} already has an event from {}; this one is from {}",
            event.entity_key,
            to_datetime(newest).to_rfc3339(),
            to_datetime(c.occurred).to_rfc3339()
        );
        ledger::record(&ctx.db, &entry, Entry::Handled(EventOutcome::Stale), &detail, false).await?;
        return Ok(CatalogSyncServiceHandleEventResponse { outcome: EventOutcome::Stale as i32, detail });
    }
    let (outcome, detail) = match act(ctx, &c).await {
        Ok(done) => done,
        Err(err) => {
            if let Err(log_err) = ledger::log(ctx.db.pool(), &entry, Entry::Failed, &err.to_string()).await {
                tracing::warn!(error = %log_err, "could not record a failed event");
            }
            return Err(err);
        }
    };
    ledger::record(&ctx.db, &entry, Entry::Handled(outcome), &detail, true).await?;
    tracing::debug!(entity = %event.entity_key, event_type = %event.event_type, outcome = outcome.label(), "event handled");
    Ok(CatalogSyncServiceHandleEventResponse { outcome: outcome as i32, detail })
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
