//! A fake CPLUG (ConnectPlug) point of sale, as ponte's contract defines it
//! (`contracts/cplug.md`). It owns each account's catalog and sales ([`store`]): the password
//! grant (JSON body) with tokens that expire after `expires_in`, products upserted by their
//! Bling id one at a time or in bulks of up to 500 with per-item results, listed in pages and
//! deleted, the `{"message","errors"}` error body with 401/404/422/429 (`Retry-After`)/5xx,
//! and sales rung up at the till (an admin call) pushed as `sale.completed` /
//! `sale.cancelled` webhooks signed `X-Cplug-Signature: sha256=<hex>`, retried with the same
//! `event_id` until answered 2xx.

// Handlers short-circuit with the response to send; its size does not matter in a fake.
#![allow(clippy::result_large_err)]

mod store;

use std::{collections::BTreeMap, net::SocketAddr, ops::Deref, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use chrono::{DateTime, FixedOffset, Utc};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::{net::TcpListener, task::JoinHandle};

pub use store::{Errors, Payment, Sale, SaleItem};

use crate::bitrix24::{Clock, Reorder};

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
struct Account {
    password: String,
    webhook_url: Option<String>,
    webhook_secret: String,
    /// By `external_id`: (CPLUG id, product).
    products: BTreeMap<String, (u64, Value)>,
    sales: BTreeMap<String, Sale>,
    next_sale: u64,
    window: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct Inner {
    /// By username.
    accounts: BTreeMap<String, Account>,
    /// Access token → (username, expiry).
    tokens: BTreeMap<String, (String, DateTime<Utc>)>,
    next_product: u64,
    deliveries: Vec<Delivery>,
    stats: Stats,
}

/// The PDV; clone freely (clones share state).
#[derive(Clone)]
pub struct Cplug {
    config: Arc<Config>,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    faults: crate::common::Faults,
    clock: Clock,
    reorder: Reorder,
}

fn error(status: StatusCode, message: &str, errors: &Errors) -> Response {
    (status, Json(json!({"message": message, "errors": errors}))).into_response()
}

fn plain(status: StatusCode, message: &str) -> Response {
    error(status, message, &Errors::new())
}

fn invalid(errors: &Errors) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, "The given data was invalid.", errors)
}

fn one(field: &str, message: &str) -> Errors {
    Errors::from([(field.to_owned(), vec![message.to_owned()])])
}

