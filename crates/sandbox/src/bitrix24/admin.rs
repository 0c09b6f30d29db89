//! The portal's admin routes: stats, state (products, deals with their rows, properties,
//! bindings, live refresh tokens), outbound events, data seeded as if it had been there before
//! the test, methods run "as a person in the CRM UI", the app's installation, an authorization
//! code, and operating time charged to a method.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    crm::MethodError,
    params,
    portal::{Bitrix24, error, method_error},
};

pub fn routes() -> Router<Bitrix24> {
    Router::new()
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
