//! sales-ingest: point-of-sale sales become Bling sales orders and stock write-offs, exactly once; what cannot be posted yet is parked with a reason and replayed.

use ponte_core::{
    config::ConfigError,
    db::Migrations,
    service::{Deps, ServiceSpec},
};
use ponte_proto::{
    service_names,
    v1::sales_ingest_service_server::{SalesIngestService, SalesIngestServiceServer},
};
use sqlx::migrate::Migrator;
use tonic::service::Routes;

static PG: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATIONS: Migrations = Migrations { postgres: &PG, sqlite: &SQLITE };

/// The sales-ingest service as the binary runs it.
pub static SPEC: ServiceSpec = ServiceSpec {
    name: "sales-ingest",
    schema: "sales_ingest",
    grpc_services: &[service_names::SALES_INGEST],
    migrations: &MIGRATIONS,
    routes,
};

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    Ok(Routes::new(SalesIngestServiceServer::new(SalesIngest { _db: deps.db.clone() })))
}

/// The gRPC implementation. Calls not built yet answer UNIMPLEMENTED.
#[derive(Clone)]
pub struct SalesIngest {
    _db: ponte_core::db::Database,
}

#[tonic::async_trait]
impl SalesIngestService for SalesIngest {}
