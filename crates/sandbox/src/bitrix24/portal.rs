//! The portal itself: its configuration, CRM data and tokens, the handlers bound to its
//! events, what it counted (requests, limits hit, events sent, operating time per method) and
//! the product writes it reports; [`Bitrix24`] is shared by every route, with the helpers tests
//! use to seed data and act as a person in the CRM.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, FixedOffset, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::{
    crm::{Crm, MethodError, Property},
    tokens::Tokens,
};
use crate::common::{Native, Runtime};

/// The portal and how it limits and notifies.
#[derive(Debug, Clone)]
pub struct Config {
    /// The portal's domain as events and tokens name it.
    pub domain: String,
    pub member_id: String,
    /// The incoming webhook: `/rest/{webhook_user}/{webhook_code}/`.
    pub webhook_user: u32,
    pub webhook_code: String,
    /// The scopes ticked when the webhook was created.
    pub webhook_scopes: Vec<String>,
    /// The OAuth app.
    pub client_id: String,
    pub client_secret: String,
    pub app_scopes: Vec<String>,
    /// Where the consent page sends the browser back (the app's settings, not the request).
    pub redirect_uri: Option<String>,
    /// The app's installation path (its settings: a local app's "Initial installation path", a
    /// Market app's "Installation event handler URL"), where an installation posts its
    /// `auth[...]` fields.
    pub install_url: Option<String>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Sent in every outbound event; the receiver compares it with the one it stored.
    pub application_token: String,
    /// The outgoing webhook set up in the CRM UI (the gateway's `/webhooks/bitrix24/{tenant}`).
    pub event_url: Option<String>,
    /// The events the outgoing webhook was ticked for.
    pub outgoing_events: Vec<String>,
    /// Changes made through the REST API raise events too, as on a real portal.
    pub events_on_api_changes: bool,
    /// The leaky bucket: drained this many a second, refusing above `burst`.
    pub per_second: f64,
    pub burst: f64,
    /// Seconds of handler time one method may use per credential in 10 minutes.
    pub operating_limit: f64,
    /// Sandbox seconds per real second: 60 makes the bucket drain 60 times faster and tokens
    /// expire 60 times sooner. 1 is real time.
    pub time_scale: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            domain: "loja.bitrix24.com.br".into(),
            member_id: "a223c6b3710f85df22e9377d6c4f7553".into(),
            webhook_user: 1,
            webhook_code: "abc123def456ghi7".into(),
            webhook_scopes: vec!["crm".into()],
            client_id: "local.6612ab34.ponte".into(),
            client_secret: "bitrix24-app-secret-0000000".into(),
            app_scopes: vec!["crm".into()],
            redirect_uri: None,
            install_url: None,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(180 * 86_400),
            application_token: "51856fefc120afa4b628cc82d3935cce".into(),
            event_url: None,
            outgoing_events: [
                "ONCRMPRODUCTADD",
                "ONCRMPRODUCTUPDATE",
                "ONCRMPRODUCTDELETE",
                "ONCRMDEALADD",
                "ONCRMDEALUPDATE",
                "ONCRMDEALDELETE",
            ]
            .map(String::from)
            .to_vec(),
            events_on_api_changes: true,
            per_second: 2.0,
            burst: 50.0,
            operating_limit: 480.0,
            time_scale: 1.0,
        }
    }
}

impl Config {
    /// Real behaviour with a bucket wide enough that functional tests never wait on it.
    pub fn for_tests() -> Self {
        Self { per_second: 1000.0, burst: 1000.0, ..Self::default() }
    }
}

/// What the portal counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// REST calls that passed authentication (a batch is one).
    pub requests: u64,
    /// Refused by the leaky bucket (503 `QUERY_LIMIT_EXCEEDED`).
    pub query_limit_exceeded: u64,
    /// Refused by the operating-time budget (429 `OPERATION_TIME_LIMIT`).
    pub operation_time_limit: u64,
    pub batches: u64,
    pub token_calls: u64,
    /// Refreshes with a refresh token that had been used already.
    pub stale_refresh_tokens: u64,
    pub events_sent: u64,
    /// Calls per method (batch commands counted one by one).
    pub methods: BTreeMap<String, u64>,
}

