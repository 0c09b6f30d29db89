//! The PDV's admin routes: its stats, state (every account's products and sales) and webhook
//! deliveries, accounts added, and sales rung up and cancelled at the till
//! (`POST /__admin/sales[?account=]`, `POST /__admin/sales/{id}/cancel`).

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    errors::{invalid, one, plain},
    pdv::Cplug,
    store,
};

pub fn routes() -> Router<Cplug> {
    Router::new()
        .route("/__admin/stats", get(|State(c): State<Cplug>| async move { Json(c.stats()) }))
        .route("/__admin/state", get(admin_state))
        .route("/__admin/deliveries", get(|State(c): State<Cplug>| async move { Json(c.deliveries()) }))
        .route("/__admin/accounts", post(admin_account))
        .route("/__admin/sales", post(admin_sale))
        .route("/__admin/sales/{id}/cancel", post(admin_cancel))
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
