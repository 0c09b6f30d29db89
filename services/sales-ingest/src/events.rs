//! CPLUG sale webhooks the gateway delivers (`HandleEvent`): `sale.completed` stores the sale
//! and hands it to the worker, `sale.cancelled` cancels it (remembered when it comes first). A
//! sale the point of sale sent with bad data is stored as failed with the reason and answered
//! as handled: retrying the same body cannot fix it, and the merchant sees it in the sales list
//! instead of in the gateway's dead letters.

use ponte_connectors::cplug::{sales::to_sale, webhooks::EventType};
use ponte_core::{
    TenantId,
    error::ServiceError,
    time::{from_timestamp, now_millis},
};
use ponte_proto::v1::{EventOutcome, InboundEvent, Provider, SalesIngestServiceHandleEventResponse};
use serde_json::Value;

use crate::{
    context::Context,
    requests,
    sale::Sale,
    state::State,
    store::{self, Key, Row, Stored},
    worker::Worker,
};

/// The sale an event is about, from its entity key (`sale:<id>`).
fn sale_key(event: &InboundEvent, tenant: &TenantId) -> Result<Key, ServiceError> {
    match event.entity_key.split_once(':') {
        Some(("sale", id)) if !id.is_empty() => Ok(Key { tenant: tenant.clone(), sale_id: id.to_owned() }),
        _ => Err(ServiceError::invalid("event.entity_key", "must be 'sale:<sale id>'")),
    }
}

/// What handling came to, as the gateway records it.
fn outcome(row: &Row) -> (EventOutcome, String) {
    let id = &row.sale_id;
    match row.state() {
        State::Posted => (EventOutcome::Applied, format!("sale {id} posted: Bling order {}", row.bling_order_id)),
        State::Received | State::OrderCreated | State::Moving => {
            (EventOutcome::Applied, format!("sale {id} stored; posting to Bling goes on ({})", row.state().label()))
        }
        State::Parked => (EventOutcome::Parked, format!("sale {id} parked: {}", row.reason)),
        State::Failed => (EventOutcome::Parked, format!("sale {id} cannot be posted as sent: {}", row.reason)),
        State::Cancelling => (EventOutcome::Applied, format!("sale {id} is being reversed in Bling")),
        State::Cancelled => (EventOutcome::Applied, format!("sale {id} cancelled")),
    }
}

pub(crate) async fn handle(
    ctx: &Context,
    worker: &Worker,
    event: Option<InboundEvent>,
) -> Result<SalesIngestServiceHandleEventResponse, ServiceError> {
    let event = event.ok_or_else(|| ServiceError::invalid("event", "is required"))?;
    let tenant = TenantId::field("event.tenant_id", &event.tenant_id)?;
    if Provider::try_from(event.source) != Ok(Provider::Cplug) {
        return Err(ServiceError::invalid("event.source", "sales-ingest handles events from CPLUG"));
    }
    let kind: EventType = event.event_type.parse().map_err(|e: ponte_connectors::webhooks::UnknownEventType| {
        ServiceError::invalid("event.event_type", e.to_string())
    })?;
    let key = sale_key(&event, &tenant)?;
    let how = format!("CPLUG {} {}", kind, event.source_event_id);
    let row = match kind {
        EventType::SaleCancelled => requests::cancel(ctx, worker, &key, &format!("cancelada no PDV ({how})")).await?,
        EventType::SaleCompleted => {
            let body: Value = serde_json::from_slice(&event.payload).unwrap_or(Value::Null);
            let sale_json = body.get("sale").cloned().unwrap_or(Value::Null);
            let occurred = event.occurred_at.as_ref().map(from_timestamp);
            let received = event.received_at.as_ref().map_or_else(now_millis, from_timestamp);
            let checked = to_sale(&sale_json, occurred)
                .map_err(|e| e.to_string())
                .and_then(|pb| Sale::check(&pb, now_millis()).map_err(|e| e.to_string()));
            match checked {
                Ok(sale) if sale.sale_id == key.sale_id => {
                    match store::receive(&ctx.db, &key, &sale, &how, received).await? {
                        Stored::New(row) | Stored::Existing(row) if row.state() == State::Received => {
                            worker.run_now(&key).await?
                        }
                        Stored::New(row) | Stored::Existing(row) => row,
                    }
                }
                Ok(sale) => {
                    let why = format!("sale.sale_id: '{}' is not the event's sale '{}'", sale.sale_id, key.sale_id);
                    store::receive_failed(&ctx.db, &key, &sale.store_id, &sale_json.to_string(), &why).await?
                }
                Err(why) => {
                    let store_id = sale_json.get("store_id").and_then(Value::as_str).unwrap_or_default();
                    store::receive_failed(&ctx.db, &key, store_id, &sale_json.to_string(), &why).await?
                }
            }
        }
    };
    let (outcome, detail) = outcome(&row);
    Ok(SalesIngestServiceHandleEventResponse { outcome: outcome as i32, detail })
}
