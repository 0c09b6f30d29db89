//! A fake 360Envios hub, as ponte's contract defines it (`contracts/envios360.md`). It owns
//! each merchant's products and orders ([`store`]) behind a bearer token limited to 5 requests
//! a second (429 with `Retry-After`); products wait for the hub's approval, orders cannot be
//! edited once in transit nor cancelled once delivered, a repeated `external_id` answers 409
//! with the existing id, and the forward-only status life cycle is driven by admin calls,
//! each step pushed as a webhook signed `X-360-Signature: sha256=<hex>` whose `event_id`
//! stays the same across retries.

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
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

pub use store::{CANCELLED, FieldError, STATUSES, Transition};

use crate::bitrix24::{Clock, Reorder};
use store::Merchant;

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
struct Inner {
    next_product: u64,
    next_order: u64,
    /// By token.
    merchants: BTreeMap<String, Merchant>,
    /// Token → times of its requests in the last second.
    windows: BTreeMap<String, Vec<DateTime<Utc>>>,
    deliveries: Vec<Delivery>,
    stats: Stats,
}

impl Inner {
    /// The merchant holding order `id`.
    fn order_owner(&mut self, id: &str) -> Option<&mut Merchant> {
        self.merchants.values_mut().find(|m| m.orders.contains_key(id))
    }

    fn product_owner(&mut self, id: &str) -> Option<&mut Merchant> {
        self.merchants.values_mut().find(|m| m.products.contains_key(id))
    }
}

/// The hub; clone freely (clones share state).
#[derive(Clone)]
pub struct Envios360 {
    config: Arc<Config>,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    faults: crate::common::Faults,
    clock: Clock,
    reorder: Reorder,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    error_with(status, code, message, &[])
}

fn error_with(status: StatusCode, code: &str, message: &str, fields: &[FieldError]) -> Response {
    let fields: Vec<Value> = fields.iter().map(|f| json!({"field": f.field, "message": f.message})).collect();
    (status, Json(json!({"error": {"code": code, "message": message, "fields": fields}}))).into_response()
}

