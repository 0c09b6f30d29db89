//! The dispatcher: delivers inbox events to their subscribing services over gRPC.
//!
//! Each delivery row (one per event and subscriber) is claimed, handed over with a deadline,
//! and then marked delivered, scheduled for a retry (exponential backoff with full jitter, or
//! the `retry-after-ms` the service asked for), or dead after the last attempt.
//!
//! Order: the deliveries of one tenant's entity to one service form a lane. A delivery is
//! claimed only when it is the oldest outstanding one of its lane and nothing of the lane is in
//! flight, so each service sees an entity's events one at a time, in order. Where a route
//! allows it (catalog-sync, which re-reads the source), a run of queued updates is collapsed
//! into the newest.
//!
//! Replicas: claims take row locks with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has a
//! single claimer per process), and a claim is a lease: a replica that dies mid-delivery loses
//! it when the lease expires and another replica delivers again. Work is found on a wake (an
//! in-process signal from the writer, `LISTEN`/`NOTIFY` from other replicas) or by a slow poll.

use std::{
    sync::{
        Arc, LazyLock, Mutex as StdMutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use ponte_core::{
    config::{ConfigError, Env},
    db::{Backend, Database},
    error::{is_retriable, retry_after},
    grpc::TracedChannel,
    retry::RetryPolicy,
    service::Deps,
    telemetry::set_parent_from_traceparent,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{
    CatalogSyncServiceHandleEventRequest, EventOutcome, InboundEvent, SalesIngestServiceHandleEventRequest,
    ShippingStatusServiceHandleEventRequest, catalog_sync_service_client::CatalogSyncServiceClient,
    sales_ingest_service_client::SalesIngestServiceClient, shipping_status_service_client::ShippingStatusServiceClient,
};
use sqlx::Row;
use tokio::{
    sync::{Mutex, Notify, Semaphore, watch},
    task::JoinSet,
    time::Instant,
};
use tracing::Instrument;

use crate::{
    inbox::{self, delivery, state},
    lookups::Lookups,
    metrics::{self, DeliveryLabels, SourceLabels, SubscriberLabels},
    routing::classify,
    sources::{SourceKind, Subscriber},
};

/// How the dispatcher delivers, from `PONTE_DISPATCH_*`.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// `PONTE_DISPATCH_ENABLED`: a replica that only receives can turn it off.
    pub enabled: bool,
    /// `PONTE_DISPATCH_MAX_ATTEMPTS`: attempts per delivery before it is a dead letter.
    pub max_attempts: u32,
    /// `PONTE_DISPATCH_BACKOFF_MS` and `PONTE_DISPATCH_MAX_BACKOFF_SECONDS`.
    pub backoff: RetryPolicy,
    /// `PONTE_DISPATCH_DEADLINE_SECONDS`: the gRPC deadline of one delivery.
    pub deadline: Duration,
    /// `PONTE_DISPATCH_LEASE_SECONDS`: how long a claim is held before another replica may
    /// take it over (longer than the deadline).
    pub lease: Duration,
    /// `PONTE_DISPATCH_POLL_MS`: the fallback poll when no wake arrives.
    pub poll: Duration,
    /// `PONTE_DISPATCH_CONCURRENCY`: deliveries in flight at once per replica.
    pub concurrency: usize,
}

impl DispatchConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let max_attempts: u32 = env.parse_or("PONTE_DISPATCH_MAX_ATTEMPTS", 12, "a whole number of attempts")?;
        if max_attempts == 0 {
            return Err(ConfigError::new("PONTE_DISPATCH_MAX_ATTEMPTS", "must be at least 1"));
        }
        let base_ms: u64 = env.parse_or("PONTE_DISPATCH_BACKOFF_MS", 500, "a whole number of milliseconds")?;
        let max_delay = env.seconds_or("PONTE_DISPATCH_MAX_BACKOFF_SECONDS", 600, 1)?;
        let deadline = env.seconds_or("PONTE_DISPATCH_DEADLINE_SECONDS", 10, 1)?;
        let lease = env.seconds_or("PONTE_DISPATCH_LEASE_SECONDS", 60, 1)?;
        if lease <= deadline {
            return Err(ConfigError::new(
                "PONTE_DISPATCH_LEASE_SECONDS",
                format!(
                    "{}s must be longer than the delivery deadline ({}s, PONTE_DISPATCH_DEADLINE_SECONDS)",
                    lease.as_secs(),
                    deadline.as_secs()
                ),
            ));
        }
        let poll_ms: u64 = env.parse_or("PONTE_DISPATCH_POLL_MS", 2000, "a whole number of milliseconds")?;
        if poll_ms < 10 {
            return Err(ConfigError::new("PONTE_DISPATCH_POLL_MS", format!("{poll_ms} is below the minimum of 10")));
        }
        let concurrency: usize = env.parse_or("PONTE_DISPATCH_CONCURRENCY", 32, "a whole number of deliveries")?;
        if concurrency == 0 {
            return Err(ConfigError::new("PONTE_DISPATCH_CONCURRENCY", "must be at least 1"));
        }
        Ok(Self {
            enabled: env.bool_or("PONTE_DISPATCH_ENABLED", true)?,
            max_attempts,
            backoff: RetryPolicy { max_attempts, base_delay: Duration::from_millis(base_ms.max(1)), max_delay },
            deadline,
            lease,
            poll: Duration::from_millis(poll_ms),
            concurrency,
        })
    }
}

