//! Where a sale stands, as sales-ingest's state machine names it (one word per state in the
//! `sales.state` column), and why a parked sale waits (`sales.park_reason`).
//!
//! received → order_created → posted; parked, failed and cancelled stop; cancelling and moving
//! reverse or move a sale that reached Bling. Between order_created and posted the order
//! exists and its stock is not written off yet.

use ponte_proto::v1::{ParkReason, SaleState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Received,
    OrderCreated,
    Posted,
    Parked,
    Failed,
    Cancelling,
    Cancelled,
    Moving,
}

impl State {
    const ALL: [State; 8] = [
        Self::Received,
        Self::OrderCreated,
        Self::Posted,
        Self::Parked,
        Self::Failed,
        Self::Cancelling,
        Self::Cancelled,
        Self::Moving,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::OrderCreated => "order_created",
            Self::Posted => "posted",
            Self::Parked => "parked",
            Self::Failed => "failed",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
            Self::Moving => "moving",
        }
    }

    /// A stored label; an unknown one (a newer replica's) reads as received, which only
    /// makes the sale be looked at again.
    pub fn from_label(label: &str) -> Self {
        Self::ALL.into_iter().find(|s| s.label() == label).unwrap_or(Self::Received)
    }

    /// The states the worker drives forward.
    pub const ACTIVE: [State; 4] = [Self::Received, Self::OrderCreated, Self::Cancelling, Self::Moving];

    pub fn proto(self) -> SaleState {
        match self {
            Self::Received | Self::OrderCreated => SaleState::Received,
            Self::Posted | Self::Moving => SaleState::Posted,
            Self::Parked => SaleState::Parked,
            Self::Failed => SaleState::Failed,
            Self::Cancelling | Self::Cancelled => SaleState::Cancelled,
        }
    }

    /// The stored states a proto state lists.
    pub fn of_proto(s: SaleState) -> &'static [State] {
        match s {
            SaleState::Unspecified => &Self::ALL,
            SaleState::Received => &[Self::Received, Self::OrderCreated],
            SaleState::Posted => &[Self::Posted, Self::Moving],
            SaleState::Parked => &[Self::Parked],
            SaleState::Failed => &[Self::Failed],
            SaleState::Cancelled => &[Self::Cancelling, Self::Cancelled],
        }
    }
}

/// Why a sale is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Park {
    UnmappedPaymentMethod,
    UnknownSku,
    UnmappedStore,
    NotConnected,
    RejectedByBling,
}

impl Park {
    pub const ALL: [Park; 5] =
        [Self::UnmappedPaymentMethod, Self::UnknownSku, Self::UnmappedStore, Self::NotConnected, Self::RejectedByBling];

    pub const fn label(self) -> &'static str {
        match self {
            Self::UnmappedPaymentMethod => "unmapped_payment_method",
            Self::UnknownSku => "unknown_sku",
            Self::UnmappedStore => "unmapped_store",
            Self::NotConnected => "not_connected",
            Self::RejectedByBling => "rejected_by_bling",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.label() == label)
    }

    pub fn proto(self) -> ParkReason {
        match self {
            Self::UnmappedPaymentMethod => ParkReason::UnmappedPaymentMethod,
            Self::UnknownSku => ParkReason::UnknownSku,
            Self::UnmappedStore => ParkReason::UnmappedStore,
            Self::NotConnected => ParkReason::NotConnected,
            Self::RejectedByBling => ParkReason::RejectedByBling,
        }
    }

    pub fn of_proto(r: ParkReason) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.proto() == r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for s in State::ALL {
            assert_eq!(State::from_label(s.label()), s);
        }
        for p in Park::ALL {
            assert_eq!(Park::from_label(p.label()), Some(p));
            assert_eq!(Park::of_proto(p.proto()), Some(p));
        }
    }
}