fn rate_limited(retry_after: u64) -> Response {
    (
        [(header::RETRY_AFTER, retry_after.to_string())],
        error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests: 5 per second per token"),
    )
        .into_response()
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`: the `X-360-Signature` value after
/// `sha256=`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    crate::cplug::sign(secret, body)
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Envios360 {
    pub fn new(config: Config) -> Self {
        let faults = crate::common::Faults::new(crate::common::Native {
            server_error: || error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error"),
            rate_limited: || rate_limited(1),
        });
        let clock = Clock::new(config.time_scale);
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

    /// Another merchant: its own token, products, orders, rate limit and webhook.
    pub fn add_merchant(&self, token: &str, webhook_url: Option<String>, webhook_secret: &str) {
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

    /// The hub moves an order to `status` (forward only; `cancelled` only before transit) and
    /// pushes `order.status_changed`. Returns the event id.
    pub fn set_status(&self, order_id: &str, status: &str) -> Result<String, String> {
        self.move_order(order_id, |_| Ok(status.to_owned()))
    }

    /// The next step of an order's life cycle; the new status and the event id.
    pub fn advance(&self, order_id: &str) -> Result<(String, String), String> {
        let mut next = String::new();
        let event_id = self.move_order(order_id, |current| {
            let at = store::rank(current).ok_or_else(|| format!("an order {current} has no next status"))?;
            next = STATUSES.get(at + 1).ok_or_else(|| format!("an order {current} has no next status"))?.to_string();
            Ok(next.clone())
        })?;
        Ok((next, event_id))
    }

    fn move_order(&self, order_id: &str, to: impl FnOnce(&str) -> Result<String, String>) -> Result<String, String> {
        let now = self.clock.now();
        let (merchant, body, event_id) = {
            let mut inner = self.inner.lock();
            let m = inner.order_owner(order_id).ok_or_else(|| format!("no order {order_id}"))?;
            let order = m.orders.get_mut(order_id).ok_or_else(|| format!("no order {order_id}"))?;
            let previous = order["status"].as_str().unwrap_or("received").to_owned();
            let status = to(&previous)?;
            store::allowed(&previous, &status).map_err(|e| e.to_string())?;
            order["status"] = json!(status);
            order["updated_at"] = json!(timestamp(now));
            if status == "awaiting_shipment" || (status == "in_transit" && order["tracking_code"].is_null()) {
                // Labels are generated at this step: the parcel gets its tracking code.
                let code = format!("AA{:09}BR", rand::random::<u32>() % 1_000_000_000);
                order["tracking_url"] = json!(format!("{}{code}", self.config.tracking_url_base));
                order["tracking_code"] = json!(code);
            }
            let event_id = uuid::Uuid::new_v4().to_string();
            let body = json!({"event_id": event_id, "event": "order.status_changed", "occurred_at": timestamp(now),
                "order": {"id": order["id"], "external_id": order["external_id"], "status": status,
                          "previous_status": previous, "tracking_code": order["tracking_code"],
                          "tracking_url": order["tracking_url"]}});
            let merchant = (m.webhook_url.clone(), m.webhook_secret.clone());
            (merchant, body.to_string(), event_id)
        };
        self.push(merchant, "order.status_changed", event_id.clone(), body);
        Ok(event_id)
    }

    /// The hub approves or rejects a product and pushes `product.approval_changed`. Returns
    /// the event id.
    pub fn set_approval(&self, product_id: &str, approved: bool, reason: Option<&str>) -> Result<String, String> {
        let now = self.clock.now();
        let (merchant, body, event_id) = {
            let mut inner = self.inner.lock();
            let m = inner.product_owner(product_id).ok_or_else(|| format!("no product {product_id}"))?;
            let p = m.products.get_mut(product_id).ok_or_else(|| format!("no product {product_id}"))?;
            let status = if approved { "approved" } else { "rejected" };
            p["approval_status"] = json!(status);
            let mut product = json!({"id": p["id"], "external_id": p["external_id"], "approval_status": status});
            if approved {
                if let Some(o) = p.as_object_mut() {
                    o.remove("rejection_reason");
                }
            } else {
                let reason = reason.unwrap_or("Rejected by the 360 team");
                p["rejection_reason"] = json!(reason);
                product["rejection_reason"] = json!(reason);
            }
            p["updated_at"] = json!(timestamp(now));
            let event_id = uuid::Uuid::new_v4().to_string();
            let body = json!({"event_id": event_id, "event": "product.approval_changed",
                              "occurred_at": timestamp(now), "product": product});
            ((m.webhook_url.clone(), m.webhook_secret.clone()), body.to_string(), event_id)
        };
        self.push(merchant, "product.approval_changed", event_id.clone(), body);
        Ok(event_id)
    }

    pub fn approve_product(&self, product_id: &str) -> Result<String, String> {
        self.set_approval(product_id, true, None)
    }

    pub fn reject_product(&self, product_id: &str, reason: &str) -> Result<String, String> {
        self.set_approval(product_id, false, Some(reason))
    }

    /// Delivers a webhook in the background until a 2xx, waiting longer after each failure.
    fn push(&self, (url, secret): (Option<String>, String), event: &str, event_id: String, body: String) {
        let Some(url) = url else { return };
        let copies = self.faults.webhook_copies();
        {
            let mut inner = self.inner.lock();
            inner.stats.webhooks += 1;
            if copies == 0 {
                inner.stats.webhooks_dropped += 1;
            }
        }
        let signature = format!("sha256={}", sign(&secret, body.as_bytes()));
        for _ in 0..copies {
            let me = self.clone();
            let (url, signature, body, event, event_id) =
                (url.clone(), signature.clone(), body.clone(), event.to_owned(), event_id.clone());
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
                        .header("x-360-signature", &signature)
                        .timeout(me.config.webhook_timeout)
                        .body(body.clone())
                        .send()
                        .await;
                    let status = sent.ok().map(|r| r.status().as_u16());
                    me.inner.lock().deliveries.push(Delivery {
                        event_id: event_id.clone(),
                        event: event.clone(),
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
    }

    /// The merchant a request's bearer token names, after the rate limit.
    fn gate(&self, headers: &HeaderMap) -> Result<String, Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        if token.is_empty() || !inner.merchants.contains_key(&token) {
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid or missing API token"));
        }
        inner.stats.requests += 1;
        let second = chrono::Duration::seconds(1);
        let window = inner.windows.entry(token.clone()).or_default();
        window.retain(|t| *t + second > now);
        if window.len() >= self.config.per_second {
            let oldest = window.first().copied().unwrap_or(now);
            let wait = (oldest + second - now).num_milliseconds().max(1);
            inner.stats.rate_limited += 1;
            return Err(rate_limited(u64::try_from(wait).unwrap_or(1).div_ceil(1000)));
        }
        window.push(now);
        Ok(token)
    }

    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/products", post(create_product))
            .route("/v1/products/{id}", get(get_product))
            .route("/v1/orders", post(create_order).get(find_orders))
            .route("/v1/orders/{id}", get(get_order).put(update_order))
            .route("/v1/orders/{id}/cancel", post(cancel_order))
            .route("/__admin/stats", get(|State(h): State<Envios360>| async move { Json(h.stats()) }))
            .route("/__admin/state", get(admin_state))
            .route("/__admin/deliveries", get(|State(h): State<Envios360>| async move { Json(h.deliveries()) }))
            .route("/__admin/merchants", post(admin_merchant))
            .route("/__admin/products/{id}/approve", post(admin_approve))
            .route("/__admin/products/{id}/reject", post(admin_reject))
            .route("/__admin/orders/{id}/advance", post(admin_advance))
            .route("/__admin/orders/{id}/status", post(admin_status))
            .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "Not found") })
            .with_state(self.clone());
        self.faults.wrap(api).merge(self.clock.routes()).merge(self.reorder.routes())
    }

    /// Serves the hub on `listener` (or 127.0.0.1 on a free port) until the handle drops.
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
            base_url: format!("http://{addr}/v1"),
            admin_url: format!("http://{addr}/__admin"),
            hub: self,
            task,
        })
    }
}

/// Starts a hub with `config` on 127.0.0.1 and a free port.
pub async fn spawn(config: Config) -> std::io::Result<Handle> {
    Envios360::new(config).spawn(None).await
}

/// A running hub; it serves until dropped. Derefs to the [`Envios360`] admin helpers.
pub struct Handle {
    pub addr: SocketAddr,
    /// The API base, e.g. `http://127.0.0.1:41234/v1`.
    pub base_url: String,
    /// `http://127.0.0.1:41234/__admin`.
    pub admin_url: String,
    pub hub: Envios360,
    task: JoinHandle<()>,
}

