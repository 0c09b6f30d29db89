//! catalog-sync's gRPC API (`CatalogSyncService`): each RPC checks its request, then hands it
//! to the module that owns the work: events, backfills, sync status, settings.

use std::sync::Arc;

use ponte_core::{error::ServiceError, tenants::TenantCheck};
use ponte_proto::v1::{
    CancelBackfillRequest, CancelBackfillResponse, CatalogSyncServiceHandleEventRequest,
    CatalogSyncServiceHandleEventResponse, GetBackfillRequest, GetBackfillResponse, GetEntityHistoryRequest,
    GetEntityHistoryResponse, GetSyncSettingsRequest, GetSyncSettingsResponse, GetSyncStatusRequest,
    GetSyncStatusResponse, StartBackfillRequest, StartBackfillResponse, UpdateSyncSettingsRequest,
    UpdateSyncSettingsResponse, WatchBackfillRequest, WatchBackfillResponse,
    catalog_sync_service_server::CatalogSyncService,
};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, codegen::BoxStream};

use crate::{
    backfill::{Backfills, Lifeline},
    context::Context,
    events, ledger,
    other_flows::OtherFlows,
    settings, status,
};

/// The gRPC implementation.
#[derive(Clone)]
pub(crate) struct CatalogSync {
    ctx: Context,
    tenants: TenantCheck,
    other_flows: OtherFlows,
    backfills: Backfills,
    /// Keeps this process's backfill runners going; they stop when the service is dropped.
    _lifeline: Arc<Lifeline>,
}

impl CatalogSync {
    /// The service, its backfill runners started.
    pub fn new(ctx: Context, tenants: TenantCheck, other_flows: OtherFlows) -> Self {
        let (backfills, lifeline) = Backfills::new(ctx.clone());
        backfills.spawn_scanner();
        Self { ctx, tenants, other_flows, backfills, _lifeline: Arc::new(lifeline) }
    }
}

#[tonic::async_trait]
impl CatalogSyncService for CatalogSync {
    type WatchBackfillStream = BoxStream<WatchBackfillResponse>;

    async fn handle_event(
        &self,
        req: Request<CatalogSyncServiceHandleEventRequest>,
    ) -> Result<Response<CatalogSyncServiceHandleEventResponse>, Status> {
        Ok(Response::new(events::handle(&self.ctx, req.into_inner()).await?))
    }

    async fn start_backfill(
        &self,
        req: Request<StartBackfillRequest>,
    ) -> Result<Response<StartBackfillResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let backfill = self.backfills.start(&tenant, req).await?;
        Ok(Response::new(StartBackfillResponse { backfill: Some(backfill) }))
    }

    async fn get_backfill(&self, req: Request<GetBackfillRequest>) -> Result<Response<GetBackfillResponse>, Status> {
        let backfill = self.backfills.get(&req.into_inner().backfill_id).await?;
        Ok(Response::new(GetBackfillResponse { backfill: Some(backfill) }))
    }

    async fn watch_backfill(
        &self,
        req: Request<WatchBackfillRequest>,
    ) -> Result<Response<BoxStream<WatchBackfillResponse>>, Status> {
        let updates = self.backfills.watch(&req.into_inner().backfill_id).await?;
        let stream = ReceiverStream::new(updates).map(|b| Ok(WatchBackfillResponse { backfill: Some(b) }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_backfill(
        &self,
        req: Request<CancelBackfillRequest>,
    ) -> Result<Response<CancelBackfillResponse>, Status> {
        let backfill = self.backfills.cancel(&req.into_inner().backfill_id).await?;
        Ok(Response::new(CancelBackfillResponse { backfill: Some(backfill) }))
    }

    async fn get_sync_status(
        &self,
        req: Request<GetSyncStatusRequest>,
    ) -> Result<Response<GetSyncStatusResponse>, Status> {
        let tenant = self.tenants.require_field("tenant_id", &req.into_inner().tenant_id).await?;
        let mut flows = status::sync_status(&self.ctx.db, &tenant).await?;
        flows.extend(self.other_flows.of(&tenant).await);
        Ok(Response::new(GetSyncStatusResponse { flows }))
    }

    async fn get_sync_settings(
        &self,
        req: Request<GetSyncSettingsRequest>,
    ) -> Result<Response<GetSyncSettingsResponse>, Status> {
        let tenant = self.tenants.require_field("tenant_id", &req.into_inner().tenant_id).await?;
        let settings = settings::load(&self.ctx.db, &tenant).await?;
        Ok(Response::new(GetSyncSettingsResponse { settings: Some(settings) }))
    }

    async fn update_sync_settings(
        &self,
        req: Request<UpdateSyncSettingsRequest>,
    ) -> Result<Response<UpdateSyncSettingsResponse>, Status> {
        let mut settings = req.into_inner().settings.ok_or_else(|| ServiceError::invalid("settings", "is required"))?;
        settings::validate_deal_stages(&settings.deal_stages)?;
        settings.deal_stages.sort_by_key(|m| m.bling_situacao_id);
        let tenant = self.tenants.require_field("settings.tenant_id", &settings.tenant_id).await?;
        settings::store(&self.ctx.db, &settings).await?;
        self.ctx.settings.forget(&tenant).await;
        Ok(Response::new(UpdateSyncSettingsResponse { settings: Some(settings) }))
    }

    async fn get_entity_history(
        &self,
        req: Request<GetEntityHistoryRequest>,
    ) -> Result<Response<GetEntityHistoryResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        check_entity(&req.entity)?;
        let entries = ledger::history(&self.ctx.db, &tenant, &req.entity).await?;
        Ok(Response::new(GetEntityHistoryResponse { entries }))
    }
}

/// An entity as the gateway keys it: `<kind>:<id>`.
fn check_entity(entity: &str) -> Result<(), ServiceError> {
    match entity.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() && entity.len() <= 200 => Ok(()),
        _ => Err(ServiceError::invalid("entity", "must be '<kind>:<id>', e.g. 'product:16059781281'")),
    }
}
