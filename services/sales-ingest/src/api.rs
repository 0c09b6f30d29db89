//! sales-ingest's gRPC API (`SalesIngestService`): each RPC checks its request (tenants parsed
//! and looked up once, a sale checked field by field) and hands it to the module that owns the
//! work; sales are answered as `SaleRecord`s, with their history for `GetSale`.

use std::sync::Arc;

use ponte_core::{
    TenantId,
    db::page,
    error::ServiceError,
    tenants::TenantCheck,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{
    CancelSaleRequest, CancelSaleResponse, GetSaleRequest, GetSaleResponse, GetSalesSettingsRequest,
    GetSalesSettingsResponse, IngestSaleRequest, IngestSaleResponse, ListParkedSalesRequest, ListParkedSalesResponse,
    ListSalesRequest, ListSalesResponse, MoveSaleRequest, MoveSaleResponse, ParkReason, ReplayParkedRequest,
    ReplayParkedResponse, SaleHistoryEntry, SaleRecord, SaleState, SalesIngestServiceGetSyncStatusRequest,
    SalesIngestServiceGetSyncStatusResponse, SalesIngestServiceHandleEventRequest,
    SalesIngestServiceHandleEventResponse, UpdateSalesSettingsRequest, UpdateSalesSettingsResponse,
    sales_ingest_service_server::SalesIngestService,
};
use tonic::{Request, Response, Status};

use crate::{
    context::Context,
    events, requests,
    sale::{Sale, check_id},
    settings,
    state::{Park, State},
    status,
    store::{self, Key, Row},
    worker::{Lifeline, Worker},
};

#[derive(Clone)]
pub(crate) struct SalesIngest {
    ctx: Context,
    tenants: TenantCheck,
    worker: Arc<Worker>,
    /// Keeps the worker going; it stops when the service is dropped.
    _lifeline: Arc<Lifeline>,
}

impl SalesIngest {
    pub fn new(ctx: Context, tenants: TenantCheck) -> Self {
        let (worker, lifeline) = Worker::start(ctx.clone());
        Self { ctx, tenants, worker, _lifeline: Arc::new(lifeline) }
    }

    async fn key(&self, tenant: &str, sale_id: &str) -> Result<Key, ServiceError> {
        let tenant = self.tenants.require_field("tenant_id", tenant).await?;
        Ok(Key { tenant, sale_id: check_id("sale_id", sale_id)? })
    }

    async fn record(&self, row: Row, with_history: bool) -> Result<SaleRecord, ServiceError> {
        let history = if with_history {
            store::history(&self.ctx.db, &row.key())
                .await?
                .into_iter()
                .map(|h| SaleHistoryEntry {
                    time: Some(to_timestamp(h.event_time)),
                    action: h.action,
                    outcome: h.outcome,
                    detail: h.detail,
                    trace_id: h.trace_id,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(record(row, history))
    }

    async fn records(&self, rows: Vec<Row>) -> Result<Vec<SaleRecord>, ServiceError> {
        Ok(rows.into_iter().map(|r| record(r, Vec::new())).collect())
    }
}

/// A stored sale as the API shows it.
pub(crate) fn record(row: Row, history: Vec<SaleHistoryEntry>) -> SaleRecord {
    let state = row.shown_state();
    let sale = row.sale().ok().flatten().map(|s| s.to_proto());
    SaleRecord {
        tenant_id: row.tenant_id.clone(),
        sale: sale.or_else(|| Some(ponte_proto::v1::Sale { sale_id: row.sale_id.clone(), ..Default::default() })),
        state: state.proto() as i32,
        park_reason: if state == State::Parked {
            row.park().map_or(ParkReason::Unspecified, Park::proto) as i32
        } else {
            0
        },
        parked_reason: if state == State::Parked { row.reason.clone() } else { String::new() },
        bling_order_id: row.bling_order_id,
        stock_written_off: row.stock_deposito_id != 0,
        receive_time: Some(to_timestamp(row.receive_time)),
        update_time: Some(to_timestamp(row.update_time)),
        cplug_store_id: row.store_id.clone(),
        bling_deposito_id: row.stock_deposito_id,
        failure: if state == State::Failed { row.reason.clone() } else { String::new() },
        cancel_requested: row.cancel_requested == 1 && state != State::Cancelled,
        history,
    }
}

fn next_page(rows: &[Row], limit: i64) -> String {
    match rows.last() {
        Some(last) if rows.len() as i64 == limit => page::encode(&format!("{}/{}", last.receive_time, last.sale_id)),
        _ => String::new(),
    }
}

#[tonic::async_trait]
impl SalesIngestService for SalesIngest {
    async fn ingest_sale(&self, req: Request<IngestSaleRequest>) -> Result<Response<IngestSaleResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let sale = req.sale.ok_or_else(|| ServiceError::invalid("sale", "is required"))?;
        let sale = Sale::check(&sale, now_millis())?;
        let key = Key { tenant, sale_id: sale.sale_id.clone() };
        let row = match store::receive(&self.ctx.db, &key, &sale, "IngestSale", now_millis()).await? {
            store::Stored::New(row) | store::Stored::Existing(row) if row.state() == State::Received => {
                self.worker.run_now(&key).await?
            }
            store::Stored::New(row) | store::Stored::Existing(row) => row,
        };
        Ok(Response::new(IngestSaleResponse { record: Some(self.record(row, false).await?) }))
    }

    async fn cancel_sale(&self, req: Request<CancelSaleRequest>) -> Result<Response<CancelSaleResponse>, Status> {
        let req = req.into_inner();
        let key = self.key(&req.tenant_id, &req.sale_id).await?;
        let why = if req.reason.trim().is_empty() { "CancelSale".to_owned() } else { req.reason.trim().to_owned() };
        let row = requests::cancel(&self.ctx, &self.worker, &key, &why).await?;
        Ok(Response::new(CancelSaleResponse { record: Some(self.record(row, false).await?) }))
    }

    async fn get_sale(&self, req: Request<GetSaleRequest>) -> Result<Response<GetSaleResponse>, Status> {
        let req = req.into_inner();
        let key = self.key(&req.tenant_id, &req.sale_id).await?;
        let row = store::require(&self.ctx.db, &key).await?;
        Ok(Response::new(GetSaleResponse { record: Some(self.record(row, true).await?) }))
    }

    async fn list_parked_sales(
        &self,
        req: Request<ListParkedSalesRequest>,
    ) -> Result<Response<ListParkedSalesResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let park = match ParkReason::try_from(req.park_reason) {
            Ok(ParkReason::Unspecified) => None,
            Ok(r) => Park::of_proto(r),
            Err(_) => return Err(ServiceError::invalid("park_reason", "is not a park reason").into()),
        };
        let limit = page::size(req.page_size);
        let after = page::decode(&req.page_token)?;
        let rows = store::list(&self.ctx.db, &tenant, &[State::Parked], park, &after, limit, true).await?;
        let next_page_token = next_page(&rows, limit);
        Ok(Response::new(ListParkedSalesResponse { records: self.records(rows).await?, next_page_token }))
    }

    async fn replay_parked(&self, req: Request<ReplayParkedRequest>) -> Result<Response<ReplayParkedResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let ids = req
            .sale_ids
            .iter()
            .enumerate()
            .map(|(i, id)| check_id(&format!("sale_ids[{i}]"), id))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = requests::replay(&self.ctx, &self.worker, &tenant, &ids).await?;
        Ok(Response::new(ReplayParkedResponse { records: self.records(rows).await? }))
    }

    async fn move_sale(&self, req: Request<MoveSaleRequest>) -> Result<Response<MoveSaleResponse>, Status> {
        let req = req.into_inner();
        let key = self.key(&req.tenant_id, &req.sale_id).await?;
        let to = check_id("to_store_id", &req.to_store_id)?;
        let row = requests::move_sale(&self.ctx, &self.worker, &key, &to).await?;
        Ok(Response::new(MoveSaleResponse { record: Some(self.record(row, false).await?) }))
    }

    async fn list_sales(&self, req: Request<ListSalesRequest>) -> Result<Response<ListSalesResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let state =
            SaleState::try_from(req.state).map_err(|_| ServiceError::invalid("state", "is not a sale state"))?;
        let limit = page::size(req.page_size);
        let after = page::decode(&req.page_token)?;
        let rows = store::list(&self.ctx.db, &tenant, State::of_proto(state), None, &after, limit, false).await?;
        let next_page_token = next_page(&rows, limit);
        Ok(Response::new(ListSalesResponse { records: self.records(rows).await?, next_page_token }))
    }

    async fn get_sales_settings(
        &self,
        req: Request<GetSalesSettingsRequest>,
    ) -> Result<Response<GetSalesSettingsResponse>, Status> {
        let tenant = self.tenants.require_field("tenant_id", &req.into_inner().tenant_id).await?;
        let settings = settings::load(&self.ctx.db, &tenant).await?;
        Ok(Response::new(GetSalesSettingsResponse { settings: Some(settings) }))
    }

    async fn update_sales_settings(
        &self,
        req: Request<UpdateSalesSettingsRequest>,
    ) -> Result<Response<UpdateSalesSettingsResponse>, Status> {
        let s = req.into_inner().settings.ok_or_else(|| ServiceError::invalid("settings", "is required"))?;
        let tenant = self.tenants.require_field("settings.tenant_id", &s.tenant_id).await?;
        let stored = settings::store(&self.ctx.db, &tenant, s).await?;
        self.ctx.settings.forget(&tenant).await;
        Ok(Response::new(UpdateSalesSettingsResponse { settings: Some(stored) }))
    }

    async fn handle_event(
        &self,
        req: Request<SalesIngestServiceHandleEventRequest>,
    ) -> Result<Response<SalesIngestServiceHandleEventResponse>, Status> {
        Ok(Response::new(events::handle(&self.ctx, &self.worker, req.into_inner().event).await?))
    }

    async fn get_sync_status(
        &self,
        req: Request<SalesIngestServiceGetSyncStatusRequest>,
    ) -> Result<Response<SalesIngestServiceGetSyncStatusResponse>, Status> {
        let tenant: TenantId = self.tenants.require_field("tenant_id", &req.into_inner().tenant_id).await?;
        let status = status::sync_status(&self.ctx.db, &tenant).await?;
        Ok(Response::new(SalesIngestServiceGetSyncStatusResponse { status: Some(status) }))
    }
}