fn too_many(retry_after: u64) -> Response {
    ([(header::RETRY_AFTER, retry_after.to_string())], plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts."))
        .into_response()
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`, as CPLUG signs webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn brasilia() -> FixedOffset {
    FixedOffset::west_opt(3 * 3600).unwrap_or_else(|| unreachable!("a valid offset"))
}

impl Cplug {
    pub fn new(config: Config) -> Self {
        let faults = crate::common::Faults::new(crate::common::Native {
            server_error: || plain(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
            rate_limited: || too_many(1),
        });
        let clock = Clock::new(config.time_scale);
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
        Self {
            config: Arc::new(config),
            inner: Arc::new(Mutex::new(inner)),
            http: reqwest::Client::new(),
            faults,
            clock,
            reorder: Reorder::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Faults switched on at run time (also through `PUT /__admin/faults`).
    pub fn faults(&self) -> &crate::common::Faults {
        &self.faults
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reordering of outbound webhooks (also through `PUT /__admin/webhook-order`).
    pub fn reorder(&self) -> &Reorder {
        &self.reorder
    }

    /// Moves the clock forward (tokens expire).
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Another account (another merchant's PDV), with its own user, catalog and webhook.
    pub fn add_account(&self, username: &str, password: &str, webhook_url: Option<String>, webhook_secret: &str) {
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

    /// Rings up a sale at the till of the first account and pushes `sale.completed`. See
    /// [`store::sale`] for the fields; `id`, `number`, `store_id`, `register_id` and payments
    /// are filled in when absent. Returns the sale and the event id.
    pub fn ring_up(&self, sale: Value) -> Result<(Sale, String), Errors> {
        self.ring_up_for(&self.config.username.clone(), sale)
    }

    pub fn ring_up_for(&self, username: &str, body: Value) -> Result<(Sale, String), Errors> {
        let (sale, target) = {
            let mut inner = self.inner.lock();
            let Some(account) = inner.accounts.get_mut(username) else {
                return Err(store::Errors::from([("account".to_owned(), vec![format!("No account {username}.")])]));
            };
            let names = |sku: &str| {
                account
                    .products
                    .values()
                    .find(|(_, p)| p["sku"] == sku)
                    .and_then(|(_, p)| p["name"].as_str().map(str::to_owned))
            };
            let mut sale = store::sale(&body, names)?;
            if sale.id.is_empty() || sale.number == 0 {
                account.next_sale += 1;
            }
            if sale.number == 0 {
                sale.number = account.next_sale;
            }
            if sale.id.is_empty() {
                sale.id = format!("V-{:06}", sale.number);
            }
            if account.sales.contains_key(&sale.id) {
                return Err(store::Errors::from([(
                    "id".to_owned(),
                    vec!["The id has already been taken.".to_owned()],
                )]));
            }
            if sale.store_id.is_empty() {
                sale.store_id = self.config.store_id.clone();
            }
            if sale.register_id.is_empty() {
                sale.register_id = "caixa-1".into();
            }
            account.sales.insert(sale.id.clone(), sale.clone());
            (sale, (account.webhook_url.clone(), account.webhook_secret.clone()))
        };
        let event_id = self.push(target, "sale.completed", &sale);
        Ok((sale, event_id))
    }

    /// Cancels a completed sale of the first account and pushes `sale.cancelled`. The event id.
    pub fn cancel_sale(&self, sale_id: &str) -> Result<String, String> {
        self.cancel_sale_for(&self.config.username.clone(), sale_id)
    }

    pub fn cancel_sale_for(&self, username: &str, sale_id: &str) -> Result<String, String> {
        let (sale, target) = {
            let mut inner = self.inner.lock();
            let account = inner.accounts.get_mut(username).ok_or_else(|| format!("no account {username}"))?;
            let sale = account.sales.get_mut(sale_id).ok_or_else(|| format!("no sale {sale_id}"))?;
            if sale.cancelled {
                return Err(format!("sale {sale_id} is already cancelled"));
            }
            sale.cancelled = true;
            (sale.clone(), (account.webhook_url.clone(), account.webhook_secret.clone()))
        };
        Ok(self.push(target, "sale.cancelled", &sale))
    }

    /// A sale webhook as the till would push it: `(headers, raw body)`, signed with the
    /// first account's secret. `event` is `sale.completed` or `sale.cancelled`.
    pub fn sale_webhook(&self, event_id: &str, event: &str, sale: Value) -> (Vec<(String, String)>, String) {
        let body = self.event_body(event_id, event, sale);
        let signature = sign(&self.config.webhook_secret, body.as_bytes());
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-cplug-signature".to_owned(), format!("sha256={signature}")),
        ];
        (headers, body)
    }

    fn event_body(&self, event_id: &str, event: &str, sale: Value) -> String {
        let occurred_at = self.clock.now().with_timezone(&brasilia()).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
        let v = json!({"event_id": event_id, "event": event, "occurred_at": occurred_at, "sale": sale});
        store::to_json_text(&v)
    }

    /// Delivers a sale event in the background until a 2xx, waiting longer after each
    /// failure; the event id stays the same across attempts. Returns it.
    fn push(&self, (url, secret): (Option<String>, String), event: &str, sale: &Sale) -> String {
        let event_id = uuid::Uuid::new_v4().to_string();
        let Some(url) = url else { return event_id };
        let body = self.event_body(&event_id, event, sale.to_json());
        let signature = format!("sha256={}", sign(&secret, body.as_bytes()));
        let copies = self.faults.webhook_copies();
        {
            let mut inner = self.inner.lock();
            inner.stats.webhooks += 1;
            if copies == 0 {
                inner.stats.webhooks_dropped += 1;
            }
        }
        for _ in 0..copies {
            let me = self.clone();
            let (url, signature, body, event, event_id, sale_id) =
                (url.clone(), signature.clone(), body.clone(), event.to_owned(), event_id.clone(), sale.id.clone());
            let hold = self.reorder.hold();
            tokio::spawn(async move {
                // A held event lets later ones overtake it (an injected reorder).
                tokio::time::sleep(hold).await;
                let started = me.clock.now();
                let give_up = chrono::Duration::from_std(me.config.webhook_give_up).unwrap_or(chrono::Duration::MAX);
                let mut wait = me.config.webhook_backoff;
                for attempt in 1..=me.config.webhook_attempts.max(1) {
                    let sent = me
                        .http
                        .post(&url)
                        .header(header::CONTENT_TYPE, "application/json")
                        .header("x-cplug-signature", &signature)
                        .timeout(me.config.webhook_timeout)
                        .body(body.clone())
                        .send()
                        .await;
                    let status = sent.ok().map(|r| r.status().as_u16());
                    me.inner.lock().deliveries.push(Delivery {
                        event_id: event_id.clone(),
                        event: event.clone(),
                        sale_id: sale_id.clone(),
                        attempt,
                        status,
                    });
                    if status.is_some_and(|s| (200..300).contains(&s)) || me.clock.now() - started >= give_up {
                        return;
                    }
                    tokio::time::sleep(me.clock.real(wait)).await;
                    wait = wait.saturating_mul(2);
                }
            });
        }
        event_id
    }

    /// The account a request's bearer token belongs to, after the rate limit.
    fn gate(&self, headers: &HeaderMap) -> Result<String, Response> {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or_default();
        let Some(username) = inner.tokens.get(token).filter(|(_, exp)| *exp > now).map(|(u, _)| u.clone()) else {
            return Err(plain(StatusCode::UNAUTHORIZED, "Unauthenticated."));
        };
        inner.stats.api_requests += 1;
        let per_second = self.config.per_second;
        let second = chrono::Duration::seconds(1);
        let Some(account) = inner.accounts.get_mut(&username) else {
            return Err(plain(StatusCode::UNAUTHORIZED, "Unauthenticated."));
        };
        account.window.retain(|t| *t + second > now);
        if account.window.len() >= per_second {
            let oldest = account.window.first().copied().unwrap_or(now);
            let wait = u64::try_from((oldest + second - now).num_milliseconds().max(1)).unwrap_or(1000);
            inner.stats.rate_limited += 1;
            return Err(too_many(wait.div_ceil(1000)));
        }
        account.window.push(now);
        Ok(username)
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/v3/oauth/token", post(token))
            .route("/api/v3/products", get(list))
            .route("/api/v3/products/{external_id}", put(upsert).delete(delete))
            .route("/api/v3/bulks/products", put(bulk))
            .route("/__admin/stats", get(|State(c): State<Cplug>| async move { Json(c.stats()) }))
            .route("/__admin/state", get(admin_state))
            .route("/__admin/deliveries", get(|State(c): State<Cplug>| async move { Json(c.deliveries()) }))
            .route("/__admin/accounts", post(admin_account))
            .route("/__admin/sales", post(admin_sale))
            .route("/__admin/sales/{id}/cancel", post(admin_cancel))
            .fallback(|| async { plain(StatusCode::NOT_FOUND, "Not Found.") })
            .with_state(self.clone());
        self.faults.wrap(api).merge(self.clock.routes()).merge(self.reorder.routes())
    }

    /// Serves the PDV on `listener` (or 127.0.0.1 on a free port) until the handle drops.
    pub async fn spawn(self, listener: Option<TcpListener>) -> std::io::Result<Handle> {
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await?,
        };
        let addr = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Handle {
            addr,
            base_url: format!("http://{addr}/api/v3"),
            admin_url: format!("http://{addr}/__admin"),
            cplug: self,
            task,
        })
    }
}

/// Starts a PDV with `config` on 127.0.0.1 and a free port.
pub async fn spawn(config: Config) -> std::io::Result<Handle> {
    Cplug::new(config).spawn(None).await
}

/// A running PDV; it serves until dropped. Derefs to the [`Cplug`] admin helpers.
pub struct Handle {
    pub addr: SocketAddr,
    /// The API base, e.g. `http://127.0.0.1:41234/api/v3`.
    pub base_url: String,
    /// `http://127.0.0.1:41234/__admin`.
    pub admin_url: String,
    pub cplug: Cplug,
    task: JoinHandle<()>,
}

impl Deref for Handle {
    type Target = Cplug;

    fn deref(&self) -> &Cplug {
        &self.cplug
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body as a JSON object, or a 422 that says so.
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Response> {
    let is_json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"));
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) if is_json => Ok(m),
        _ => Err(invalid(&one("body", "The body must be a JSON object sent as application/json."))),
    }
}

async fn token(State(c): State<Cplug>, headers: HeaderMap, body: Bytes) -> Response {
    c.inner.lock().stats.token_calls += 1;
    let m = match json_object(&headers, &body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut errors = Errors::new();
    for k in ["grant_type", "client_id", "client_secret", "username", "password"] {
        if field(k).is_empty() {
            errors.insert(k.into(), vec![format!("The {} field is required.", k.replace('_', " "))]);
        }
    }
    if !errors.is_empty() {
        return invalid(&errors);
    }
    if field("grant_type") != "password" {
        return invalid(&one("grant_type", "The selected grant type is invalid."));
    }
    let cfg = &c.config;
    if field("client_id") != cfg.client_id || field("client_secret") != cfg.client_secret {
        return plain(StatusCode::UNAUTHORIZED, "Client authentication failed.");
    }
    let now = c.clock.now();
    let mut inner = c.inner.lock();
    let username = field("username");
    if inner.accounts.get(&username).is_none_or(|a| a.password != field("password")) {
        return plain(StatusCode::UNAUTHORIZED, "The user credentials were incorrect.");
    }
    let access = hex::encode(rand::random::<[u8; 20]>());
    let ttl = chrono::Duration::from_std(cfg.token_ttl).unwrap_or(chrono::Duration::MAX);
    inner.tokens.insert(access.clone(), (username, now + ttl));
    Json(json!({"token_type": "Bearer", "expires_in": cfg.token_ttl.as_secs(), "access_token": access})).into_response()
}

async fn upsert(State(c): State<Cplug>, headers: HeaderMap, Path(external_id): Path<String>, body: Bytes) -> Response {
    let username = match c.gate(&headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let m = match json_object(&headers, &body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let product = match store::product(&Value::Object(m), &external_id) {
        Ok(p) => p,
        Err(errors) => return invalid(&errors),
    };
    let now = c.clock.now();
    let mut inner = c.inner.lock();
    Json(save(&mut inner, &username, product, now)).into_response()
}

/// Stores a checked product; `{id, external_id}`.
fn save(inner: &mut Inner, username: &str, mut p: Map<String, Value>, now: DateTime<Utc>) -> Value {
    let external_id = p["external_id"].as_str().unwrap_or_default().to_owned();
    let Inner { accounts, next_product, .. } = inner;
    let Some(account) = accounts.get_mut(username) else { return json!({"external_id": external_id}) };
    let stamp = now.with_timezone(&brasilia()).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let (id, created_at) = match account.products.get(&external_id) {
        Some((id, old)) => (*id, old["created_at"].clone()),
        None => {
            *next_product += 1;
            (*next_product, json!(stamp))
        }
    };
    // CPLUG's ids are opaque strings; the number only keeps creation order.
    let public_id = format!("p_{id}");
    p.insert("created_at".into(), created_at);
    p.insert("updated_at".into(), json!(stamp));
    // `id` first, as CPLUG lists it.
    let mut ordered = Map::new();
    ordered.insert("id".into(), json!(public_id));
    ordered.extend(p);
    account.products.insert(external_id.clone(), (id, Value::Object(ordered)));
    json!({"id": public_id, "external_id": external_id})
}

async fn bulk(State(c): State<Cplug>, headers: HeaderMap, body: Bytes) -> Response {
    let username = match c.gate(&headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let m = match json_object(&headers, &body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let items = match m.get("items") {
        Some(Value::Array(a)) if a.is_empty() => return invalid(&one("items", "The items field is required.")),
        Some(Value::Array(a)) if a.len() > BULK_LIMIT => {
            return invalid(&one("items", &format!("The items may not have more than {BULK_LIMIT} items.")));
        }
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => return invalid(&one("items", "The items field is required.")),
        Some(_) => return invalid(&one("items", "The items must be an array.")),
    };
    let now = c.clock.now();
    let mut inner = c.inner.lock();
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let external_id = match &item["external_id"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            match store::product(item, &external_id) {
                Ok(p) => save(&mut inner, &username, p, now),
                Err(errors) => {
                    let message: Vec<String> = errors.values().flatten().cloned().collect();
                    json!({"external_id": external_id, "error": message.join(" ")})
                }
            }
        })
        .collect();
    Json(json!({"results": results})).into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    per_page: Option<String>,
}

async fn list(State(c): State<Cplug>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    let username = match c.gate(&headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut errors = Errors::new();
    let mut number = |field: &str, v: Option<&str>, default: usize, max: usize| -> usize {
        match v.map(|s| s.trim().parse::<usize>()) {
            None => default,
            Some(Ok(n)) if n >= 1 && n <= max => n,
            Some(Ok(n)) if n > max => {
                errors.insert(
                    field.into(),
                    vec![format!("The {} may not be greater than {max}.", field.replace('_', " "))],
                );
                default
            }
            Some(_) => {
                errors.insert(
                    field.into(),
                    vec![format!("The {} must be an integer of at least 1.", field.replace('_', " "))],
                );
                default
            }
        }
    };
    let page = number("page", q.page.as_deref(), 1, usize::MAX);
    let per_page = number("per_page", q.per_page.as_deref(), 15, MAX_PER_PAGE);
    if !errors.is_empty() {
        return invalid(&errors);
    }
    let inner = c.inner.lock();
    let Some(account) = inner.accounts.get(&username) else {
        return plain(StatusCode::UNAUTHORIZED, "Unauthenticated.");
    };
    // In creation order, as CPLUG's ids run.
    let mut all: Vec<&(u64, Value)> = account.products.values().collect();
    all.sort_by_key(|(id, _)| *id);
    let data: Vec<Value> =
        all.iter().skip((page - 1).saturating_mul(per_page)).take(per_page).map(|(_, p)| p.clone()).collect();
    Json(json!({"data": data, "page": page, "per_page": per_page, "total": all.len()})).into_response()
}

async fn delete(State(c): State<Cplug>, headers: HeaderMap, Path(external_id): Path<String>) -> Response {
    let username = match c.gate(&headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let removed = c.inner.lock().accounts.get_mut(&username).and_then(|a| a.products.remove(&external_id));
    match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => plain(StatusCode::NOT_FOUND, "Product not found."),
    }
}

async fn admin_state(State(c): State<Cplug>) -> Json<Value> {
    let inner = c.inner.lock();
    let accounts: Vec<Value> = inner
        .accounts
        .iter()
        .map(|(username, a)| {
            let mut products: Vec<&(u64, Value)> = a.products.values().collect();
            products.sort_by_key(|(id, _)| *id);
            let sales: Vec<Value> = a
                .sales
                .values()
                .map(|s| {
                    let mut v: Value = serde_json::from_str(&store::to_json_text(&s.to_json())).unwrap_or(Value::Null);
                    v["cancelled"] = json!(s.cancelled);
                    v
                })
                .collect();
            json!({"username": username, "webhook_url": a.webhook_url,
                   "products": products.into_iter().map(|(_, p)| p).collect::<Vec<_>>(), "sales": sales})
        })
        .collect();
    Json(json!({"accounts": accounts}))
}

#[derive(Deserialize)]
struct NewAccount {
    username: String,
    password: String,
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    webhook_secret: String,
}

async fn admin_account(State(c): State<Cplug>, body: Option<Json<NewAccount>>) -> Response {
    match body {
        Some(Json(a)) if !a.username.trim().is_empty() && !a.password.is_empty() => {
            c.add_account(a.username.trim(), &a.password, a.webhook_url, &a.webhook_secret);
            StatusCode::CREATED.into_response()
        }
        _ => invalid(&one("username", "Send {username, password, webhook_url?, webhook_secret?}.")),
    }
}

#[derive(Deserialize)]
struct AccountQuery {
    #[serde(default)]
    account: Option<String>,
}

/// `POST /__admin/sales[?account=user]`: rings up a sale at the till; the webhook follows.
async fn admin_sale(State(c): State<Cplug>, Query(q): Query<AccountQuery>, body: Option<Json<Value>>) -> Response {
    let Some(Json(sale)) = body else {
        return invalid(&one("body", "Send the sale as JSON."));
    };
    let username = q.account.unwrap_or_else(|| c.config.username.clone());
    match c.ring_up_for(&username, sale) {
        Ok((sale, event_id)) => {
            let sale: Value = serde_json::from_str(&store::to_json_text(&sale.to_json())).unwrap_or(Value::Null);
            (StatusCode::CREATED, Json(json!({"sale": sale, "event_id": event_id}))).into_response()
        }
        Err(errors) => invalid(&errors),
    }
}

async fn admin_cancel(State(c): State<Cplug>, Path(id): Path<String>, Query(q): Query<AccountQuery>) -> Response {
    let username = q.account.unwrap_or_else(|| c.config.username.clone());
    match c.cancel_sale_for(&username, &id) {
        Ok(event_id) => Json(json!({"id": id, "event_id": event_id})).into_response(),
        Err(e) if e.starts_with("no ") => plain(StatusCode::NOT_FOUND, &e),
        Err(e) => plain(StatusCode::UNPROCESSABLE_ENTITY, &e),
    }
}
