//! The gateway's metrics, registered once per process in ponte's registry (served at
//! `/metrics`). Labels are bounded: a source is one of four names, a subscriber one of three
//! services, an outcome, a dead letter's reason and a status one of a fixed few. The inbox's
//! depth and the age of its oldest pending delivery, per subscriber, are read from the
//! database when `/metrics` is scraped (every replica reports the same inbox: take the max).

use std::sync::{LazyLock, atomic::AtomicU64};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub source: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub subscriber: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriberLabels {
    pub subscriber: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InboxLabels {
    pub subscriber: String,
}

/// Why an event became a dead letter.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DeadReason {
    /// Unusable on arrival: no tenant, not parseable, not an event ponte takes.
    Unusable,
    /// A service refused it for good (the merchant must fix something).
    Refused,
    /// Out of delivery attempts: the service kept failing.
    Exhausted,
}

impl DeadReason {
    fn label(self) -> &'static str {
        match self {
            Self::Unusable => "unusable",
            Self::Refused => "refused",
            Self::Exhausted => "exhausted",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLabels {
    pub source: &'static str,
    pub reason: &'static str,
}

pub struct GatewayMetrics {
    pub received: Family<SourceLabels, Counter>,
    pub stored: Family<SourceLabels, Counter>,
    pub duplicate: Family<SourceLabels, Counter>,
    pub dead: Family<DeadLabels, Counter>,
    pub ignored: Family<SourceLabels, Counter>,
    pub rejected: Family<RejectLabels, Counter>,
    pub ack_latency: Family<SourceLabels, Histogram>,
    pub commit_batch: Histogram,
    pub commit_seconds: Histogram,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub dispatch_lag: Family<SubscriberLabels, Histogram>,
    pub inbox_pending: Family<InboxLabels, Gauge>,
    pub inbox_oldest_age: Family<InboxLabels, Gauge<f64, AtomicU64>>,
}

static METRICS: LazyLock<GatewayMetrics> = LazyLock::new(|| {
    let m = GatewayMetrics {
        received: Family::default(),
        stored: Family::default(),
        duplicate: Family::default(),
        dead: Family::default(),
        ignored: Family::default(),
        rejected: Family::default(),
        // 0.25 ms .. ~8 s
        ack_latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00025, 2.0, 16))),
        commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
        // 0.1 ms .. ~3 s
        commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        deliveries: Family::default(),
        // 1 ms .. ~9 h: an event can wait out a long outage of its service.
        dispatch_lag: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 26))),
        inbox_pending: Family::default(),
        inbox_oldest_age: Family::default(),
    };
    let r = ponte_core::metrics::global();
    r.register(
        "ponte_gateway_inbox_commit_seconds",
        "Time one inbox commit (a batch of events) took, from statement to durable",
        m.commit_seconds.clone(),
    );
    r.register("ponte_gateway_events_received", "Webhook requests received, by source", m.received.clone());
    r.register(
        "ponte_gateway_events_stored",
        "Webhook events stored in the inbox (dead letters included)",
        m.stored.clone(),
    );
    r.register(
        "ponte_gateway_events_duplicate",
        "Webhook events answered as duplicates of a stored one",
        m.duplicate.clone(),
    );
    r.register(
        "ponte_gateway_events_dead",
        "Events that became dead letters, by source and reason (unusable on arrival, refused by a service, out of attempts)",
        m.dead.clone(),
    );
    r.register(
        "ponte_gateway_events_ignored",
        "Signed events stored as ignored because no ponte service subscribes to their type, by source",
        m.ignored.clone(),
    );
    r.register(
        "ponte_gateway_events_rejected",
        "Webhook requests refused (bad signature, size, content type, or the gateway could not store them)",
        m.rejected.clone(),
    );
    r.register(
        "ponte_gateway_ack_latency_seconds",
        "Time from a webhook's arrival to its 2xx (stored and committed)",
        m.ack_latency.clone(),
    );
    r.register(
        "ponte_gateway_inbox_commit_batch_size",
        "Events committed per inbox transaction",
        m.commit_batch.clone(),
    );
    r.register(
        "ponte_gateway_deliveries",
        "Delivery attempts to a subscribing service, by outcome",
        m.deliveries.clone(),
    );
    r.register(
        "ponte_gateway_dispatch_lag_seconds",
        "Time from an event's arrival to its delivery to a subscribing service",
        m.dispatch_lag.clone(),
    );
    r.register(
        "ponte_inbox_pending",
        "Deliveries waiting or in flight, per subscribing service",
        m.inbox_pending.clone(),
    );
    r.register(
        "ponte_inbox_oldest_pending_age_seconds",
        "Age of the oldest delivery still waiting or in flight, per subscribing service (0: none)",
        m.inbox_oldest_age.clone(),
    );
    m
});

/// Counts one dead letter of `source`.
pub fn dead(source: &'static str, reason: DeadReason) {
    get().dead.get_or_create(&DeadLabels { source, reason: reason.label() }).inc();
}

/// Reads the inbox's depth and oldest pending age per subscriber into their gauges.
pub async fn read_inbox(db: &ponte_core::db::Database) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT subscriber, COUNT(*), MIN(create_time) FROM inbox_deliveries \
         WHERE state IN ('pending', 'in_flight') GROUP BY subscriber",
    )
    .fetch_all(db.pool())
    .await?;
    let m = get();
    let now = ponte_core::time::now_millis();
    for sub in crate::subscribers::Subscriber::ALL {
        let labels = InboxLabels { subscriber: sub.name().to_owned() };
        let (n, oldest) = rows.iter().find(|r| r.0 == sub.name()).map_or((0, now), |r| (r.1, r.2));
        m.inbox_pending.get_or_create(&labels).set(n);
        m.inbox_oldest_age.get_or_create(&labels).set(((now - oldest).max(0) as f64) / 1000.0);
    }
    Ok(())
}

pub fn get() -> &'static GatewayMetrics {
    &METRICS
}

/// Counts one event stored as ignored (no service subscribes to its type).
pub fn ignored(source: &'static str) {
    get().ignored.get_or_create(&SourceLabels { source }).inc();
}