/// One outbound event post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDelivery {
    pub event: String,
    pub id: u64,
    pub handler: String,
    /// The form body as posted.
    pub body: String,
    /// The receiver's status; `None` when it could not be reached or the post was dropped.
    pub status: Option<u16>,
}

/// A product write the portal applied, as [`Bitrix24::product_writes`] reports it.
#[derive(Debug, Clone)]
pub struct ProductWrite {
    /// `ONCRMPRODUCTADD`, `ONCRMPRODUCTUPDATE` or `ONCRMPRODUCTDELETE`.
    pub event: &'static str,
    pub id: u64,
    /// The product right after the write, as `crm.product.get` shows it (`None` once deleted).
    pub product: Option<Map<String, Value>>,
    /// When the write was applied (real time, not the sandbox clock).
    pub at: Instant,
}

/// A handler bound with `event.bind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub id: u64,
    pub event: String,
    pub handler: String,
    pub event_type: String,
}

/// Who is calling: the incoming webhook or the OAuth app. Budgets and scopes are per credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Credential {
    Webhook,
    App,
}

/// One minute of a method's handler time: when it started and the seconds spent.
pub type Bucket = (DateTime<Utc>, f64);

#[derive(Default)]
pub struct Inner {
    pub(super) crm: Crm,
    pub(super) tokens: Tokens,
    pub(super) stats: Stats,
    pub(super) bindings: Vec<Binding>,
    pub(super) next_binding: u64,
    pub(super) events: Vec<EventDelivery>,
    /// (credential, method) → one-minute buckets of handler seconds (start, seconds).
    pub(super) operating: BTreeMap<(Credential, String), Vec<Bucket>>,
    pub(super) bucket_level: f64,
    pub(super) bucket_at: Option<DateTime<Utc>>,
    /// This portal's REST base, known once it listens.
    pub(super) client_endpoint: String,
}

/// The portal; clone freely (clones share state).
#[derive(Clone)]
pub struct Bitrix24 {
    pub(super) config: Arc<Config>,
    pub(super) inner: Arc<Mutex<Inner>>,
    /// Faults, clock, webhook reordering and outbox.
    pub(super) rt: Runtime,
    /// Product writes as they are applied, for whoever subscribed.
    pub(super) writes: broadcast::Sender<ProductWrite>,
}

pub fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, Json(json!({"error": code, "error_description": description}))).into_response()
}

pub fn method_error(e: &MethodError) -> Response {
    error(e.status, &e.code, &e.description)
}

/// Which scope a method needs; `None` for methods every credential may call.
pub fn scope_of(method: &str) -> Option<&'static str> {
    if method.starts_with("crm.") { Some("crm") } else { None }
}