/// Every dispatcher of this process, for [`wake_local`].
static WAKERS: LazyLock<StdMutex<Vec<Weak<Notify>>>> = LazyLock::new(Default::default);

/// Wakes every dispatcher of this process (new rows were committed, or dead letters replayed).
pub fn wake_local() {
    let mut wakers = WAKERS.lock().unwrap_or_else(|e| e.into_inner());
    wakers.retain(|w| match w.upgrade() {
        Some(n) => {
            n.notify_one();
            true
        }
        None => false,
    });
}

fn register_waker() -> Arc<Notify> {
    let n = Arc::new(Notify::new());
    WAKERS.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(&n));
    n
}

/// The subscribing services' clients.
#[derive(Clone)]
struct Clients {
    catalog_sync: CatalogSyncServiceClient<TracedChannel>,
    sales_ingest: SalesIngestServiceClient<TracedChannel>,
    shipping_status: ShippingStatusServiceClient<TracedChannel>,
}

impl Clients {
    async fn handle(
        &self,
        to: Subscriber,
        event: InboundEvent,
        deadline: Duration,
    ) -> Result<(EventOutcome, String), tonic::Status> {
        fn req<T>(msg: T, deadline: Duration) -> tonic::Request<T> {
            let mut r = tonic::Request::new(msg);
            r.set_timeout(deadline);
            r
        }
        let (outcome, detail) = match to {
            Subscriber::CatalogSync => {
                let r = self
                    .catalog_sync
                    .clone()
                    .handle_event(req(CatalogSyncServiceHandleEventRequest { event: Some(event) }, deadline))
                    .await?
                    .into_inner();
                (r.outcome, r.detail)
            }
            Subscriber::SalesIngest => {
                let r = self
                    .sales_ingest
                    .clone()
                    .handle_event(req(SalesIngestServiceHandleEventRequest { event: Some(event) }, deadline))
                    .await?
                    .into_inner();
                (r.outcome, r.detail)
            }
            Subscriber::ShippingStatus => {
                let r = self
                    .shipping_status
                    .clone()
                    .handle_event(req(ShippingStatusServiceHandleEventRequest { event: Some(event) }, deadline))
                    .await?
                    .into_inner();
                (r.outcome, r.detail)
            }
        };
        Ok((EventOutcome::try_from(outcome).unwrap_or(EventOutcome::Unspecified), detail))
    }
}

/// A claimed delivery with what the service needs.
struct Claimed {
    subscriber: Subscriber,
    attempt: u32,
    event: InboundEvent,
    traceparent: String,
    receive_time: i64,
    /// How many services the event goes to (its deliveries, fixed when it was routed).
    fanout: i64,
}

/// What a claim reads of the event (`e`) it delivers.
const CLAIMED_EVENT: &str = "e.tenant_id, e.source, e.source_event_id, e.event_type, e.entity_key, e.payload, \
     e.traceparent, e.occurred_time, e.receive_time, \
     (SELECT COUNT(*) FROM inbox_deliveries f WHERE f.event_id = e.event_id)";

