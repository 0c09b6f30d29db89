//! The PDV's product API: the password grant (JSON body) with tokens that expire after
//! `expires_in`, products upserted by their Bling id one at a time or in bulks of up to 500
//! with per-item results, listed in pages and deleted, behind a per-account rate limit
//! answered 429 with `Retry-After`; every refusal in CPLUG's `{"message","errors"}` body.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    errors::{invalid, one, plain, too_many},
    pdv::{BULK_LIMIT, Cplug, Inner, MAX_PER_PAGE, brasilia},
    store::{self, Errors},
};
use crate::common::{limits::retry_after, values::bearer};

/// A handler's answer: `Err` short-circuits with a refusal (`?`).
type Answer = Result<Response, Response>;

impl Cplug {
    /// The account a request's bearer token belongs to, after the rate limit.
    fn gate(&self, headers: &HeaderMap) -> Result<String, Response> {
        let now = self.rt.clock.now();
        let mut inner = self.inner.lock();
        let token = bearer(headers);
        let Some(username) = inner.tokens.get(&token).filter(|(_, exp)| *exp > now).map(|(u, _)| u.clone()) else {
            return Err(plain(StatusCode::UNAUTHORIZED, "Unauthenticated."));
        };
        inner.stats.api_requests += 1;
        let per_second = self.config.per_second;
        let Some(account) = inner.accounts.get_mut(&username) else {
            return Err(plain(StatusCode::UNAUTHORIZED, "Unauthenticated."));
        };
        if let Err(wait) = account.window.admit(now, per_second, chrono::Duration::seconds(1)) {
            inner.stats.rate_limited += 1;
            return Err(too_many(retry_after(wait)));
        }
        Ok(username)
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

pub async fn token(State(c): State<Cplug>, headers: HeaderMap, body: Bytes) -> Answer {
    c.inner.lock().stats.token_calls += 1;
    let m = json_object(&headers, &body)?;
    let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut errors = Errors::new();
    for k in ["grant_type", "client_id", "client_secret", "username", "password"] {
        if field(k).is_empty() {
            errors.insert(k.into(), vec![format!("The {} field is required.", k.replace('_', " "))]);
        }
    }
    if !errors.is_empty() {
        return Err(invalid(&errors));
    }
    if field("grant_type") != "password" {
        return Err(invalid(&one("grant_type", "The selected grant type is invalid.")));
    }
    let cfg = &c.config;
    if field("client_id") != cfg.client_id || field("client_secret") != cfg.client_secret {
        return Err(plain(StatusCode::UNAUTHORIZED, "Client authentication failed."));
    }
    let now = c.rt.clock.now();
    let mut inner = c.inner.lock();
    let username = field("username");
    if inner.accounts.get(&username).is_none_or(|a| a.password != field("password")) {
        return Err(plain(StatusCode::UNAUTHORIZED, "The user credentials were incorrect."));
    }
    let access = hex::encode(rand::random::<[u8; 20]>());
    crate::common::scan::record([&access]);
    let ttl = chrono::Duration::from_std(cfg.token_ttl).unwrap_or(chrono::Duration::MAX);
    inner.tokens.insert(access.clone(), (username, now + ttl));
    Ok(Json(json!({"token_type": "Bearer", "expires_in": cfg.token_ttl.as_secs(), "access_token": access}))
        .into_response())
}

pub async fn upsert(
    State(c): State<Cplug>,
    headers: HeaderMap,
    Path(external_id): Path<String>,
    body: Bytes,
) -> Answer {
    let username = c.gate(&headers)?;
    let m = json_object(&headers, &body)?;
    let product = store::product(&Value::Object(m), &external_id).map_err(|e| invalid(&e))?;
    let now = c.rt.clock.now();
    let mut inner = c.inner.lock();
    Ok(Json(save(&mut inner, &username, product, now)).into_response())
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

pub async fn bulk(State(c): State<Cplug>, headers: HeaderMap, body: Bytes) -> Answer {
    let username = c.gate(&headers)?;
    let m = json_object(&headers, &body)?;
    let items = match m.get("items") {
        Some(Value::Array(a)) if a.is_empty() => return Err(invalid(&one("items", "The items field is required."))),
        Some(Value::Array(a)) if a.len() > BULK_LIMIT => {
            return Err(invalid(&one("items", &format!("The items may not have more than {BULK_LIMIT} items."))));
        }
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => return Err(invalid(&one("items", "The items field is required."))),
        Some(_) => return Err(invalid(&one("items", "The items must be an array."))),
    };
    let now = c.rt.clock.now();
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
    Ok(Json(json!({"results": results})).into_response())
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    per_page: Option<String>,
}

pub async fn list(State(c): State<Cplug>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Answer {
    let username = c.gate(&headers)?;
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
        return Err(invalid(&errors));
    }
    let inner = c.inner.lock();
    let Some(account) = inner.accounts.get(&username) else {
        return Err(plain(StatusCode::UNAUTHORIZED, "Unauthenticated."));
    };
    // In creation order, as CPLUG's ids run.
    let mut all: Vec<&(u64, Value)> = account.products.values().collect();
    all.sort_by_key(|(id, _)| *id);
    let data: Vec<Value> =
        all.iter().skip((page - 1).saturating_mul(per_page)).take(per_page).map(|(_, p)| p.clone()).collect();
    Ok(Json(json!({"data": data, "page": page, "per_page": per_page, "total": all.len()})).into_response())
}

pub async fn delete(State(c): State<Cplug>, headers: HeaderMap, Path(external_id): Path<String>) -> Answer {
    let username = c.gate(&headers)?;
    let removed = c.inner.lock().accounts.get_mut(&username).and_then(|a| a.products.remove(&external_id));
    match removed {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(plain(StatusCode::NOT_FOUND, "Product not found.")),
    }
}
