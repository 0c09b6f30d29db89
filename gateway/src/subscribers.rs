//! The ponte services that handle inbox events, and one subscription: who gets an event type
//! and whether a run of queued events of one entity may be collapsed into the newest. Which
//! types each sender's events go to is in `sources`.

/// A ponte service that handles inbox events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subscriber {
    CatalogSync,
    SalesIngest,
    ShippingStatus,
}

impl Subscriber {
    pub const ALL: [Subscriber; 3] = [Self::CatalogSync, Self::SalesIngest, Self::ShippingStatus];

    /// Its name, as `inbox_deliveries.subscriber` and metrics labels hold it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CatalogSync => "catalog-sync",
            Self::SalesIngest => "sales-ingest",
            Self::ShippingStatus => "shipping-status",
        }
    }

    /// The gRPC service and method a delivery to it calls (span attributes `rpc.service`, `rpc.method`).
    pub const fn rpc(self) -> (&'static str, &'static str) {
        match self {
            Self::CatalogSync => (ponte_proto::service_names::CATALOG_SYNC, "HandleEvent"),
            Self::SalesIngest => (ponte_proto::service_names::SALES_INGEST, "HandleEvent"),
            Self::ShippingStatus => (ponte_proto::service_names::SHIPPING_STATUS, "HandleEvent"),
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One subscription. Collapsing is right where the handler re-reads the source, wrong where
/// every event is a fact of its own, like a sale or a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub subscriber: Subscriber,
    pub coalesce: bool,
}

impl Route {
    pub const CATALOG: Route = Route { subscriber: Subscriber::CatalogSync, coalesce: false };
    pub const CATALOG_COALESCED: Route = Route { subscriber: Subscriber::CatalogSync, coalesce: true };
    pub const SALES: Route = Route { subscriber: Subscriber::SalesIngest, coalesce: false };
    pub const SHIPPING: Route = Route { subscriber: Subscriber::ShippingStatus, coalesce: false };
}
