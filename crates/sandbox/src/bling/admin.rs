//! The Bling sandbox's admin routes: `GET /__admin/stats` (what it answered) and
//! `GET /__admin/state` (what the account holds: products, contacts, orders with what was
//! posted from them, stock per depósito, every stock movement, situações), for tests and for
//! people inspecting a run; and what a merchant does in Bling's UI: `POST /__admin/products`
//! adds a product (`{nome, codigo, preco, estoque?}`, the stock a balance on the Depósito Geral)
//! and `PATCH /__admin/products/{id}` changes one (`{nome?, preco?, situacao?, estoque?}`), each
//! sending the `product.created` / `product.updated` webhook as Bling does; and
//! `POST /__admin/products/import` (`{count, prefix?}`), a catalog the account held before
//! ponte was connected: `count` active products, codes `<prefix>-00001`…, stored without
//! webhooks (nobody was subscribed then), for a backfill to copy.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, patch, post},
};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::{
    errors::{data, field_in, not_found, validation},
    seed::DEPOSITO_GERAL,
    store::{Bling, Operacao, Stats, public},
    webhooks,
};

pub fn routes() -> Router<Bling> {
    Router::new()
        .route("/__admin/stats", get(stats))
        .route("/__admin/state", get(state))
        .route("/__admin/products", post(ui_create))
        .route("/__admin/products/import", post(ui_import))
        .route("/__admin/products/{id}", patch(ui_update))
}

/// What the UI's product form holds, checked as Bling checks it; `None` fields were left alone.
struct Form {
    nome: Option<String>,
    codigo: Option<String>,
    preco: Option<Decimal>,
    situacao: Option<String>,
    estoque: Option<Decimal>,
}

fn form(body: Option<Json<Value>>, creating: bool) -> Result<Form, Response> {
    let Some(Json(Value::Object(b))) = body else {
        return Err(validation(vec![field_in("PRODUTOS", 1, "body", "Envie o produto como um objeto JSON")]));
    };
    let mut fields = Vec::new();
    let text = |k: &str, b: &Map<String, Value>| b.get(k).and_then(Value::as_str).map(|s| s.trim().to_owned());
    let number = |k: &str, b: &Map<String, Value>, fields: &mut Vec<Value>| match b.get(k) {
        None | Some(Value::Null) => None,
        Some(v) => match crate::common::values::decimal(v) {
            Some(d) if d >= Decimal::ZERO => Some(d),
            _ => {
                fields.push(field_in("PRODUTOS", 6, k, &format!("O campo {k} deve ser um número maior ou igual a 0")));
                None
            }
        },
    };
    let nome = text("nome", &b);
    match &nome {
        Some(n) if n.is_empty() => fields.push(field_in("PRODUTOS", 4, "nome", "O nome do produto deve ser informado")),
        Some(n) if n.chars().count() > 120 => {
            fields.push(field_in("PRODUTOS", 5, "nome", "O nome do produto deve ter no máximo 120 caracteres"))
        }
        None if creating => fields.push(field_in("PRODUTOS", 4, "nome", "O nome do produto deve ser informado")),
        _ => {}
    }
    let codigo = text("codigo", &b);
    if creating && codigo.as_deref().is_none_or(str::is_empty) {
        fields.push(field_in("PRODUTOS", 8, "codigo", "O código (SKU) do produto deve ser informado"));
    }
    let preco = number("preco", &b, &mut fields);
    if creating && preco.is_none() && !b.contains_key("preco") {
        fields.push(field_in("PRODUTOS", 6, "preco", "O preço do produto deve ser informado"));
    }
    let estoque = number("estoque", &b, &mut fields);
    let situacao = text("situacao", &b);
    if situacao.as_deref().is_some_and(|s| !["A", "I"].contains(&s)) {
        fields.push(field_in("PRODUTOS", 7, "situacao", "Situação inválida: A (ativo) ou I (inativo)"));
    }
    if !fields.is_empty() {
        return Err(validation(fields));
    }
    Ok(Form { nome, codigo, preco, situacao, estoque })
}

/// The product as the UI shows it: the API's record and its balance on the Depósito Geral.
fn shown(b: &Bling, id: i64) -> Value {
    let inner = b.inner.lock();
    let mut p = inner.products.get(&id).map(public).unwrap_or(Value::Null);
    p["estoque"] = json!(inner.balance(id, DEPOSITO_GERAL).to_string());
    p
}

