//! The PDV itself: its configuration, its accounts (each a merchant's user, catalog, sales,
//! webhook and rate window), the access tokens it issued, what it counted and the webhook
//! deliveries it logged; [`Cplug`] is shared by every route.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{errors, store::Sale};
use crate::common::{Native, Runtime, Window};

/// The most products one bulk may carry.
pub const BULK_LIMIT: usize = 500;
/// The largest page `GET /products` serves.
pub const MAX_PER_PAGE: usize = 100;

/// The API client ponte uses, the first account, and how the PDV limits and notifies.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    /// The first account's user (more through [`Cplug::add_account`]).
    pub username: String,
    pub password: String,
    pub token_ttl: Duration,
    /// The first account's webhook secret and URL (the gateway's `/webhooks/cplug/{tenant}`).
    pub webhook_secret: String,
    pub webhook_url: Option<String>,
    /// The store sales are rung up in when the sale does not say.
    pub store_id: String,
    /// Requests a second per account before 429 (the contract gives no figure).
    pub per_second: usize,
    /// Delivery attempts of one webhook, the first wait between them (doubling), and how long
    /// CPLUG keeps trying.
    pub webhook_attempts: u32,
    pub webhook_backoff: Duration,
    pub webhook_give_up: Duration,
    pub webhook_timeout: Duration,
    /// Sandbox seconds per real second (1 = real time).
    pub time_scale: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_id: "cplug-client".into(),
            client_secret: "cplug-client-secret-000000".into(),
            username: "caixa@loja".into(),
            password: "pdv-password-000000".into(),
            token_ttl: Duration::from_secs(3600),
            webhook_secret: "cplug-webhook-secret-000000".into(),
            webhook_url: None,
            store_id: "loja-centro".into(),
            per_second: 50,
            webhook_attempts: 10,
            webhook_backoff: Duration::from_secs(30),
            webhook_give_up: Duration::from_secs(24 * 3600),
            webhook_timeout: Duration::from_secs(10),
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

/// What the PDV counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub token_calls: u64,
    /// API requests with a valid token.
    pub api_requests: u64,
    /// Answered 429.
    pub rate_limited: u64,
    /// Sale webhooks raised (each may take several attempts).
    pub webhooks: u64,
    /// Sale webhooks dropped by an injected fault.
    pub webhooks_dropped: u64,
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub event: String,
    pub sale_id: String,
    pub attempt: u32,
    /// The receiver's status; `None` when it could not be reached in time.
    pub status: Option<u16>,
}

/// One CPLUG account (a merchant's PDV).
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub(super) password: String,
    pub(super) webhook_url: Option<String>,
    pub(super) webhook_secret: String,
    /// By `external_id`: (CPLUG id, product).
    pub(super) products: BTreeMap<String, (u64, Value)>,
    pub(super) sales: BTreeMap<String, Sale>,
    pub(super) next_sale: u64,
    pub(super) window: Window,
}

#[derive(Default)]
pub struct Inner {
    /// By username.
    pub(super) accounts: BTreeMap<String, Account>,
    /// Access token → (username, expiry).
    pub(super) tokens: BTreeMap<String, (String, DateTime<Utc>)>,
    pub(super) next_product: u64,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) stats: Stats,
}

/// The PDV; clone freely (clones share state).
#[derive(Clone)]
pub struct Cplug {
    pub(super) config: Arc<Config>,
    pub(super) inner: Arc<Mutex<Inner>>,
    /// Faults, clock, webhook reordering and outbox.
    pub(super) rt: Runtime,
}

/// Brasília time (UTC−3), as the PDV writes its time stamps.
pub(super) fn brasilia() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).unwrap_or_else(|| unreachable!("a valid offset"))
}

impl Cplug {
    pub fn new(config: Config) -> Self {
        let native = Native {
            server_error: || errors::plain(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
            rate_limited: || errors::too_many(1),
        };
        let rt = Runtime::new(native, config.time_scale);
        let mut inner = Inner::default();
        inner.accounts.insert(
            config.username.clone(),
            Account {
                password: config.password.clone(),
                webhook_url: config.webhook_url.clone(),
                webhook_secret: config.webhook_secret.clone(),
                ..Account::default()
            },
        );
        Self { config: Arc::new(config), inner: Arc::new(Mutex::new(inner)), rt }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    crate::common::runtime_accessors!();

    /// Moves the clock forward (tokens expire).
    pub fn advance(&self, by: Duration) {
        self.rt.clock.advance(by);
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Sale numbers (and so ids, `V-<number>`) and product ids from now on are greater than
    /// `first`: a PDV started again beside data kept from an earlier one reuses none of its ids.
    pub fn start_ids_at(&self, first: u64) {
        let mut inner = self.inner.lock();
        inner.next_product = inner.next_product.max(first);
        for a in inner.accounts.values_mut() {
            a.next_sale = a.next_sale.max(first);
        }
    }

    /// Another account (another merchant's PDV), with its own user, catalog and webhook.
    pub fn add_account(&self, username: &str, password: &str, webhook_url: Option<String>, webhook_secret: &str) {
        crate::common::scan::record([password, webhook_secret]);
        self.inner.lock().accounts.insert(
            username.to_owned(),
            Account {
                password: password.to_owned(),
                webhook_url,
                webhook_secret: webhook_secret.to_owned(),
                ..Account::default()
            },
        );
    }

    /// The first account's products, by Bling id, as `GET /products` shows them.
    pub fn products(&self) -> BTreeMap<String, Value> {
        self.account_products(&self.config.username)
    }

    pub fn account_products(&self, username: &str) -> BTreeMap<String, Value> {
        let inner = self.inner.lock();
        inner
            .accounts
            .get(username)
            .map(|a| a.products.iter().map(|(k, (_, p))| (k.clone(), p.clone())).collect())
            .unwrap_or_default()
    }

    /// The first account's sales, by sale id.
    pub fn sales(&self) -> BTreeMap<String, Sale> {
        self.inner.lock().accounts.get(&self.config.username).map(|a| a.sales.clone()).unwrap_or_default()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().deliveries.clone()
    }
}
