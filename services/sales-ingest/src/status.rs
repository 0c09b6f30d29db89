//! `GetSyncStatus`: the sales flow's line of the merchant's "data sync" tab, from the sales
//! table: when a sale was last posted (per store too), the newest reason a sale parked or
//! failed, and how many sales stand where (parked ones by what a person must fix).

use ponte_core::{TenantId, db::Database, error::ServiceError, time::to_timestamp};
use ponte_proto::v1::{Flow, FlowStatus, SalesCounts, StoreSales};

use crate::state::{Park, State};

#[derive(sqlx::FromRow)]
struct Count {
    state: String,
    park_reason: String,
    n: i64,
}

#[derive(sqlx::FromRow)]
struct Store {
    store_id: String,
    posted: i64,
    last: i64,
}

pub(crate) async fn sync_status(db: &Database, tenant: &TenantId) -> Result<FlowStatus, ServiceError> {
    let counts: Vec<Count> = sqlx::query_as(
        "SELECT state, park_reason, COUNT(*) AS n FROM sales WHERE tenant_id = $1 GROUP BY state, park_reason",
    )
    .bind(tenant.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut c = SalesCounts::default();
    for row in counts {
        let n = u64::try_from(row.n).unwrap_or_default();
        let park = Park::from_label(&row.park_reason);
        match (crate::store::shown(State::from_label(&row.state), park), park) {
            (State::Received | State::OrderCreated, _) => c.received += n,
            (State::Posted | State::Moving, _) => c.posted += n,
            (State::Failed, _) => c.failed += n,
            (State::Cancelling | State::Cancelled, _) => c.cancelled += n,
            (State::Parked, Some(Park::UnmappedPaymentMethod)) => c.parked_unmapped_payment_method += n,
            (State::Parked, Some(Park::UnknownSku)) => c.parked_unknown_sku += n,
            (State::Parked, Some(Park::UnmappedStore)) => c.parked_unmapped_store += n,
            (State::Parked, Some(Park::NotConnected)) => c.parked_not_connected += n,
            (State::Parked, _) => c.parked_rejected_by_bling += n,
        }
    }
    let stores: Vec<Store> = sqlx::query_as(
        "SELECT store_id, COUNT(*) AS posted, MAX(posted_time) AS last FROM sales \
         WHERE tenant_id = $1 AND state IN ($2, $3) GROUP BY store_id ORDER BY store_id",
    )
    .bind(tenant.as_str())
    .bind(State::Posted.label())
    .bind(State::Moving.label())
    .fetch_all(db.pool())
    .await?;
    c.stores = stores
        .iter()
        .map(|s| StoreSales {
            cplug_store_id: s.store_id.clone(),
            posted: u64::try_from(s.posted).unwrap_or_default(),
            last_posted_time: (s.last > 0).then(|| to_timestamp(s.last)),
        })
        .collect();
    let last_success = stores.iter().map(|s| s.last).max().filter(|t| *t > 0);
    let last_error: Option<(String, i64)> = sqlx::query_as(
        "SELECT reason, update_time FROM sales WHERE tenant_id = $1 AND state IN ($2, $3) \
         ORDER BY update_time DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(State::Parked.label())
    .bind(State::Failed.label())
    .fetch_optional(db.pool())
    .await?;
    Ok(FlowStatus {
        flow: Flow::CplugSalesToBling as i32,
        last_success_time: last_success.map(to_timestamp),
        last_error: last_error.as_ref().map(|e| e.0.clone()).unwrap_or_default(),
        last_error_time: last_error.map(|e| to_timestamp(e.1)),
        sales: Some(c),
        ..FlowStatus::default()
    })
}
