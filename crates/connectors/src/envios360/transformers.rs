//! 360Envios's order statuses as ponte's [`ShippingStatus`] and back: the same forward-only
//! life cycle, named once in the proto for every service.

use ponte_proto::v1::ShippingStatus;

use super::types::OrderStatus;

impl From<OrderStatus> for ShippingStatus {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Received => Self::Received,
            OrderStatus::InPackingList => Self::InPackingList,
            OrderStatus::AwaitingShipment => Self::AwaitingShipment,
            OrderStatus::InTransit => Self::InTransit,
            OrderStatus::Delivered => Self::Delivered,
            OrderStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// `SHIPPING_STATUS_UNSPECIFIED` names no status of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an unspecified shipping status is no 360Envios order status")]
pub struct Unspecified;

impl TryFrom<ShippingStatus> for OrderStatus {
    type Error = Unspecified;

    fn try_from(s: ShippingStatus) -> Result<Self, Self::Error> {
        Ok(match s {
            ShippingStatus::Unspecified => return Err(Unspecified),
            ShippingStatus::Received => Self::Received,
            ShippingStatus::InPackingList => Self::InPackingList,
            ShippingStatus::AwaitingShipment => Self::AwaitingShipment,
            ShippingStatus::InTransit => Self::InTransit,
            ShippingStatus::Delivered => Self::Delivered,
            ShippingStatus::Cancelled => Self::Cancelled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envios360::types::StatusWebhook;

    #[test]
    fn the_hubs_statuses_are_ponte_shipping_statuses_both_ways() {
        // The contract's status webhook.
        let body = r#"{"event_id":"5f0c1c3e-1","event":"order.status_changed","occurred_at":"2026-03-02T14:05:11Z",
          "order":{"id":"o_81723","external_id":"12345678","status":"in_transit","previous_status":"awaiting_shipment"}}"#;
        let order = serde_json::from_str::<StatusWebhook>(body).unwrap().order.unwrap();
        assert_eq!(ShippingStatus::from(order.status), ShippingStatus::InTransit);
        assert_eq!(order.previous_status.map(ShippingStatus::from), Some(ShippingStatus::AwaitingShipment));
        use OrderStatus::*;
        for s in [Received, InPackingList, AwaitingShipment, InTransit, Delivered, Cancelled] {
            assert_eq!(OrderStatus::try_from(ShippingStatus::from(s)), Ok(s));
        }
        assert_eq!(OrderStatus::try_from(ShippingStatus::Unspecified), Err(Unspecified));
        // The hub's order is ponte's: a later status is a later shipping status.
        assert!(ShippingStatus::from(InTransit) as i32 > ShippingStatus::from(AwaitingShipment) as i32);
    }
}
