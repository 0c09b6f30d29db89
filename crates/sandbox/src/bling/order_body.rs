//! What a sales order body must hold for Bling to save it (`POST` and `PUT
//! /pedidos/vendas`), checked field by field into `error.fields` (`element`, `msg`, `code`,
//! namespace `VENDAS`): the contact (an existing one), `data`, `dataSaida` and `dataPrevista`
//! (dates), items (quantities, prices, existing products), a loja that is one of the account's
//! canais de venda, parcelas (dates, existing formas de pagamento, summing to the total), the
//! delivery data (`transporte`), and on a PUT, item and parcela ids the order really has. The
//! total is the items less the discount, plus `outrasDespesas` and the freight.

use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};

use super::{errors::field_in, seed, store::Inner};
use crate::common::values::{decimal, to_number};

/// Fields Bling computes or that only it writes: ignored when sent.
const READ_ONLY: [&str; 6] = ["id", "numero", "total", "totalProdutos", "situacao", "notaFiscal"];

/// The `fretePorConta` values of NF-e.
const FRETE_POR_CONTA: [i64; 6] = [0, 1, 2, 3, 4, 9];

/// The address fields of `transporte.etiqueta`, all texts.
const ETIQUETA: [&str; 9] =
    ["nome", "endereco", "numero", "complemento", "municipio", "uf", "cep", "bairro", "nomePais"];

fn f(code: i64, element: &str, msg: &str) -> Value {
    field_in("VENDAS", code, element, msg)
}

fn f_at(index: usize, code: i64, element: &str, msg: &str) -> Value {
    let mut v = f(code, element, msg);
    v["index"] = json!(index);
    v
}

fn is_date(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok())
}

