//! Sales orders: created (`POST`, answered without `numero`, as Bling does, in the Vendas
//! situação the body names or Em aberto), listed with Bling's
//! filters (`numerosLojas[]`, `idsSituacoes[]`, `idContato`, `idLoja`, `numero`, dates), read,
//! replaced whole (`PUT`; an unchanged order is refused, code 3), deleted (stock written off is
//! returned; posted contas must be reversed first), moved between the Vendas module's
//! situações, and their contas a receber posted and reversed. Every change is echoed as an
//! `order.*` webhook.

use axum::{extract::State, http::StatusCode, response::Response};
use serde_json::{Value, json};

use super::{
    errors::{Answer, Body, Ids, data, field_in, no_content, not_found, validation, validation_as},
    order_body,
    query::Params,
    seed::MODULO_VENDAS,
    store::{Bling, Inner, Operacao, Order, SituacaoMove},
    webhooks,
};

impl Bling {
    /// Every sales order, as `GET /pedidos/vendas/{id}` shows it.
    pub fn orders(&self) -> Vec<Value> {
        self.inner.lock().orders.values().map(|o| o.body.clone()).collect()
    }

    pub fn order(&self, id: i64) -> Option<Value> {
        self.inner.lock().orders.get(&id).map(|o| o.body.clone())
    }
}

pub fn pedido_nao_encontrado() -> Response {
    not_found("O pedido de venda não foi encontrado.")
}

fn refused(fields: Vec<Value>) -> Response {
    validation_as(
        "Não foi possível salvar a venda",
        "A venda não pode ser salva, pois ocorreram problemas em sua validação.",
        fields,
    )
}

/// Gives every item and parcela without an id one of its own.
fn assign_ids(inner: &mut Inner, order: &mut Value) {
    for list in ["itens", "parcelas"] {
        if let Some(Value::Array(entries)) = order.get_mut(list) {
            for e in entries.iter_mut().filter(|e| e["id"].as_i64().is_none()) {
                e["id"] = json!(inner.id());
            }
        }
    }
}

/// Whether an order carries ids for every item and parcela (a PUT that may repeat the order).
fn fully_identified(order: &Value) -> bool {
    ["itens", "parcelas"].iter().all(|l| order[*l].as_array().is_none_or(|a| a.iter().all(|e| e["id"].is_i64())))
}

/// The situação a new order starts in: the one `situacao.id` names (a situação of the Vendas
/// module, as the spec's POST body allows), or Em aberto.
fn initial_situacao(inner: &Inner, body: &serde_json::Map<String, Value>) -> Result<Value, Response> {
    let Some(asked) = body.get("situacao").filter(|s| !s.is_null()) else {
        return Ok(json!({"id": 6, "valor": 0}));
    };
    let vendas =
        asked["id"].as_i64().and_then(|id| inner.situacoes.iter().find(|s| s.id == id && s.modulo == MODULO_VENDAS));
    match vendas {
        Some(s) => Ok(json!({"id": s.id, "valor": s.valor})),
        None => Err(refused(vec![field_in("VENDAS", 51, "situacao", "A situação não pertence ao módulo de vendas")])),
    }
}

pub async fn create(State(b): State<Bling>, Body(body): Body) -> Answer {
    let mut inner = b.inner.lock();
    let mut order = match order_body::build(&inner, &body, None) {
        Ok(o) => o,
        Err(fields) => return Err(refused(fields)),
    };
    let situacao = initial_situacao(&inner, &body)?;
    let id = inner.id();
    order["id"] = json!(id);
    order["numero"] = json!(inner.numero());
    order["situacao"] = situacao;
    // Stored items and parcelas get ids of their own (sending a stale one back is an error).
    for list in ["itens", "parcelas"] {
        if let Some(Value::Array(entries)) = order.get_mut(list) {
            for e in entries.iter_mut() {
                e.as_object_mut().map(|m| m.remove("id"));
            }
        }
    }
    assign_ids(&mut inner, &mut order);
    let payload = webhooks::order(&order);
    inner.orders.insert(id, Order { body: order, estoque: None, contas: false });
    drop(inner);
    b.emit("order", "created", payload);
    Ok(data(StatusCode::CREATED, json!({"id": id, "alertas": [], "rastreamento": {}})))
}

/// `PUT /pedidos/vendas/{id}`: every block of the order is replaced by what is sent (an omitted
/// block is gone); the number, situação and what was posted stay.
pub async fn replace(State(b): State<Bling>, Ids(id): Ids<i64>, Body(body): Body) -> Answer {
    let mut inner = b.inner.lock();
    let Some(previous) = inner.orders.get(&id).map(|o| o.body.clone()) else { return Err(pedido_nao_encontrado()) };
    let mut order = match order_body::build(&inner, &body, Some(&previous)) {
        Ok(o) => o,
        Err(fields) => return Err(refused(fields)),
    };
    for k in ["id", "numero", "situacao"] {
        order[k] = previous[k].clone();
    }
    if fully_identified(&order) && order == previous {
        return Err(refused(vec![field_in(
            "VENDAS",
            3,
            "venda",
            "Informações idênticas a última venda salva, altere alguma informação caso deseje prosseguir",
        )]));
    }
    assign_ids(&mut inner, &mut order);
    let payload = webhooks::order(&order);
    if let Some(o) = inner.orders.get_mut(&id) {
        o.body = order;
    }
    drop(inner);
    b.emit("order", "updated", payload);
    Ok(data(StatusCode::OK, json!({"id": id, "alertas": [], "rastreamento": {}})))
}

