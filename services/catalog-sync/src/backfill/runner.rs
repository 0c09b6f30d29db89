//! The runner of a backfill: one page (or CPLUG chunk) at a time under the backfill's lease
//! (`backfill:<id>`), re-reading the checkpoint after taking it, handing the page to its
//! target ([`super::bitrix24`], [`super::cplug`], [`super::orders`]) and committing what it
//! added over the checkpoint it started from. Transient failures (rate limits, an unreachable
//! dependency) are retried with backoff; anything else fails the backfill with its reason.
//!
//! Every replica adopts unfinished backfills when it starts and every [`SCAN_PERIOD`] after,
//! so a backfill whose runner died resumes on its own. A runner stops where it is when its
//! service is dropped, as a killed process would; when its process stops (SIGTERM), it
//! finishes the page in hand, commits it and hands the lease back, so another replica goes on
//! at once instead of waiting for the lease to expire.

use std::{collections::HashSet, sync::Arc, time::Duration};

use parking_lot::Mutex;
use ponte_core::error::ServiceError;
use tokio::sync::{broadcast, watch};

use super::{
    bitrix24::Bitrix24Products,
    cplug::CplugProducts,
    orders::Orders,
    page::Done,
    store::{Scope, State, Store, Target},
};
use crate::context::Context;

/// How often every replica looks for unfinished backfills without a runner.
pub(crate) const SCAN_PERIOD: Duration = Duration::from_secs(30);
/// How long one page may hold its backfill; a page at Bitrix24's real 2 requests/s takes a few
/// seconds.
const PAGE_LEASE: Duration = Duration::from_secs(120);
/// The longest wait between retries of a page that failed transiently.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a runner's step left.
enum Step {
    /// A page was committed; more may follow.
    More,
    /// Another replica holds the page lease.
    Busy,
    /// The backfill has ended.
    Done,
}

#[derive(Clone)]
pub(super) struct Runner {
    ctx: Context,
    store: Store,
    /// Backfills this process runs.
    running: Arc<Mutex<HashSet<String>>>,
    /// Page commits and state changes in this process, by backfill id.
    commits: broadcast::Sender<String>,
    /// Closed when the service is dropped.
    alive: watch::Receiver<()>,
    bitrix24: Bitrix24Products,
    cplug: CplugProducts,
    orders: Orders,
}

impl Runner {
    /// The runner, and the sender whose drop stops it.
    pub fn new(ctx: Context, store: Store) -> (Self, watch::Sender<()>) {
        let (tx, alive) = watch::channel(());
        let (commits, _) = broadcast::channel(256);
        let runner = Self {
            bitrix24: Bitrix24Products::new(ctx.clone(), store.clone()),
            cplug: CplugProducts::new(ctx.clone(), store.clone()),
            orders: Orders::new(ctx.clone(), store.clone()),
            ctx,
            store,
            running: Arc::default(),
            commits,
            alive,
        };
        (runner, tx)
    }

    /// Tells this process's watchers that backfill `id` changed.
    pub fn changed(&self, id: &str) {
        let _ = self.commits.send(id.to_owned());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.commits.subscribe()
    }

    /// Adopts unfinished backfills now and every [`SCAN_PERIOD`] until the service is dropped.
    pub fn spawn_scanner(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut alive = me.alive.clone();
            while !me.ctx.background.is_stopping() {
                match me.store.unfinished().await {
                    Ok(ids) => ids.into_iter().for_each(|id| me.spawn(id)),
                    Err(e) => tracing::warn!(error = %e, "could not look for unfinished backfills"),
                }
                tokio::select! {
                    _ = alive.changed() => return,
                    () = me.ctx.background.stopping() => return,
                    _ = tokio::time::sleep(SCAN_PERIOD) => {}
                }
            }
        });
    }

    /// Runs backfill `id` in this process, unless it runs here already.
    pub fn spawn(&self, id: String) {
        if self.ctx.background.is_stopping() || !self.running.lock().insert(id.clone()) {
            return;
        }
        let me = self.clone();
        self.ctx.background.spawn(async move {
            tokio::select! {
                () = me.dropped() => tracing::info!(backfill = %id, "service dropped: backfill left at its checkpoint"),
                () = me.drive(&id) => {}
            }
            me.cplug.forget(&id);
            me.bitrix24.forget(&id);
            me.running.lock().remove(&id);
        });
    }

    /// Runs the backfill's pages until it ends, or until the process stops (between pages).
    async fn drive(&self, id: &str) {
        let mut backoff = Duration::from_millis(250);
        loop {
            if self.ctx.background.is_stopping() {
                tracing::info!(backfill = %id, "process stopping: backfill handed back at its checkpoint");
                return;
            }
            match self.step(id).await {
                Ok(Step::More) => backoff = Duration::from_millis(250),
                Ok(Step::Done) => return,
                Ok(Step::Busy) => self.pause(Duration::from_secs(1)).await,
                Err(ServiceError::Unavailable { message, retry_after }) => {
                    tracing::warn!(backfill = %id, error = %message, "backfill page will be retried");
                    let _ = self.store.note(id, &message).await;
                    self.pause(retry_after.unwrap_or(backoff).max(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    tracing::warn!(backfill = %id, error = %e, "backfill failed");
                    if let Err(e) = self.store.fail(id, &e.to_string()).await {
                        tracing::warn!(backfill = %id, error = %e, "could not record a failed backfill");
                    }
                    self.changed(id);
                    return;
                }
            }
        }
    }

    /// Completes when the service is dropped without its process stopping (as a killed process
    /// would stop); a stopping process lets the page in hand finish first.
    async fn dropped(&self) {
        let mut alive = self.alive.clone();
        let _ = alive.changed().await;
        if self.ctx.background.is_stopping() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits `wait`, or less when the process starts stopping.
    async fn pause(&self, wait: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            () = self.ctx.background.stopping() => {}
        }
    }

    /// One page under the backfill's lease.
    async fn step(&self, id: &str) -> Result<Step, ServiceError> {
        let lease = match self.ctx.locks.try_acquire(&format!("backfill:{id}"), PAGE_LEASE).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Ok(Step::Busy),
            Err(e) => return Err(ServiceError::unavailable(e.to_string(), None)),
        };
        let result = self.page_under_lease(id).await;
        let _ = self.ctx.locks.release(lease).await;
        result
    }

    async fn page_under_lease(&self, id: &str) -> Result<Step, ServiceError> {
        let stored = self.store.load(id).await?;
        if stored.state.is_terminal() {
            return Ok(Step::Done);
        }
        if stored.state == State::Pending && self.store.mark_running(id).await? {
            self.changed(id);
        }
        let page = u32::try_from(stored.pages_done + 1)
            .map_err(|_| ServiceError::Internal(anyhow::anyhow!("backfill {id} has an impossible checkpoint")))?;
        let Done { through, result, last } = match (stored.target, stored.scope) {
            (Target::Cplug, _) => self.cplug.step(&stored, page).await?,
            (Target::Bitrix24, Scope::Orders) => self.orders.step(&stored, page).await?,
            (Target::Bitrix24, Scope::Products) => self.bitrix24.step(&stored, page).await?,
        };
        if !self.store.commit(&stored, through, &result, last).await? {
            tracing::warn!(backfill = %id, page = through, "checkpoint moved under the page's lease; page not counted");
        }
        self.changed(id);
        let state = self.store.load(id).await?.state;
        Ok(if last || state.is_terminal() { Step::Done } else { Step::More })
    }
}