/// A claimed delivery from a row holding [`CLAIMED_EVENT`] from column `at`; none when the
/// subscriber is not one this build knows.
fn claimed(
    row: &sqlx::any::AnyRow,
    at: usize,
    event_id: String,
    subscriber: &str,
    attempts: i64,
) -> Result<Option<Claimed>, sqlx::Error> {
    let Some(subscriber) = Subscriber::from_name(subscriber) else { return Ok(None) };
    let source: String = row.try_get(at + 1)?;
    let occurred: Option<i64> = row.try_get(at + 7)?;
    let receive_time: i64 = row.try_get(at + 8)?;
    let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
    Ok(Some(Claimed {
        subscriber,
        attempt,
        traceparent: row.try_get(at + 6)?,
        receive_time,
        fanout: row.try_get(at + 9)?,
        event: InboundEvent {
            event_id,
            tenant_id: row.try_get(at)?,
            source: SourceKind::from_name(&source).map_or(0, |k| k.provider() as i32),
            source_event_id: row.try_get(at + 2)?,
            event_type: row.try_get(at + 3)?,
            entity_key: row.try_get(at + 4)?,
            occurred_at: Some(to_timestamp(occurred.unwrap_or(receive_time))),
            received_at: Some(to_timestamp(receive_time)),
            payload: row.try_get(at + 5)?,
            attempt,
        },
    }))
}

/// What became of one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Completion {
    Delivered { outcome: EventOutcome, detail: String },
    Retry { at: i64, error: String },
    Dead { error: String },
}

/// What to do after attempt number `attempt` answered `answer`: done, retry at a time (the
/// wait the service asked for, or a backoff), or give up.
fn plan(
    answer: Result<(EventOutcome, String), tonic::Status>,
    attempt: u32,
    cfg: &DispatchConfig,
    now: i64,
) -> Completion {
    let status = match answer {
        Ok((outcome, detail)) => return Completion::Delivered { outcome, detail },
        Err(status) => status,
    };
    let error = format!("{:?}: {}", status.code(), status.message());
    // A call cut off with its connection comes back CANCELLED from the client; the service
    // never refused it.
    let retriable = is_retriable(&status) || status.code() == tonic::Code::Cancelled;
    if !retriable {
        Completion::Dead { error: format!("{error} (not retriable)") }
    } else if attempt >= cfg.max_attempts {
        Completion::Dead { error: format!("{error} (gave up after {attempt} attempts)") }
    } else {
        let wait = retry_after(&status).unwrap_or_else(|| cfg.backoff.backoff(attempt));
        Completion::Retry { at: now + wait.as_millis() as i64, error }
    }
}

pub struct Dispatcher {
    db: Database,
    /// This replica's name on the leases it holds.
    owner: String,
    cfg: DispatchConfig,
    clients: Clients,
    lookups: Lookups,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    /// SQLite: one claim at a time in this process (there is no row locking to share it).
    claim_lock: Mutex<()>,
    /// Set when the claim loop stopped for want of a free slot, so that the next delivery to
    /// finish wakes it.
    starved: AtomicBool,
}

impl Dispatcher {
    pub fn new(deps: &Deps, cfg: DispatchConfig, lookups: Lookups) -> Result<Self, ConfigError> {
        Ok(Self {
            db: deps.db.clone(),
            owner: uuid::Uuid::new_v4().to_string(),
            clients: Clients {
                catalog_sync: CatalogSyncServiceClient::new(deps.catalog_sync_channel()?),
                sales_ingest: SalesIngestServiceClient::new(deps.sales_ingest_channel()?),
                shipping_status: ShippingStatusServiceClient::new(deps.shipping_status_channel()?),
            },
            lookups,
            wake: register_waker(),
            slots: Arc::new(Semaphore::new(cfg.concurrency)),
            cfg,
            claim_lock: Mutex::new(()),
            starved: AtomicBool::new(false),
        })
    }

