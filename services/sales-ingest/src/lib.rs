//! sales-ingest: point-of-sale sales become Bling sales orders and stock write-offs, exactly once; what cannot be posted yet is parked with a reason and replayed.

use ponte_core::{
    config::ConfigError,
    db::Migrations,
    service::{Deps, ServiceSpec},
};
use ponte_proto::{
    service_names,
    v1::{
        CancelSaleRequest, CancelSaleResponse, GetSaleRequest, GetSaleResponse, IngestSaleRequest, IngestSaleResponse,
        ListParkedSalesRequest, ListParkedSalesResponse, ReplayParkedRequest, ReplayParkedResponse,
        SalesIngestServiceGetSyncStatusRequest, SalesIngestServiceGetSyncStatusResponse,
        SalesIngestServiceHandleEventRequest, SalesIngestServiceHandleEventResponse,
        sales_ingest_service_server::{SalesIngestService, SalesIngestServiceServer},
    },
};
use sqlx::migrate::Migrator;
use tonic::{Request, Response, Status, service::Routes};

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

/// The gRPC implementation; each RPC answers UNIMPLEMENTED, naming itself, until it is built.
#[derive(Clone)]
pub struct SalesIngest {
    _db: ponte_core::db::Database,
}

fn not_built(rpc: &str) -> Status {
    Status::unimplemented(format!("sales-ingest does not serve {rpc} yet"))
}

#[tonic::async_trait]
impl SalesIngestService for SalesIngest {
    async fn ingest_sale(&self, _: Request<IngestSaleRequest>) -> Result<Response<IngestSaleResponse>, Status> {
        Err(not_built("IngestSale"))
    }

    async fn cancel_sale(&self, _: Request<CancelSaleRequest>) -> Result<Response<CancelSaleResponse>, Status> {
        Err(not_built("CancelSale"))
    }

    async fn get_sale(&self, _: Request<GetSaleRequest>) -> Result<Response<GetSaleResponse>, Status> {
        Err(not_built("GetSale"))
    }

    async fn list_parked_sales(
        &self,
        _: Request<ListParkedSalesRequest>,
    ) -> Result<Response<ListParkedSalesResponse>, Status> {
        Err(not_built("ListParkedSales"))
    }

    async fn replay_parked(&self, _: Request<ReplayParkedRequest>) -> Result<Response<ReplayParkedResponse>, Status> {
        Err(not_built("ReplayParked"))
    }

    async fn handle_event(
        &self,
        _: Request<SalesIngestServiceHandleEventRequest>,
    ) -> Result<Response<SalesIngestServiceHandleEventResponse>, Status> {
        Err(not_built("HandleEvent"))
    }

    async fn get_sync_status(
        &self,
        _: Request<SalesIngestServiceGetSyncStatusRequest>,
    ) -> Result<Response<SalesIngestServiceGetSyncStatusResponse>, Status> {
        Err(not_built("GetSyncStatus"))
    }
}
