//! Events the gateway delivers (`HandleEvent`): checked (naming the field a malformed one gets
//! wrong), handed to their flow — a Bling order event to `orders`, a 360Envios status to
//! `hub_status`, a product verdict to `approvals` — and written into the history of each
//! shipment they touched (or under order 0, reported, when they touched none).
//!
//! A failure that passes with time (Bling or 360 busy or down, a service of ponte's unreachable)
//! is answered with its error, so the gateway retries the event. A failure only a person can fix
//! (a grant revoked, a record refused) is answered PARKED with the reason, kept on the shipment,
//! and tried again with the order's next event: an order event never becomes a dead letter
//! because of shipping.

use ponte_connectors::{
    bling::webhooks::{self as bling, Envelope, Resource},
    envios360::webhooks::EventType as HubEvent,
    json::scalar_text,
};
use ponte_core::{
    BlingId, TenantId,
    error::{ServiceError, quote},
    time::from_timestamp,
};
use ponte_proto::v1::{
    EventOutcome, InboundEvent, Provider, ShippingStatusServiceHandleEventRequest,
    ShippingStatusServiceHandleEventResponse,
};
use rust_decimal::Decimal;

use crate::{
    approvals,
    context::Context,
    echo::Sent,
    history::{self, Done, Entry, Flow, Outcome},
    hub_status, orders,
    shipments::{self, Shipment},
};

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bling(bling::EventType),
    Hub(HubEvent),
}

impl Kind {
    fn flow(self) -> Flow {
        match self {
            Self::Bling(_) => Flow::Orders,
            Self::Hub(_) => Flow::Status,
        }
    }

    fn trigger(self) -> String {
        match self {
            Self::Bling(t) => format!("Bling {t}"),
            Self::Hub(t) => format!("360Envios {t}"),
        }
    }
}

/// The checked parts of an event.
struct Checked {
    tenant: TenantId,
    kind: Kind,
    /// The Bling order (or, for a product verdict, product) it is about.
    id: BlingId,
    occurred: i64,
}

fn check(event: &InboundEvent) -> Result<Checked, ServiceError> {
    ServiceError::require("event.event_id", &event.event_id)?;
    let tenant = TenantId::field("event.tenant_id", &event.tenant_id)?;
    ServiceError::require("event.event_type", &event.event_type)?;
    let unknown = |from: &str| {
        ServiceError::invalid(
            "event.event_type",
            format!("shipping-status does not handle {} events from {from}", quote(&event.event_type)),
        )
    };
    let (kind, entity) = match Provider::try_from(event.source) {
        Ok(Provider::Bling) => match event.event_type.parse::<bling::EventType>() {
            Ok(t) if t.resource() == Resource::Order => (Kind::Bling(t), Resource::Order.as_str()),
            _ => return Err(unknown("Bling")),
        },
        Ok(Provider::Envios360) => match event.event_type.parse::<HubEvent>() {
            Ok(t) => (Kind::Hub(t), t.subject().as_str()),
            Err(_) => return Err(unknown("360Envios")),
        },
        _ => {
            return Err(ServiceError::invalid(
                "event.source",
                "shipping-status handles events from Bling and 360Envios",
            ));
        }
    };
    let id = match event.entity_key.split_once(':') {
        Some((k, id)) if k == entity => BlingId::parse(id).map_err(|_| {
            ServiceError::invalid("event.entity_key", format!("{} is not a Bling {entity} id", quote(id)))
        })?,
        _ => {
            return Err(ServiceError::invalid(
                "event.entity_key",
                format!("must be '{entity}:<Bling id>', e.g. '{entity}:12345678'"),
            ));
        }
    };
    let occurred = event.occurred_at.as_ref().map(from_timestamp).ok_or_else(|| {
        ServiceError::invalid("event.occurred_at", "is required (it orders the events of one entity)")
    })?;
    Ok(Checked { tenant, kind, id, occurred })
}

/// What a Bling order event's payload says of the order (for recognising echoes).
fn sent(payload: &[u8], occurred: i64) -> Sent {
    let data = Envelope::parse(payload).map(|e| e.data).unwrap_or_default();
    Sent {
        situacao: data.pointer("/situacao/id").and_then(serde_json::Value::as_i64),
        total: data.get("total").and_then(scalar_text).and_then(|t| t.parse::<Decimal>().ok()),
        occurred,
    }
}