pub async fn delete(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    let mut inner = b.inner.lock();
    let Some(order) = inner.orders.get(&id).cloned() else { return Err(pedido_nao_encontrado()) };
    if order.contas {
        let numero = order.body["numero"].as_i64().unwrap_or_default();
        let msg =
            format!("A venda número {numero} contém contas a receber lançadas; estorne as contas antes de excluí-la");
        return Err(validation(vec![field_in("VENDAS", 62, "contas", &msg)]));
    }
    // Deleting an order returns the stock it wrote off.
    if let Some(deposito) = order.estoque {
        for (produto, quantidade) in order.lines() {
            inner.move_stock(produto, deposito, Operacao::Entrada, quantidade, Some(id));
        }
    }
    inner.orders.remove(&id);
    drop(inner);
    b.emit("order", "deleted", json!({"id": id}));
    Ok(no_content())
}

pub async fn get_one(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    match b.inner.lock().orders.get(&id) {
        Some(o) => Ok(data(StatusCode::OK, o.body.clone())),
        None => Err(pedido_nao_encontrado()),
    }
}

/// The list fields of an order.
fn summary(o: &Value) -> Value {
    json!({"id": o["id"], "numero": o["numero"], "numeroLoja": o["numeroLoja"].as_str().unwrap_or_default(),
        "data": o["data"], "dataSaida": o["dataSaida"], "dataPrevista": o["dataPrevista"],
        "totalProdutos": o["totalProdutos"], "total": o["total"], "contato": o["contato"], "situacao": o["situacao"],
        "loja": {"id": o["loja"]["id"]}})
}

pub async fn list(State(b): State<Bling>, q: Params) -> Answer {
    let situacoes = q.ints("idsSituacoes[]")?;
    let (contato, loja, numero) = (q.int("idContato")?, q.int("idLoja")?, q.int("numero")?);
    let (de, ate) = (q.date("dataInicial")?, q.date("dataFinal")?);
    let (prevista_de, prevista_ate) = (q.date("dataPrevistaInicial")?, q.date("dataPrevistaFinal")?);
    for (from, to, element) in [(de, ate, "dataInicial"), (prevista_de, prevista_ate, "dataPrevistaInicial")] {
        // A period filter may span a year at most.
        if let (Some(from), Some(to)) = (from, to)
            && to - from > chrono::Duration::days(366)
        {
            return Err(validation(vec![field_in(
                "VENDAS",
                1,
                element,
                "O período informado não pode ser maior que um ano",
            )]));
        }
    }
    let lojas = q.all("numerosLojas[]");
    let in_range = |v: &Value, from: Option<chrono::NaiveDate>, to: Option<chrono::NaiveDate>| {
        let d = v.as_str().and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        from.is_none_or(|f| d.is_some_and(|d| d >= f)) && to.is_none_or(|t| d.is_some_and(|d| d <= t))
    };
    let inner = b.inner.lock();
    let items: Vec<Value> = inner
        .orders
        .values()
        .map(|o| &o.body)
        .filter(|o| lojas.is_empty() || o["numeroLoja"].as_str().is_some_and(|n| lojas.contains(&n)))
        .filter(|o| situacoes.is_empty() || o["situacao"]["id"].as_i64().is_some_and(|s| situacoes.contains(&s)))
        .filter(|o| contato.is_none_or(|c| o["contato"]["id"] == c))
        .filter(|o| loja.is_none_or(|l| o["loja"]["id"] == l))
        .filter(|o| numero.is_none_or(|n| o["numero"] == n))
        .filter(|o| in_range(&o["data"], de, ate) && in_range(&o["dataPrevista"], prevista_de, prevista_ate))
        .map(summary)
        .collect();
    Ok(data(StatusCode::OK, Value::Array(q.page(items)?)))
}

/// `PATCH /pedidos/vendas/{id}/situacoes/{idSituacao}`: only situações of the Vendas module;
/// moving to the situação the order is in changes nothing.
pub async fn situacao(State(b): State<Bling>, Ids((id, situacao)): Ids<(i64, i64)>) -> Response {
    let mut inner = b.inner.lock();
    let Some(target) = inner.situacoes.iter().find(|s| s.id == situacao).cloned() else {
        return not_found("A situação não foi encontrada.");
    };
    if target.modulo != MODULO_VENDAS {
        return validation(vec![field_in("VENDAS", 51, "situacao", "A situação não pertence ao módulo de vendas")]);
    }
    let Some(order) = inner.orders.get_mut(&id) else { return pedido_nao_encontrado() };
    if order.body["situacao"]["id"] == situacao {
        return no_content();
    }
    order.body["situacao"] = json!({"id": situacao, "valor": target.valor});
    let payload = webhooks::order(&order.body);
    drop(inner);
    if b.moves.receiver_count() > 0 {
        let _ = b.moves.send(SituacaoMove { pedido: id, situacao, at: std::time::Instant::now() });
    }
    b.emit("order", "updated", payload);
    no_content()
}

/// Posts (`lancar`) or reverses the order's contas a receber, once each way.
fn contas(b: &Bling, id: i64, lancar: bool) -> Answer {
    let mut inner = b.inner.lock();
    let order = inner.orders.get_mut(&id).ok_or_else(pedido_nao_encontrado)?;
    let f = |code, msg| Err(validation(vec![field_in("VENDAS", code, "contas", msg)]));
    match (lancar, order.contas) {
        (true, true) => return f(63, "As contas desta venda já foram lançadas"),
        (false, false) => return f(64, "As contas desta venda não foram lançadas"),
        (true, false) if order.body["parcelas"].as_array().is_none_or(Vec::is_empty) => {
            return f(65, "A venda não possui parcelas para lançar contas");
        }
        _ => order.contas = lancar,
    }
    Ok(no_content())
}

pub async fn lancar_contas(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    contas(&b, id, true)
}

pub async fn estornar_contas(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    contas(&b, id, false)
}
