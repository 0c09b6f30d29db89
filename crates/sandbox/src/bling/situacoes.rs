//! Situações, per module of the account: the Vendas module's defaults (Em aberto 6, Atendido 9,
//! Cancelado 12, Em andamento 15, Venda agenciada 18, Em digitação 21, Verificado 24, with their
//! normalized `valor`), the Compras module (so that a situação of another module can be told
//! apart), custom situações created with `POST /situacoes` (inheriting from a default of their
//! module through `idHerdado`, names unique per module), each read by id, and the Vendas
//! module's actions and transitions (its defaults, and those created with
//! `POST /situacoes/transicoes`).

use axum::{extract::State, http::StatusCode, response::Response};
use serde_json::{Value, json};

use super::{
    errors::{Answer, Body, Ids, data, field_in, not_found, validation},
    seed::{COR, MODULO_COMPRAS, MODULO_VENDAS, Situacao},
    store::Bling,
};

/// The stock and accounting actions a transition can run: (id, nome, descrição).
const ACOES: [(i64, &str, &str); 4] = [
    (5, "lancarEstoque", "Lançar estoque"),
    (6, "estornarEstoque", "Estornar estoque"),
    (7, "lancarContas", "Lançar contas"),
    (8, "estornarContas", "Estornar contas"),
];

fn modulo_nao_encontrado() -> Response {
    not_found("O módulo não foi encontrado.")
}

fn modulo(id: i64) -> Option<Value> {
    match id {
        MODULO_VENDAS => {
            Some(json!({"id": id, "nome": "Vendas", "descricao": "Pedidos de Venda", "criarSituacoes": true}))
        }
        MODULO_COMPRAS => {
            Some(json!({"id": id, "nome": "Compras", "descricao": "Pedidos de Compra", "criarSituacoes": true}))
        }
        _ => None,
    }
}

pub async fn modulos() -> Answer {
    Ok(data(StatusCode::OK, json!([modulo(MODULO_VENDAS), modulo(MODULO_COMPRAS)])))
}

pub async fn do_modulo(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    if modulo(id).is_none() {
        return Err(modulo_nao_encontrado());
    }
    let inner = b.inner.lock();
    Ok(data(StatusCode::OK, inner.situacoes.iter().filter(|s| s.modulo == id).map(Situacao::to_json).collect()))
}

pub async fn get_one(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    match b.inner.lock().situacoes.iter().find(|s| s.id == id) {
        Some(s) => Ok(data(StatusCode::OK, s.to_json())),
        None => Err(not_found("A situação não foi encontrada.")),
    }
}

pub async fn acoes(Ids(id): Ids<i64>) -> Answer {
    if id != MODULO_VENDAS {
        return if modulo(id).is_some() { Ok(data(StatusCode::OK, json!([]))) } else { Err(modulo_nao_encontrado()) };
    }
    let list: Vec<Value> =
        ACOES.iter().map(|(id, nome, descricao)| json!({"id": id, "nome": nome, "descricao": descricao})).collect();
    Ok(data(StatusCode::OK, Value::Array(list)))
}

pub async fn transicoes(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    if id != MODULO_VENDAS {
        return if modulo(id).is_some() { Ok(data(StatusCode::OK, json!([]))) } else { Err(modulo_nao_encontrado()) };
    }
    let inner = b.inner.lock();
    let nome = |s: i64| inner.situacoes.iter().find(|x| x.id == s).map(|x| x.nome.clone()).unwrap_or_default();
    let list: Vec<Value> = inner
        .transicoes
        .iter()
        .map(|(t, from, to)| {
            json!({"id": t, "ativo": true, "acoes": [], "modulo": {"id": MODULO_VENDAS},
                   "situacaoOrigem": {"id": from, "nome": nome(*from)}, "situacaoDestino": {"id": to, "nome": nome(*to)}})
        })
        .collect();
    Ok(data(StatusCode::OK, Value::Array(list)))
}

