//! catalog-sync: Bling products and orders into Bitrix24, Bitrix24 products back into Bling,
//! the Bling catalog into CPLUG, full backfills, and the sync status a merchant looks at.

mod backfill;
pub mod cplug_sync;
pub mod events;
mod export;
pub mod orders;
pub mod products;
mod settings;
mod status;

use std::sync::Arc;

use backfill::{Backfills, Lifeline};
use ponte_connectors::Outside;
use ponte_core::{
    access::AccessTokens,
    config::ConfigError,
    db::{Database, Migrations},
    service::{Deps, ServiceSpec, TENANT_CACHE_TTL},
    tenants::TenantCheck,
};
use ponte_proto::{
    service_names,
    v1::{catalog_sync_service_server::CatalogSyncServiceServer, mapping_service_client::MappingServiceClient},
};
use products::ProductSync;
use sqlx::migrate::Migrator;
use tonic::service::Routes;

static PG: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATIONS: Migrations = Migrations { postgres: &PG, sqlite: &SQLITE };

/// The catalog-sync service as the binary runs it.
pub static SPEC: ServiceSpec = ServiceSpec {
    name: "catalog-sync",
    schema: "catalog_sync",
    grpc_services: &[service_names::CATALOG_SYNC],
    migrations: &MIGRATIONS,
    routes,
};

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    let tenants = TenantCheck::new(deps.auth_token_channel()?, TENANT_CACHE_TTL);
    let outside = Outside::from_env(&deps.env, deps.limiter.clone())?;
    let sync = ProductSync::new(
        AccessTokens::new(deps.auth_token_channel()?),
        MappingServiceClient::new(deps.mapping_channel()?),
        outside.bling,
        outside.bitrix24,
        deps.locks.clone(),
        outside.http,
    );
    let (backfills, lifeline) = Backfills::new(deps.db.clone(), sync.clone());
    backfills.spawn_scanner();
    Ok(Routes::new(CatalogSyncServiceServer::new(CatalogSync {
        db: deps.db.clone(),
        tenants,
        sync,
        backfills,
        _lifeline: Arc::new(lifeline),
    })))
}

/// The gRPC implementation.
#[derive(Clone)]
pub struct CatalogSync {
    db: Database,
    tenants: TenantCheck,
    sync: ProductSync,
    backfills: Backfills,
    /// Keeps this process's backfill runners going; they stop when the service is dropped.
    _lifeline: Arc<Lifeline>,
}
