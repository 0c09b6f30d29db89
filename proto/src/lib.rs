//! ponte's gRPC contracts: the generated `ponte.v1` messages, clients and servers,
//! and the encoded descriptor set that server reflection serves.

pub mod codec;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("ponte.v1");
}

/// The encoded `FileDescriptorSet` of every `ponte.v1` proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ponte_descriptor.bin"));

/// The fully qualified gRPC service names, as health and reflection report them.
pub mod service_names {
    pub const AUTH_TOKEN: &str = "ponte.v1.AuthTokenService";
    pub const MAPPING: &str = "ponte.v1.MappingService";
    pub const CATALOG_SYNC: &str = "ponte.v1.CatalogSyncService";
    pub const SALES_INGEST: &str = "ponte.v1.SalesIngestService";
    pub const SHIPPING_STATUS: &str = "ponte.v1.ShippingStatusService";
    pub const INBOX: &str = "ponte.v1.InboxService";
    /// Served by every service besides its own.
    pub const TENANT_DATA: &str = "ponte.v1.TenantDataService";
}

impl v1::Flow {
    /// The flow's name in metric labels and logs (`bling_to_bitrix24_products`, …).
    pub fn label(self) -> &'static str {
        match self {
            Self::BlingToBitrix24Products => "bling_to_bitrix24_products",
            Self::BlingToBitrix24Orders => "bling_to_bitrix24_orders",
            Self::Bitrix24ToBlingProducts => "bitrix24_to_bling_products",
            Self::BlingToCplugProducts => "bling_to_cplug_products",
            Self::CplugSalesToBling => "cplug_sales_to_bling",
            Self::BlingToEnvios360Orders => "bling_to_envios360_orders",
            Self::Envios360ToBlingStatus => "envios360_to_bling_status",
            Self::Unspecified => "unspecified",
        }
    }
}

impl v1::EventOutcome {
    /// The outcome's name in ponte's tables, logs and metric labels (`applied`, `skipped`, …).
    pub fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Skipped => "skipped",
            Self::Stale => "stale",
            Self::Parked => "parked",
            Self::Unspecified => "unspecified",
        }
    }

    /// The outcome a label names.
    pub fn from_label(label: &str) -> Option<Self> {
        [Self::Applied, Self::Skipped, Self::Stale, Self::Parked, Self::Unspecified]
            .into_iter()
            .find(|o| o.label() == label)
    }
}
