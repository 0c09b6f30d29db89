//! Stock, kept per (product, depósito): an order's items written off a depósito once
//! (`lancar-estoque/{idDeposito}`, or the default depósito without one) and returned to the
//! same depósito (`estornar-estoque`, a no-op when nothing is written off, as the spec has no
//! 400 for it), movements posted with `POST /estoques` (`B` balance, `E` in, `S` out), and the
//! balances per depósito (`GET /estoques/saldos`, `filtroSaldoEstoque` default 1 hiding
//! products without a positive balance). Every movement is recorded for the admin state.

use axum::{extract::State, http::StatusCode, response::Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{
    errors::{Answer, Body, Ids, data, field_in, no_content, not_found, validation},
    orders::pedido_nao_encontrado,
    query::Params,
    seed::{DEPOSITO_GERAL, DEPOSITOS, is_deposito},
    store::{Bling, Movement, Operacao},
};
use crate::common::values::{decimal, to_number};

impl Bling {
    /// Sets a product's stock on a depósito (a balance, `B`).
    pub fn set_stock(&self, product: i64, deposito: i64, balance: Decimal) {
        self.inner.lock().move_stock(product, deposito, Operacao::Balanco, balance, None);
    }

    pub fn stock(&self, product: i64, deposito: i64) -> Decimal {
        self.inner.lock().balance(product, deposito)
    }

    /// Every stock movement so far, oldest first.
    pub fn movements(&self) -> Vec<Movement> {
        self.inner.lock().movements.clone()
    }
}

fn deposito_nao_encontrado() -> Response {
    not_found("O depósito não foi encontrado.")
}

/// Writes the order's items off `deposito`, once.
fn write_off(b: &Bling, id: i64, deposito: i64) -> Answer {
    let mut inner = b.inner.lock();
    let order = inner.orders.get(&id).ok_or_else(pedido_nao_encontrado)?;
    if order.estoque.is_some() {
        return Err(validation(vec![field_in("VENDAS", 60, "estoque", "O estoque desta venda já foi lançado")]));
    }
    let items = order.lines();
    for (produto, quantidade) in items {
        inner.move_stock(produto, deposito, Operacao::Saida, quantidade, Some(id));
    }
    if let Some(o) = inner.orders.get_mut(&id) {
        o.estoque = Some(deposito);
    }
    Ok(no_content())
}

pub async fn lancar(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    write_off(&b, id, DEPOSITO_GERAL)
}

pub async fn lancar_em(State(b): State<Bling>, Ids((id, deposito)): Ids<(i64, i64)>) -> Answer {
    if !is_deposito(deposito) {
        return Err(deposito_nao_encontrado());
    }
    write_off(&b, id, deposito)
}

pub async fn estornar(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    let mut inner = b.inner.lock();
    let Some(order) = inner.orders.get(&id) else { return Err(pedido_nao_encontrado()) };
    let Some(deposito) = order.estoque else { return Ok(no_content()) };
    for (produto, quantidade) in order.lines() {
        inner.move_stock(produto, deposito, Operacao::Entrada, quantidade, Some(id));
    }
    if let Some(o) = inner.orders.get_mut(&id) {
        o.estoque = None;
    }
    Ok(no_content())
}

/// `POST /estoques`: `produto.id`, `deposito.id`, `operacao` and `quantidade` are required.
pub async fn create(State(b): State<Bling>, Body(body): Body) -> Answer {
    let f = |code, element, msg| field_in("ESTOQUES", code, element, msg);
    let mut fields = Vec::new();
    let mut inner = b.inner.lock();
    let produto = body.get("produto").and_then(|p| p.get("id")).and_then(Value::as_i64);
    match produto {
        None => fields.push(f(1, "produto", "O produto deve ser informado")),
        Some(p) if !inner.products.contains_key(&p) => fields.push(f(2, "produto", "O produto não foi encontrado")),
        Some(_) => {}
    }
    let deposito = body.get("deposito").and_then(|d| d.get("id")).and_then(Value::as_i64);
    match deposito {
        None => fields.push(f(3, "deposito", "O depósito deve ser informado")),
        Some(d) if !is_deposito(d) => fields.push(f(4, "deposito", "O depósito não foi encontrado")),
        Some(_) => {}
    }
    let operacao = body.get("operacao").and_then(Value::as_str).and_then(Operacao::parse);
    if operacao.is_none() {
        fields.push(f(5, "operacao", "A operação deve ser B (balanço), E (entrada) ou S (saída)"));
    }
    let quantidade = body.get("quantidade").filter(|q| q.is_number()).and_then(decimal);
    match quantidade {
        Some(q) if q > Decimal::ZERO || (q.is_zero() && operacao == Some(Operacao::Balanco)) => {}
        _ => fields.push(f(6, "quantidade", "A quantidade deve ser um número maior que zero")),
    }
    for k in ["preco", "custo"] {
        if body.get(k).is_some_and(|v| !v.is_number() && !v.is_null()) {
            fields.push(f(7, k, "O valor deve ser um número"));
        }
    }
    let (Some(produto), Some(deposito), Some(operacao), Some(quantidade), true) =
        (produto, deposito, operacao, quantidade, fields.is_empty())
    else {
        return Err(validation(fields));
    };
    let id = inner.move_stock(produto, deposito, operacao, quantidade, None);
    Ok(data(StatusCode::CREATED, json!({"id": id})))
}

/// A product (`{id, codigo}`) and its balance on each depósito asked for.
type Balances = (Value, Vec<(i64, Decimal)>);

/// The products asked for, with their balances, as `filtroSaldoEstoque` keeps them.
fn balances(b: &Bling, q: &Params, depositos: &[i64]) -> Result<Vec<Balances>, Response> {
    let ids = q.ints("idsProdutos[]")?;
    if ids.is_empty() {
        return Err(validation(vec![field_in("ESTOQUES", 1, "idsProdutos", "O parâmetro idsProdutos é obrigatório")]));
    }
    // filtroSaldoEstoque defaults to 1: products without a positive balance are left out.
    let filtro = q.choice("filtroSaldoEstoque", &[0, 1, 2], 1)?;
    let codigos = q.all("codigos[]");
    let inner = b.inner.lock();
    Ok(ids
        .iter()
        .filter_map(|id| inner.products.get(id).map(|p| (*id, p)))
        .filter(|(_, p)| codigos.is_empty() || p["codigo"].as_str().is_some_and(|c| codigos.contains(&c)))
        .filter_map(|(id, p)| {
            let deps: Vec<(i64, Decimal)> = depositos.iter().map(|d| (*d, inner.balance(id, *d))).collect();
            let total: Decimal = deps.iter().map(|d| d.1).sum();
            let keep = match filtro {
                0 => total.is_zero(),
                2 => total < Decimal::ZERO,
                _ => total > Decimal::ZERO,
            };
            keep.then(|| (json!({"id": id, "codigo": p["codigo"].as_str().unwrap_or_default()}), deps))
        })
        .collect())
}

pub async fn saldos(State(b): State<Bling>, q: Params) -> Answer {
    let all: Vec<i64> = DEPOSITOS.iter().map(|d| d.0).collect();
    let items = balances(&b, &q, &all)?
        .into_iter()
        .map(|(produto, deps)| {
            let total = to_number(deps.iter().map(|d| d.1).sum());
            let depositos: Vec<Value> = deps
                .iter()
                .map(|(d, s)| json!({"id": d, "saldoFisico": to_number(*s), "saldoVirtual": to_number(*s)}))
                .collect();
            json!({"produto": produto, "saldoFisicoTotal": total, "saldoVirtualTotal": total, "depositos": depositos})
        })
        .collect();
    Ok(data(StatusCode::OK, Value::Array(items)))
}

/// `GET /estoques/saldos/{idDeposito}`: the same, for one depósito (items lack `depositos`).
pub async fn saldos_do_deposito(State(b): State<Bling>, Ids(deposito): Ids<i64>, q: Params) -> Answer {
    if !is_deposito(deposito) {
        return Err(deposito_nao_encontrado());
    }
    let items = balances(&b, &q, &[deposito])?
        .into_iter()
        .map(|(produto, deps)| {
            let total = to_number(deps.iter().map(|d| d.1).sum());
            json!({"produto": produto, "saldoFisicoTotal": total, "saldoVirtualTotal": total})
        })
        .collect();
    Ok(data(StatusCode::OK, Value::Array(items)))
}
