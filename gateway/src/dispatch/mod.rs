//! The dispatcher: delivers inbox events to their subscribing services over gRPC. Each
//! delivery (one per event and subscriber) is claimed with a lease (`claim`), handed over with a
//! deadline (`clients`), and then recorded (`complete`) as delivered, due for a retry or dead,
//! as `plan` decides; deliveries of one tenant's entity to one service go one at a time, in
//! order. Work is found on a wake (the gateway's [`Wake`]: its writer, its replays, other
//! replicas' `NOTIFY`) or by a slow poll; `upkeep` takes over expired leases and routes events
//! stored without a tenant; `hold` keeps a suspended tenant's deliveries waiting; `lane` is how
//! their statements look into a lane.

mod claim;
mod clients;
mod complete;
mod config;
mod hold;
pub mod lane;
mod plan;
mod upkeep;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

pub use claim::heads_sql;
pub use complete::complete_alone_sql;
pub use config::DispatchConfig;
use ponte_core::{
    config::ConfigError,
    db::{Backend, Database},
    service::Deps,
    telemetry::set_parent_from_traceparent,
    time::now_millis,
};
use tokio::{
    sync::{Semaphore, watch},
    task::JoinSet,
    time::Instant,
};
use tracing::Instrument;

use self::{
    claim::{Claimed, Claims},
    clients::Clients,
    complete::{Completed, Successor, complete, successor_waiting},
    plan::{Completion, plan},
};
use crate::{
    lookups::Lookups,
    metrics::{self, DeadReason, DeliveryLabels, SubscriberLabels},
    sources::SourceKind,
    wake::Wake,
};

pub struct Dispatcher {
    db: Database,
    cfg: DispatchConfig,
    claims: Claims,
    clients: Clients,
    lookups: Lookups,
    wake: Wake,
    slots: Arc<Semaphore>,
    /// Set when the claim loop stopped for want of a free slot, so that the next delivery to
    /// finish wakes it.
    starved: AtomicBool,
}

impl Dispatcher {
    /// A dispatcher woken through `wake`, its gateway's.
    pub fn new(deps: &Deps, cfg: DispatchConfig, lookups: Lookups, wake: Wake) -> Result<Self, ConfigError> {
        Ok(Self {
            db: deps.db.clone(),
            claims: Claims::new(deps.db.clone(), cfg.lease),
            clients: Clients::new(deps)?,
            lookups,
            wake,
            slots: Arc::new(Semaphore::new(cfg.concurrency)),
            cfg,
            starved: AtomicBool::new(false),
        })
    }

