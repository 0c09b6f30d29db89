//! CPLUG's sale webhooks as ponte's contract defines them (`contracts/cplug.md`): `{event_id,
//! event, occurred_at, sale}`, `X-Cplug-Signature` over the raw body, and the two event types,
//! both about the sale `sale.id`.

use serde::Deserialize;

use crate::webhooks::{ContractEvent, Id, event_types, lenient};

event_types! {
    /// The CPLUG event types: a sale was completed, or a completed sale cancelled.
    EventType of "CPLUG" {
        SaleCompleted = "sale.completed",
        SaleCancelled = "sale.cancelled",
    }
}

/// A webhook body, as far as it names the event and its sale (the items and payments are
/// read by its handler).
pub type SaleEvent = ContractEvent<SaleBody>;

/// What a sale event carries beside the envelope.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SaleBody {
    #[serde(default, deserialize_with = "lenient")]
    pub sale: Option<SaleRef>,
}

/// The sale an event is about.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SaleRef {
    /// CPLUG's sale id (`V-000123`).
    #[serde(default, deserialize_with = "lenient")]
    pub id: Option<Id>,
}

impl SaleEvent {
    /// `sale.id`.
    pub fn sale_id(&self) -> Option<&Id> {
        self.body.sale.as_ref()?.id.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_sale_reads() {
        let body = br#"{"event_id":"b1d7","event":"sale.completed","occurred_at":"2026-03-02T14:05:11-03:00",
            "sale":{"id":"V-000123","store_id":"loja-centro","register_id":"caixa-2","number":123,
            "items":[{"sku":"CAM-AZ-M","quantity":2,"unit_price":59.90,"discount":0.00,"name":"Camiseta azul M"}],
            "payments":[{"method":"CREDITO","amount":119.80,"installments":3}],"discount":0.00,"total":119.80}}"#;
        let e = SaleEvent::parse(body).unwrap();
        assert_eq!(e.event_id.as_deref(), Some("b1d7"));
        assert_eq!(e.event.as_deref().map(str::parse), Some(Ok(EventType::SaleCompleted)));
        assert_eq!(e.occurred_ms(), Some(1_772_471_111_000));
        assert_eq!(e.sale_id().map(Id::as_str), Some("V-000123"));
        assert!(SaleEvent::parse(br#"{"event_id":"b","sale":"V-1"}"#).unwrap().sale_id().is_none());
        assert!("sale.refunded".parse::<EventType>().is_err());
    }
}