impl Bitrix24 {
    pub fn new(config: Config) -> Self {
        let native = Native {
            server_error: || error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "Internal server error"),
            rate_limited: || error(StatusCode::SERVICE_UNAVAILABLE, "QUERY_LIMIT_EXCEEDED", "Too many requests"),
        };
        let rt = Runtime::new(native, config.time_scale);
        Self { config: Arc::new(config), inner: Arc::default(), rt, writes: broadcast::channel(4096).0 }
    }

    /// Every product write applied from now on (`crm.product.add`, `.update` and `.delete`
    /// through the REST API, alone or in a batch, or by a person in the UI), the moment the
    /// portal's data changed: e.g. to time a sync end to end. A receiver that falls more than
    /// 4,096 writes behind loses the oldest (`RecvError::Lagged`). Costs nothing while nobody
    /// subscribes.
    pub fn product_writes(&self) -> broadcast::Receiver<ProductWrite> {
        self.writes.subscribe()
    }

    /// Reports the product writes among a method's `events` to [`Bitrix24::product_writes`].
    pub(super) fn applied(&self, events: &[(&'static str, u64)]) {
        if self.writes.receiver_count() == 0 {
            return;
        }
        let at = Instant::now();
        for &(event, id) in events.iter().filter(|(e, _)| e.starts_with("ONCRMPRODUCT")) {
            let _ = self.writes.send(ProductWrite { event, id, product: self.product(id), at });
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    crate::common::runtime_accessors!();

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.rt.clock.now()
    }

    /// The portal's local time (São Paulo), as dates in CRM records show it.
    pub(super) fn local_now(&self) -> DateTime<FixedOffset> {
        self.now().with_timezone(&portal_offset())
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Every product as `crm.product.get` shows it.
    /// Product, deal and row ids from now on are greater than `first`: a portal started
    /// again beside data kept from an earlier one hands out none of its ids.
    pub fn start_ids_at(&self, first: u64) {
        self.inner.lock().crm.start_ids_at(first);
    }

    pub fn products(&self) -> Vec<Map<String, Value>> {
        self.inner.lock().crm.products()
    }

    pub fn product(&self, id: u64) -> Option<Map<String, Value>> {
        self.inner.lock().crm.product(id)
    }

    pub fn deals(&self) -> Vec<Map<String, Value>> {
        self.inner.lock().crm.deals()
    }

    pub fn deal(&self, id: u64) -> Option<Map<String, Value>> {
        self.inner.lock().crm.deal(id)
    }

    /// A deal's product rows as `crm.deal.productrows.get` shows them.
    pub fn deal_rows(&self, deal: u64) -> Vec<Map<String, Value>> {
        self.inner.lock().crm.deal_rows(deal)
    }

    pub fn properties(&self) -> Vec<Property> {
        self.inner.lock().crm.properties()
    }

    /// Outbound event posts so far.
    pub fn events(&self) -> Vec<EventDelivery> {
        self.inner.lock().events.clone()
    }

    /// The form bodies of the events sent so far.
    pub fn events_sent(&self) -> Vec<String> {
        self.inner.lock().events.iter().map(|e| e.body.clone()).collect()
    }

    pub fn bindings(&self) -> Vec<Binding> {
        self.inner.lock().bindings.clone()
    }

    /// Seeds a product without raising events (data that was there before the test).
    pub fn seed_product(&self, fields: Value) -> Result<u64, MethodError> {
        let now = self.local_now();
        self.inner.lock().crm.add_product(&object(fields), now)
    }

    /// Seeds a deal without raising events.
    pub fn seed_deal(&self, fields: Value) -> Result<u64, MethodError> {
        let now = self.local_now();
        self.inner.lock().crm.add_deal(&object(fields), now)
    }

    /// Defines a product property (`PROPERTY_<id>`), as an administrator would in the UI.
    pub fn define_property(&self, name: &str, code: &str, multiple: bool) -> u64 {
        self.inner.lock().crm.define_property(name, code, "S", multiple)
    }

    /// Runs a `crm.*` method as a person in the CRM UI: no rate limit, no scopes, and the
    /// change raises its events whatever `events_on_api_changes` says.
    pub fn as_person(&self, method: &str, params: Value) -> Result<Value, MethodError> {
        let now = self.local_now();
        let reply = self.inner.lock().crm.call(&method.to_ascii_lowercase(), &object(params), now)?;
        self.applied(&reply.events);
        for (event, id) in &reply.events {
            self.raise(event, *id);
        }
        Ok(reply.result)
    }

    /// A person edits a product in the CRM: `ONCRMPRODUCTUPDATE` follows.
    pub fn edit_product_in_ui(&self, id: u64, fields: Value) -> Result<(), MethodError> {
        self.as_person("crm.product.update", json!({"id": id, "fields": fields})).map(|_| ())
    }

    /// A person creates a product in the CRM: `ONCRMPRODUCTADD` follows. Its id.
    pub fn create_product_in_ui(&self, fields: Value) -> Result<u64, MethodError> {
        let id = self.as_person("crm.product.add", json!({"fields": fields}))?;
        id.as_u64().ok_or_else(MethodError::not_found)
    }

    /// Issues an authorization code for the app, as the consent page would.
    pub fn authorize(&self) -> String {
        let now = self.now();
        self.inner.lock().tokens.issue_code(now)
    }
}

/// The portal's time zone: São Paulo (no daylight saving since 2019).
pub fn portal_offset() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).unwrap_or_else(|| unreachable!("three hours is a valid offset"))
}

pub fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