/// `POST /situacoes/transicoes`: a transition between two situações of the Vendas module
/// (`situacaoOrigem`, `situacaoDestino`), refused naming the field when either is not a situação
/// of the module, they are the same, or the module has that transition already.
pub async fn create_transicao(State(b): State<Bling>, Body(body): Body) -> Answer {
    let id_of = |k: &str| body.get(k).and_then(|s| s.get("id")).and_then(Value::as_i64).unwrap_or_default();
    let (origem, destino) = (id_of("situacaoOrigem"), id_of("situacaoDestino"));
    let mut inner = b.inner.lock();
    let f = |code, element, msg| field_in("SITUACOES", code, element, msg);
    let in_vendas = |id: i64| inner.situacoes.iter().any(|s| s.id == id && s.modulo == MODULO_VENDAS);
    let mut fields = Vec::new();
    if !in_vendas(origem) {
        fields.push(f(10, "situacaoOrigem", "A situação de origem não existe no módulo"));
    }
    if !in_vendas(destino) {
        fields.push(f(11, "situacaoDestino", "A situação de destino não existe no módulo"));
    } else if origem == destino {
        fields.push(f(12, "situacaoDestino", "A situação de destino deve ser diferente da de origem"));
    }
    if fields.is_empty() && inner.transicoes.iter().any(|t| t.1 == origem && t.2 == destino) {
        fields.push(f(13, "situacaoDestino", "Já existe uma transição entre estas situações"));
    }
    if !fields.is_empty() {
        return Err(validation(fields));
    }
    let id = inner.transicoes.iter().map(|t| t.0).max().unwrap_or_default() + 1;
    inner.transicoes.push((id, origem, destino));
    Ok(data(StatusCode::CREATED, json!({"id": id})))
}

fn is_hex_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit())
}

/// `POST /situacoes`: a custom situação in a module, which behaves as the default it inherits
/// from (`idHerdado`, whose normalized `valor` it takes). Refused, naming the field, when the
/// module does not exist, the name is empty or taken in the module, the inherited situação is
/// not a default of the module, or the colour is not `#RRGGBB`.
pub async fn create(State(b): State<Bling>, Body(body): Body) -> Answer {
    let modulo_id = body.get("idModuloSistema").and_then(Value::as_i64).unwrap_or_default();
    let nome = body.get("nome").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned();
    let herdado = body.get("idHerdado").and_then(Value::as_i64).unwrap_or_default();
    let cor = body.get("cor").and_then(Value::as_str).unwrap_or(COR).to_owned();
    let mut inner = b.inner.lock();
    let mut fields = Vec::new();
    let f = |code, element, msg| field_in("SITUACOES", code, element, msg);
    if modulo(modulo_id).is_none() {
        fields.push(f(1, "idModuloSistema", "O módulo informado não existe"));
    }
    if nome.is_empty() {
        fields.push(f(2, "nome", "O nome da situação deve ser informado"));
    } else if inner.situacoes.iter().any(|s| s.modulo == modulo_id && s.nome.to_lowercase() == nome.to_lowercase()) {
        fields.push(f(4, "nome", "Já existe uma situação com este nome no módulo"));
    }
    let inherited = inner.situacoes.iter().find(|s| s.id == herdado && s.modulo == modulo_id && s.id_herdado == 0);
    if inherited.is_none() && modulo(modulo_id).is_some() {
        fields.push(f(3, "idHerdado", "A situação herdada deve ser uma situação padrão do módulo"));
    }
    if !is_hex_color(&cor) {
        fields.push(f(5, "cor", "A cor deve ser um código hexadecimal (#RRGGBB)"));
    }
    let valor = inherited.map(|s| s.valor).unwrap_or_default();
    if !fields.is_empty() {
        return Err(validation(fields));
    }
    let id = inner.id();
    inner.situacoes.push(Situacao { id, modulo: modulo_id, nome, id_herdado: herdado, cor, valor });
    Ok(data(StatusCode::CREATED, json!({"id": id})))
}
