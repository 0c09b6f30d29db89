//! Products: seeded as a merchant adds them in Bling's UI or created through the API, listed
//! with `criterio` (default 1, "últimos incluídos", hides all but the last seven days' products),
//! `idsProdutos[]` and `codigos[]` (look-up by SKU), read with their variations, replaced with
//! PUT, and moved between situações (`A`, `I`, `E`); every change is echoed as a webhook.

use axum::{extract::State, http::StatusCode, response::Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    errors::{Answer, Body, Ids, data, field, field_in, no_content, not_found, validation},
    query::Params,
    store::{Bling, public},
    webhooks,
};

impl Bling {
    /// Adds a product as a merchant would in Bling's UI; returns its id. `product` is Bling's
    /// product JSON without `id` (`nome`, `codigo`, `preco`, `situacao`, `formato`, …).
    pub fn seed_product(&self, mut product: Value) -> i64 {
        let now = self.now();
        let mut inner = self.inner.lock();
        let id = inner.id();
        if let Value::Object(m) = &mut product {
            m.insert("id".into(), json!(id));
            // The spec requires `cloneInfo` on a variation's parent reference.
            if let Some(Value::Object(pai)) = m.get_mut("variacao").and_then(|v| v.get_mut("produtoPai")) {
                pai.entry("cloneInfo").or_insert(json!(false));
            }
            m.entry("situacao").or_insert(json!("A"));
            m.entry("formato").or_insert(json!("S"));
            m.entry("tipo").or_insert(json!("P"));
            m.insert("_criado".into(), json!(now.to_rfc3339()));
        }
        inner.products.insert(id, product);
        id
    }

    pub fn product(&self, id: i64) -> Option<Value> {
        self.inner.lock().products.get(&id).cloned()
    }

    /// A person changes a product in Bling's UI: the change is stored and `product.updated` sent.
    pub fn edit_product_in_ui(&self, id: i64, changes: Value) -> bool {
        let updated = {
            let mut inner = self.inner.lock();
            let Some(p) = inner.products.get_mut(&id) else { return false };
            if let (Value::Object(p), Value::Object(c)) = (&mut *p, changes) {
                p.extend(c);
            }
            public(p)
        };
        self.emit("product", "updated", webhooks::product(&updated));
        true
    }
}

fn produto_nao_encontrado() -> Response {
    not_found("O produto não foi encontrado.")
}

/// Whether a product added at `criado` is shown by `criterio`.
fn shown(p: &Value, criterio: i64, now: DateTime<Utc>) -> bool {
    let situacao = p["situacao"].as_str().unwrap_or("A");
    let recent = p["_criado"]
        .as_str()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .is_some_and(|c| now - c.with_timezone(&Utc) < chrono::Duration::days(7));
    match criterio {
        1 => recent && situacao != "E",
        2 => situacao == "A",
        3 => situacao == "I",
        4 => situacao == "E",
        _ => true,
    }
}

pub async fn list(State(b): State<Bling>, q: Params) -> Answer {
    let criterio = q.choice("criterio", &[1, 2, 3, 4, 5], 1)?;
    let ids = q.ints("idsProdutos[]")?;
    let codigos = q.all("codigos[]");
    let now = b.now();
    let inner = b.inner.lock();
    let items: Vec<Value> = inner
        .products
        .values()
        .filter(|p| shown(p, criterio, now))
        .filter(|p| ids.is_empty() || p["id"].as_i64().is_some_and(|id| ids.contains(&id)))
        .filter(|p| codigos.is_empty() || p["codigo"].as_str().is_some_and(|c| codigos.contains(&c)))
        .map(|p| {
            let mut item = json!({"id": p["id"], "nome": p["nome"], "codigo": p["codigo"].as_str().unwrap_or_default(),
                "preco": p["preco"], "tipo": p["tipo"], "situacao": p["situacao"], "formato": p["formato"]});
            if let Some(parent) = p["variacao"]["produtoPai"]["id"].as_i64() {
                item["idProdutoPai"] = json!(parent);
            }
            item
        })
        .collect();
    Ok(data(StatusCode::OK, Value::Array(q.page(items)?)))
}

pub async fn get_one(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    let inner = b.inner.lock();
    let Some(p) = inner.products.get(&id) else { return Err(produto_nao_encontrado()) };
    let mut out = public(p);
    if p["formato"] == "V" {
        let vars: Vec<Value> = inner
            .products
            .values()
            .filter(|v| v["variacao"]["produtoPai"]["id"].as_i64() == Some(id))
            .map(public)
            .collect();
        out["variacoes"] = Value::Array(vars);
    }
    Ok(data(StatusCode::OK, out))
}

fn check(body: &Map<String, Value>) -> Result<(), Response> {
    let nome = body.get("nome").and_then(Value::as_str).unwrap_or_default();
    if nome.trim().is_empty() {
        return Err(validation(vec![field_in("PRODUTOS", 4, "nome", "O nome do produto deve ser informado")]));
    }
    if nome.chars().count() > 120 {
        return Err(validation(vec![field_in(
            "PRODUTOS",
            5,
            "nome",
            "O nome do produto deve ter no máximo 120 caracteres",
        )]));
    }
    Ok(())
}

fn saved(id: i64) -> Value {
    json!({"id": id, "variations": {"saved": [], "updated": [], "deleted": []}, "warnings": []})
}

pub async fn create(State(b): State<Bling>, Body(body): Body) -> Answer {
    check(&body)?;
    let id = b.seed_product(Value::Object(body));
    if let Some(p) = b.product(id) {
        b.emit("product", "created", webhooks::product(&public(&p)));
    }
    Ok(data(StatusCode::CREATED, saved(id)))
}

/// `PUT /produtos/{id}`: the whole product is replaced (what is omitted is gone).
pub async fn replace(State(b): State<Bling>, Ids(id): Ids<i64>, Body(mut body): Body) -> Answer {
    check(&body)?;
    let mut inner = b.inner.lock();
    let Some(existing) = inner.products.get(&id).cloned() else { return Err(produto_nao_encontrado()) };
    body.insert("id".into(), json!(id));
    body.insert("_criado".into(), existing["_criado"].clone());
    body.entry("situacao").or_insert(existing["situacao"].clone());
    body.entry("formato").or_insert(existing["formato"].clone());
    let body = Value::Object(body);
    inner.products.insert(id, body.clone());
    drop(inner);
    b.emit("product", "updated", webhooks::product(&public(&body)));
    Ok(data(StatusCode::OK, saved(id)))
}

pub async fn situacao(State(b): State<Bling>, Ids(id): Ids<i64>, Body(body): Body) -> Answer {
    let situacao = body.get("situacao").and_then(Value::as_str).unwrap_or_default();
    if !["A", "I", "E"].contains(&situacao) {
        return Err(validation(vec![field(7, "situacao", "Situação inválida")]));
    }
    let mut inner = b.inner.lock();
    let Some(p) = inner.products.get_mut(&id) else { return Err(produto_nao_encontrado()) };
    // Changing a product to "excluído" fires updated, as in Bling.
    p["situacao"] = json!(situacao);
    let payload = webhooks::product(&public(p));
    drop(inner);
    b.emit("product", "updated", payload);
    Ok(no_content())
}
