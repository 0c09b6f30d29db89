//! The per-tenant sync switches. A tenant that never saved any gets the defaults the merchant
//! expects from the Bitrix24 app: creation and changes in Bling reach Bitrix24; export back to
//! Bling, orders as deals and the CPLUG catalog are opt-in.
//!
//! With them, the tenant's Bling situação → Bitrix24 deal stage map (`deal_stages`, none by
//! default: see [`crate::orders`]), kept one row per situação in `deal_stage_maps` and replaced
//! whole, in the same transaction as the switches, by each `UpdateSyncSettings`.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use ponte_core::{TenantId, db::Database, error::ServiceError, time::now_millis};
use ponte_proto::v1::{
    CancelBackfillRequest, CancelBackfillResponse, CatalogSyncServiceHandleEventRequest,
    CatalogSyncServiceHandleEventResponse, DealStageMap, GetBackfillRequest, GetBackfillResponse,
    GetSyncSettingsRequest, GetSyncSettingsResponse, GetSyncStatusRequest, GetSyncStatusResponse, StartBackfillRequest,
    StartBackfillResponse, SyncSettings, UpdateSyncSettingsRequest, UpdateSyncSettingsResponse, WatchBackfillRequest,
    WatchBackfillResponse, catalog_sync_service_server::CatalogSyncService,
};
use sqlx::Row;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, codegen::BoxStream};

use crate::CatalogSync;

pub fn defaults(tenant_id: &TenantId) -> SyncSettings {
    SyncSettings {
        tenant_id: tenant_id.to_string(),
        bling_create_creates_in_bitrix24: true,
        bling_update_updates_bitrix24: true,
        bitrix24_export_to_bling: false,
        orders_to_bitrix24: false,
        catalog_to_cplug: false,
        cplug_grid_enabled: false,
        deal_stages: Vec::new(),
    }
}

/// The longest stage id accepted: Bitrix24 keeps stage ids of at most 50 characters.
const STAGE_ID_MAX: usize = 50;

/// Checks a tenant's situação → stage map: each situação id positive and mapped once, each
/// stage id in Bitrix24's syntax. The error names the entry's field
/// (`settings.deal_stages[2].stage_id`).
pub fn validate_deal_stages(stages: &[DealStageMap]) -> Result<(), ServiceError> {
    let mut seen = HashMap::with_capacity(stages.len());
    for (i, m) in stages.iter().enumerate() {
        let field = |name: &str| format!("settings.deal_stages[{i}].{name}");
        if m.bling_situacao_id <= 0 {
            return Err(ServiceError::invalid(
                field("bling_situacao_id"),
                format!("{} is not a Bling situação id: it must be greater than 0", m.bling_situacao_id),
            ));
        }
        if let Some(first) = seen.insert(m.bling_situacao_id, i) {
            return Err(ServiceError::invalid(
                field("bling_situacao_id"),
                format!(
                    "situação {} is already mapped by settings.deal_stages[{first}]: a situação has one stage",
                    m.bling_situacao_id
                ),
            ));
        }
        let stage = m.stage_id.as_str();
        if stage.is_empty() {
            return Err(ServiceError::invalid(
                field("stage_id"),
                "is required: the Bitrix24 deal stage id (e.g. NEW, PREPARATION, C3:WON)",
            ));
        }
        if stage.chars().count() > STAGE_ID_MAX {
            return Err(ServiceError::invalid(
                field("stage_id"),
                format!("'{stage}' is longer than {STAGE_ID_MAX} characters, the most a Bitrix24 stage id has"),
            ));
        }
        if !stage.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b':') {
            return Err(ServiceError::invalid(
                field("stage_id"),
                format!(
                    "'{stage}' is not a Bitrix24 deal stage id: only uppercase letters, digits, '_' and ':' \
                     (e.g. NEW, PREPARATION, C3:WON)"
                ),
            ));
        }
    }
    Ok(())
}

/// How long a replica keeps a tenant's settings for its live events before reading them again.
/// A change through this replica applies at once; one made through another replica within
/// this time.
pub const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// The settings live events read, per tenant, for [`SETTINGS_TTL`]: every event needs them, and
/// they change rarely.
#[derive(Clone, Default)]
pub struct SettingsCache {
    held: Arc<Mutex<HashMap<TenantId, (Instant, SyncSettings)>>>,
}