impl Deref for Handle {
    type Target = Envios360;

    fn deref(&self) -> &Envios360 {
        &self.hub
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request body as JSON, or the hub's 400.
fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error_with(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "The body is not valid JSON",
            &[FieldError { field: "body".into(), message: e.to_string() }],
        )
    })
}

fn validation(errors: &[FieldError]) -> Response {
    error_with(StatusCode::BAD_REQUEST, "validation_error", "The request has invalid fields", errors)
}

fn conflict(id: &Value, what: &str) -> Response {
    let body = json!({"error": {"code": "duplicate_external_id", "message": format!("A {what} with this external_id exists"),
                                "fields": [{"field": "external_id", "message": "already exists"}], "id": id},
                      "id": id});
    (StatusCode::CONFLICT, Json(body)).into_response()
}

async fn create_product(State(h): State<Envios360>, headers: HeaderMap, body: Bytes) -> Response {
    let token = match h.gate(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut p = match store::product(&body) {
        Ok(p) => p,
        Err(errors) => return validation(&errors),
    };
    let now = timestamp(h.clock.now());
    let mut inner = h.inner.lock();
    inner.next_product += 1;
    let id = format!("pr_{}", inner.next_product);
    let Some(m) = inner.merchants.get_mut(&token) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid or missing API token");
    };
    if let Some(existing) = m.product_by_external(p["external_id"].as_str().unwrap_or_default()) {
        return conflict(&existing["id"], "product");
    }
    p.insert("id".into(), json!(id));
    p.insert("approval_status".into(), json!("pending"));
    p.insert("created_at".into(), json!(now));
    p.insert("updated_at".into(), json!(now));
    m.products.insert(id.clone(), Value::Object(p));
    (StatusCode::CREATED, Json(json!({"id": id, "approval_status": "pending"}))).into_response()
}

