//! catalog-sync: Bling products and orders into Bitrix24, Bitrix24 products back into Bling,
//! the Bling catalog into CPLUG, full backfills, and the sync status a merchant looks at.

pub mod events;
pub mod products;
mod settings;

use ponte_core::{
    config::ConfigError,
    db::{Database, Migrations},
    service::{Deps, ServiceSpec, TENANT_CACHE_TTL},
    tenants::TenantCheck,
};
use ponte_proto::{service_names, v1::catalog_sync_service_server::CatalogSyncServiceServer};
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
    Ok(Routes::new(CatalogSyncServiceServer::new(CatalogSync { db: deps.db.clone(), tenants })))
}

/// The gRPC implementation.
#[derive(Clone)]
pub struct CatalogSync {
    db: Database,
    tenants: TenantCheck,
}
