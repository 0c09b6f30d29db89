//! The hub's HTTP API: bearer tokens per merchant limited to 5 requests a second (429 with
//! `Retry-After`), products sent for approval (with their image URLs), orders created once per
//! `external_id` (409 with the existing id), found by `external_id`, replaced until in transit
//! and cancelled until delivered (422 after); every refusal in the contract's
//! `{"error":{"code","message","fields"}}` envelope.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    errors::{conflict, error, error_with, rate_limited, validation},
    hub::{Envios360, timestamp},
    store::{self, CANCELLED, FieldError},
};
use crate::common::{limits::retry_after, values::bearer};

/// A handler's answer: `Err` short-circuits with a refusal (`?`).
type Answer = Result<Response, Response>;

impl Envios360 {
    /// The merchant a request's bearer token names, after the rate limit.
    fn gate(&self, headers: &HeaderMap) -> Result<String, Response> {
        let token = bearer(headers);
        let now = self.rt.clock.now();
        let mut inner = self.inner.lock();
        if token.is_empty() || !inner.merchants.contains_key(&token) {
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid or missing API token"));
        }
        inner.stats.requests += 1;
        let admitted = inner.windows.entry(token.clone()).or_default().admit(
            now,
            self.config.per_second,
            chrono::Duration::seconds(1),
        );
        if let Err(wait) = admitted {
            inner.stats.rate_limited += 1;
            return Err(rate_limited(retry_after(wait)));
        }
        Ok(token)
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

pub async fn create_product(State(h): State<Envios360>, headers: HeaderMap, body: Bytes) -> Answer {
    let token = h.gate(&headers)?;
    let body = json_body(&body)?;
    let mut p = match store::product(&body) {
        Ok(p) => p,
        Err(errors) => return Err(validation(&errors)),
    };
    let now = timestamp(h.rt.clock.now());
    let mut inner = h.inner.lock();
    inner.next_product += 1;
    let id = format!("pr_{}", inner.next_product);
    let Some(m) = inner.merchants.get_mut(&token) else {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid or missing API token"));
    };
    if let Some(existing) = m.product_by_external(p["external_id"].as_str().unwrap_or_default()) {
        return Err(conflict(&existing["id"], "product"));
    }
    p.insert("id".into(), json!(id));
    p.insert("approval_status".into(), json!("pending"));
    p.insert("created_at".into(), json!(now));
    p.insert("updated_at".into(), json!(now));
    m.products.insert(id.clone(), Value::Object(p));
    Ok((StatusCode::CREATED, Json(json!({"id": id, "approval_status": "pending"}))).into_response())
}

pub async fn get_product(State(h): State<Envios360>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    let token = h.gate(&headers)?;
    match h.inner.lock().merchants.get(&token).and_then(|m| m.products.get(&id)) {
        Some(p) => Ok(Json(p.clone()).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "not_found", "Product not found")),
    }
}

pub async fn create_order(State(h): State<Envios360>, headers: HeaderMap, body: Bytes) -> Answer {
    let token = h.gate(&headers)?;
    let body = json_body(&body)?;
    let fields = store::order(&body).map_err(|e| validation(&e))?;
    let now = timestamp(h.rt.clock.now());
    let mut inner = h.inner.lock();
    inner.next_order += 1;
    let id = format!("o_{}", 81_722 + inner.next_order);
    let Some(m) = inner.merchants.get_mut(&token) else {
        return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid or missing API token"));
    };
    if let Some(existing) = m.order_by_external(fields["external_id"].as_str().unwrap_or_default()) {
        return Err(conflict(&existing["id"], "order"));
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
    Ok((StatusCode::CREATED, Json(json!({"id": id, "status": "received"}))).into_response())
}

pub async fn get_order(State(h): State<Envios360>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    let token = h.gate(&headers)?;
    match h.inner.lock().merchants.get(&token).and_then(|m| m.orders.get(&id)) {
        Some(o) => Ok(Json(o.clone()).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "not_found", "Order not found")),
    }
}

#[derive(Deserialize)]
pub struct FindOrders {
    external_id: Option<String>,
}

pub async fn find_orders(State(h): State<Envios360>, headers: HeaderMap, Query(q): Query<FindOrders>) -> Answer {
    let token = h.gate(&headers)?;
    let inner = h.inner.lock();
    let data: Vec<Value> = inner
        .merchants
        .get(&token)
        .into_iter()
        .flat_map(|m| m.orders.values())
        .filter(|o| q.external_id.as_deref().is_none_or(|e| o["external_id"] == e))
        .cloned()
        .collect();
    Ok(Json(json!({"data": data})).into_response())
}

pub async fn update_order(
    State(h): State<Envios360>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let token = h.gate(&headers)?;
    let body = json_body(&body)?;
    let fields = store::order(&body).map_err(|e| validation(&e))?;
    let now = timestamp(h.rt.clock.now());
    let mut inner = h.inner.lock();
    let Some(order) = inner.merchants.get_mut(&token).and_then(|m| m.orders.get_mut(&id)) else {
        return Err(error(StatusCode::NOT_FOUND, "not_found", "Order not found"));
    };
    if order["external_id"] != fields["external_id"] {
        return Err(validation(&[FieldError {
            field: "external_id".into(),
            message: format!("cannot change (the order is {})", order["external_id"].as_str().unwrap_or_default()),
        }]));
    }
    let status = order["status"].as_str().unwrap_or_default().to_owned();
    let transit = store::rank("in_transit").unwrap_or(3);
    if status == CANCELLED || store::rank(&status).is_some_and(|r| r >= transit) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_state",
            &format!("An order {status} cannot be edited"),
        ));
    }
    if let Some(o) = order.as_object_mut() {
        o.extend(fields);
        o.insert("updated_at".into(), json!(now));
    }
    Ok(Json(order.clone()).into_response())
}

pub async fn cancel_order(State(h): State<Envios360>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    let token = h.gate(&headers)?;
    let status = match h.inner.lock().merchants.get(&token).and_then(|m| m.orders.get(&id)) {
        Some(o) => o["status"].as_str().unwrap_or_default().to_owned(),
        None => return Err(error(StatusCode::NOT_FOUND, "not_found", "Order not found")),
    };
    if status == CANCELLED {
        return Err(Json(json!({"id": id, "status": CANCELLED})).into_response());
    }
    match h.set_status(&id, CANCELLED) {
        Ok(_) => Ok(Json(json!({"id": id, "status": CANCELLED})).into_response()),
        Err(_) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_state",
            &format!("An order {status} cannot be cancelled"),
        )),
    }
}
