//! A fake Bitrix24 portal as `contracts/bitrix24.md` describes it. It owns the portal's CRM
//! data ([`crm`]: `crm.product.*` with numbers as strings, `XML_ID` and `PROPERTY_<n>`,
//! `crm.deal.*` and product rows), the two ways in (incoming-webhook URLs
//! `/rest/{user}/{code}/{method}` and OAuth apps on `/rest/{method}` with tokens from the GET
//! token endpoint, [`oauth`]), `batch` ([`batch`]), 50-row pages with `next`/`total`, the
//! per-portal leaky bucket (2/s, burst 50, then 503 `QUERY_LIMIT_EXCEEDED`), the per-method
//! operating-time budget (429 `OPERATION_TIME_LIMIT`), the documented error bodies, and the
//! outbound events (`ONCRMPRODUCTADD`…) posted form-encoded with `auth[application_token]`,
//! the app's installation (`ONAPPINSTALL` posted to its installation path) and `app.info`.
//! Admin routes under `/__admin/` seed data, act "as a person in the CRM", install the app, and
//! show state; [`Bitrix24::product_writes`] reports each product write as it is applied.

// Handlers short-circuit with the response to send; its size does not matter in a fake.
#![allow(clippy::result_large_err)]

mod batch;
mod crm;
mod oauth;
mod params;
pub(crate) mod runtime;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    ops::Deref,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use chrono::{DateTime, FixedOffset, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::{net::TcpListener, sync::broadcast, task::JoinHandle};

pub use crm::{MethodError, Property, STAGES};
pub use params::parse_php_query;
pub use runtime::{Clock, Reorder, ReorderSettings};

use crm::{Crm, Reply};
use oauth::{AccessError, Tokens};
use params::{get as param, request_params, text};

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
enum Credential {
    Webhook,
    App,
}

/// One minute of a method's handler time: when it started and the seconds spent.
type Bucket = (DateTime<Utc>, f64);

#[derive(Default)]
struct Inner {
    crm: Crm,
    tokens: Tokens,
    stats: Stats,
    bindings: Vec<Binding>,
    next_binding: u64,
    events: Vec<EventDelivery>,
    /// (credential, method) → one-minute buckets of handler seconds (start, seconds).
    operating: BTreeMap<(Credential, String), Vec<Bucket>>,
    bucket_level: f64,
    bucket_at: Option<DateTime<Utc>>,
    /// This portal's REST base, known once it listens.
    client_endpoint: String,
}

/// The portal; clone freely (clones share state).
#[derive(Clone)]
pub struct Bitrix24 {
    config: Arc<Config>,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    faults: crate::common::Faults,
    clock: Clock,
    reorder: Reorder,
    /// Product writes as they are applied, for whoever subscribed.
    writes: broadcast::Sender<ProductWrite>,
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, Json(json!({"error": code, "error_description": description}))).into_response()
}

fn method_error(e: &MethodError) -> Response {
    error(e.status, &e.code, &e.description)
}

/// Which scope a method needs; `None` for methods every credential may call.
fn scope_of(method: &str) -> Option<&'static str> {
    if method.starts_with("crm.") { Some("crm") } else { None }
}

