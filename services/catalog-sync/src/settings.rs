//! The per-tenant sync switches. A tenant that never saved any gets the defaults the merchant
//! expects from the Bitrix24 app: creation and changes in Bling reach Bitrix24; export back to
//! Bling, orders as deals and the CPLUG catalog are opt-in.

use ponte_core::{db::Database, error::ServiceError, time::now_millis};
use ponte_proto::v1::{
    CancelBackfillRequest, CancelBackfillResponse, CatalogSyncServiceHandleEventRequest,
    CatalogSyncServiceHandleEventResponse, GetBackfillRequest, GetBackfillResponse, GetSyncSettingsRequest,
    GetSyncSettingsResponse, GetSyncStatusRequest, GetSyncStatusResponse, StartBackfillRequest, StartBackfillResponse,
    SyncSettings, UpdateSyncSettingsRequest, UpdateSyncSettingsResponse, WatchBackfillRequest, WatchBackfillResponse,
    catalog_sync_service_server::CatalogSyncService,
};
use sqlx::Row;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, codegen::BoxStream};

use crate::CatalogSync;

pub fn defaults(tenant_id: &str) -> SyncSettings {
    SyncSettings {
        tenant_id: tenant_id.to_owned(),
        bling_create_creates_in_bitrix24: true,
        bling_update_updates_bitrix24: true,
        bitrix24_export_to_bling: false,
        orders_to_bitrix24: false,
        catalog_to_cplug: false,
        cplug_grid_enabled: false,
    }
}

pub async fn load(db: &Database, tenant_id: &str) -> Result<SyncSettings, ServiceError> {
    let row = sqlx::query(
        "SELECT bling_create_creates_in_bitrix24, bling_update_updates_bitrix24, bitrix24_export_to_bling, \
         orders_to_bitrix24, catalog_to_cplug, cplug_grid_enabled FROM sync_settings WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(defaults(tenant_id)) };
    Ok(SyncSettings {
        tenant_id: tenant_id.to_owned(),
        bling_create_creates_in_bitrix24: row.try_get(0)?,
        bling_update_updates_bitrix24: row.try_get(1)?,
        bitrix24_export_to_bling: row.try_get(2)?,
        orders_to_bitrix24: row.try_get(3)?,
        catalog_to_cplug: row.try_get(4)?,
        cplug_grid_enabled: row.try_get(5)?,
    })
}

pub async fn store(db: &Database, s: &SyncSettings) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO sync_settings (tenant_id, bling_create_creates_in_bitrix24, bling_update_updates_bitrix24, \
         bitrix24_export_to_bling, orders_to_bitrix24, catalog_to_cplug, cplug_grid_enabled, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id) DO UPDATE SET \
         bling_create_creates_in_bitrix24 = excluded.bling_create_creates_in_bitrix24, \
         bling_update_updates_bitrix24 = excluded.bling_update_updates_bitrix24, \
         bitrix24_export_to_bling = excluded.bitrix24_export_to_bling, \
         orders_to_bitrix24 = excluded.orders_to_bitrix24, catalog_to_cplug = excluded.catalog_to_cplug, \
         cplug_grid_enabled = excluded.cplug_grid_enabled, update_time = excluded.update_time",
    )
    .bind(&s.tenant_id)
    .bind(s.bling_create_creates_in_bitrix24)
    .bind(s.bling_update_updates_bitrix24)
    .bind(s.bitrix24_export_to_bling)
    .bind(s.orders_to_bitrix24)
    .bind(s.catalog_to_cplug)
    .bind(s.cplug_grid_enabled)
    .bind(now_millis())
    .execute(db.pool())
    .await?;
    Ok(())
}

#[tonic::async_trait]
impl CatalogSyncService for CatalogSync {
    async fn handle_event(
        &self,
        req: Request<CatalogSyncServiceHandleEventRequest>,
    ) -> Result<Response<CatalogSyncServiceHandleEventResponse>, Status> {
        Ok(Response::new(crate::events::handle(&self.db, &self.sync, req.into_inner()).await?))
    }

    async fn start_backfill(
        &self,
        req: Request<StartBackfillRequest>,
    ) -> Result<Response<StartBackfillResponse>, Status> {
        let req = req.into_inner();
        ServiceError::require("tenant_id", &req.tenant_id)?;
        self.tenants.require(req.tenant_id.trim()).await?;
        let backfill = self.backfills.start(req).await?;
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
        let tenant_id = req.into_inner().tenant_id;
        ServiceError::require("tenant_id", &tenant_id)?;
        self.tenants.require(tenant_id.trim()).await?;
        let flows = crate::status::sync_status(&self.db, tenant_id.trim()).await?;
        Ok(Response::new(GetSyncStatusResponse { flows }))
    }

    async fn get_sync_settings(
        &self,
        req: Request<GetSyncSettingsRequest>,
    ) -> Result<Response<GetSyncSettingsResponse>, Status> {
        let tenant_id = req.into_inner().tenant_id;
        self.tenants.require(&tenant_id).await?;
        let settings = load(&self.db, &tenant_id).await?;
        Ok(Response::new(GetSyncSettingsResponse { settings: Some(settings) }))
    }

    async fn update_sync_settings(
        &self,
        req: Request<UpdateSyncSettingsRequest>,
    ) -> Result<Response<UpdateSyncSettingsResponse>, Status> {
        let settings = req.into_inner().settings.ok_or_else(|| ServiceError::invalid("settings", "is required"))?;
        self.tenants.require(&settings.tenant_id).await.map_err(|e| match e {
            ServiceError::InvalidArgument { message, .. } => ServiceError::invalid("settings.tenant_id", message),
            other => other,
        })?;
        store(&self.db, &settings).await?;
        Ok(Response::new(UpdateSyncSettingsResponse { settings: Some(settings) }))
    }
}