/// `POST /__admin/products`: a merchant adds a product in Bling's UI.
async fn ui_create(State(b): State<Bling>, body: Option<Json<Value>>) -> Response {
    let f = match form(body, true) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let codigo = f.codigo.unwrap_or_default();
    let taken = b.inner.lock().products.values().any(|p| p["codigo"] == codigo.as_str() && p["situacao"] != "E");
    if taken {
        return validation(vec![field_in(
            "PRODUTOS",
            9,
            "codigo",
            &format!("Já existe um produto com o código '{codigo}'"),
        )]);
    }
    let preco = f.preco.unwrap_or_default();
    let id = b.seed_product(json!({"nome": f.nome, "codigo": codigo, "preco": decimal_json(preco),
        "situacao": f.situacao.unwrap_or_else(|| "A".into()), "unidade": "UN"}));
    if let Some(estoque) = f.estoque {
        b.inner.lock().move_stock(id, DEPOSITO_GERAL, Operacao::Balanco, estoque, None);
    }
    if let Some(p) = b.product(id) {
        b.emit("product", "created", webhooks::product(&public(&p)));
    }
    data(StatusCode::CREATED, shown(&b, id))
}

/// The most products one import adds.
const IMPORT_MAX: u64 = 50_000;

/// `POST /__admin/products/import`: a catalog already in the account before ponte was connected.
async fn ui_import(State(b): State<Bling>, body: Option<Json<Value>>) -> Response {
    let body = body.map(|Json(v)| v).unwrap_or(Value::Null);
    let count = body.get("count").and_then(Value::as_u64).filter(|n| (1..=IMPORT_MAX).contains(n));
    let prefix = body.get("prefix").and_then(Value::as_str).unwrap_or("IMP").trim().to_owned();
    let mut fields = Vec::new();
    if count.is_none() {
        fields.push(field_in(
            "PRODUTOS",
            10,
            "count",
            &format!("Informe quantos produtos importar (1 a {IMPORT_MAX})"),
        ));
    }
    if prefix.is_empty() || prefix.chars().count() > 20 {
        fields.push(field_in("PRODUTOS", 8, "prefix", "O prefixo do código deve ter de 1 a 20 caracteres"));
    }
    let taken =
        b.inner.lock().products.values().any(|p| {
            p["situacao"] != "E" && p["codigo"].as_str().is_some_and(|c| c.starts_with(&format!("{prefix}-")))
        });
    if taken {
        fields.push(field_in("PRODUTOS", 9, "prefix", &format!("Já existem produtos com códigos '{prefix}-…'")));
    }
    let Some(count) = count.filter(|_| fields.is_empty()) else { return validation(fields) };
    let ids: Vec<i64> = (1..=count)
        .map(|i| {
            let preco = Decimal::new(990 + (i % 100) as i64 * 100, 2);
            b.seed_product(json!({"nome": format!("Produto importado {i}"), "codigo": format!("{prefix}-{i:05}"),
                "preco": decimal_json(preco), "unidade": "UN"}))
        })
        .collect();
    data(StatusCode::CREATED, json!({"importados": count, "primeiroId": ids[0], "ultimoId": ids[ids.len() - 1]}))
}

/// `PATCH /__admin/products/{id}`: a merchant changes a product in Bling's UI.
async fn ui_update(State(b): State<Bling>, Path(id): Path<String>, body: Option<Json<Value>>) -> Response {
    let Ok(id) = id.parse::<i64>() else { return not_found("O produto não foi encontrado.") };
    let f = match form(body, false) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if b.product(id).is_none_or(|p| p["situacao"] == "E") {
        return not_found("O produto não foi encontrado.");
    }
    let mut changes = Map::new();
    if let Some(n) = f.nome {
        changes.insert("nome".into(), json!(n));
    }
    if let Some(p) = f.preco {
        changes.insert("preco".into(), decimal_json(p));
    }
    if let Some(s) = f.situacao {
        changes.insert("situacao".into(), json!(s));
    }
    if let Some(estoque) = f.estoque {
        b.inner.lock().move_stock(id, DEPOSITO_GERAL, Operacao::Balanco, estoque, None);
    }
    if !changes.is_empty() {
        b.edit_product_in_ui(id, Value::Object(changes));
    }
    (StatusCode::OK, Json(json!({"data": shown(&b, id)}))).into_response()
}

/// A price as Bling writes it: a JSON number.
fn decimal_json(d: Decimal) -> Value {
    serde_json::Number::from_f64(rust_decimal::prelude::ToPrimitive::to_f64(&d.round_dp(2)).unwrap_or(0.0))
        .map_or(json!(0), Value::Number)
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