async fn get_product(State(h): State<Envios360>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let token = match h.gate(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match h.inner.lock().merchants.get(&token).and_then(|m| m.products.get(&id)) {
        Some(p) => Json(p.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "Product not found"),
    }
}

async fn create_order(State(h): State<Envios360>, headers: HeaderMap, body: Bytes) -> Response {
    let token = match h.gate(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let fields = match store::order(&body) {
        Ok(o) => o,
        Err(errors) => return validation(&errors),
    };
    let now = timestamp(h.clock.now());
    let mut inner = h.inner.lock();
    inner.next_order += 1;
    let id = format!("o_{}", 81_722 + inner.next_order);
    let Some(m) = inner.merchants.get_mut(&token) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid or missing API token");
    };
    if let Some(existing) = m.order_by_external(fields["external_id"].as_str().unwrap_or_default()) {
        return conflict(&existing["id"], "order");
    }
    let mut order = Map::new();
    order.insert("id".into(), json!(id));
    order.extend(fields);
    order.insert("status".into(), json!("received"));
    order.insert("tracking_code".into(), Value::Null);
    order.insert("tracking_url".into(), Value::Null);
    order.insert("created_at".into(), json!(now));
    order.insert("updated_at".into(), json!(now));
    m.orders.insert(id.clone(), Value::Object(order));
    (StatusCode::CREATED, Json(json!({"id": id, "status": "received"}))).into_response()
}

async fn get_order(State(h): State<Envios360>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let token = match h.gate(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match h.inner.lock().merchants.get(&token).and_then(|m| m.orders.get(&id)) {
        Some(o) => Json(o.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "Order not found"),
    }
}

#[derive(Deserialize)]
struct FindOrders {
    external_id: Option<String>,
}

async fn find_orders(State(h): State<Envios360>, headers: HeaderMap, Query(q): Query<FindOrders>) -> Response {
    let token = match h.gate(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let inner = h.inner.lock();
    let data: Vec<Value> = inner
        .merchants
        .get(&token)
        .into_iter()
        .flat_map(|m| m.orders.values())
        .filter(|o| q.external_id.as_deref().is_none_or(|e| o["external_id"] == e))
        .cloned()
        .collect();
    Json(json!({"data": data})).into_response()
}

async fn update_order(State(h): State<Envios360>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    let token = match h.gate(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let fields = match store::order(&body) {
        Ok(o) => o,
        Err(errors) => return validation(&errors),
    };
    let now = timestamp(h.clock.now());
    let mut inner = h.inner.lock();
    let Some(order) = inner.merchants.get_mut(&token).and_then(|m| m.orders.get_mut(&id)) else {
        return error(StatusCode::NOT_FOUND, "not_found", "Order not found");
    };
    if order["external_id"] != fields["external_id"] {
        return validation(&[FieldError {
            field: "external_id".into(),
            message: format!("cannot change (the order is {})", order["external_id"].as_str().unwrap_or_default()),
        }]);
    }
    let status = order["status"].as_str().unwrap_or_default().to_owned();
    let transit = store::rank("in_transit").unwrap_or(3);
    if status == CANCELLED || store::rank(&status).is_some_and(|r| r >= transit) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_state",
            &format!("An order {status} cannot be edited"),
        );
    }
    if let Some(o) = order.as_object_mut() {
        o.extend(fields);
        o.insert("updated_at".into(), json!(now));
    }
    Json(order.clone()).into_response()
}

async fn cancel_order(State(h): State<Envios360>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let token = match h.gate(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let status = match h.inner.lock().merchants.get(&token).and_then(|m| m.orders.get(&id)) {
        Some(o) => o["status"].as_str().unwrap_or_default().to_owned(),
        None => return error(StatusCode::NOT_FOUND, "not_found", "Order not found"),
    };
    if status == CANCELLED {
        return Json(json!({"id": id, "status": CANCELLED})).into_response();
    }
    match h.set_status(&id, CANCELLED) {
        Ok(_) => Json(json!({"id": id, "status": CANCELLED})).into_response(),
        Err(_) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_state", &format!("An order {status} cannot be cancelled"))
        }
    }
}

async fn admin_state(State(h): State<Envios360>) -> Json<Value> {
    let inner = h.inner.lock();
    let merchants: Vec<Value> = inner
        .merchants
        .values()
        .map(|m| {
            json!({"token": m.token, "webhook_url": m.webhook_url,
                   "products": m.products.values().collect::<Vec<_>>(), "orders": m.orders.values().collect::<Vec<_>>()})
        })
        .collect();
    Json(json!({"merchants": merchants}))
}

#[derive(Deserialize)]
struct NewMerchant {
    token: String,
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    webhook_secret: String,
}

async fn admin_merchant(State(h): State<Envios360>, body: Option<Json<NewMerchant>>) -> Response {
    match body {
        Some(Json(m)) if !m.token.trim().is_empty() => {
            h.add_merchant(m.token.trim(), m.webhook_url, &m.webhook_secret);
            StatusCode::CREATED.into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, "validation_error", "Send {token, webhook_url?, webhook_secret?}"),
    }
}

fn admin_outcome(r: Result<Value, String>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) if e.starts_with("no ") => error(StatusCode::NOT_FOUND, "not_found", &e),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_state", &e),
    }
}

