//! shipping-status: Bling orders released for shipping go to 360Envios, and 360's status changes move the Bling situação forward.

use ponte_core::{
    config::ConfigError,
    db::Migrations,
    service::{Deps, ServiceSpec},
};
use ponte_proto::{
    service_names,
    v1::{
        GetShipmentRequest, GetShipmentResponse, ListShipmentsRequest, ListShipmentsResponse,
        ShippingStatusServiceGetSyncStatusRequest, ShippingStatusServiceGetSyncStatusResponse,
        ShippingStatusServiceHandleEventRequest, ShippingStatusServiceHandleEventResponse,
        shipping_status_service_server::{ShippingStatusService, ShippingStatusServiceServer},
    },
};
use sqlx::migrate::Migrator;
use tonic::{Request, Response, Status, service::Routes};

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

/// The gRPC implementation; each RPC answers UNIMPLEMENTED, naming itself, until it is built.
#[derive(Clone)]
pub struct ShippingStatus {
    _db: ponte_core::db::Database,
}

fn not_built(rpc: &str) -> Status {
    Status::unimplemented(format!("shipping-status does not serve {rpc} yet"))
}

#[tonic::async_trait]
impl ShippingStatusService for ShippingStatus {
    async fn handle_event(
        &self,
        _: Request<ShippingStatusServiceHandleEventRequest>,
    ) -> Result<Response<ShippingStatusServiceHandleEventResponse>, Status> {
        Err(not_built("HandleEvent"))
    }

    async fn get_shipment(&self, _: Request<GetShipmentRequest>) -> Result<Response<GetShipmentResponse>, Status> {
        Err(not_built("GetShipment"))
    }

    async fn list_shipments(
        &self,
        _: Request<ListShipmentsRequest>,
    ) -> Result<Response<ListShipmentsResponse>, Status> {
        Err(not_built("ListShipments"))
    }

    async fn get_sync_status(
        &self,
        _: Request<ShippingStatusServiceGetSyncStatusRequest>,
    ) -> Result<Response<ShippingStatusServiceGetSyncStatusResponse>, Status> {
        Err(not_built("GetSyncStatus"))
    }
}
