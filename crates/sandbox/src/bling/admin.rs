//! The Bling sandbox's admin routes: `GET /__admin/stats` (what it answered) and
//! `GET /__admin/state` (what the account holds: products, contacts, orders with what was
//! posted from them, stock per depósito, every stock movement, situações), for tests and for
//! people inspecting a run.

use axum::{Json, Router, extract::State, routing::get};
use serde_json::{Value, json};

use super::store::{Bling, Stats, public};

pub fn routes() -> Router<Bling> {
    Router::new().route("/__admin/stats", get(stats)).route("/__admin/state", get(state))
}

async fn stats(State(b): State<Bling>) -> Json<Stats> {
    Json(b.stats())
}

async fn state(State(b): State<Bling>) -> Json<Value> {
    let inner = b.inner.lock();
    let stock: Vec<Value> = inner
        .stock
        .iter()
        .map(|((produto, deposito), saldo)| json!({"produto": produto, "deposito": deposito, "saldo": saldo.to_string()}))
        .collect();
    let postings: Vec<Value> = inner
        .orders
        .iter()
        .map(|(id, o)| json!({"pedido": id, "estoqueLancado": o.estoque.is_some(), "deposito": o.estoque, "contasLancadas": o.contas}))
        .collect();
    let situacoes: Vec<Value> = inner
        .situacoes
        .iter()
        .map(|s| {
            let mut v = s.to_json();
            v["valor"] = json!(s.valor);
            v["modulo"] = json!(s.modulo);
            v
        })
        .collect();
    Json(json!({
        "companyId": b.config.company_id,
        "products": inner.products.values().map(public).collect::<Vec<_>>(),
        "contacts": inner.contacts.values().map(public).collect::<Vec<_>>(),
        "orders": inner.orders.values().map(|o| o.body.clone()).collect::<Vec<_>>(),
        "postings": postings,
        "stock": stock,
        "movements": inner.movements,
        "situacoes": situacoes,
    }))
}