    /// Runs until `stop` turns true, then claims nothing more, lets the deliveries in flight
    /// finish (each is bounded by its deadline) and hands back any it still holds. A task
    /// aborted before that (a killed process) leaves its deliveries to their leases.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let _listener = (self.db.backend() == Backend::Postgres)
            .then(|| AbortOnDrop(tokio::spawn(self.wake.clone().listen(self.db.clone()))));
        let mut inflight = self.run_loop(&mut stop).await;
        let n = inflight.len();
        if n > 0 {
            tracing::info!(deliveries = n, "stopping: finishing the deliveries in flight");
        }
        while inflight.join_next().await.is_some() {}
        self.hand_back().await;
    }

    /// Hands back every delivery this dispatcher still holds (see [`upkeep::hand_back`]).
    pub async fn hand_back(&self) {
        if let Err(e) = upkeep::hand_back(&self.db, self.claims.owner(), &self.wake).await {
            tracing::warn!(error = %e, "could not hand back deliveries; their leases will expire");
        }
    }

    /// Claims and delivers until `stop`; the deliveries still in flight then.
    async fn run_loop(self: &Arc<Self>, stop: &mut watch::Receiver<bool>) -> JoinSet<()> {
        let mut inflight = JoinSet::new();
        let mut last_upkeep: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                return inflight;
            }
            while inflight.try_join_next().is_some() {}
            if last_upkeep.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_upkeep = Some(Instant::now());
                self.upkeep().await;
            }
            let mut idle = true;
            loop {
                let free = self.slots.available_permits();
                if free == 0 {
                    idle = false;
                    self.starved.store(true, Ordering::Release);
                    break;
                }
                match self.claims.claim(free).await {
                    Ok(claimed) => {
                        let n = claimed.len();
                        for c in claimed {
                            let Ok(permit) = self.slots.clone().try_acquire_owned() else { break };
                            let me = self.clone();
                            inflight.spawn(async move {
                                me.deliver(c).await;
                                drop(permit);
                            });
                        }
                        if n > 0 {
                            idle = false;
                        }
                        if n < free {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming deliveries failed");
                        break;
                    }
                }
            }
            let wait = if idle {
                match upkeep::next_due(&self.db).await {
                    Ok(Some(at)) => Duration::from_millis((at - now_millis()).max(10) as u64).min(self.cfg.poll),
                    _ => self.cfg.poll,
                }
            } else {
                self.cfg.poll
            };
            tokio::select! {
                () = self.wake.wait() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn upkeep(&self) {
        if let Err(e) = upkeep::release_expired(&self.db).await {
            tracing::warn!(error = %e, "releasing expired delivery leases failed");
        }
        match upkeep::route_received(&self.db, &self.lookups).await {
            Ok(true) => self.wake.wake_dispatcher(),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "routing received events failed"),
        }
        if let Err(e) = hold::review(&self.db, &self.lookups, &self.wake).await {
            tracing::warn!(error = %e, "reviewing held tenants failed");
        }
    }

    /// One attempt, recorded; or, while its tenant's licence is inactive, the delivery held.
    async fn deliver(&self, c: Claimed) {
        if let Some(reason) = hold::should_hold(&self.lookups, &c).await {
            match hold::hold(&self.db, self.claims.owner(), &c, &reason).await {
                Ok(()) => {
                    let labels = DeliveryLabels { subscriber: c.subscriber.name(), outcome: "held" };
                    metrics::get().deliveries.get_or_create(&labels).inc();
                }
                // Its lease expires and it is claimed (and checked) again.
                Err(e) => tracing::warn!(error = %e, event_id = %c.event.event_id, "holding a delivery failed"),
            }
            if self.starved.swap(false, Ordering::AcqRel) {
                self.wake.wake_dispatcher();
            }
            return;
        }
        let sub = c.subscriber.name();
        let (service, method) = c.subscriber.rpc();
        let span = tracing::info_span!(
            "inbox.deliver",
            otel.name = %format!("deliver {} to {sub}", c.event.event_type),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            subscriber = sub,
            event_id = %c.event.event_id,
            entity = %c.event.entity_key,
            attempt = c.attempt,
        );
        if !c.traceparent.is_empty() {
            set_parent_from_traceparent(&span, &c.traceparent);
        }
        let answer =
            self.clients.handle(c.subscriber, c.event.clone(), self.cfg.deadline).instrument(span.clone()).await;
        let completion = plan(answer, c.attempt, &self.cfg, now_millis()).answered_by(sub);
        let m = metrics::get();
        let label = match &completion {
            Completion::Delivered { outcome, .. } => {
                m.dispatch_lag
                    .get_or_create(&SubscriberLabels { subscriber: sub })
                    .observe(((now_millis() - c.receive_time).max(0) as f64) / 1000.0);
                outcome.label()
            }
            Completion::Retry { error, .. } => {
                tracing::info!(parent: &span, error = %error, "delivery failed; will retry");
                "retry"
            }
            Completion::Dead { error, .. } => {
                tracing::warn!(parent: &span, error = %error, "delivery failed for good; dead letter");
                "dead"
            }
        };
        m.deliveries.get_or_create(&DeliveryLabels { subscriber: sub, outcome: label }).inc();
        // A lost database answer here is not lost work: the lease expires and the event is
        // delivered again (services treat a repeated event id as the same event).
        let mut wait = Duration::from_millis(100);
        let mut successor = Successor::Unknown;
        for _ in 0..5 {
            match complete(&self.db, self.claims.owner(), &c, &completion).await {
                Ok(Completed::Recorded(known)) => {
                    successor = known;
                    if let (Completion::Dead { exhausted, .. }, Some(kind)) =
                        (&completion, SourceKind::from_provider(c.event.source()))
                    {
                        let reason = if *exhausted { DeadReason::Exhausted } else { DeadReason::Refused };
                        metrics::dead(kind.name(), reason);
                    }
                    break;
                }
                Ok(Completed::LeaseLost) => {
                    tracing::warn!(parent: &span, "the delivery's lease was taken over; its result is dropped");
                    break;
                }
                Err(e) => {
                    tracing::warn!(parent: &span, error = %e, "recording a delivery failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        // Wake the claim loop when there is something this delivery was holding back: the next
        // event of its lane, a slot the loop was waiting for, or this event's own next attempt.
        // Checked after the completion committed, so an event queued behind it later finds the
        // lane free when its own insert wakes a claim; an empty claim (a transaction and the
        // heads query) costs more than the look.
        let retry = matches!(completion, Completion::Retry { .. });
        let wake = retry
            || self.starved.swap(false, Ordering::AcqRel)
            || match successor {
                Successor::Waiting => true,
                Successor::Nothing => false,
                Successor::Unknown => successor_waiting(&self.db, &c).await.unwrap_or(true),
            };
        if wake {
            self.wake.wake_dispatcher();
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
