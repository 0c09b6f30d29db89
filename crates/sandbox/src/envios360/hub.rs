//! The hub itself: its configuration, its merchants (each an API token with products, orders,
//! webhook and rate window), what it counted and the webhook deliveries it logged;
//! [`Envios360`] is shared by every route.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{errors, store::Merchant};
use crate::common::{Native, Runtime, Window};

/// The hub as one merchant sees it, and how it limits and notifies.
#[derive(Debug, Clone)]
pub struct Config {
    /// The first merchant's API token (more through [`Envios360::add_merchant`]).
    pub api_token: String,
    /// The first merchant's webhook secret and URL (the gateway's `/webhooks/envios360/{tenant}`).
    pub webhook_secret: String,
    pub webhook_url: Option<String>,
    /// Requests a second per token before 429.
    pub per_second: usize,
    /// Delivery attempts of one webhook, the first wait between them (doubling each time), and
    /// how long the hub keeps trying (24 h).
    pub webhook_attempts: u32,
    pub webhook_backoff: Duration,
    pub webhook_give_up: Duration,
    /// A delivery not answered 2xx within this counts as failed.
    pub webhook_timeout: Duration,
    /// Where tracking codes can be followed.
    pub tracking_url_base: String,
    /// Sandbox seconds per real second (1 = real time).
    pub time_scale: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api_token: "tok-360-sandbox-0000000000".into(),
            webhook_secret: "whsec-360-sandbox-00000000".into(),
            webhook_url: None,
            per_second: 5,
            webhook_attempts: 12,
            webhook_backoff: Duration::from_secs(30),
            webhook_give_up: Duration::from_secs(24 * 3600),
            webhook_timeout: Duration::from_secs(10),
            tracking_url_base: "https://rastreio.360envios.com.br/".into(),
            time_scale: 1.0,
        }
    }
}

impl Config {
    /// Real behaviour, but a rate limit functional tests do not hit and webhook retries
    /// 20 ms apart.
    pub fn for_tests() -> Self {
        Self { per_second: 1000, webhook_backoff: Duration::from_millis(20), ..Self::default() }
    }
}

/// One webhook delivery attempt, as the hub logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub event: String,
    pub attempt: u32,
    /// The receiver's status; `None` when it could not be reached in time.
    pub status: Option<u16>,
}

/// What the hub counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// API requests with a valid token.
    pub requests: u64,
    /// Answered 429.
    pub rate_limited: u64,
    /// Webhook events raised (each may take several attempts).
    pub webhooks: u64,
    /// Events dropped by an injected fault.
    pub webhooks_dropped: u64,
}

#[derive(Default)]
pub struct Inner {
    pub(super) next_product: u64,
    pub(super) next_order: u64,
    /// By token.
    pub(super) merchants: BTreeMap<String, Merchant>,
    /// Token → its requests in the last second.
    pub(super) windows: BTreeMap<String, Window>,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) stats: Stats,
}

impl Inner {
    /// The merchant holding order `id`.
    pub(super) fn order_owner(&mut self, id: &str) -> Option<&mut Merchant> {
        self.merchants.values_mut().find(|m| m.orders.contains_key(id))
    }

    pub(super) fn product_owner(&mut self, id: &str) -> Option<&mut Merchant> {
        self.merchants.values_mut().find(|m| m.products.contains_key(id))
    }
}

/// The hub; clone freely (clones share state).
#[derive(Clone)]
pub struct Envios360 {
    pub(super) config: Arc<Config>,
    pub(super) inner: Arc<Mutex<Inner>>,
    /// Faults, clock, webhook reordering and outbox.
    pub(super) rt: Runtime,
}

/// The contract's time stamps: UTC, whole seconds, `Z`.
pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Envios360 {
    pub fn new(config: Config) -> Self {
        let native = Native {
            server_error: || errors::error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error"),
            rate_limited: || errors::rate_limited(1),
        };
        let rt = Runtime::new(native, config.time_scale);
        let mut inner = Inner::default();
        inner.merchants.insert(
            config.api_token.clone(),
            Merchant {
                token: config.api_token.clone(),
                webhook_url: config.webhook_url.clone(),
                webhook_secret: config.webhook_secret.clone(),
                ..Merchant::default()
            },
        );
        Self { config: Arc::new(config), inner: Arc::new(Mutex::new(inner)), rt }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    crate::common::runtime_accessors!();

    /// Product and order ids from now on are greater than `first`: a hub started again beside
    /// data kept from an earlier one hands out none of its ids.
    pub fn start_ids_at(&self, first: u64) {
        let mut inner = self.inner.lock();
        inner.next_product = inner.next_product.max(first);
        inner.next_order = inner.next_order.max(first);
    }

    /// Another merchant: its own token, products, orders, rate limit and webhook.
    pub fn add_merchant(&self, token: &str, webhook_url: Option<String>, webhook_secret: &str) {
        crate::common::scan::record([token, webhook_secret]);
        self.inner.lock().merchants.insert(
            token.to_owned(),
            Merchant {
                token: token.to_owned(),
                webhook_url,
                webhook_secret: webhook_secret.to_owned(),
                ..Merchant::default()
            },
        );
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Requests answered 429 so far.
    pub fn rate_limited(&self) -> u64 {
        self.inner.lock().stats.rate_limited
    }

    /// Every order of every merchant, as `GET /orders/{id}` shows it.
    pub fn orders(&self) -> Vec<Value> {
        self.inner.lock().merchants.values().flat_map(|m| m.orders.values().cloned()).collect()
    }

    pub fn order(&self, id: &str) -> Option<Value> {
        self.inner.lock().merchants.values().find_map(|m| m.orders.get(id).cloned())
    }

    /// Every product of every merchant, as `GET /products/{id}` shows it.
    pub fn products(&self) -> Vec<Value> {
        self.inner.lock().merchants.values().flat_map(|m| m.products.values().cloned()).collect()
    }

    pub fn product(&self, id: &str) -> Option<Value> {
        self.inner.lock().merchants.values().find_map(|m| m.products.get(id).cloned())
    }

    /// Every webhook delivery attempt so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().deliveries.clone()
    }
}
