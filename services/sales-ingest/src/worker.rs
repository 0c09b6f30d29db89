//! Who drives sales, and how many at once: a bounded pool of workers per replica. A sale that
//! just came in is driven at once when a worker is free (its caller waits a moment for the
//! outcome); the scanner takes every sale that is due (new ones no worker was free for, retries
//! whose wait is over, sales whose worker crashed and whose lease expired, parked sales whose
//! re-check time came or whose tenant's mapping changed), oldest first, as workers free up.
//! Every task stops when the service is dropped ([`Lifeline`]); when the process stops, the
//! scanner ends and each sale being driven hands back its lease after the step in hand.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use ponte_core::{TenantId, background::Background, error::ServiceError};
use tokio::{
    sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot},
    task::JoinSet,
};
use tracing::Instrument;

use crate::{
    context::Context,
    post,
    store::{self, Key, Row},
};

type Tasks = Arc<Mutex<JoinSet<()>>>;

pub(crate) struct Worker {
    ctx: Context,
    permits: Arc<Semaphore>,
    wake: Notify,
    tasks: Tasks,
    /// Per tenant with parked sales: the newest mapping change seen.
    mapping_seen: Mutex<HashMap<TenantId, i64>>,
}

/// Keeps the worker's tasks running; dropping it stops them all at once (a dropped service),
/// unless the process is stopping: then each drive finishes its step and hands its sale back,
/// within the process's grace.
pub(crate) struct Lifeline(Tasks, Background);

impl Drop for Lifeline {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.0.lock() {
            if self.1.is_stopping() {
                tasks.detach_all();
            } else {
                tasks.abort_all();
            }
        }
    }
}

fn token() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Worker {
    /// The worker with its scanner started.
    pub fn start(ctx: Context) -> (Arc<Self>, Lifeline) {
        let tasks: Tasks = Arc::default();
        let permits = Arc::new(Semaphore::new(ctx.tuning.workers));
        let worker =
            Arc::new(Self { ctx, permits, wake: Notify::new(), tasks: tasks.clone(), mapping_seen: Mutex::default() });
        let w = worker.clone();
        worker.spawn(async move { w.scan().await });
        let background = worker.ctx.background.clone();
        (worker, Lifeline(tasks, background))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Ok(mut tasks) = self.tasks.lock() {
            while tasks.try_join_next().is_some() {}
            tasks.spawn(self.ctx.background.track(task));
        }
    }

    /// Wakes the scanner (a sale is due that no worker took).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Drives `key` now if a worker is free and nobody holds the sale, waiting at most the
    /// inline wait for it; the sale as it stands then.
    pub async fn run_now(&self, key: &Key) -> Result<Row, ServiceError> {
        if self.ctx.background.is_stopping() {
            // The replica that takes the sale over drives it.
            return store::require(&self.ctx.db, key).await;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.nudge();
            return store::require(&self.ctx.db, key).await;
        };
        let token = token();
        if store::claim(&self.ctx.db, key, &token, self.ctx.tuning.lease_ms()).await?.is_none() {
            return store::require(&self.ctx.db, key).await;
        }
        let (done, finished) = oneshot::channel();
        self.spawn_drive(key.clone(), token, permit, Some(done), None);
        let _ = tokio::time::timeout(self.ctx.tuning.inline_wait, finished).await;
        store::require(&self.ctx.db, key).await
    }

    /// Drives `key` in a task of its own. A sale driven at once belongs to the current trace
    /// (the request that brought it); one the scanner took (`traceparent`: what was stored with
    /// it) goes on under the trace of the request that brought it in, not a trace of its own.
    fn spawn_drive(
        &self,
        key: Key,
        token: String,
        permit: OwnedSemaphorePermit,
        done: Option<oneshot::Sender<()>>,
        traceparent: Option<String>,
    ) {
        let ctx = self.ctx.clone();
        let span = tracing::info_span!("sale.drive", sale_id = %key.sale_id);
        if let Some(tp) = traceparent.filter(|tp| !tp.is_empty()) {
            ponte_core::telemetry::set_parent_from_traceparent(&span, &tp);
        }
        self.spawn(
            async move {
                if let Err(e) = post::drive(&ctx, &key, &token).await {
                    tracing::warn!(error = %e, sale = %key.sale_id, "driving a sale failed; the scanner takes it again");
                    let _ = store::release(&ctx.db, &key, &token).await;
                }
                drop(permit);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            .instrument(span),
        );
    }

    async fn scan(self: Arc<Self>) {
        while !self.ctx.background.is_stopping() {
            if let Err(e) = self.scan_once().await {
                tracing::warn!(error = %e, "the sales scanner could not look for due sales");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.ctx.tuning.scan) => {}
                () = self.ctx.background.stopping() => {}
            }
        }
    }

    async fn scan_once(&self) -> Result<(), ServiceError> {
        self.wake_parked_on_mapping_change().await?;
        store::requeue_due_parked(&self.ctx.db).await?;
        let free = self.permits.available_permits();
        if free == 0 {
            return Ok(());
        }
        let token = token();
        let due = store::claim_due(&self.ctx.db, &token, self.ctx.tuning.lease_ms(), free as i64).await?;
        let full = due.len() == free;
        for (key, traceparent) in due {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => self.spawn_drive(key, token.clone(), permit, None, Some(traceparent)),
                // A sale that came in took the worker meanwhile: the lease lapses, it is taken next time.
                Err(_) => store::release(&self.ctx.db, &key, &token).await?,
            }
        }
        if full {
            // More may be due: look again as soon as a worker is free.
            let permits = self.permits.clone();
            let me_wake = &self.wake;
            if let Ok(p) = permits.acquire_owned().await {
                drop(p);
                me_wake.notify_one();
            }
        }
        Ok(())
    }

    /// Parked sales of a tenant whose mapping changed since they parked go again at once.
    async fn wake_parked_on_mapping_change(&self) -> Result<(), ServiceError> {
        for tenant in store::parked_tenants(&self.ctx.db).await? {
            let Ok(Some(changed)) = self.ctx.mapping.last_change(&tenant).await else { continue };
            let seen = self.mapping_seen.lock().ok().and_then(|m| m.get(&tenant).copied());
            if seen.is_none_or(|s| changed > s) {
                if let Ok(mut m) = self.mapping_seen.lock() {
                    m.insert(tenant.clone(), changed);
                }
                let woken = store::wake_parked(&self.ctx.db, &tenant, &[]).await?;
                tracing::debug!(tenant = %tenant, woken, "the mapping changed: parked sales go again");
            }
        }
        Ok(())
    }
}
