//! The account's set-up as the API shows it: the company (`/empresas/me/dados-basicos`),
//! formas de pagamento (listed and created), depósitos and canais de venda (lojas).

use axum::{extract::State, http::StatusCode};
use serde_json::{Value, json};

use super::{
    errors::{Answer, Body, data, field, validation},
    query::Params,
    seed::{CANAIS, DEPOSITOS, TIPOS_PAGAMENTO},
    store::Bling,
};

pub async fn dados_basicos(State(b): State<Bling>) -> Answer {
    Ok(data(
        StatusCode::OK,
        json!({"id": b.config.company_id, "nome": b.config.company_name, "cnpj": "12.345.657/8910-11",
        "email": "contato@loja.example", "dataContrato": "2024-12-31"}),
    ))
}

pub async fn formas_pagamento(State(b): State<Bling>, q: Params) -> Answer {
    let items = b.inner.lock().formas.clone();
    Ok(data(StatusCode::OK, Value::Array(q.page(items)?)))
}

/// `POST /formas-pagamentos`: `descricao`, `tipoPagamento`, `finalidade` and `destino` are
/// required; the new forma is active unless `situacao` says otherwise.
pub async fn create_forma_pagamento(State(b): State<Bling>, Body(body): Body) -> Answer {
    let descricao = body.get("descricao").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned();
    let int = |k: &str| body.get(k).and_then(Value::as_i64);
    let tipo = int("tipoPagamento").filter(|t| TIPOS_PAGAMENTO.contains(t));
    let finalidade = int("finalidade").filter(|f| (1..=3).contains(f));
    let destino = int("destino").filter(|d| (1..=3).contains(d));
    let mut fields = Vec::new();
    if descricao.is_empty() {
        fields.push(field(2, "descricao", "A descrição deve ser informada"));
    }
    if tipo.is_none() {
        fields.push(field(4, "tipoPagamento", "O tipo de pagamento é inválido"));
    }
    if finalidade.is_none() {
        fields.push(field(5, "finalidade", "A finalidade é inválida"));
    }
    if destino.is_none() {
        fields.push(field(6, "destino", "O destino é inválido"));
    }
    if !fields.is_empty() {
        return Err(validation(fields));
    }
    let mut inner = b.inner.lock();
    let id = inner.id();
    inner.formas.push(json!({"id": id, "descricao": descricao, "tipoPagamento": tipo,
        "situacao": int("situacao").unwrap_or(1), "fixa": false, "padrao": int("padrao").unwrap_or(0),
        "finalidade": finalidade}));
    Ok(data(StatusCode::CREATED, json!({"id": id})))
}

pub async fn depositos(q: Params) -> Answer {
    let items = DEPOSITOS
        .iter()
        .map(|(id, d, p)| json!({"id": id, "descricao": d, "situacao": 1, "padrao": p, "desconsiderarSaldo": false}))
        .collect();
    Ok(data(StatusCode::OK, Value::Array(q.page(items)?)))
}

pub async fn canais_venda(q: Params) -> Answer {
    let items =
        CANAIS.iter().map(|(id, d, tipo)| json!({"id": id, "descricao": d, "tipo": tipo, "situacao": 1})).collect();
    Ok(data(StatusCode::OK, Value::Array(q.page(items)?)))
}
