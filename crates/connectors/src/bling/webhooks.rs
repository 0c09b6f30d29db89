//! Bling's v3 webhooks (`contracts/bling-v3.md` §7): the envelope `{eventId, date, version,
//! event, companyId, data}` as Bling sends it, one URL for every account, and the event types
//! ponte subscribes to, `<resource>.<action>`, with the resource each is about.

use serde::Deserialize;
use serde_json::Value;

use crate::webhooks::{BodyError, Id, event_types, lenient, parse_object, unix_ms};

event_types! {
    /// The Bling event types ponte acts on.
    EventType of "Bling" {
        ProductCreated = "product.created",
        ProductUpdated = "product.updated",
        ProductDeleted = "product.deleted",
        OrderCreated = "order.created",
        OrderUpdated = "order.updated",
        OrderDeleted = "order.deleted",
    }
}

/// What a Bling event is about: the `<resource>` of its type, whose id is `data.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Product,
    Order,
}

impl Resource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Order => "order",
        }
    }
}

impl EventType {
    pub const fn resource(self) -> Resource {
        match self {
            Self::ProductCreated | Self::ProductUpdated | Self::ProductDeleted => Resource::Product,
            Self::OrderCreated | Self::OrderUpdated | Self::OrderDeleted => Resource::Order,
        }
    }

    /// The resource was deleted for good (a product set to "excluído" fires `updated`).
    pub const fn is_deletion(self) -> bool {
        matches!(self, Self::ProductDeleted | Self::OrderDeleted)
    }
}

/// The payload version ponte reads: the hook's "Versão 1".
pub const VERSION: &str = "v1";

/// A webhook body. Every field is read leniently: one that is missing or malformed is `None`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// A UUID, stable across Bling's retries.
    #[serde(default, deserialize_with = "lenient")]
    pub event_id: Option<String>,
    /// When it happened, ISO 8601.
    #[serde(default, deserialize_with = "lenient")]
    pub date: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub version: Option<String>,
    /// `<resource>.<action>`.
    #[serde(default, deserialize_with = "lenient")]
    pub event: Option<String>,
    /// The account: `/empresas/me/dados-basicos` → `data.id`, byte for byte.
    #[serde(default, deserialize_with = "lenient")]
    pub company_id: Option<String>,
    /// The resource as the event's version shapes it (`{"id": …}` at least).
    #[serde(default)]
    pub data: Value,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, BodyError> {
        parse_object(body)
    }

    /// `date` as Unix milliseconds.
    pub fn occurred_ms(&self) -> Option<i64> {
        self.date.as_deref().and_then(unix_ms)
    }

    /// `data.id`: the id of the resource the event is about.
    pub fn data_id(&self) -> Option<Id> {
        self.data.get("id").and_then(Id::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_envelope_reads() {
        let body = br#"{"eventId":"01945027-150e-72b4-e7cf-4943a042cd9c","date":"2025-01-10T12:18:46Z","version":"v1",
            "event":"product.updated","companyId":"d4475854366a36c86a37e792f9634a51","data":{"id":12345678,"nome":"Copo do Bling"}}"#;
        let e = Envelope::parse(body).unwrap();
        assert_eq!(e.event_id.as_deref(), Some("01945027-150e-72b4-e7cf-4943a042cd9c"));
        assert_eq!(e.company_id.as_deref(), Some("d4475854366a36c86a37e792f9634a51"));
        assert_eq!(e.version.as_deref(), Some(VERSION));
        assert_eq!(e.occurred_ms(), Some(1_736_511_526_000));
        assert_eq!(e.data_id().unwrap().as_str(), "12345678");
        let kind: EventType = e.event.unwrap().parse().unwrap();
        assert_eq!((kind, kind.resource().as_str()), (EventType::ProductUpdated, "product"));
    }

    #[test]
    fn event_types_are_spelled_as_bling_spells_them() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
            assert!(t.as_str().starts_with(t.resource().as_str()), "{t}");
        }
        assert!(EventType::OrderDeleted.is_deletion() && !EventType::OrderUpdated.is_deletion());
        let err = "stock.updated".parse::<EventType>().unwrap_err();
        assert_eq!(err.to_string(), "'stock.updated' is not a Bling event type ponte knows");
    }
}