    /// Runs until `stop` turns true. Deliveries in flight are abandoned with the task (their
    /// leases expire and another replica, or this one restarted, delivers them again).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.db.backend() == Backend::Postgres {
            let (db, wake) = (self.db.clone(), self.wake.clone());
            let listener = tokio::spawn(listen(db, wake));
            let _abort = AbortOnDrop(listener);
            self.run_loop(&mut stop).await;
        } else {
            self.run_loop(&mut stop).await;
        }
    }

    async fn run_loop(self: &Arc<Self>, stop: &mut watch::Receiver<bool>) {
        let mut inflight = JoinSet::new();
        let mut last_upkeep: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            while inflight.try_join_next().is_some() {}
            if last_upkeep.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_upkeep = Some(Instant::now());
                if let Err(e) = self.release_expired().await {
                    tracing::warn!(error = %e, "releasing expired delivery leases failed");
                }
                if let Err(e) = self.route_received().await {
                    tracing::warn!(error = %e, "routing received events failed");
                }
            }
            let mut idle = true;
            loop {
                let free = self.slots.available_permits();
                if free == 0 {
                    idle = false;
                    self.starved.store(true, Ordering::Release);
                    break;
                }
                match self.claim(free).await {
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
                match self.next_due().await {
                    Ok(Some(at)) => Duration::from_millis((at - now_millis()).max(10) as u64).min(self.cfg.poll),
                    _ => self.cfg.poll,
                }
            } else {
                self.cfg.poll
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Claims up to `limit` deliveries that are due and head their lanes.
    ///
    /// On PostgreSQL the heads that need no coalescing (the common case: nothing else queued in
    /// their lane) are claimed and read with their events in one statement; a transaction of a
    /// claim is then four round trips however many it claims.
    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, sqlx::Error> {
        let _one = match self.db.backend() {
            Backend::Sqlite => Some(self.claim_lock.lock().await),
            Backend::Postgres => None,
        };
        let postgres = self.db.backend() == Backend::Postgres;
        let now = now_millis();
        let lock = if postgres { " FOR UPDATE OF d SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT d.event_id, d.subscriber, d.lane, d.coalescible, CAST(CASE WHEN EXISTS ( \
               SELECT 1 FROM inbox_deliveries y WHERE y.subscriber = d.subscriber AND y.lane = d.lane \
               AND y.state = 'pending' AND y.event_id <> d.event_id) THEN 1 ELSE 0 END AS BIGINT) \
             FROM inbox_deliveries d \
             WHERE d.state = 'pending' AND d.next_attempt_time <= $1 AND NOT EXISTS ( \
               SELECT 1 FROM inbox_deliveries x WHERE x.subscriber = d.subscriber AND x.lane = d.lane \
               AND x.state IN ('pending', 'in_flight') AND (x.state = 'in_flight' OR x.order_time < d.order_time \
               OR (x.order_time = d.order_time AND x.event_id < d.event_id))) \
             ORDER BY d.next_attempt_time, d.order_time, d.event_id LIMIT $2{lock}"
        );
        let mut tx = self.db.pool().begin().await?;
        let heads = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit as i64).fetch_all(&mut *tx).await?;
        if heads.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let lease_until = now + self.cfg.lease.as_millis() as i64;
        // Claimed together (PostgreSQL), or one by one.
        let mut together: Vec<(String, String)> = Vec::new();
        let mut one_by_one = Vec::new();
        let mut settle = Vec::new();
        for head in &heads {
            let (mut event_id, subscriber, lane): (String, String, String) =
                (head.try_get(0)?, head.try_get(1)?, head.try_get(2)?);
            let (coalescible, queued_behind) = (head.try_get::<i64, _>(3)? == 1, head.try_get::<i64, _>(4)? == 1);
            if coalescible && queued_behind {
                let replaced = coalesce(&mut tx, &subscriber, &lane, &event_id).await?;
                if let Some((target, replaced)) = replaced {
                    let m = metrics::get();
                    if let Some(sub) = Subscriber::from_name(&subscriber) {
                        m.deliveries
                            .get_or_create(&DeliveryLabels { subscriber: sub.name(), outcome: "coalesced" })
                            .inc_by(replaced.len() as u64);
                    }
                    settle.extend(replaced);
                    event_id = target;
                }
            }
            if postgres {
                together.push((event_id, subscriber));
                continue;
            }
            let attempts: i64 = sqlx::query_scalar(
                "UPDATE inbox_deliveries SET state = 'in_flight', lease_owner = $1, lease_until = $2, \
                 attempts = attempts + 1 WHERE event_id = $3 AND subscriber = $4 RETURNING attempts",
            )
            .bind(&self.owner)
            .bind(lease_until)
            .bind(&event_id)
            .bind(&subscriber)
            .fetch_one(&mut *tx)
            .await?;
            one_by_one.push((event_id, subscriber, attempts));
        }
        inbox::settle_all(&mut tx, self.db.backend(), &mut settle).await?;
        let mut out = Vec::with_capacity(heads.len());
        if !together.is_empty() {
            let sql = format!(
                "UPDATE inbox_deliveries d SET state = 'in_flight', lease_owner = $1, lease_until = $2, \
                 attempts = d.attempts + 1 FROM inbox_events e \
                 WHERE e.event_id = d.event_id AND (d.event_id, d.subscriber) IN (VALUES {}) \
                 RETURNING d.event_id, d.subscriber, d.attempts, {CLAIMED_EVENT}",
                inbox::values_from(3, together.len(), 2)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&self.owner).bind(lease_until);
            for (event_id, subscriber) in &together {
                q = q.bind(event_id).bind(subscriber);
            }
            for row in q.fetch_all(&mut *tx).await? {
                let (event_id, subscriber, attempts) = (row.try_get(0)?, row.try_get::<String, _>(1)?, row.try_get(2)?);
                out.extend(claimed(&row, 3, event_id, &subscriber, attempts)?);
            }
        }
        for (event_id, subscriber, attempts) in one_by_one {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {CLAIMED_EVENT} FROM inbox_events e WHERE e.event_id = $1"
            )))
            .bind(&event_id)
            .fetch_one(&mut *tx)
            .await?;
            out.extend(claimed(&row, 0, event_id, &subscriber, attempts)?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// One attempt, recorded.
    async fn deliver(&self, c: Claimed) {
        let span = tracing::info_span!(
            "inbox.deliver",
            otel.name = %format!("deliver {} to {}", c.event.event_type, c.subscriber.name()),
            otel.kind = "client",
            subscriber = c.subscriber.name(),
            event_id = %c.event.event_id,
            entity = %c.event.entity_key,
            attempt = c.attempt,
        );
        if !c.traceparent.is_empty() {
            set_parent_from_traceparent(&span, &c.traceparent);
        }
        let answer =
            self.clients.handle(c.subscriber, c.event.clone(), self.cfg.deadline).instrument(span.clone()).await;
        let sub = c.subscriber.name();
        let completion = match plan(answer, c.attempt, &self.cfg, now_millis()) {
            Completion::Retry { at, error } => Completion::Retry { at, error: format!("{sub}: {error}") },
            Completion::Dead { error } => Completion::Dead { error: format!("{sub}: {error}") },
            done => done,
        };
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
            Completion::Dead { error } => {
                tracing::warn!(parent: &span, error = %error, "delivery failed for good; dead letter");
                "dead"
            }
        };
        m.deliveries.get_or_create(&DeliveryLabels { subscriber: sub, outcome: label }).inc();
        // A lost database answer here is not lost work: the lease expires and the event is
        // delivered again (services treat a repeated event id as the same event).
        let mut wait = Duration::from_millis(100);
        let mut successor = None;
        for _ in 0..5 {
            match self.complete(&c, &completion).await {
                Ok(Some(known)) => {
                    successor = known;
                    if let (Completion::Dead { .. }, Some(kind)) =
                        (&completion, SourceKind::from_provider(c.event.source()))
                    {
                        m.dead.get_or_create(&SourceLabels { source: kind.name() }).inc();
                    }
                    break;
                }
                Ok(None) => {
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
        let mut wake = retry || self.starved.swap(false, Ordering::AcqRel);
        if !wake {
            wake = match successor {
                Some(known) => known,
                None => self.lane_has_successor(&c).await.unwrap_or(true),
            };
        }
        if wake {
            self.wake.notify_one();
        }
    }

    /// Whether a delivery to the same service waits in `c`'s lane.
    async fn lane_has_successor(&self, c: &Claimed) -> Result<bool, sqlx::Error> {
        let lane = inbox::lane(&c.event.tenant_id, &c.event.entity_key);
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM inbox_deliveries WHERE subscriber = $1 AND lane = $2 AND state = 'pending' \
             LIMIT 1",
        )
        .bind(c.subscriber.name())
        .bind(lane)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(next.is_some())
    }

    /// Records an attempt's result if this replica still holds the delivery: `None` when it
    /// does not (the lease was taken over), otherwise whether a delivery waits behind it in
    /// its lane, when that was learnt on the way.
    ///
    /// On PostgreSQL an event that goes to one service only is settled in the same statement
    /// (no other delivery can finish beside it); otherwise a transaction settles the event.
    async fn complete(&self, c: &Claimed, completion: &Completion) -> Result<Option<Option<bool>>, sqlx::Error> {
        let now = now_millis();
        let (new_state, next, error, outcome, detail, delivered) = match completion {
            Completion::Delivered { outcome, detail } => {
                (delivery::DELIVERED, now, String::new(), outcome.label(), detail.clone(), Some(now))
            }
            Completion::Retry { at, error } => (delivery::PENDING, *at, error.clone(), "", String::new(), None),
            Completion::Dead { error } => (delivery::DEAD, now, error.clone(), "", String::new(), None),
        };
        const UPDATE: &str = "UPDATE inbox_deliveries SET state = $1, next_attempt_time = $2, lease_owner = '', \
             lease_until = 0, last_error = CASE WHEN $3 = '' THEN last_error ELSE $3 END, outcome = $4, detail = $5, \
             delivered_time = $6 WHERE event_id = $7 AND subscriber = $8 AND state = 'in_flight' AND lease_owner = $9";
        let bind = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>| {
            q.bind(new_state)
                .bind(next)
                .bind(error.clone())
                .bind(outcome)
                .bind(detail.clone())
                .bind(delivered)
                .bind(c.event.event_id.clone())
                .bind(c.subscriber.name())
                .bind(self.owner.clone())
        };
        if self.db.backend() == Backend::Postgres && c.fanout == 1 {
            let sql = format!(
                "WITH done AS ({UPDATE} RETURNING event_id, lane, state, last_error), \
                 settled AS (UPDATE inbox_events e SET \
                   state = CASE WHEN done.state = 'dead' THEN 'dead' ELSE 'delivered' END, \
                   dead_reason = CASE WHEN done.state = 'dead' THEN done.last_error ELSE '' END \
                   FROM done WHERE e.event_id = done.event_id AND done.state <> 'pending') \
                 SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM inbox_deliveries x WHERE x.subscriber = $8 \
                   AND x.lane = done.lane AND x.state = 'pending') THEN 1 ELSE 0 END AS BIGINT) FROM done"
            );
            let successor: Option<i64> =
                bind(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_optional(self.db.pool()).await?.map(|r| r.get(0));
            return Ok(successor.map(|s| Some(s == 1)));
        }
        let mut tx = self.db.pool().begin().await?;
        let done = bind(sqlx::query(UPDATE)).execute(&mut *tx).await?.rows_affected() == 1;
        if done && new_state != delivery::PENDING {
            inbox::settle(&mut tx, self.db.backend(), &c.event.event_id).await?;
        }
        tx.commit().await?;
        Ok(done.then_some(None))
    }

    /// Deliveries whose replica stopped answering for them go back to the queue.
    async fn release_expired(&self) -> Result<(), sqlx::Error> {
        let now = now_millis();
        let released = sqlx::query(
            "UPDATE inbox_deliveries SET state = 'pending', lease_owner = '', lease_until = 0, next_attempt_time = $1, \
             last_error = 'the replica delivering it stopped before it finished' \
             WHERE state = 'in_flight' AND lease_until < $1",
        )
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if released > 0 {
            tracing::warn!(released, "took over deliveries whose lease expired");
        }
        Ok(())
    }

    /// Routes events stored without a tenant (auth-token was unreachable) and replayed dead
    /// letters: classifies them again from the stored payload.
    async fn route_received(&self) -> Result<(), sqlx::Error> {
        let rows = sqlx::query(
            "SELECT event_id, source, tenant_id, payload, receive_time FROM inbox_events \
             WHERE state = 'received' ORDER BY receive_time LIMIT 200",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut routed = false;
        for row in rows {
            let (event_id, source, path_tenant): (String, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let payload: Vec<u8> = row.try_get(3)?;
            let receive_time: i64 = row.try_get(4)?;
            let Some(kind) = SourceKind::from_name(&source) else { continue };
            let ev = kind.parse(&payload);
            let c = classify(kind, &ev, &path_tenant, &self.lookups).await;
            if c.state == state::RECEIVED {
                continue; // auth-token still unreachable
            }
            let mut tx = self.db.pool().begin().await?;
            let updated = sqlx::query(
                "UPDATE inbox_events SET state = $1, tenant_id = $2, account = $3, event_type = $4, entity_key = $5, \
                 lane = $6, dead_reason = $7, occurred_time = $8 WHERE event_id = $9 AND state = 'received'",
            )
            .bind(c.state)
            .bind(&c.tenant_id)
            .bind(inbox::clean(&ev.account))
            .bind(inbox::clean(&ev.event_type))
            .bind(inbox::clean(&ev.entity_key))
            .bind(inbox::lane(&c.tenant_id, &ev.entity_key))
            .bind(&c.dead_reason)
            .bind(ev.occurred)
            .bind(&event_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if updated && c.state == state::PENDING {
                let now = now_millis();
                let rows: Vec<_> = inbox::deliveries_for(
                    &event_id,
                    &c.tenant_id,
                    &inbox::clean(&ev.entity_key),
                    ev.occurred.unwrap_or(receive_time),
                    c.routes,
                    now,
                )
                .collect();
                inbox::insert_deliveries(&mut tx, &rows).await?;
                routed = true;
            } else if updated {
                metrics::get().dead.get_or_create(&SourceLabels { source: kind.name() }).inc();
            }
            tx.commit().await?;
        }
        if routed {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The soonest retry time after now, if any.
    async fn next_due(&self) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT MIN(next_attempt_time) FROM inbox_deliveries WHERE state = 'pending' AND next_attempt_time > $1",
        )
        .bind(now_millis())
        .fetch_one(self.db.pool())
        .await
    }
}

/// Collapses a run of queued updates after `head` in its lane into the newest one. Returns the
/// delivery to make instead of `head` and the events replaced, when there is a run.
async fn coalesce(
    conn: &mut sqlx::AnyConnection,
    subscriber: &str,
    lane: &str,
    head: &str,
) -> Result<Option<(String, Vec<String>)>, sqlx::Error> {
    let queued = sqlx::query(
        "SELECT event_id, coalescible FROM inbox_deliveries WHERE subscriber = $1 AND lane = $2 \
         AND state = 'pending' ORDER BY order_time, event_id LIMIT 1000",
    )
    .bind(subscriber)
    .bind(lane)
    .fetch_all(&mut *conn)
    .await?;
    let mut run = Vec::new();
    for row in &queued {
        let (id, coalescible): (String, bool) = (row.try_get(0)?, row.try_get::<i64, _>(1)? == 1);
        if run.is_empty() && id != head {
            return Ok(None); // the lane changed under us; deliver the head as it is
        }
        if !coalescible {
            break;
        }
        run.push(id);
    }
    let Some(target) = run.pop() else { return Ok(None) };
    if run.is_empty() {
        return Ok(None);
    }
    for id in &run {
        sqlx::query(
            "UPDATE inbox_deliveries SET state = 'coalesced', detail = $1, lease_owner = '', lease_until = 0 \
             WHERE event_id = $2 AND subscriber = $3 AND state = 'pending'",
        )
        .bind(format!("replaced by the newer event {target}"))
        .bind(id)
        .bind(subscriber)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some((target, run)))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes `wake` whenever another process commits work (PostgreSQL `LISTEN`).
async fn listen(db: Database, wake: Arc<Notify>) {
    let url = db.pool().connect_options().database_url.to_string();
    let channel = inbox::channel(&db);
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(&channel).await {
                Ok(()) => loop {
                    match listener.recv().await {
                        Ok(n) if n.payload() == inbox::origin() => {}
                        Ok(_) => wake.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "inbox notifications interrupted; reconnecting");
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for inbox notifications"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect for inbox notifications"),
        }
        // The poll still finds the work meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
        wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_retried_after_the_wait_asked_for_or_a_backoff_then_given_up() {
        let cfg = DispatchConfig::from_env(&Env::from_pairs([("PONTE_DISPATCH_MAX_ATTEMPTS", "3")])).unwrap();
        let mut asked = tonic::Status::unavailable("bling rate limit");
        asked.metadata_mut().insert(ponte_core::error::RETRY_AFTER_MS, "7000".parse().unwrap());
        assert_eq!(
            plan(Err(asked.clone()), 1, &cfg, 1_000),
            Completion::Retry { at: 8_000, error: "Unavailable: bling rate limit".into() }
        );
        let Completion::Retry { at, .. } = plan(Err(tonic::Status::unavailable("down")), 2, &cfg, 1_000) else {
            panic!("not retried")
        };
        assert!((1_000..=2_000).contains(&at), "backoff of attempt 2 is at most 2 x 500 ms: {at}");
        assert!(matches!(plan(Err(tonic::Status::cancelled("cut")), 1, &cfg, 0), Completion::Retry { .. }));
        assert_eq!(
            plan(Err(asked), 3, &cfg, 0),
            Completion::Dead { error: "Unavailable: bling rate limit (gave up after 3 attempts)".into() }
        );
        assert_eq!(
            plan(Err(tonic::Status::invalid_argument("event.tenant_id: is required")), 1, &cfg, 0),
            Completion::Dead { error: "InvalidArgument: event.tenant_id: is required (not retriable)".into() }
        );
        assert_eq!(
            plan(Ok((EventOutcome::Stale, "older".into())), 1, &cfg, 0),
            Completion::Delivered { outcome: EventOutcome::Stale, detail: "older".into() }
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        for (var, value) in [
            ("PONTE_DISPATCH_MAX_ATTEMPTS", "0"),
            ("PONTE_DISPATCH_BACKOFF_MS", "soon"),
            ("PONTE_DISPATCH_POLL_MS", "1"),
            ("PONTE_DISPATCH_CONCURRENCY", "0"),
            ("PONTE_DISPATCH_LEASE_SECONDS", "5"),
        ] {
            let err = DispatchConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
        }
        let cfg = DispatchConfig::from_env(&Env::default()).unwrap();
        assert!(cfg.enabled && cfg.lease > cfg.deadline);
    }
}

#[cfg(test)]
mod sqlite_tests {
    use ponte_core::{config::Peers, service::Shared};

    use super::*;
    use crate::{
        inbox::{NewEvent, Stored, Writer},
        sources::{Bling, WebhookSource},
    };

    fn event(id: &str, entity: &str, at: i64) -> NewEvent {
        NewEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            source: "bling",
            source_event_id: id.into(),
            tenant_id: "loja".into(),
            account: "c".into(),
            event_type: "product.updated".into(),
            entity_key: entity.into(),
            state: state::PENDING,
            dead_reason: String::new(),
            payload: b"{}".to_vec(),
            headers_json: "{}".into(),
            traceparent: String::new(),
            occurred_time: Some(at),
            receive_time: now_millis(),
            routes: Bling::routes("product.updated"),
        }
    }

    /// `ponte dev` keeps the inbox in SQLite: storing, deduplicating, claiming one delivery per
    /// lane and coalescing work there too.
    #[tokio::test]
    async fn the_inbox_works_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::sqlite_in(dir.path(), "gateway").await.unwrap();
        db.migrate(crate::SPEC.migrations).await.unwrap();
        let mut tasks = Vec::new();
        let writer = Writer::spawn(db.clone(), 2, &mut tasks);
        assert_eq!(writer.store(event("e1", "product:1", 1)).await.unwrap(), Stored::Inserted);
        assert_eq!(writer.store(event("e1", "product:1", 1)).await.unwrap(), Stored::Duplicate);
        for (i, id) in ["e2", "e3"].iter().enumerate() {
            writer.store(event(id, "product:1", 2 + i as i64)).await.unwrap();
        }
        writer.store(event("e4", "product:2", 1)).await.unwrap();

        let deps = Shared::memory().deps(db.clone(), Peers::local(1), Env::default());
        let cfg = DispatchConfig::from_env(&Env::default()).unwrap();
        let d = Dispatcher::new(&deps, cfg, Lookups::new(deps.auth_token_channel().unwrap())).unwrap();
        let claimed = d.claim(10).await.unwrap();
        let mut got: Vec<_> = claimed.iter().map(|c| (c.event.source_event_id.clone(), c.attempt)).collect();
        got.sort();
        // One per lane; product:1's three queued updates collapse into the newest.
        assert_eq!(got, [("e3".to_owned(), 1), ("e4".to_owned(), 1)]);
        assert!(d.claim(10).await.unwrap().is_empty(), "a lane with a delivery in flight gave out another");
        let coalesced: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox_events WHERE state = 'coalesced'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(coalesced, 2);
        let c = claimed.into_iter().find(|c| c.event.source_event_id == "e3").unwrap();
        let done = Completion::Delivered { outcome: EventOutcome::Skipped, detail: "ok".into() };
        assert!(d.complete(&c, &done).await.unwrap().is_some(), "the lease was lost");
        let st: String = sqlx::query_scalar("SELECT state FROM inbox_events WHERE source_event_id = 'e3'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(st, "delivered");
    }
}
