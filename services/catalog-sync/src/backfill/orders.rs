//! Backfills of Bling's sales orders into Bitrix24 deals.
//!
//! A step lists one page of `GET /pedidos/vendas` (100 orders) and syncs each order exactly as
//! a live `order.updated` would ([`ProductSync::order_to_bitrix24`]): re-read in full (the list
//! carries no items), found through the link registry and then `ORIGINATOR_ID`/`ORIGIN_ID`
//! before anything is created, its stage following the tenant's situação → stage map, written
//! only when the deal or its rows differ. Bling's 3
//! requests/s bound it: one read per order.
//!
//! An orders backfill counts created, updated, unchanged and failed; the product counts stay
//! at zero. Which deals a step created or updated is recorded as each one is written, so a step
//! redone after a crash counts them as what they were (a crash between a deal's write and that
//! record, a few milliseconds, would count it as unchanged).
//!
//! [`ProductSync::order_to_bitrix24`]: crate::products::ProductSync

use std::collections::BTreeMap;

use futures::{StreamExt, stream};
use parking_lot::Mutex;
use ponte_connectors::{
    ConnectorError,
    bling::{Caller, resources::PedidoVenda},
};
use ponte_core::{TenantId, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::Provider;

use super::{Backfills, Outcome, PAGE_SIZE, PageResult, Stored};
use crate::products::{Change, service_error};

/// Orders synced at once; the shared limiter spaces their Bling reads.
const ORDER_CONCURRENCY: usize = 4;

impl Backfills {
    /// One page of orders from `page`: the page read, what it added, whether it was the last.
    pub(super) async fn orders_page(
        &self,
        stored: &Stored,
        page: u32,
    ) -> Result<(u32, PageResult, bool), ServiceError> {
        let tenant_id = &stored.tenant_id;
        let orders = self.list_orders(tenant_id, page).await?;
        if orders.is_empty() {
            return Ok((page - 1, PageResult::default(), true));
        }
        let last = orders.len() < PAGE_SIZE;
        let earlier = if stored.inflight_page == i64::from(page) { stored.inflight.clone() } else { BTreeMap::new() };
        let stages = crate::settings::load(&self.db, tenant_id).await?.deal_stages;
        let stages = stages.as_slice();
        let intent = Mutex::new(earlier.clone());
        let intent = &intent;
        let syncs: Vec<_> = orders
            .iter()
            .map(|o| o.id)
            .map(|id| async move {
                let r = self.sync.order_to_bitrix24(tenant_id, id, stages, Priority::Backfill).await;
                let meant = match &r {
                    Ok(Change::Created(_)) => Some("created"),
                    Ok(Change::Updated(_)) => Some("updated"),
                    _ => None,
                };
                if let Some(meant) = meant {
                    let snapshot = {
                        let mut intent = intent.lock();
                        intent.entry(id.to_string()).or_insert_with(|| meant.into());
                        intent.clone()
                    };
                    if let Err(e) = self.record_intent(&stored.id, page, &snapshot).await {
                        return (id, Err(e));
                    }
                }
                (id, r)
            })
            .collect();
        let synced: Vec<(i64, Result<Change, ServiceError>)> =
            stream::iter(syncs).buffered(ORDER_CONCURRENCY).collect().await;

        let mut result = PageResult::default();
        for (id, r) in synced {
            let outcome = match r {
                Ok(Change::Created(_)) => Outcome::Created,
                Ok(Change::Updated(_) | Change::Deactivated(_)) => Outcome::Updated,
                Ok(Change::Unchanged(_)) => match earlier.get(&id.to_string()).map(String::as_str) {
                    Some("created") => Outcome::Created,
                    Some(_) => Outcome::Updated,
                    None => Outcome::Unchanged,
                },
                // Gone from Bling since it was listed, or nothing to do.
                Ok(Change::Skipped(_)) => continue,
                Err(ServiceError::Unavailable { message, retry_after }) => {
                    return Err(ServiceError::Unavailable { message, retry_after });
                }
                Err(e @ (ServiceError::FailedPrecondition(_) | ServiceError::InvalidArgument { .. })) => {
                    Outcome::Failed(e.to_string())
                }
                Err(e) => return Err(e),
            };
            result.record(&id.to_string(), outcome);
        }
        Ok((page, result, last))
    }

    /// One page of the tenant's sales orders, as Bling lists them.
    async fn list_orders(&self, tenant_id: &TenantId, page: u32) -> Result<Vec<PedidoVenda>, ServiceError> {
        let token = self.sync.tokens.get(tenant_id, Provider::Bling).await?;
        let caller = Caller { account: &token.account, priority: Priority::Backfill, token: token.secret() };
        match self.sync.bling.pedidos_page(caller, page).await {
            Err(ConnectorError::InvalidToken { .. }) => {
                let renewed = self.sync.tokens.refused(tenant_id, Provider::Bling, &token).await?;
                let caller =
                    Caller { account: &renewed.account, priority: Priority::Backfill, token: renewed.secret() };
                self.sync.bling.pedidos_page(caller, page).await.map_err(service_error)
            }
            other => other.map_err(service_error),
        }
    }
}
