//! 360Envios's status webhooks as ponte's contract defines them (`contracts/envios360.md`):
//! `{event_id, event, occurred_at, order | product}`, `X-360-Signature` over the raw body, and
//! the two event types with the object each is about, keyed by its `external_id` (the Bling
//! id). This is what is read before the body is trusted; the whole body, typed strictly, is
//! [`super::types::StatusWebhook`].

use serde::Deserialize;

use crate::webhooks::{ContractEvent, Id, event_types, lenient};

event_types! {
    /// The 360Envios event types.
    EventType of "360Envios" {
        OrderStatusChanged = "order.status_changed",
        ProductApprovalChanged = "product.approval_changed",
    }
}

/// The object an event is about: the body's field of that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Order,
    Product,
}

impl Subject {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Product => "product",
        }
    }
}

impl EventType {
    pub const fn subject(self) -> Subject {
        match self {
            Self::OrderStatusChanged => Subject::Order,
            Self::ProductApprovalChanged => Subject::Product,
        }
    }
}

/// A webhook body, as far as it names the event and its object.
pub type StatusEvent = ContractEvent<StatusBody>;

/// What a status event carries beside the envelope: the object it is about.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusBody {
    #[serde(default, deserialize_with = "lenient")]
    pub order: Option<ExternalRef>,
    #[serde(default, deserialize_with = "lenient")]
    pub product: Option<ExternalRef>,
}

/// An order or product as a webhook names it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExternalRef {
    /// The Bling id ponte created it with.
    #[serde(default, deserialize_with = "lenient")]
    pub external_id: Option<Id>,
}

impl StatusEvent {
    /// `<subject>.external_id`.
    pub fn external_id(&self, subject: Subject) -> Option<&Id> {
        let object = match subject {
            Subject::Order => &self.body.order,
            Subject::Product => &self.body.product,
        };
        object.as_ref()?.external_id.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_events_read() {
        let e = StatusEvent::parse(
            br#"{"event_id":"5f0c1c3e","event":"order.status_changed","occurred_at":"2026-03-02T14:05:11Z",
                "order":{"id":"o_81723","external_id":"12345678","status":"in_transit","previous_status":"awaiting_shipment"}}"#,
        )
        .unwrap();
        let kind: EventType = e.event.as_deref().unwrap().parse().unwrap();
        assert_eq!(kind.subject(), Subject::Order);
        assert_eq!(e.external_id(kind.subject()).map(Id::as_str), Some("12345678"));
        assert_eq!(e.occurred_ms(), Some(1_772_460_311_000));
        let p = StatusEvent::parse(
            br#"{"event_id":"9","event":"product.approval_changed","product":{"id":"p_1","external_id":16059781281,"approval_status":"approved"}}"#,
        )
        .unwrap();
        assert_eq!(p.external_id(Subject::Product).map(Id::as_str), Some("16059781281"));
        assert!(p.external_id(Subject::Order).is_none());
    }
}