/// Keeps a problem only a person can fix on the order's shipment: why it waits, before the hub
/// has it; its last error after.
async fn keep_problem(ctx: &Context, tenant: &TenantId, order: BlingId, problem: &str) -> Result<(), ServiceError> {
    let mut s = shipments::get(&ctx.db, tenant, order).await?.unwrap_or_else(|| Shipment::new(tenant, order));
    if s.hub_id.is_none() {
        s.waiting_reason = problem.to_owned();
    } else {
        s.failed(problem);
    }
    shipments::save(&ctx.db, &mut s).await
}

pub(crate) async fn handle(
    ctx: &Context,
    req: ShippingStatusServiceHandleEventRequest,
) -> Result<ShippingStatusServiceHandleEventResponse, ServiceError> {
    let event = req.event.ok_or_else(|| ServiceError::invalid("event", "is required"))?;
    let c = check(&event)?;
    let acted = match c.kind {
        Kind::Bling(t) => orders::on_event(ctx, &c.tenant, c.id, t, sent(&event.payload, c.occurred)).await,
        Kind::Hub(HubEvent::OrderStatusChanged) => hub_status::on_status(ctx, &c.tenant, c.id, &event.payload).await,
        Kind::Hub(HubEvent::ProductApprovalChanged) => {
            approvals::on_approval(ctx, &c.tenant, c.id, c.occurred, &event.payload).await
        }
    };
    // The order the event is about; a product's verdict names its shipments itself.
    let own_order = (c.kind != Kind::Hub(HubEvent::ProductApprovalChanged)).then_some(c.id);
    let mut entry = Entry {
        tenant: &c.tenant,
        order: own_order,
        flow: c.kind.flow(),
        trigger: c.kind.trigger(),
        event_id: &event.event_id,
        action: String::new(),
        outcome: Outcome::Failed,
        problem: String::new(),
    };
    let done = match acted {
        Ok(done) => done,
        Err(e @ ServiceError::Unavailable { .. }) => {
            entry.action = "will be tried again".into();
            entry.problem = e.to_string();
            history::record(&ctx.db, &entry).await?;
            return Err(e);
        }
        Err(e) => {
            let problem = e.to_string();
            if let (Some(order), Kind::Bling(_)) = (own_order, c.kind) {
                keep_problem(ctx, &c.tenant, order, &problem).await?;
            }
            Done::parked("could not act; a person must fix this, then the order's next change tries again", problem)
        }
    };
    entry.outcome = Outcome::Handled(done.outcome);
    entry.action = done.action.clone();
    entry.problem = done.problem.clone();
    match &done.orders {
        Some(orders) if orders.is_empty() => history::record(&ctx.db, &Entry { order: None, ..entry }).await?,
        Some(orders) => {
            for order in orders {
                history::record(&ctx.db, &Entry { order: Some(*order), ..entry.clone() }).await?;
            }
        }
        None => history::record(&ctx.db, &entry).await?,
    }
    tracing::debug!(entity = %event.entity_key, event_type = %event.event_type, outcome = done.outcome.label(), "event handled");
    let outcome = if done.outcome == EventOutcome::Unspecified { EventOutcome::Skipped } else { done.outcome };
    // The flow's latency, from the event's receipt at the gateway to the write it caused (at
    // 360Envios for an order event, in Bling for a hub status), when it wrote something.
    let synced = match c.kind {
        Kind::Bling(_) => Some(ponte_proto::v1::Flow::BlingToEnvios360Orders),
        Kind::Hub(HubEvent::OrderStatusChanged) => Some(ponte_proto::v1::Flow::Envios360ToBlingStatus),
        Kind::Hub(HubEvent::ProductApprovalChanged) => None,
    };
    if let (Some(flow), EventOutcome::Applied, Some(received)) =
        (synced, outcome, event.received_at.as_ref().map(from_timestamp))
    {
        ponte_core::metrics::record_sync(flow, received);
    }
    Ok(ShippingStatusServiceHandleEventResponse { outcome: outcome as i32, detail: done.action })
}

#[cfg(test)]
mod tests;
