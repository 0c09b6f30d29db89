//! Where an event and each of its deliveries stand, with the text `inbox_events.state` and
//! `inbox_deliveries.state` hold. The SQL spells the same labels as literals where the partial
//! indexes need them (`WHERE state = 'pending'`).

use ponte_proto::v1::EventState as ApiState;

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Stored, not yet routed: its tenant could not be resolved on arrival, or it is replayed.
    Received,
    /// Deliveries outstanding.
    Pending,
    Delivered,
    Dead,
    /// Every delivery was replaced by a newer event of the same entity.
    Coalesced,
    /// No ponte service subscribes to its type (Bling `stock.*`, `invoice.*`, …).
    Ignored,
}

impl EventState {
    const ALL: [Self; 6] = [Self::Received, Self::Pending, Self::Delivered, Self::Dead, Self::Coalesced, Self::Ignored];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Coalesced => "coalesced",
            Self::Ignored => "ignored",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.label() == label)
    }

    /// As the operator API shows it: a received event is still on its way.
    pub fn api(self) -> ApiState {
        match self {
            Self::Received | Self::Pending => ApiState::Pending,
            Self::Delivered => ApiState::Delivered,
            Self::Dead => ApiState::Dead,
            Self::Coalesced => ApiState::Coalesced,
            Self::Ignored => ApiState::Ignored,
        }
    }
}

/// Where one delivery of an event to one service stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its turn or its next attempt.
    Pending,
    /// Claimed by a replica, whose lease on it runs until `lease_until`.
    InFlight,
    Delivered,
    Dead,
    /// Replaced by a newer event of the same entity.
    Coalesced,
    /// Waiting while its tenant's licence is inactive (see `dispatch::hold`); it still heads
    /// its lane, so nothing of the entity overtakes it.
    Held,
}

impl DeliveryState {
    const ALL: [Self; 6] = [Self::Pending, Self::InFlight, Self::Delivered, Self::Dead, Self::Coalesced, Self::Held];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in_flight",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Coalesced => "coalesced",
            Self::Held => "held",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.label() == label)
    }

    /// Not finished yet.
    pub fn outstanding(self) -> bool {
        matches!(self, Self::Pending | Self::InFlight | Self::Held)
    }

    /// As the operator API shows it.
    pub fn api(self) -> ApiState {
        match self {
            Self::Pending | Self::InFlight => ApiState::Pending,
            Self::Delivered => ApiState::Delivered,
            Self::Dead => ApiState::Dead,
            Self::Coalesced => ApiState::Coalesced,
            Self::Held => ApiState::Held,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_label() {
        for s in EventState::ALL {
            assert_eq!(EventState::from_label(s.label()), Some(s));
        }
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::from_label(s.label()), Some(s));
        }
        assert_eq!(EventState::from_label("in_flight"), None);
        assert_eq!(DeliveryState::InFlight.api(), ApiState::Pending);
        assert!(DeliveryState::Held.outstanding(), "a held delivery keeps its event pending");
        assert_eq!(EventState::Received.api(), ApiState::Pending);
    }
}