impl SettingsCache {
    pub async fn get(&self, db: &Database, tenant_id: &TenantId) -> Result<SyncSettings, ServiceError> {
        if let Some((at, s)) = self.held.lock().get(tenant_id)
            && at.elapsed() < SETTINGS_TTL
        {
            return Ok(s.clone());
        }
        let fresh = load(db, tenant_id).await?;
        self.held.lock().insert(tenant_id.clone(), (Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    pub fn forget(&self, tenant_id: &TenantId) {
        self.held.lock().remove(tenant_id);
    }
}

pub async fn load(db: &Database, tenant_id: &TenantId) -> Result<SyncSettings, ServiceError> {
    let row = sqlx::query(
        "SELECT bling_create_creates_in_bitrix24, bling_update_updates_bitrix24, bitrix24_export_to_bling, \
         orders_to_bitrix24, catalog_to_cplug, cplug_grid_enabled FROM sync_settings WHERE tenant_id = $1",
    )
    .bind(tenant_id.as_str())
    .fetch_optional(db.pool())
    .await?;
    let deal_stages = sqlx::query(
        "SELECT bling_situacao_id, stage_id FROM deal_stage_maps WHERE tenant_id = $1 ORDER BY bling_situacao_id",
    )
    .bind(tenant_id.as_str())
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| Ok(DealStageMap { bling_situacao_id: r.try_get(0)?, stage_id: r.try_get(1)? }))
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let Some(row) = row else { return Ok(SyncSettings { deal_stages, ..defaults(tenant_id) }) };
    Ok(SyncSettings {
        tenant_id: tenant_id.to_string(),
        bling_create_creates_in_bitrix24: row.try_get(0)?,
        bling_update_updates_bitrix24: row.try_get(1)?,
        bitrix24_export_to_bling: row.try_get(2)?,
        orders_to_bitrix24: row.try_get(3)?,
        catalog_to_cplug: row.try_get(4)?,
        cplug_grid_enabled: row.try_get(5)?,
        deal_stages,
    })
}

/// Saves `s` whole: the switches and the stage map (replacing the tenant's), in one transaction.
pub async fn store(db: &Database, s: &SyncSettings) -> Result<(), ServiceError> {
    let now = now_millis();
    let mut tx = db.pool().begin().await?;
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
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM deal_stage_maps WHERE tenant_id = $1").bind(&s.tenant_id).execute(&mut *tx).await?;
    for m in &s.deal_stages {
        sqlx::query("INSERT INTO deal_stage_maps (tenant_id, bling_situacao_id, stage_id) VALUES ($1, $2, $3)")
            .bind(&s.tenant_id)
            .bind(m.bling_situacao_id)
            .bind(&m.stage_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[tonic::async_trait]
impl CatalogSyncService for CatalogSync {
    type WatchBackfillStream = BoxStream<WatchBackfillResponse>;

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
        let flows = crate::status::sync_status(&self.db, &tenant).await?;
        Ok(Response::new(GetSyncStatusResponse { flows }))
    }

    async fn get_sync_settings(
        &self,
        req: Request<GetSyncSettingsRequest>,
    ) -> Result<Response<GetSyncSettingsResponse>, Status> {
        let tenant = self.tenants.require_field("tenant_id", &req.into_inner().tenant_id).await?;
        let settings = load(&self.db, &tenant).await?;
        Ok(Response::new(GetSyncSettingsResponse { settings: Some(settings) }))
    }

    async fn update_sync_settings(
        &self,
        req: Request<UpdateSyncSettingsRequest>,
    ) -> Result<Response<UpdateSyncSettingsResponse>, Status> {
        let mut settings = req.into_inner().settings.ok_or_else(|| ServiceError::invalid("settings", "is required"))?;
        validate_deal_stages(&settings.deal_stages)?;
        settings.deal_stages.sort_by_key(|m| m.bling_situacao_id);
        let tenant = self.tenants.require_field("settings.tenant_id", &settings.tenant_id).await?;
        store(&self.db, &settings).await?;
        self.sync.settings.forget(&tenant);
        Ok(Response::new(UpdateSyncSettingsResponse { settings: Some(settings) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(i64, &str)]) -> Vec<DealStageMap> {
        pairs.iter().map(|&(id, stage)| DealStageMap { bling_situacao_id: id, stage_id: stage.into() }).collect()
    }

    fn refused(stages: &[(i64, &str)]) -> String {
        validate_deal_stages(&map(stages)).unwrap_err().to_string()
    }

    #[test]
    fn deal_stages_take_bitrix24_stage_ids_of_any_pipeline() {
        validate_deal_stages(&[]).unwrap();
        validate_deal_stages(&map(&[(24, "PREPARATION"), (9, "C3:WON"), (18, "C12:UC_A1B2C3"), (6, "NEW")])).unwrap();
        validate_deal_stages(&map(&[(21, &"A".repeat(50))])).unwrap();
    }

    #[test]
    fn a_bad_deal_stage_entry_names_its_field() {
        let e = refused(&[(24, "PREPARATION"), (0, "NEW")]);
        assert!(e.starts_with("settings.deal_stages[1].bling_situacao_id: 0 "), "{e}");
        let e = refused(&[(-3, "NEW")]);
        assert!(e.starts_with("settings.deal_stages[0].bling_situacao_id: -3 "), "{e}");
        let e = refused(&[(24, "PREPARATION"), (9, "WON"), (24, "NEW")]);
        assert!(
            e.starts_with(
                "settings.deal_stages[2].bling_situacao_id: situação 24 is already mapped by settings.deal_stages[0]"
            ),
            "{e}"
        );
        let e = refused(&[(24, "")]);
        assert!(e.starts_with("settings.deal_stages[0].stage_id: is required"), "{e}");
        let e = refused(&[(24, &"A".repeat(51))]);
        assert!(e.starts_with("settings.deal_stages[0].stage_id: ") && e.contains("longer than 50"), "{e}");
        for bad in ["preparation", "C3 WON", " NEW", "NEW-1", "ÉTAPA"] {
            let e = refused(&[(24, bad)]);
            assert!(
                e.starts_with("settings.deal_stages[0].stage_id: ") && e.contains("not a Bitrix24 deal stage id"),
                "{e}"
            );
        }
    }
}
