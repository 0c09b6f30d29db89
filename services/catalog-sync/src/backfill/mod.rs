//! Backfills: a full copy of a tenant's Bling catalog (or sales orders) into a target, one
//! Bling page at a time, resumable from its checkpoint, with progress a caller can watch.
//!
//! A backfill is a row in `backfills` ([`store`]); a runner ([`runner`]) pages Bling at
//! [`Priority::Backfill`](ponte_core::ratelimit::Priority), so the shared limiter serves live
//! events first, and hands each page to its target: Bitrix24 products ([`bitrix24`]), CPLUG
//! ([`cplug`], five Bling pages to one bulk call of 500) or Bitrix24 deals ([`orders`]). A page
//! records which items it means to create or update before it writes and commits its counts
//! with the checkpoint in one statement; a page interrupted after its writes is redone from the
//! start, and the recorded intent makes the interrupted writes count as created or updated
//! rather than unchanged, so the final counts are exact. Every item is counted once: as a
//! product or a variation, as active or inactive, and as created, updated, unchanged or failed
//! (with the reason). Items Bling lists as deleted (situação E) are not copied and not counted.
//! A backfill is an explicit request from the merchant: it creates and updates whatever the
//! sync switches say. One backfill of each target and scope runs per tenant at a time.

mod bitrix24;
mod cplug;
mod orders;
mod page;
mod runner;
pub(crate) mod store;

use std::time::Duration;

use ponte_core::{TenantId, error::ServiceError};
use ponte_proto::v1::{Backfill, BackfillScope, Provider, StartBackfillRequest, SyncTarget};
use tokio::sync::{broadcast, mpsc, watch};

use crate::context::Context;
use runner::Runner;
use store::{Scope, State, Store, Target};

/// Held by the service; dropping the last copy stops this process's runners where they are.
pub(crate) struct Lifeline {
    _alive: watch::Sender<()>,
}

/// The backfills of this service: start, read, watch, cancel, and the runners.
#[derive(Clone)]
pub(crate) struct Backfills {
    ctx: Context,
    store: Store,
    runner: Runner,
}

impl Backfills {
    /// The backfills, and the lifeline that keeps their runners going.
    pub fn new(ctx: Context) -> (Self, Lifeline) {
        let store = Store::new(ctx.db.clone());
        let (runner, alive) = Runner::new(ctx.clone(), store.clone());
        (Self { ctx, store, runner }, Lifeline { _alive: alive })
    }

    /// Adopts unfinished backfills now and every [`runner::SCAN_PERIOD`] until the service is
    /// dropped.
    pub fn spawn_scanner(&self) {
        self.runner.spawn_scanner();
    }

    pub async fn start(&self, tenant_id: &TenantId, req: StartBackfillRequest) -> Result<Backfill, ServiceError> {
        let target = match SyncTarget::try_from(req.target) {
            Ok(SyncTarget::Bitrix24) => Target::Bitrix24,
            Ok(SyncTarget::Cplug) => Target::Cplug,
            Ok(SyncTarget::Unspecified) => {
                return Err(ServiceError::invalid("target", "is required (SYNC_TARGET_BITRIX24 or SYNC_TARGET_CPLUG)"));
            }
            Err(_) => return Err(ServiceError::invalid("target", format!("unknown target {}", req.target))),
        };
        let scope = match BackfillScope::try_from(req.scope) {
            Ok(BackfillScope::Products) => Scope::Products,
            Ok(BackfillScope::Orders) if target == Target::Cplug => {
                return Err(ServiceError::invalid(
                    "scope",
                    "BACKFILL_SCOPE_ORDERS goes only to SYNC_TARGET_BITRIX24: sales flow from CPLUG to Bling, \
                     never back",
                ));
            }
            Ok(BackfillScope::Orders) => Scope::Orders,
            Ok(BackfillScope::Unspecified) => {
                return Err(ServiceError::invalid(
                    "scope",
                    "is required (BACKFILL_SCOPE_PRODUCTS or BACKFILL_SCOPE_ORDERS)",
                ));
            }
            Err(_) => return Err(ServiceError::invalid("scope", format!("unknown scope {}", req.scope))),
        };
        if self.ctx.tokens.get_if_connected(tenant_id, target.provider()).await?.is_none() {
            return Err(ServiceError::FailedPrecondition(format!(
                "tenant '{tenant_id}' has not connected {}",
                target.label()
            )));
        }
        self.ctx.tokens.get(tenant_id, Provider::Bling).await?;
        let id = self.store.insert(tenant_id, target, scope).await?;
        self.runner.spawn(id.clone());
        Ok(self.store.load(&id).await?.to_proto())
    }

    pub async fn get(&self, id: &str) -> Result<Backfill, ServiceError> {
        let id = ServiceError::require("backfill_id", id)?;
        Ok(self.store.load(id).await?.to_proto())
    }

    /// Marks it cancelled; its runner stops at its next checkpoint. Cancelling a cancelled
    /// backfill answers it as it is.
    pub async fn cancel(&self, id: &str) -> Result<Backfill, ServiceError> {
        let id = ServiceError::require("backfill_id", id)?;
        self.store.cancel(id).await?;
        let stored = self.store.load(id).await?;
        if stored.state != State::Cancelled {
            return Err(ServiceError::FailedPrecondition(format!(
                "backfill '{id}' has already ended ({}); only a running backfill can be cancelled",
                stored.state.label()
            )));
        }
        self.runner.changed(id);
        Ok(stored.to_proto())
    }

    /// The backfill now, then again after every change, until it ends or the receiver goes.
    pub async fn watch(&self, id: &str) -> Result<mpsc::Receiver<Backfill>, ServiceError> {
        let id = ServiceError::require("backfill_id", id)?.to_owned();
        let mut last = self.store.load(&id).await?;
        let (tx, rx) = mpsc::channel(16);
        let mut commits = self.runner.subscribe();
        let store = self.store.clone();
        tokio::spawn(async move {
            if tx.send(last.to_proto()).await.is_err() {
                return;
            }
            while !last.state.is_terminal() {
                // Commits in this process wake the watcher at once; those of other replicas
                // are seen by polling.
                tokio::select! {
                    r = commits.recv() => match r {
                        Ok(changed) if changed != id => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                        _ => {}
                    },
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = tx.closed() => return,
                }
                let Ok(now) = store.load(&id).await else { continue };
                if now != last {
                    if tx.send(now.to_proto()).await.is_err() {
                        return;
                    }
                    last = now;
                }
            }
        });
        Ok(rx)
    }
}