/// Checks `body` against the account and builds the order to store, without `id`, `numero`
/// and `situacao` (the caller keeps or assigns them). `previous`: the stored order a PUT
/// replaces, whose item and parcela ids may be sent back.
pub fn build(inner: &Inner, body: &Map<String, Value>, previous: Option<&Value>) -> Result<Value, Vec<Value>> {
    let mut fields = Vec::new();
    let mut order: Map<String, Value> =
        body.iter().filter(|(k, _)| !READ_ONLY.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();

    match body.get("contato").and_then(|c| c.get("id")).and_then(Value::as_i64) {
        None => fields.push(f(36, "contato", "O contato da venda deve ser informado")),
        Some(id) => match inner.contacts.get(&id) {
            None => fields.push(f(37, "contato", &format!("O contato {id} não foi encontrado"))),
            Some(c) => {
                order.insert(
                    "contato".into(),
                    json!({"id": id, "nome": c["nome"], "tipoPessoa": c["tipo"],
                           "numeroDocumento": c["numeroDocumento"].as_str().unwrap_or_default()}),
                );
            }
        },
    }
    for (k, code, what) in
        [("data", 30, "data da venda"), ("dataSaida", 31, "data de saída"), ("dataPrevista", 32, "data prevista")]
    {
        match body.get(k) {
            None | Some(Value::Null) => fields.push(f(code, k, &format!("A {what} deve ser informada"))),
            v if !is_date(v) => fields.push(f(code, k, &format!("A {what} é inválida (AAAA-MM-DD)"))),
            _ => {}
        }
    }
    if let Some(n) = body.get("numeroLoja")
        && !n.is_string()
        && !n.is_null()
    {
        fields.push(f(33, "numeroLoja", "O número da loja deve ser um texto"));
    }

    let known_ids = |list: &str| -> HashSet<i64> {
        previous
            .and_then(|p| p[list].as_array())
            .map(|a| a.iter().filter_map(|e| e["id"].as_i64()).collect())
            .unwrap_or_default()
    };

    let mut total_produtos = Decimal::ZERO;
    match body.get("itens") {
        Some(Value::Array(itens)) if !itens.is_empty() => {
            let ids = known_ids("itens");
            for (i, item) in itens.iter().enumerate() {
                let (q, v) = (decimal(&item["quantidade"]), decimal(&item["valor"]));
                let desconto =
                    if item["desconto"].is_null() { Some(Decimal::ZERO) } else { decimal(&item["desconto"]) };
                match (q, v, desconto) {
                    (Some(q), Some(v), Some(d))
                        if q > Decimal::ZERO
                            && v >= Decimal::ZERO
                            && (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&d) =>
                    {
                        let line = q * v;
                        total_produtos += line - line * d / Decimal::ONE_HUNDRED;
                    }
                    _ => fields.push(f_at(
                        i,
                        41,
                        "itens",
                        "Quantidade, valor e desconto (%) do item devem ser números válidos",
                    )),
                }
                if let Some(p) = item.get("produto").filter(|p| !p.is_null()) {
                    match p["id"].as_i64() {
                        Some(id) if inner.products.contains_key(&id) => {}
                        Some(id) => fields.push(f_at(i, 42, "produto", &format!("O produto {id} não foi encontrado"))),
                        None => fields.push(f_at(i, 42, "produto", "O id do produto deve ser informado")),
                    }
                }
                // POST ignores ids; a PUT may only send back the order's own.
                if let Some(id) = item["id"].as_i64().filter(|id| previous.is_some() && !ids.contains(id)) {
                    fields.push(f_at(i, 43, "itens", &format!("O id ({id}) do item é inválido")));
                }
            }
        }
        _ => fields.push(f(40, "itens", "A venda deve possuir ao menos um item")),
    }
    let mut total = total_produtos;
    match body.get("desconto") {
        None | Some(Value::Null) => {}
        Some(d) => match (decimal(&d["valor"]), d["unidade"].as_str().unwrap_or("REAL")) {
            (Some(v), "REAL") if v >= Decimal::ZERO => total -= v,
            // A percentage applies to the items, not to freight or other expenses.
            (Some(v), "PERCENTUAL") if (Decimal::ZERO..=Decimal::ONE_HUNDRED).contains(&v) => {
                total -= total_produtos * v / Decimal::ONE_HUNDRED
            }
            _ => fields.push(f(44, "desconto", "O desconto deve ter valor e unidade REAL ou PERCENTUAL")),
        },
    }
    match body.get("outrasDespesas") {
        None | Some(Value::Null) => {}
        Some(v) => match decimal(v) {
            Some(d) if d >= Decimal::ZERO => total += d,
            _ => fields.push(f(45, "outrasDespesas", "Outras despesas devem ser um valor não negativo")),
        },
    }
    match body.get("transporte") {
        None | Some(Value::Null) => {}
        Some(Value::Object(t)) => {
            if let Some(v) = t.get("fretePorConta").filter(|v| !v.is_null())
                && !v.as_i64().is_some_and(|c| FRETE_POR_CONTA.contains(&c))
            {
                fields.push(f(46, "transporte.fretePorConta", "Frete por conta deve ser 0, 1, 2, 3, 4 ou 9"));
            }
            match t.get("frete").filter(|v| !v.is_null()) {
                None => {}
                Some(v) => match decimal(v) {
                    Some(d) if d >= Decimal::ZERO => total += d,
                    _ => fields.push(f(47, "transporte.frete", "O frete deve ser um valor não negativo")),
                },
            }
            match t.get("etiqueta") {
                None | Some(Value::Null) => {}
                Some(Value::Object(e)) => {
                    for k in ETIQUETA {
                        if e.get(k).is_some_and(|v| !v.is_string() && !v.is_null()) {
                            fields.push(f(
                                48,
                                &format!("transporte.etiqueta.{k}"),
                                "O campo da etiqueta deve ser um texto",
                            ));
                        }
                    }
                }
                Some(_) => fields.push(f(48, "transporte.etiqueta", "A etiqueta deve ser um objeto")),
            }
        }
        Some(_) => fields.push(f(46, "transporte", "O transporte deve ser um objeto")),
    }
    match body.get("loja").and_then(|l| l.get("id")) {
        None | Some(Value::Null) => {
            order.insert("loja".into(), json!({"id": 0}));
        }
        Some(v) => match v.as_i64() {
            Some(0) => {}
            Some(id) if seed::is_canal(id) => {}
            _ => fields.push(f(50, "loja", &format!("A loja {v} não é um canal de venda da conta"))),
        },
    }
    // Bling rounds money as PHP's `round` does: half a cent away from zero.
    let total = total.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);

    let formas: HashSet<i64> = inner.formas.iter().filter_map(|f| f["id"].as_i64()).collect();
    let parcelas = match body.get("parcelas") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            fields.push(f(49, "parcelas", "As parcelas devem ser uma lista"));
            Vec::new()
        }
    };
    let ids = known_ids("parcelas");
    let mut bad = Vec::new();
    let mut sum = Decimal::ZERO;
    for (i, p) in parcelas.iter().enumerate() {
        let at = |code, element: &str, msg: &str| json!({"index": i + 1, "code": code, "msg": msg, "element": element, "namespace": "VENDAS"});
        if !p["formaPagamento"]["id"].as_i64().is_some_and(|id| formas.contains(&id)) {
            bad.push(at(12, "formaPagamento", "Id da forma de pagamento inválido."));
        }
        if !is_date(p.get("dataVencimento")) {
            bad.push(at(13, "dataVencimento", "A data de vencimento da parcela é inválida (AAAA-MM-DD)."));
        }
        match decimal(&p["valor"]) {
            Some(v) if v >= Decimal::ZERO => sum += v,
            _ => bad.push(at(14, "valor", "O valor da parcela é inválido.")),
        }
        if let Some(id) = p["id"].as_i64().filter(|id| previous.is_some() && !ids.contains(id)) {
            bad.push(at(15, "id", &format!("O id ({id}) da parcela é inválido")));
        }
    }
    if !bad.is_empty() {
        let mut v = f(49, "parcelas", "Uma ou mais parcelas da venda possuem erros de validação");
        v["collection"] = Value::Array(bad);
        fields.push(v);
    } else if !parcelas.is_empty() && sum.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero) != total {
        fields.push(f(22, "parcelas", "O somatório do valor das parcelas difere do total da venda"));
    }
    if !fields.is_empty() {
        return Err(fields);
    }
    order.insert(
        "totalProdutos".into(),
        to_number(total_produtos.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)),
    );
    order.insert("total".into(), to_number(total));
    Ok(Value::Object(order))
}
