//! Backfills of Bling's sales orders into Bitrix24 deals.
//!
//! A step lists one page of Bling's sales orders (100) and syncs each order exactly as a live
//! `order.updated` would ([`crate::orders`]): re-read in full (the list carries no items),
//! found through the link registry and then its origin in the CRM before anything is created,
//! its stage following the tenant's situação → stage map, written only when the deal or its
//! rows differ. Bling's 3 requests/s bound it: one read per order.
//!
//! An orders backfill counts created, updated, unchanged and failed; the product counts stay
//! at zero. Which deals a step created or updated is recorded as each one is written, so a step
//! redone after a crash counts them as what they were (a crash between a deal's write and that
//! record, a few milliseconds, would count it as unchanged).

use futures::{StreamExt, stream};
use parking_lot::Mutex;
use ponte_core::{BlingId, error::ServiceError, ratelimit::Priority};

use super::{
    page::{Done, Outcome, PAGE_SIZE, record},
    store::{Meant, PageResult, Store, Stored},
};
use crate::{change::Change, context::Context, orders, settings};

/// Orders synced at once; the shared limiter spaces their Bling reads.
const ORDER_CONCURRENCY: usize = 4;

#[derive(Clone)]
pub(super) struct Orders {
    ctx: Context,
    store: Store,
}

impl Orders {
    pub fn new(ctx: Context, store: Store) -> Self {
        Self { ctx, store }
    }

    /// One page of orders from `page`.
    pub async fn step(&self, stored: &Stored, page: u32) -> Result<Done, ServiceError> {
        let ctx = &self.ctx;
        let tenant_id = &stored.tenant_id;
        let listed = ctx.pedidos_page(tenant_id, page).await?;
        if listed.is_empty() {
            return Ok(Done { through: page - 1, result: PageResult::default(), last: true });
        }
        let last = listed.len() < PAGE_SIZE;
        let earlier = &stored.intent_of(page);
        let stages = &settings::load(&ctx.db, tenant_id).await?.deal_stages;
        let intent = &Mutex::new(earlier.clone());
        let syncs: Vec<_> = listed
            .iter()
            .map(|o| o.id)
            .map(|id| async move {
                let r = orders::sync(ctx, tenant_id, id, stages, Priority::Backfill).await;
                let meant = match &r {
                    Ok(Change::Created(_)) => Some(Meant::Created),
                    Ok(Change::Updated(_)) => Some(Meant::Updated),
                    _ => None,
                };
                if let Some(meant) = meant {
                    let snapshot = {
                        let mut intent = intent.lock();
                        intent.entry(id.to_string()).or_insert(meant);
                        intent.clone()
                    };
                    if let Err(e) = self.store.record_intent(&stored.id, page, &snapshot).await {
                        return (id, Err(e));
                    }
                }
                (id, r)
            })
            .collect();
        let synced: Vec<(BlingId, Result<Change, ServiceError>)> =
            stream::iter(syncs).buffered(ORDER_CONCURRENCY).collect().await;

        let mut result = PageResult::default();
        for (id, r) in synced {
            let outcome = match r {
                Ok(Change::Created(_)) => Outcome::Created,
                Ok(Change::Updated(_) | Change::Deactivated(_)) => Outcome::Updated,
                Ok(Change::Unchanged(_)) => earlier.get(&id.to_string()).map_or(Outcome::Unchanged, |m| (*m).into()),
                // Gone from Bling since it was listed, or nothing to do.
                Ok(Change::Skipped(_)) => continue,
                Err(e @ (ServiceError::FailedPrecondition(_) | ServiceError::InvalidArgument { .. })) => {
                    Outcome::Failed(e.to_string())
                }
                Err(e) => return Err(e),
            };
            record(&mut result, &id.to_string(), outcome);
        }
        Ok(Done { through: page, result, last })
    }
}