async fn admin_approve(State(h): State<Envios360>, Path(id): Path<String>) -> Response {
    admin_outcome(
        h.approve_product(&id).map(|event_id| json!({"id": id, "approval_status": "approved", "event_id": event_id})),
    )
}

#[derive(Deserialize, Default)]
struct Reject {
    #[serde(default)]
    reason: Option<String>,
}

async fn admin_reject(State(h): State<Envios360>, Path(id): Path<String>, body: Option<Json<Reject>>) -> Response {
    let reason = body.and_then(|Json(r)| r.reason).unwrap_or_else(|| "Rejected by the 360 team".into());
    admin_outcome(h.reject_product(&id, &reason).map(
        |event_id| json!({"id": id, "approval_status": "rejected", "rejection_reason": reason, "event_id": event_id}),
    ))
}

async fn admin_advance(State(h): State<Envios360>, Path(id): Path<String>) -> Response {
    admin_outcome(h.advance(&id).map(|(status, event_id)| json!({"id": id, "status": status, "event_id": event_id})))
}

#[derive(Deserialize)]
struct SetStatus {
    status: String,
}

async fn admin_status(State(h): State<Envios360>, Path(id): Path<String>, body: Option<Json<SetStatus>>) -> Response {
    let Some(Json(s)) = body else {
        return error(StatusCode::BAD_REQUEST, "validation_error", "Send {\"status\": \"in_packing_list\"}");
    };
    admin_outcome(
        h.set_status(&id, &s.status).map(|event_id| json!({"id": id, "status": s.status, "event_id": event_id})),
    )
}
