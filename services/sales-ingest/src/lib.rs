//! sales-ingest: point-of-sale sales become Bling sales orders and stock write-offs, exactly
//! once; what cannot be posted yet is parked with a reason and replayed.
//!
//! Layout: the gRPC API in `api`; a sale checked where it comes in (`sale`) and translated into
//! its Bling order by pure functions (`translate`); the sales table, leases and history in
//! `store` (states in `state`); the per-sale state machine in `post`, driven by the `worker`
//! (inline when a worker is free, then its scanner); CPLUG webhooks in `events`; cancellations,
//! moves and replays in `requests`; what the flow reads from Bling in `bling` and `lookups`
//! (products by SKU, contacts), from mapping in `mapping`, the tenant's choices in `settings`,
//! and the "data sync" line in `status`.

mod api;
mod bling;
mod context;
mod events;
mod lookups;
mod mapping;
mod post;
mod requests;
mod sale;
mod settings;
mod state;
mod status;
mod store;
mod translate;
mod worker;

use ponte_connectors::Outside;
use ponte_core::{access::AccessTokens, config::ConfigError, service::Deps};
use ponte_proto::{service_names, v1::sales_ingest_service_server::SalesIngestServiceServer};
use tonic::service::Routes;

ponte_core::service_spec! {
    /// The sales-ingest service as the binary runs it.
    pub static SPEC = { name: "sales-ingest", schema: "sales_ingest", grpc_services: &[service_names::SALES_INGEST, service_names::TENANT_DATA], routes: routes };
}

/// What retention deletes: the sale_history rows older than `PONTE_RETENTION_HISTORY_DAYS`,
/// and the sales posted or cancelled (no cancel pending) unchanged for
/// `PONTE_RETENTION_SALES_DAYS`, with their history. Received, parked, failed and moving sales
/// never go.
pub static RETENTION: [ponte_core::retention::Rule; 2] = [
    ponte_core::history_rule!("sale_history", "seq", "event_time"),
    ponte_core::retention::Rule {
        table: "sales",
        kind: ponte_core::retention::Kind::SettledSales,
        key: ponte_core::retention::KeyType::TenantText,
        pick: "SELECT tenant_id, sale_id FROM sales WHERE state IN ('posted', 'cancelled') AND cancel_requested = 0 \
               AND update_time < $1 ORDER BY update_time LIMIT $2",
        delete: "DELETE FROM sales WHERE (tenant_id, sale_id) IN ({keys}) AND state IN ('posted', 'cancelled') \
                 AND cancel_requested = 0 RETURNING tenant_id, sale_id",
        dependents: &["DELETE FROM sale_history WHERE (tenant_id, sale_id) IN ({keys})"],
        oldest: "SELECT MIN(update_time) FROM sales WHERE state IN ('posted', 'cancelled') AND cancel_requested = 0",
    },
];

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    let tenants = deps.start_flow(&RETENTION)?;
    let outside = Outside::from_env(&deps.env, deps.limiter.clone())?;
    let ctx = context::Context {
        db: deps.db.clone(),
        tokens: AccessTokens::new(deps.auth_token_channel()?),
        mapping: mapping::Mapping::new(deps.mapping_channel()?),
        bling: outside.bling,
        known: Default::default(),
        settings: Default::default(),
        tuning: context::Tuning::from_env(&deps.env)?,
        background: deps.background.clone(),
    };
    Ok(Routes::new(SalesIngestServiceServer::new(api::SalesIngest::new(ctx, tenants)))
        .add_service(ponte_core::erasure::TenantData::server(deps, &ponte_core::erasure::PLAIN)))
}
