//! The hub's admin routes: stats, state (every merchant's products and orders), webhook
//! deliveries, merchants added, products approved or rejected and orders moved along
//! (`/__admin/orders/{id}/advance`, `/__admin/orders/{id}/status`), as the 360 team would.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{errors::error, hub::Envios360};

pub fn routes() -> Router<Envios360> {
    Router::new()
        .route("/__admin/stats", get(|State(h): State<Envios360>| async move { Json(h.stats()) }))
        .route("/__admin/state", get(admin_state))
        .route("/__admin/deliveries", get(|State(h): State<Envios360>| async move { Json(h.deliveries()) }))
        .route("/__admin/merchants", post(admin_merchant))
        .route("/__admin/products/{id}/approve", post(admin_approve))
        .route("/__admin/products/{id}/reject", post(admin_reject))
        .route("/__admin/orders/{id}/advance", post(admin_advance))
        .route("/__admin/orders/{id}/status", post(admin_status))
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
