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
use ponte_connectors::{bitrix24::Bitrix24Client, bling::BlingApi};
use ponte_core::{
    access::AccessTokens,
    config::ConfigError,
    db::{Database, Migrations},
    ratelimit::Quota,
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
    let http = ponte_connectors::http::client();
    let bling_url = deps.env.http_url_or("PONTE_BLING_API_URL", "https://api.bling.com.br/Api/v3")?;
    // Time runs this many times faster for the outside systems' quotas: only for sandboxes
    // whose own limits are scaled the same way (tests, benchmarks). 1 is the real limits.
    let scale: f64 = deps.env.parse_or("PONTE_RATE_LIMIT_SCALE", 1.0, "a positive number")?;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(ConfigError::new("PONTE_RATE_LIMIT_SCALE", "must be a positive number"));
    }
    let sync = ProductSync::new(
        AccessTokens::new(deps.auth_token_channel()?),
        MappingServiceClient::new(deps.mapping_channel()?),
        BlingApi::new(http.clone(), &bling_url, deps.limiter.clone(), Quota::bling().scaled(scale)),
        Bitrix24Client::new(http.clone(), deps.limiter.clone(), Quota::bitrix24().scaled(scale)),
        deps.locks.clone(),
        http,
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
