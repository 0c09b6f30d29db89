//! shipping-status: Bling orders released for shipping go to 360Envios, and 360's status changes move the Bling situação forward.

use ponte_core::{
    config::ConfigError,
    db::Migrations,
    service::{Deps, ServiceSpec},
};
use ponte_proto::{
    service_names,
    v1::shipping_status_service_server::{ShippingStatusService, ShippingStatusServiceServer},
};
use sqlx::migrate::Migrator;
use tonic::service::Routes;

static PG: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATIONS: Migrations = Migrations { postgres: &PG, sqlite: &SQLITE };

/// The shipping-status service as the binary runs it.
pub static SPEC: ServiceSpec = ServiceSpec {
    name: "shipping-status",
    schema: "shipping_status",
    grpc_services: &[service_names::SHIPPING_STATUS],
    migrations: &MIGRATIONS,
    routes,
};

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    Ok(Routes::new(ShippingStatusServiceServer::new(ShippingStatus { _db: deps.db.clone() })))
}

/// The gRPC implementation. Calls not built yet answer UNIMPLEMENTED.
#[derive(Clone)]
pub struct ShippingStatus {
    _db: ponte_core::db::Database,
}

#[tonic::async_trait]
impl ShippingStatusService for ShippingStatus {}
