//! The gateway's metrics, registered once per process in ponte's registry (served at
//! `/metrics`). Labels are bounded: a source is one of four names, a subscriber one of three
//! services, an outcome and a status one of a fixed few.

use std::sync::LazyLock;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
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

pub struct GatewayMetrics {
    pub received: Family<SourceLabels, Counter>,
    pub stored: Family<SourceLabels, Counter>,
    pub duplicate: Family<SourceLabels, Counter>,
    pub dead: Family<SourceLabels, Counter>,
    pub rejected: Family<RejectLabels, Counter>,
    pub ack_latency: Family<SourceLabels, Histogram>,
    pub commit_batch: Histogram,
    pub commit_seconds: Histogram,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub dispatch_lag: Family<SubscriberLabels, Histogram>,
}

static METRICS: LazyLock<GatewayMetrics> = LazyLock::new(|| {
    let m = GatewayMetrics {
        received: Family::default(),
        stored: Family::default(),
        duplicate: Family::default(),
        dead: Family::default(),
        rejected: Family::default(),
        // 0.25 ms .. ~8 s
        ack_latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00025, 2.0, 16))),
        commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
        // 0.1 ms .. ~3 s
        commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        deliveries: Family::default(),
        // 1 ms .. ~9 h: an event can wait out a long outage of its service.
        dispatch_lag: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 26))),
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
        "Events that became dead letters: unusable on arrival or out of delivery attempts",
        m.dead.clone(),
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
    m
});

pub fn get() -> &'static GatewayMetrics {
    &METRICS
}
