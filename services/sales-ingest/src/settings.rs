//! How a tenant's sales become Bling orders (`GetSalesSettings`, `UpdateSalesSettings`): the
//! situação orders are created in (Atendido by default: the customer left with the goods, so
//! the shipping flow leaves the order alone), the one a cancellation moves them to (Cancelado),
//! and the time zone each store's sales are dated in (America/Sao_Paulo). Read through a short
//! cache; an update is seen at once by the replica that made it.

use std::{collections::BTreeMap, time::Duration};

use chrono::FixedOffset;
use moka::future::Cache;
use ponte_core::{BlingId, TenantId, db::Database, error::ServiceError, time::now_millis};
use ponte_proto::v1::SalesSettings;

use crate::translate::{DEFAULT_TIME_ZONE, offset_of};

/// Bling's default Vendas situações.
const ATENDIDO: i64 = 9;
const CANCELADO: i64 = 12;

#[derive(Clone)]
pub(crate) struct SettingsCache(Cache<TenantId, SalesSettings>);

impl Default for SettingsCache {
    fn default() -> Self {
        Self(Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(30)).build())
    }
}

#[derive(sqlx::FromRow)]
struct Stored {
    order_situacao_id: i64,
    cancel_situacao_id: i64,
    time_zone: String,
    store_time_zones: String,
}

/// The tenant's settings, defaults filled in.
pub(crate) async fn load(db: &Database, tenant: &TenantId) -> Result<SalesSettings, ServiceError> {
    let row: Option<Stored> = sqlx::query_as(
        "SELECT order_situacao_id, cancel_situacao_id, time_zone, store_time_zones FROM sales_settings \
         WHERE tenant_id = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(db.pool())
    .await?;
    let row = row.unwrap_or(Stored {
        order_situacao_id: 0,
        cancel_situacao_id: 0,
        time_zone: String::new(),
        store_time_zones: "{}".into(),
    });
    Ok(with_defaults(SalesSettings {
        tenant_id: tenant.to_string(),
        order_situacao_id: row.order_situacao_id,
        cancel_situacao_id: row.cancel_situacao_id,
        time_zone: row.time_zone,
        store_time_zones: serde_json::from_str(&row.store_time_zones).unwrap_or_default(),
    }))
}

fn with_defaults(mut s: SalesSettings) -> SalesSettings {
    if s.order_situacao_id == 0 {
        s.order_situacao_id = ATENDIDO;
    }
    if s.cancel_situacao_id == 0 {
        s.cancel_situacao_id = CANCELADO;
    }
    if s.time_zone.is_empty() {
        s.time_zone = DEFAULT_TIME_ZONE.into();
    }
    s
}

/// Checks and stores `s`; the settings as stored.
pub(crate) async fn store(db: &Database, tenant: &TenantId, s: SalesSettings) -> Result<SalesSettings, ServiceError> {
    for (field, id) in
        [("settings.order_situacao_id", s.order_situacao_id), ("settings.cancel_situacao_id", s.cancel_situacao_id)]
    {
        if id < 0 {
            return Err(ServiceError::invalid(field, "must be a Bling situação id (or 0 for the default)"));
        }
    }
    if !s.time_zone.is_empty() && offset_of(&s.time_zone).is_none() {
        return Err(ServiceError::invalid("settings.time_zone", zone_message(&s.time_zone)));
    }
    let mut zones = BTreeMap::new();
    for (store, zone) in &s.store_time_zones {
        crate::sale::check_id("settings.store_time_zones", store)?;
        if offset_of(zone).is_none() {
            return Err(ServiceError::invalid(format!("settings.store_time_zones[{store}]"), zone_message(zone)));
        }
        zones.insert(store.clone(), zone.clone());
    }
    let zones_json = serde_json::to_string(&zones).map_err(|e| ServiceError::Internal(e.into()))?;
    sqlx::query(
        "INSERT INTO sales_settings (tenant_id, order_situacao_id, cancel_situacao_id, time_zone, store_time_zones, \
         update_time) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET \
         order_situacao_id = excluded.order_situacao_id, cancel_situacao_id = excluded.cancel_situacao_id, \
         time_zone = excluded.time_zone, store_time_zones = excluded.store_time_zones, update_time = excluded.update_time",
    )
    .bind(tenant.as_str())
    .bind(s.order_situacao_id)
    .bind(s.cancel_situacao_id)
    .bind(&s.time_zone)
    .bind(zones_json)
    .bind(now_millis())
    .execute(db.pool())
    .await?;
    load(db, tenant).await
}

fn zone_message(zone: &str) -> String {
    format!(
        "{} is not a Brazilian IANA time zone (e.g. America/Sao_Paulo, America/Manaus)",
        ponte_core::error::quote(zone)
    )
}

impl SettingsCache {
    pub async fn get(&self, db: &Database, tenant: &TenantId) -> Result<SalesSettings, ServiceError> {
        self.0.try_get_with(tenant.clone(), load(db, tenant)).await.map_err(|e| e.cloned())
    }

    pub async fn forget(&self, tenant: &TenantId) {
        self.0.invalidate(tenant).await;
    }
}

/// What posting needs of the settings for a sale of `store`.
pub(crate) struct ForStore {
    pub situacao: BlingId,
    pub cancel_situacao: BlingId,
    pub offset: FixedOffset,
}

pub(crate) fn for_store(s: &SalesSettings, store: &str) -> ForStore {
    let zone = s.store_time_zones.get(store).unwrap_or(&s.time_zone);
    let fallback =
        || offset_of(DEFAULT_TIME_ZONE).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
    ForStore {
        situacao: BlingId::new(s.order_situacao_id).or(BlingId::new(ATENDIDO)).unwrap_or_else(|| unreachable!()),
        cancel_situacao: BlingId::new(s.cancel_situacao_id)
            .or(BlingId::new(CANCELADO))
            .unwrap_or_else(|| unreachable!()),
        offset: offset_of(zone).unwrap_or_else(fallback),
    }
}