impl Bitrix24 {
    pub fn new(config: Config) -> Self {
        let faults = crate::common::Faults::new(crate::common::Native {
            server_error: || error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "Internal server error"),
            rate_limited: || error(StatusCode::SERVICE_UNAVAILABLE, "QUERY_LIMIT_EXCEEDED", "Too many requests"),
        });
        let clock = Clock::new(config.time_scale);
        Self {
            config: Arc::new(config),
            inner: Arc::default(),
            http: reqwest::Client::new(),
            faults,
            clock,
            reorder: Reorder::default(),
            writes: broadcast::channel(4096).0,
        }
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
    fn applied(&self, events: &[(&'static str, u64)]) {
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

    /// Faults switched on at run time (also through `PUT /__admin/faults`).
    pub fn faults(&self) -> &crate::common::Faults {
        &self.faults
    }

    /// The portal's clock (scaled by `time_scale`, movable by tests).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reordering of outbound events (also through `PUT /__admin/webhook-order`).
    pub fn reorder(&self) -> &Reorder {
        &self.reorder
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The portal's local time (São Paulo), as dates in CRM records show it.
    fn local_now(&self) -> DateTime<FixedOffset> {
        self.now().with_timezone(&portal_offset())
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Every product as `crm.product.get` shows it.
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

    /// Charges `seconds` of handler time to `method` for both credentials (the operating-time
    /// budget; past 480 s in 10 minutes the method answers 429 `OPERATION_TIME_LIMIT`).
    pub fn charge_operating(&self, method: &str, seconds: f64) {
        let now = self.now();
        let mut inner = self.inner.lock();
        for cred in [Credential::Webhook, Credential::App] {
            charge(&mut inner, cred, method, seconds, now);
        }
    }

    /// Installs the app at its configured installation path (`Config::install_url`); `None`
    /// when the app has none.
    pub fn install(&self) -> Option<oauth::Grant> {
        self.config.install_url.as_deref().map(|url| self.install_app(url))
    }

    /// Installs the app: posts `ONAPPINSTALL` (form-encoded, with a fresh token pair and the
    /// application token) to `handler`, the app's installation path.
    pub fn install_app(&self, handler: &str) -> oauth::Grant {
        let now = self.now();
        let grant =
            self.inner.lock().tokens.mint(now, self.span(self.config.access_ttl), self.span(self.config.refresh_ttl));
        let mut form = vec![
            ("event".to_owned(), "ONAPPINSTALL".to_owned()),
            ("data[VERSION]".into(), "1".into()),
            ("data[ACTIVE]".into(), "Y".into()),
            ("data[INSTALLED]".into(), "Y".into()),
            ("data[LANGUAGE_ID]".into(), "br".into()),
            ("ts".into(), now.timestamp().to_string()),
        ];
        form.extend(self.app_auth(&grant));
        form.push(("auth[refresh_token]".into(), grant.refresh_token.clone()));
        self.post_event("ONAPPINSTALL", 0, handler.to_owned(), form);
        grant
    }

    /// A span of sandbox time (the clock itself runs `time_scale` times faster).
    fn span(&self, d: Duration) -> chrono::Duration {
        chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }

    fn app_auth(&self, grant: &oauth::Grant) -> Vec<(String, String)> {
        let c = &self.config;
        let endpoint = self.inner.lock().client_endpoint.clone();
        vec![
            ("auth[access_token]".into(), grant.access_token.clone()),
            ("auth[expires]".into(), grant.expires.timestamp().to_string()),
            ("auth[expires_in]".into(), c.access_ttl.as_secs().to_string()),
            ("auth[scope]".into(), c.app_scopes.join(",")),
            ("auth[domain]".into(), c.domain.clone()),
            ("auth[server_endpoint]".into(), "https://oauth.bitrix.info/rest/".into()),
            ("auth[status]".into(), "L".into()),
            ("auth[client_endpoint]".into(), endpoint),
            ("auth[member_id]".into(), c.member_id.clone()),
            ("auth[user_id]".into(), "1".into()),
            ("auth[application_token]".into(), c.application_token.clone()),
        ]
    }

    /// Posts `event` about entity `id` to the outgoing webhook and every bound handler. Like
    /// Bitrix24, once: a failed post is logged, never resent.
    fn raise(&self, event: &str, id: u64) {
        let c = &self.config;
        let now = self.now();
        let base = |handler_id: u64| {
            vec![
                ("event".to_owned(), event.to_owned()),
                ("event_handler_id".to_owned(), handler_id.to_string()),
                ("data[FIELDS][ID]".to_owned(), id.to_string()),
                ("ts".to_owned(), now.timestamp().to_string()),
            ]
        };
        if let Some(url) = &c.event_url
            && c.outgoing_events.iter().any(|e| e.eq_ignore_ascii_case(event))
        {
            let endpoint = self.inner.lock().client_endpoint.clone();
            let mut form = base(1);
            form.extend([
                ("auth[domain]".to_owned(), c.domain.clone()),
                ("auth[client_endpoint]".to_owned(), endpoint),
                ("auth[server_endpoint]".to_owned(), "https://oauth.bitrix.info/rest/".to_owned()),
                ("auth[member_id]".to_owned(), c.member_id.clone()),
                ("auth[application_token]".to_owned(), c.application_token.clone()),
            ]);
            self.post_event(event, id, url.clone(), form);
        }
        let bound: Vec<Binding> =
            self.inner.lock().bindings.iter().filter(|b| b.event.eq_ignore_ascii_case(event)).cloned().collect();
        for b in bound {
            let grant = self.inner.lock().tokens.mint(now, self.span(c.access_ttl), self.span(c.refresh_ttl));
            let mut form = base(b.id);
            form.extend(self.app_auth(&grant));
            self.post_event(event, id, b.handler.clone(), form);
        }
    }

    fn post_event(&self, event: &str, id: u64, handler: String, form: Vec<(String, String)>) {
        let body = serde_urlencoded::to_string(&form).unwrap_or_default();
        let copies = self.faults.webhook_copies();
        {
            let mut inner = self.inner.lock();
            inner.stats.events_sent += 1;
            if copies == 0 {
                inner.events.push(EventDelivery { event: event.into(), id, handler, body, status: None });
                return;
            }
        }
        for _ in 0..copies {
            let me = self.clone();
            let (event, handler, body) = (event.to_owned(), handler.clone(), body.clone());
            let hold = self.reorder.hold();
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                let sent = me
                    .http
                    .post(&handler)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .timeout(Duration::from_secs(10))
                    .body(body.clone())
                    .send()
                    .await;
                let status = sent.ok().map(|r| r.status().as_u16());
                me.inner.lock().events.push(EventDelivery { event, id, handler, body, status });
            });
        }
    }

    /// The leaky bucket: one more request, or refused when it would overflow.
    fn admit(&self) -> bool {
        let now = self.now();
        let mut inner = self.inner.lock();
        if let Some(last) = inner.bucket_at {
            let secs = (now - last).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            inner.bucket_level = (inner.bucket_level - secs * self.config.per_second).max(0.0);
        }
        inner.bucket_at = Some(now);
        if inner.bucket_level + 1.0 > self.config.burst {
            inner.stats.query_limit_exceeded += 1;
            return false;
        }
        inner.bucket_level += 1.0;
        true
    }

    /// One authenticated REST call.
    fn serve(&self, cred: Credential, method: &str, params: Map<String, Value>) -> Response {
        let method = method.trim_end_matches(".json").to_ascii_lowercase();
        if !self.admit() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "QUERY_LIMIT_EXCEEDED", "Too many requests");
        }
        let started = self.now();
        self.inner.lock().stats.requests += 1;
        let (outcome, operating) = if method == "batch" {
            self.inner.lock().stats.batches += 1;
            let run = batch::commands(&params).map(|(commands, halt)| {
                let result = batch::run(commands, halt, |m, p| {
                    let t0 = self.now();
                    let (outcome, _) = self.exec(cred, m, p.clone());
                    let t1 = self.now();
                    (outcome, time_json(t0, t1, None))
                });
                Reply { result, total: None, next: None, events: vec![] }
            });
            (run, None)
        } else {
            self.exec(cred, &method, params)
        };
        let finished = self.now();
        match outcome {
            Ok(reply) => {
                let mut body = Map::new();
                body.insert("result".into(), reply.result);
                if let Some(n) = reply.next {
                    body.insert("next".into(), json!(n));
                }
                if let Some(t) = reply.total {
                    body.insert("total".into(), json!(t));
                }
                body.insert("time".into(), time_json(started, finished, operating));
                Json(Value::Object(body)).into_response()
            }
            Err(e) => method_error(&e),
        }
    }

    /// Runs one method for `cred` (on its own or inside a batch): scope, operating budget,
    /// the method, its events. The operating seconds and reset time go into `time`.
    fn exec(
        &self,
        cred: Credential,
        method: &str,
        params: Map<String, Value>,
    ) -> (Result<Reply, MethodError>, Option<(f64, i64)>) {
        let method = method.to_ascii_lowercase();
        if !Crm::knows(&method) && !method.starts_with("event.") && method != "scope" && method != "app.info" {
            return (Err(MethodError::new(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!")), None);
        }
        let scopes = match cred {
            Credential::Webhook => &self.config.webhook_scopes,
            Credential::App => &self.config.app_scopes,
        };
        if let Some(scope) = scope_of(&method)
            && !scopes.iter().any(|s| s == scope)
        {
            let e = MethodError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "The request requires higher privileges than provided by the webhook token",
            );
            return (Err(e), None);
        }
        let now = self.now();
        {
            let mut inner = self.inner.lock();
            *inner.stats.methods.entry(method.clone()).or_default() += 1;
            let (used, _) = operating(&mut inner, cred, &method, now);
            if used > self.config.operating_limit {
                inner.stats.operation_time_limit += 1;
                let e = MethodError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "OPERATION_TIME_LIMIT",
                    "Method is blocked due to operation time limit.",
                );
                return (Err(e), None);
            }
        }
        let started = Instant::now();
        let outcome = match method.as_str() {
            "scope" => {
                let scopes: Vec<Value> = scopes.iter().map(|s| json!(s)).collect();
                Ok(Reply { result: Value::Array(scopes), total: None, next: None, events: vec![] })
            }
            "app.info" => self.app_info(cred),
            m if m.starts_with("event.") => self.event_method(cred, m, &params),
            m => {
                let local = self.local_now();
                self.inner.lock().crm.call(m, &params, local)
            }
        };
        if let Ok(reply) = &outcome {
            self.applied(&reply.events);
        }
        let spent = started.elapsed().as_secs_f64();
        let used = {
            let mut inner = self.inner.lock();
            charge(&mut inner, cred, &method, spent, now);
            operating(&mut inner, cred, &method, now)
        };
        if let Ok(reply) = &outcome
            && self.config.events_on_api_changes
        {
            for (event, id) in &reply.events {
                self.raise(event, *id);
            }
        }
        (outcome, Some(used))
    }

    /// `app.info`: the app the calling token was issued to, with the fields the official page
    /// documents (`CODE` is the app's client id). Application auth only: an incoming webhook
    /// belongs to no app.
    fn app_info(&self, cred: Credential) -> Result<Reply, MethodError> {
        if cred == Credential::Webhook {
            return Err(app_context_required());
        }
        let result = json!({"ID": "1", "CODE": self.config.client_id, "VERSION": 1, "STATUS": "L", "INSTALLED": true,
                            "PAYMENT_EXPIRED": "N", "DAYS": null, "LICENSE": "br_project"});
        Ok(Reply { result, total: None, next: None, events: vec![] })
    }

    /// `event.bind`, `event.unbind`, `event.get`: application auth only.
    fn event_method(&self, cred: Credential, method: &str, params: &Map<String, Value>) -> Result<Reply, MethodError> {
        if cred == Credential::Webhook {
            return Err(app_context_required());
        }
        let event = param(params, "event").and_then(text).unwrap_or_default().to_ascii_uppercase();
        let handler = param(params, "handler").and_then(text).unwrap_or_default();
        let mut inner = self.inner.lock();
        let reply = |result: Value| Reply { result, total: None, next: None, events: vec![] };
        match method {
            "event.bind" => {
                if event.is_empty() || handler.is_empty() {
                    return Err(MethodError::new(
                        StatusCode::BAD_REQUEST,
                        "ERROR_ARGUMENT",
                        "Argument 'event' and 'handler' are required",
                    ));
                }
                if !handler.starts_with("http://") && !handler.starts_with("https://") {
                    return Err(MethodError::new(StatusCode::BAD_REQUEST, "ERROR_HANDLER_URL", "Wrong handler URL"));
                }
                if inner.bindings.iter().any(|b| b.event == event && b.handler == handler) {
                    return Err(MethodError::new(
                        StatusCode::BAD_REQUEST,
                        "ERROR_HANDLER_ALREADY_EXIST",
                        "Handler already exists!",
                    ));
                }
                inner.next_binding += 1;
                let id = inner.next_binding + 200;
                let event_type = param(params, "event_type").and_then(text).unwrap_or_else(|| "online".into());
                inner.bindings.push(Binding { id, event, handler, event_type });
                Ok(reply(json!(true)))
            }
            "event.unbind" => {
                let before = inner.bindings.len();
                inner.bindings.retain(|b| !(b.event == event && (handler.is_empty() || b.handler == handler)));
                Ok(reply(json!({"count": before - inner.bindings.len()})))
            }
            "event.get" => {
                let list: Vec<Value> = inner
                    .bindings
                    .iter()
                    .map(|b| json!({"event": b.event, "handler": b.handler, "auth_type": "0", "offline": 0}))
                    .collect();
                Ok(reply(Value::Array(list)))
            }
            _ => Err(MethodError::new(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!")),
        }
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/rest/{user}/{code}/{method}", any(webhook_call))
            .route("/rest/{method}", any(oauth_call))
            .route("/oauth/token/", any(token))
            .route("/oauth/token", any(token))
            .route("/oauth/authorize/", get(authorize))
            .route("/oauth/authorize", get(authorize))
            .route("/__admin/stats", get(|State(b): State<Bitrix24>| async move { Json(b.stats()) }))
            .route("/__admin/state", get(admin_state))
            .route("/__admin/events", get(|State(b): State<Bitrix24>| async move { Json(b.events()) }))
            .route("/__admin/seed", post(admin_seed))
            .route("/__admin/ui/{method}", post(admin_ui))
            .route(
                "/__admin/oauth/code",
                post(|State(b): State<Bitrix24>| async move { Json(json!({"code": b.authorize()})) }),
            )
            .route("/__admin/install", post(admin_install))
            .route("/__admin/operating", post(admin_operating))
            .fallback(|| async { error(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!") })
            .with_state(self.clone());
        self.faults.wrap(api).merge(self.clock.routes()).merge(self.reorder.routes())
    }

    /// Serves the portal on `listener` (or 127.0.0.1 on a free port) until the handle drops.
    pub async fn spawn(self, listener: Option<TcpListener>) -> std::io::Result<Handle> {
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await?,
        };
        let addr = listener.local_addr()?;
        self.inner.lock().client_endpoint = format!("http://{addr}/rest/");
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let webhook_url = format!("http://{addr}/rest/{}/{}/", self.config.webhook_user, self.config.webhook_code);
        Ok(Handle {
            addr,
            base_url: format!("http://{addr}"),
            webhook_url,
            token_url: format!("http://{addr}/oauth/token/"),
            portal: self,
            task,
        })
    }
}

/// The refusal of a method that needs an app, called through an incoming webhook. Documented
/// for placement.bind and event.bind alike; the HTTP status is not.
fn app_context_required() -> MethodError {
    MethodError::new(StatusCode::UNAUTHORIZED, "WRONG_AUTH_TYPE", "Application context required")
}

/// Starts a portal with `config` on 127.0.0.1 and a free port.
pub async fn spawn(config: Config) -> std::io::Result<Handle> {
    Bitrix24::new(config).spawn(None).await
}

/// The portal's time zone: São Paulo (no daylight saving since 2019).
fn portal_offset() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).unwrap_or_else(|| unreachable!("three hours is a valid offset"))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Adds handler seconds to the (credential, method) budget: into the bucket of the current
/// minute, or a new one.
fn charge(inner: &mut Inner, cred: Credential, method: &str, seconds: f64, now: DateTime<Utc>) {
    let buckets = inner.operating.entry((cred, method.to_owned())).or_default();
    let minute = now.timestamp() / 60;
    match buckets.last_mut() {
        Some((start, secs)) if start.timestamp() / 60 == minute => *secs += seconds,
        _ => buckets.push((now, seconds)),
    }
}

/// The seconds used in the last 10 minutes and when the oldest bucket drops out.
fn operating(inner: &mut Inner, cred: Credential, method: &str, now: DateTime<Utc>) -> (f64, i64) {
    let window = chrono::Duration::minutes(10);
    let buckets = inner.operating.entry((cred, method.to_owned())).or_default();
    buckets.retain(|(start, _)| *start + window > now);
    let used = buckets.iter().map(|(_, s)| s).sum();
    let reset = buckets.first().map_or(now, |(start, _)| *start + window);
    (used, reset.timestamp())
}

/// Bitrix24's `time` object.
fn time_json(start: DateTime<Utc>, finish: DateTime<Utc>, operating: Option<(f64, i64)>) -> Value {
    let secs = |t: DateTime<Utc>| t.timestamp_micros() as f64 / 1e6;
    let duration = secs(finish) - secs(start);
    let date = |t: DateTime<Utc>| crm::stamp(t.with_timezone(&portal_offset()));
    let (used, reset) = operating.unwrap_or((0.0, finish.timestamp()));
    json!({"start": secs(start), "finish": secs(finish), "duration": duration, "processing": duration,
           "date_start": date(start), "date_finish": date(finish), "operating_reset_at": reset, "operating": used})
}

async fn webhook_call(
    State(b): State<Bitrix24>,
    Path((user, code, method)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if user != b.config.webhook_user.to_string() || code != b.config.webhook_code {
        return error(StatusCode::UNAUTHORIZED, "NO_AUTH_FOUND", "Wrong authorization data");
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    b.serve(Credential::Webhook, &method, request_params(q.as_deref(), ct, &body))
}

async fn oauth_call(
    State(b): State<Bitrix24>,
    Path(method): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let mut params = request_params(q.as_deref(), ct, &body);
    let token = params.remove("auth").as_ref().and_then(text);
    let now = b.now();
    let checked = b.inner.lock().tokens.check(token.as_deref(), now);
    match checked {
        Ok(()) => b.serve(Credential::App, &method, params),
        Err(AccessError::Missing) => error(StatusCode::UNAUTHORIZED, "NO_AUTH_FOUND", "Wrong authorization data"),
        Err(AccessError::Invalid) => {
            error(StatusCode::UNAUTHORIZED, "invalid_token", "The access token provided is invalid.")
        }
        Err(AccessError::Expired) => {
            error(StatusCode::UNAUTHORIZED, "expired_token", "The access token provided has expired.")
        }
    }
}

/// The token endpoint (`oauth.bitrix.info/oauth/token/`): a GET with the grant in the query.
async fn token(State(b): State<Bitrix24>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let p = request_params(q.as_deref(), ct, &body);
    let get = |k: &str| p.get(k).and_then(text).unwrap_or_default();
    let c = &b.config;
    let now = b.now();
    let (access_ttl, refresh_ttl) = (b.span(c.access_ttl), b.span(c.refresh_ttl));
    let mut inner = b.inner.lock();
    inner.stats.token_calls += 1;
    let grant_type = get("grant_type");
    if grant_type.is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "The grant type was not specified in the request");
    }
    if get("client_id") != c.client_id || get("client_secret") != c.client_secret {
        return error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
    }
    let granted = match grant_type.as_str() {
        "authorization_code" => inner.tokens.exchange_code(&get("code"), now, access_ttl, refresh_ttl),
        "refresh_token" => inner.tokens.refresh(&get("refresh_token"), now, access_ttl, refresh_ttl),
        _ => return error(StatusCode::BAD_REQUEST, "invalid_request", "The grant type is not supported"),
    };
    let grant = match granted {
        Ok(g) => g,
        Err(e) => {
            if e.reused {
                inner.stats.stale_refresh_tokens += 1;
            }
            return error(StatusCode::BAD_REQUEST, e.code, e.description);
        }
    };
    Json(json!({
        "access_token": grant.access_token, "expires": grant.expires.timestamp(), "expires_in": c.access_ttl.as_secs(),
        "scope": c.app_scopes.join(","), "domain": "oauth.bitrix.info", "server_endpoint": "https://oauth.bitrix.info/rest/",
        "status": "L", "client_endpoint": inner.client_endpoint, "member_id": c.member_id, "user_id": 1,
        "refresh_token": grant.refresh_token,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    state: String,
}

/// The consent page, already consented: back to the app's redirect URI with a code (or the
/// same fields as JSON when the app has no redirect URI configured).
async fn authorize(
    State(b): State<Bitrix24>,
    axum::extract::Query(q): axum::extract::Query<AuthorizeQuery>,
) -> Response {
    if q.client_id != b.config.client_id {
        return (StatusCode::BAD_REQUEST, axum::response::Html("<h1>Application not found</h1>")).into_response();
    }
    let code = b.authorize();
    let fields = [
        ("code", code.as_str()),
        ("state", q.state.as_str()),
        ("domain", b.config.domain.as_str()),
        ("member_id", b.config.member_id.as_str()),
        ("scope", &b.config.app_scopes.join(",")),
        ("server_domain", "oauth.bitrix.info"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    match &b.config.redirect_uri {
        Some(uri) => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            let query = serde_urlencoded::to_string(fields).unwrap_or_default();
            (StatusCode::FOUND, [(header::LOCATION, format!("{uri}{sep}{query}"))]).into_response()
        }
        None => Json(fields.into_iter().collect::<BTreeMap<_, _>>()).into_response(),
    }
}

async fn admin_state(State(b): State<Bitrix24>) -> Json<Value> {
    let inner = b.inner.lock();
    let deals: Vec<Value> = inner
        .crm
        .deals()
        .into_iter()
        .map(|d| {
            let id = d.get("ID").and_then(params::id).unwrap_or(0);
            let mut d = d;
            d.insert("PRODUCT_ROWS".into(), json!(inner.crm.deal_rows(id)));
            Value::Object(d)
        })
        .collect();
    let properties: Vec<Value> = inner
        .crm
        .properties()
        .iter()
        .map(|p| json!({"ID": p.id, "NAME": p.name, "CODE": p.code, "PROPERTY_TYPE": p.property_type, "MULTIPLE": p.multiple}))
        .collect();
    Json(json!({
        "products": inner.crm.products(),
        "deals": deals,
        "properties": properties,
        "bindings": inner.bindings,
        "live_refresh_tokens": inner.tokens.live_refresh_tokens(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Seed {
    products: Vec<Value>,
    deals: Vec<Value>,
    /// `{"name","code","multiple"}` each.
    properties: Vec<Value>,
}

/// Data that was there before the test: created without events. Answers the new ids.
async fn admin_seed(State(b): State<Bitrix24>, body: Option<Json<Seed>>) -> Response {
    let Some(Json(seed)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The seed must be JSON {products, deals, properties}",
        );
    };
    let properties: Vec<u64> = seed
        .properties
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or("Property");
            b.define_property(name, p["code"].as_str().unwrap_or_default(), p["multiple"].as_bool().unwrap_or(false))
        })
        .collect();
    let products: Result<Vec<u64>, MethodError> = seed.products.into_iter().map(|p| b.seed_product(p)).collect();
    let products = match products {
        Ok(ids) => ids,
        Err(e) => return method_error(&e),
    };
    let deals: Result<Vec<u64>, MethodError> = seed.deals.into_iter().map(|d| b.seed_deal(d)).collect();
    match deals {
        Ok(deals) => Json(json!({"products": products, "deals": deals, "properties": properties})).into_response(),
        Err(e) => method_error(&e),
    }
}

/// `POST /__admin/ui/{method}` with the method's parameters as JSON: a person does it in the
/// CRM UI. Answers like the REST method would, and the events follow.
async fn admin_ui(State(b): State<Bitrix24>, Path(method): Path<String>, body: Option<Json<Value>>) -> Response {
    let params = body.map(|Json(v)| v).unwrap_or(json!({}));
    match b.as_person(method.trim_end_matches(".json"), params) {
        Ok(result) => Json(json!({"result": result})).into_response(),
        Err(e) => method_error(&e),
    }
}

#[derive(Deserialize)]
struct Install {
    handler: String,
}

/// `POST /__admin/install`: installs the app at its configured installation path, or at
/// `{"handler": url}` when given.
async fn admin_install(State(b): State<Bitrix24>, body: Option<Json<Install>>) -> Response {
    let installed = match body {
        Some(Json(i)) => Some(b.install_app(&i.handler)),
        None => b.install(),
    };
    match installed {
        Some(g) => Json(json!({"access_token": g.access_token, "refresh_token": g.refresh_token})).into_response(),
        None => error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The app has no installation path: configure one, or send {\"handler\": \"<installation URL>\"}",
        ),
    }
}

#[derive(Deserialize)]
struct Operating {
    method: String,
    seconds: f64,
}

async fn admin_operating(State(b): State<Bitrix24>, body: Option<Json<Operating>>) -> Response {
    match body {
        Some(Json(o)) if o.seconds.is_finite() && o.seconds >= 0.0 => {
            b.charge_operating(&o.method.to_ascii_lowercase(), o.seconds);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "Send {\"method\": \"crm.product.list\", \"seconds\": 490}",
        ),
    }
}

/// A running portal; it serves until dropped. Derefs to the [`Bitrix24`] admin helpers.
pub struct Handle {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`: admin routes hang off it.
    pub base_url: String,
    /// The incoming-webhook base URL, e.g. `http://127.0.0.1:41234/rest/1/abc123def456ghi7/`.
    pub webhook_url: String,
    /// The OAuth token endpoint.
    pub token_url: String,
    pub portal: Bitrix24,
    task: JoinHandle<()>,
}

impl Handle {
    /// The REST base OAuth calls use (`client_endpoint`).
    pub fn client_endpoint(&self) -> String {
        format!("http://{}/rest/", self.addr)
    }
}

impl Deref for Handle {
    type Target = Bitrix24;

    fn deref(&self) -> &Bitrix24 {
        &self.portal
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn product_writes_are_reported_as_they_are_applied() {
        let portal = spawn(Config::for_tests()).await.unwrap();
        portal.seed_product(json!({"NAME": "Seeded"})).unwrap();
        let mut writes = portal.product_writes();
        let call = |method: &str, body: Value| {
            reqwest::Client::new().post(format!("{}{method}.json", portal.webhook_url)).json(&body).send()
        };
        let before = Instant::now();
        let added = call("crm.product.add", json!({"fields": {"NAME": "Copo"}})).await.unwrap();
        let id = added.json::<Value>().await.unwrap()["result"].as_u64().unwrap();
        let batch = json!({"halt": 1, "cmd": {"u": format!("crm.product.update?id={id}&fields[NAME]=Caneca"),
                                             "g": format!("crm.product.get?id={id}")}});
        assert_eq!(call("batch", batch).await.unwrap().status(), 200);
        portal.edit_product_in_ui(id, json!({"NAME": "Caneca grande"})).unwrap();
        call("crm.product.delete", json!({"id": id})).await.unwrap();

        let mut seen = Vec::new();
        while let Ok(w) = writes.try_recv() {
            assert!(w.at >= before);
            seen.push((w.event, w.id, w.product.map(|p| p["NAME"].clone())));
        }
        assert_eq!(
            seen,
            [
                ("ONCRMPRODUCTADD", id, Some(json!("Copo"))),
                ("ONCRMPRODUCTUPDATE", id, Some(json!("Caneca"))),
                ("ONCRMPRODUCTUPDATE", id, Some(json!("Caneca grande"))),
                ("ONCRMPRODUCTDELETE", id, None),
            ]
        );
    }
}
