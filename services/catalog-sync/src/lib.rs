//! catalog-sync: Bling products and orders into Bitrix24, Bitrix24 products back into Bling,
//! the Bling catalog into CPLUG, full backfills, and the sync status a merchant looks at.
//!
//! Layout: the gRPC API in `api`; one file per live flow (`products`: Bling → Bitrix24
//! products, `orders`: Bling orders → Bitrix24 deals, `export`: Bitrix24 → Bling, `cplug_sync`:
//! Bling → CPLUG), each taking the shared `context` (tokens, clients, caches) and speaking
//! ponte's types to the connectors; `events` dispatches delivered events to them and keeps the
//! `ledger`; `backfill` runs the full copies; `other_flows` asks sales-ingest and shipping-status for
//! their lines of the sync status; `mapping` is the mapping service's client.

mod api;
mod backfill;
mod bling;
mod change;
mod context;
mod cplug_bulks;
mod cplug_sync;
mod events;
mod export;
mod ledger;
mod mapping;
mod orders;
mod other_flows;
mod portal;
mod products;
mod settings;
mod status;

use ponte_connectors::Outside;
use ponte_core::{access::AccessTokens, config::ConfigError, service::Deps};
use ponte_proto::{
    service_names,
    v1::{catalog_sync_service_server::CatalogSyncServiceServer, mapping_service_client::MappingServiceClient},
};
use tonic::service::Routes;

ponte_core::service_spec! {
    /// The catalog-sync service as the binary runs it.
    pub static SPEC = { name: "catalog-sync", schema: "catalog_sync", grpc_services: &[service_names::CATALOG_SYNC, service_names::TENANT_DATA], routes: routes };
}

/// What retention deletes: the event_log rows older than `PONTE_RETENTION_HISTORY_DAYS`.
pub static RETENTION: [ponte_core::retention::Rule; 1] = [ponte_core::history_rule!("event_log", "seq", "handle_time")];

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    let tenants = deps.start_flow(&RETENTION)?;
    let outside = Outside::from_env(&deps.env, deps.limiter.clone())?;
    let ctx = context::Context {
        db: deps.db.clone(),
        tokens: AccessTokens::new(deps.auth_token_channel()?),
        mapping: mapping::Mapping::new(MappingServiceClient::new(deps.mapping_channel()?)),
        bling: outside.bling,
        bitrix24: outside.bitrix24,
        http: outside.http,
        bling_id_keys: portal::BlingIdKeys::new(deps.locks.clone()),
        locks: deps.locks.clone(),
        settings: Default::default(),
        cplug_bulks: Default::default(),
        background: deps.background.clone(),
    };
    let other = other_flows::OtherFlows::new(deps.sales_ingest_channel()?, deps.shipping_status_channel()?);
    Ok(Routes::new(CatalogSyncServiceServer::new(api::CatalogSync::new(ctx, tenants, other)))
        .add_service(ponte_core::erasure::TenantData::server(deps, &ponte_core::erasure::PLAIN)))
}
