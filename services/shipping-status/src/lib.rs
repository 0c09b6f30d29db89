//! shipping-status: Bling orders released for shipping go to 360Envios, and 360's status changes
//! move the Bling situação forward.
//!
//! Layout: the gRPC API in `api`; `events` checks each delivered event and hands it to its flow,
//! one file per step: `orders` (a Bling order event: skip, echo, release or change), `release`
//! (the order and its products created at 360), `changes` (later edits, cancellations, a release
//! after a cancellation), `hub_status` (360's status moves the Bling situação, forward only),
//! `approvals` (360's verdict on a product). `setup` makes the situações and their map;
//! `order_body` is the 360 order a Bling order becomes; `echo` recognises Bling echoing ponte's
//! own situação writes. State: `shipments` (the rows), `history` (what touched each), and
//! `sync_status`. The outside systems are reached through `bling` and `hub`, the mapping
//! service through `mapping`, all shared in `context`.

mod api;
mod approvals;
mod bling;
mod changes;
mod context;
mod echo;
mod events;
mod history;
mod hub;
mod hub_status;
mod mapping;
mod order_body;
mod orders;
mod products;
mod release;
mod setup;
mod shipments;
mod sync_status;

use ponte_connectors::Outside;
use ponte_core::{access::AccessTokens, config::ConfigError, service::Deps};
use ponte_proto::{
    service_names,
    v1::{mapping_service_client::MappingServiceClient, shipping_status_service_server::ShippingStatusServiceServer},
};
use tonic::service::Routes;

ponte_core::service_spec! {
    /// The shipping-status service as the binary runs it.
    pub static SPEC = { name: "shipping-status", schema: "shipping_status", grpc_services: &[service_names::SHIPPING_STATUS, service_names::TENANT_DATA], routes: routes };
}

/// What retention deletes: the history rows older than `PONTE_RETENTION_HISTORY_DAYS`, and the
/// shipments delivered or cancelled, unchanged for `PONTE_RETENTION_SHIPMENTS_DAYS`, with their
/// products and history. Shipments on their way never go.
pub static RETENTION: [ponte_core::retention::Rule; 2] = [
    ponte_core::history_rule!("history", "id", "at"),
    ponte_core::retention::Rule {
        table: "shipments",
        kind: ponte_core::retention::Kind::SettledShipments,
        key: ponte_core::retention::KeyType::TenantInt,
        pick: "SELECT tenant_id, bling_order_id FROM shipments \
               WHERE status IN ('SHIPPING_STATUS_DELIVERED', 'SHIPPING_STATUS_CANCELLED') \
               AND update_time < $1 ORDER BY update_time LIMIT $2",
        delete: "DELETE FROM shipments WHERE (tenant_id, bling_order_id) IN ({keys}) \
                 AND status IN ('SHIPPING_STATUS_DELIVERED', 'SHIPPING_STATUS_CANCELLED') \
                 RETURNING tenant_id, bling_order_id",
        dependents: &[
            "DELETE FROM shipment_products WHERE (tenant_id, bling_order_id) IN ({keys})",
            "DELETE FROM history WHERE (tenant_id, bling_order_id) IN ({keys})",
        ],
        oldest: "SELECT MIN(update_time) FROM shipments \
                 WHERE status IN ('SHIPPING_STATUS_DELIVERED', 'SHIPPING_STATUS_CANCELLED')",
    },
];

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    let tenants = deps.start_flow(&RETENTION)?;
    let outside = Outside::from_env(&deps.env, deps.limiter.clone())?;
    let ctx = context::Context {
        db: deps.db.clone(),
        tokens: AccessTokens::new(deps.auth_token_channel()?),
        mapping: mapping::Mapping::new(MappingServiceClient::new(deps.mapping_channel()?)),
        bling: outside.bling,
        hub: outside.envios360,
    };
    Ok(Routes::new(ShippingStatusServiceServer::new(api::ShippingStatus::new(ctx, tenants)))
        .add_service(ponte_core::erasure::TenantData::server(deps, &ponte_core::erasure::PLAIN)))
}
