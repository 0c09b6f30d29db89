//! The per-tenant sync switches. A tenant that never saved any gets the defaults the merchant
//! expects from the Bitrix24 app: creation and changes in Bling reach Bitrix24; export back to
//! Bling, orders as deals and the CPLUG catalog are opt-in.
//!
//! With them, the tenant's Bling situação → Bitrix24 deal stage map (`deal_stages`, none by
//! default: see [`crate::orders`]), kept one row per situação in `deal_stage_maps` and replaced
//! whole, in the same transaction as the switches, by each `UpdateSyncSettings`.

use std::{collections::HashMap, time::Duration};

use moka::future::Cache;
use ponte_connectors::bitrix24::StageId;
use ponte_core::{TenantId, db::Database, error::ServiceError, time::now_millis};
use ponte_proto::v1::{DealStageMap, SyncSettings};

pub(crate) fn defaults(tenant_id: &TenantId) -> SyncSettings {
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

/// Checks a tenant's situação → stage map: each situação id positive and mapped once, each
/// stage id in Bitrix24's syntax. The error names the entry's field
/// (`settings.deal_stages[2].stage_id`).
pub(crate) fn validate_deal_stages(stages: &[DealStageMap]) -> Result<(), ServiceError> {
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
        StageId::parse(&m.stage_id).map_err(|e| ServiceError::invalid(field("stage_id"), e.to_string()))?;
    }
    Ok(())
}

/// How long a replica keeps a tenant's settings for its live events before reading them again.
/// A change through this replica applies at once; one made through another replica within
/// this time.
pub const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// Tenants whose settings a replica keeps at most.
const CAPACITY: u64 = 100_000;

/// The settings live events read, per tenant, for [`SETTINGS_TTL`]: every event needs them, and
/// they change rarely. A burst of events of one tenant reads them once (moka's single-flight).
#[derive(Clone)]
pub(crate) struct SettingsCache {
    held: Cache<TenantId, SyncSettings>,
}

impl Default for SettingsCache {
    fn default() -> Self {
        Self { held: Cache::builder().max_capacity(CAPACITY).time_to_live(SETTINGS_TTL).build() }
    }
}

impl SettingsCache {
    pub async fn get(&self, db: &Database, tenant_id: &TenantId) -> Result<SyncSettings, ServiceError> {
        self.held.try_get_with_by_ref(tenant_id, load(db, tenant_id)).await.map_err(|shared| shared.cloned())
    }

    pub async fn forget(&self, tenant_id: &TenantId) {
        self.held.invalidate(tenant_id).await;
    }
}

/// A `sync_settings` row: the switches, read as integers (`CAST(… AS INTEGER)`): SQLite's
/// BOOLEAN columns cannot be decoded as booleans through the Any driver, PostgreSQL's can be cast.
#[derive(sqlx::FromRow)]
struct Switches {
    bling_create_creates_in_bitrix24: i32,
    bling_update_updates_bitrix24: i32,
    bitrix24_export_to_bling: i32,
    orders_to_bitrix24: i32,
    catalog_to_cplug: i32,
    cplug_grid_enabled: i32,
}

/// A `deal_stage_maps` row.
#[derive(sqlx::FromRow)]
struct StageRow {
    bling_situacao_id: i64,
    stage_id: String,
}

pub(crate) async fn load(db: &Database, tenant_id: &TenantId) -> Result<SyncSettings, ServiceError> {
    let switches: Option<Switches> = sqlx::query_as(
        "SELECT CAST(bling_create_creates_in_bitrix24 AS INTEGER) AS bling_create_creates_in_bitrix24, \
         CAST(bling_update_updates_bitrix24 AS INTEGER) AS bling_update_updates_bitrix24, \
         CAST(bitrix24_export_to_bling AS INTEGER) AS bitrix24_export_to_bling, \
         CAST(orders_to_bitrix24 AS INTEGER) AS orders_to_bitrix24, \
         CAST(catalog_to_cplug AS INTEGER) AS catalog_to_cplug, \
         CAST(cplug_grid_enabled AS INTEGER) AS cplug_grid_enabled FROM sync_settings WHERE tenant_id = $1",
    )
    .bind(tenant_id.as_str())
    .fetch_optional(db.pool())
    .await?;
    let stages: Vec<StageRow> = sqlx::query_as(
        "SELECT bling_situacao_id, stage_id FROM deal_stage_maps WHERE tenant_id = $1 ORDER BY bling_situacao_id",
    )
    .bind(tenant_id.as_str())
    .fetch_all(db.pool())
    .await?;
    let deal_stages = stages
        .into_iter()
        .map(|r| DealStageMap { bling_situacao_id: r.bling_situacao_id, stage_id: r.stage_id })
        .collect();
    let Some(row) = switches else { return Ok(SyncSettings { deal_stages, ..defaults(tenant_id) }) };
    Ok(SyncSettings {
        tenant_id: tenant_id.to_string(),
        bling_create_creates_in_bitrix24: row.bling_create_creates_in_bitrix24 != 0,
        bling_update_updates_bitrix24: row.bling_update_updates_bitrix24 != 0,
        bitrix24_export_to_bling: row.bitrix24_export_to_bling != 0,
        orders_to_bitrix24: row.orders_to_bitrix24 != 0,
        catalog_to_cplug: row.catalog_to_cplug != 0,
        cplug_grid_enabled: row.cplug_grid_enabled != 0,
        deal_stages,
    })
}

/// Saves `s` whole: the switches and the stage map (replacing the tenant's), in one transaction.
pub(crate) async fn store(db: &Database, s: &SyncSettings) -> Result<(), ServiceError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(i64, &str)]) -> Vec<DealStageMap> {
        pairs.iter().map(|&(id, stage)| DealStageMap { bling_situacao_id: id, stage_id: stage.into() }).collect()
    }

    fn refused(stages: &[(i64, &str)]) -> String {
        validate_deal_stages(&map(stages)).unwrap_err().to_string()
    }

    /// `ponte dev` keeps the switches in SQLite: each reads back as stored, on and off.
    #[tokio::test]
    async fn switches_read_back_as_stored_under_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::SPEC.sqlite_database(dir.path()).await.unwrap();
        let tenant = TenantId::parse("loja").unwrap();
        assert_eq!(load(&db, &tenant).await.unwrap(), defaults(&tenant));
        let s = SyncSettings {
            tenant_id: "loja".into(),
            bling_create_creates_in_bitrix24: false,
            bling_update_updates_bitrix24: true,
            bitrix24_export_to_bling: false,
            orders_to_bitrix24: true,
            catalog_to_cplug: true,
            cplug_grid_enabled: false,
            deal_stages: map(&[(24, "PREPARATION")]),
        };
        store(&db, &s).await.unwrap();
        assert_eq!(load(&db, &tenant).await.unwrap(), s);
        let flipped = SyncSettings {
            bling_create_creates_in_bitrix24: true,
            bling_update_updates_bitrix24: false,
            bitrix24_export_to_bling: true,
            orders_to_bitrix24: false,
            catalog_to_cplug: false,
            cplug_grid_enabled: true,
            deal_stages: vec![],
            ..s
        };
        store(&db, &flipped).await.unwrap();
        assert_eq!(load(&db, &tenant).await.unwrap(), flipped);
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
