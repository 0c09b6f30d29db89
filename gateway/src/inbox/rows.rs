//! The rows the inbox stores for an accepted event: the event, and one delivery per subscribing
//! service in the event's lane (one tenant's entity), where deliveries go one at a time, in order.

use ponte_core::TenantId;

use super::state::EventState;
use crate::subscribers::{Route, Subscriber};

/// An event about to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: String,
    /// The sender (`inbox_events.source`).
    pub source: &'static str,
    pub source_event_id: String,
    /// `None` while unknown: the account did not resolve, or the body names none.
    pub tenant: Option<TenantId>,
    pub account: String,
    pub event_type: String,
    pub entity_key: String,
    pub state: EventState,
    pub dead_reason: String,
    pub payload: Vec<u8>,
    pub headers_json: String,
    pub traceparent: String,
    pub occurred_time: Option<i64>,
    pub receive_time: i64,
    /// The subscriptions to deliver it to (only when `state` is pending).
    pub routes: &'static [Route],
}

impl NewEvent {
    pub fn lane(&self) -> String {
        lane(self.tenant.as_ref(), &self.entity_key)
    }

    /// The deliveries to create with it: one per route, when it is pending.
    pub fn deliveries(&self) -> impl Iterator<Item = NewDelivery<'_>> {
        let routed = match (&self.tenant, self.state) {
            (Some(tenant), EventState::Pending) => Some(tenant),
            _ => None,
        };
        routed.into_iter().flat_map(|tenant| {
            let order_time = self.occurred_time.unwrap_or(self.receive_time);
            deliveries_for(&self.event_id, tenant, &self.entity_key, order_time, self.routes, self.receive_time)
        })
    }
}

/// One delivery row to create.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub event_id: &'a str,
    pub subscriber: Subscriber,
    pub lane: String,
    /// The event's own time (its receipt time when it has none): the order within the lane.
    pub order_time: i64,
    pub coalescible: bool,
    pub now: i64,
}

/// The deliveries of a routed event.
pub fn deliveries_for<'a>(
    event_id: &'a str,
    tenant: &TenantId,
    entity_key: &str,
    order_time: i64,
    routes: &'static [Route],
    now: i64,
) -> impl Iterator<Item = NewDelivery<'a>> + use<'a> {
    let lane = lane(Some(tenant), entity_key);
    routes.iter().map(move |r| NewDelivery {
        event_id,
        subscriber: r.subscriber,
        lane: lane.clone(),
        order_time,
        coalescible: r.coalesce,
        now,
    })
}

/// The lane of a tenant's entity (`tenant|entity`; the tenant part empty while unknown).
pub fn lane(tenant: Option<&TenantId>, entity_key: &str) -> String {
    format!("{}|{entity_key}", tenant.map_or("", TenantId::as_str))
}

/// PostgreSQL refuses NUL in text; a sender's strings are stored without it.
pub fn clean(s: &str) -> String {
    if s.contains('\0') { s.replace('\0', "") } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_event_has_one_delivery_per_route_in_its_lane() {
        let event = NewEvent {
            event_id: "e".into(),
            source: "bling",
            source_event_id: "s".into(),
            tenant: Some(TenantId::parse("loja").unwrap()),
            account: String::new(),
            event_type: "order.updated".into(),
            entity_key: "order:1".into(),
            state: EventState::Pending,
            dead_reason: String::new(),
            payload: Vec::new(),
            headers_json: "{}".into(),
            traceparent: String::new(),
            occurred_time: None,
            receive_time: 7,
            routes: &[Route::CATALOG_COALESCED, Route::SHIPPING],
        };
        let got: Vec<_> = event.deliveries().map(|d| (d.subscriber, d.lane, d.order_time, d.coalescible)).collect();
        assert_eq!(
            got,
            [
                (Subscriber::CatalogSync, "loja|order:1".to_owned(), 7, true),
                (Subscriber::ShippingStatus, "loja|order:1".to_owned(), 7, false)
            ]
        );
        let dead = NewEvent { state: EventState::Dead, ..event.clone() };
        assert_eq!(dead.deliveries().count(), 0);
        assert_eq!(NewEvent { tenant: None, ..event }.lane(), "|order:1");
        assert_eq!(clean("a\0b"), "ab");
    }
}
