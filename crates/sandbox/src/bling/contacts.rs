//! Contacts: the account's "consumidor final", contacts created with `POST /contatos` (`nome`,
//! `tipo` F/J/E and `situacao` required; a CPF or CNPJ must be valid for its `tipo`; the
//! address `endereco.geral`/`cobranca` checked field by field), listed with Bling's filters
//! (`numeroDocumento` compared without punctuation, `pesquisa`, `criterio`, `tipoPessoa`,
//! `idsContatos[]`) and read by id with every field the spec shows.

use axum::{extract::State, http::StatusCode};
use serde_json::{Map, Value, json};

use super::{
    errors::{Answer, Body, Ids, data, field_in, not_found, validation},
    query::Params,
    seed::CONSUMIDOR_FINAL,
    store::{Bling, public},
};

impl Bling {
    /// Adds a contact as a merchant would in Bling's UI (Bling's contact JSON without `id`);
    /// its id.
    pub fn seed_contact(&self, contact: Value) -> i64 {
        let now = self.now();
        let mut inner = self.inner.lock();
        let id = inner.id();
        let mut c = match contact {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        c.insert("id".into(), json!(id));
        c.entry("situacao").or_insert(json!("A"));
        c.entry("tipo").or_insert(json!("F"));
        c.insert("_incluido".into(), json!(now.to_rfc3339()));
        inner.contacts.insert(id, Value::Object(c));
        id
    }

    /// Every contact, as `GET /contatos/{id}` shows it.
    pub fn contacts(&self) -> Vec<Value> {
        self.inner.lock().contacts.values().map(public).collect()
    }
}

/// Digits only: how Bling compares CPFs and CNPJs.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The check digits of a CPF (11 digits) or CNPJ (14 digits).
fn valid_document(tipo: &str, doc: &str) -> bool {
    let d: Vec<u32> = doc.chars().filter_map(|c| c.to_digit(10)).collect();
    let check = |body: &[u32], weights: &[u32]| {
        let sum: u32 = body.iter().zip(weights).map(|(a, w)| a * w).sum();
        let r = sum % 11;
        if r < 2 { 0 } else { 11 - r }
    };
    match (tipo, d.len()) {
        ("F", 11) => {
            let all_same = d.iter().all(|x| *x == d[0]);
            let w1: Vec<u32> = (2..=10).rev().collect();
            let w2: Vec<u32> = (2..=11).rev().collect();
            !all_same && check(&d[..9], &w1) == d[9] && check(&d[..10], &w2) == d[10]
        }
        ("J", 14) => {
            let w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
            let w2 = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
            check(&d[..12], &w1) == d[12] && check(&d[..13], &w2) == d[13]
        }
        _ => false,
    }
}

/// The field errors of a `POST /contatos` body.
fn check(body: &Map<String, Value>) -> Vec<Value> {
    let f = |code: i64, element: &str, msg: &str| field_in("CONTATOS", code, element, msg);
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::trim).unwrap_or_default();
    let mut fields = Vec::new();
    if text("nome").is_empty() {
        fields.push(f(1, "nome", "O nome do contato deve ser informado"));
    } else if text("nome").chars().count() > 120 {
        fields.push(f(2, "nome", "O nome do contato deve ter no máximo 120 caracteres"));
    }
    let tipo = text("tipo");
    if !["F", "J", "E"].contains(&tipo) {
        fields.push(f(3, "tipo", "O tipo da pessoa deve ser F (física), J (jurídica) ou E (estrangeira)"));
    }
    if !["A", "E", "I", "S"].contains(&text("situacao")) {
        fields.push(f(4, "situacao", "A situação do contato deve ser A, E, I ou S"));
    }
    let documento = text("numeroDocumento");
    if !documento.is_empty() && matches!(tipo, "F" | "J") && !valid_document(tipo, documento) {
        let msg = if tipo == "J" { "O CNPJ informado é inválido" } else { "O CPF informado é inválido" };
        fields.push(f(5, "numeroDocumento", msg));
    }
    let email = text("email");
    let plausible = email.contains('@') && email.rsplit('@').next().is_some_and(|d| d.contains('.'));
    if !email.is_empty() && !plausible {
        fields.push(f(6, "email", "O e-mail informado é inválido"));
    }
    if let Some(ie) = body.get("indicadorIe")
        && !matches!(ie.as_i64(), Some(1 | 2 | 9))
    {
        fields.push(f(7, "indicadorIe", "O indicador de inscrição estadual deve ser 1, 2 ou 9"));
    }
    match body.get("endereco") {
        None | Some(Value::Null) => {}
        Some(Value::Object(e)) => {
            for kind in ["geral", "cobranca"] {
                match e.get(kind) {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(a)) => fields.extend(check_address(kind, a)),
                    Some(_) => fields.push(f(8, &format!("endereco.{kind}"), "O endereço deve ser um objeto")),
                }
            }
        }
        Some(_) => fields.push(f(8, "endereco", "O endereço deve ser um objeto")),
    }
    fields
}

fn check_address(kind: &str, a: &Map<String, Value>) -> Vec<Value> {
    let mut fields = Vec::new();
    let at = |k: &str| format!("endereco.{kind}.{k}");
    for k in ["endereco", "cep", "bairro", "municipio", "uf", "numero", "complemento"] {
        if a.get(k).is_some_and(|v| !v.is_string() && !v.is_null()) {
            fields.push(field_in("CONTATOS", 9, &at(k), "O campo deve ser um texto"));
        }
    }
    let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::trim).unwrap_or_default();
    let uf = text("uf");
    let two_letters = uf.len() == 2 && uf.chars().all(|c| c.is_ascii_uppercase());
    if !uf.is_empty() && !two_letters {
        fields.push(field_in("CONTATOS", 10, &at("uf"), "A UF deve ter duas letras maiúsculas"));
    }
    let cep = text("cep");
    if !cep.is_empty() && (digits(cep).len() != 8 || cep.chars().any(|c| !c.is_ascii_digit() && c != '-' && c != '.')) {
        fields.push(field_in("CONTATOS", 11, &at("cep"), "O CEP deve ter 8 dígitos"));
    }
    fields
}

pub async fn create(State(b): State<Bling>, Body(mut body): Body) -> Answer {
    let fields = check(&body);
    if !fields.is_empty() {
        return Err(validation(fields));
    }
    // `id` is read-only: Bling ignores one sent.
    body.remove("id");
    body.retain(|k, _| !k.starts_with('_'));
    let id = b.seed_contact(Value::Object(body));
    Ok(data(StatusCode::CREATED, json!({"id": id})))
}

pub async fn get_one(State(b): State<Bling>, Ids(id): Ids<i64>) -> Answer {
    match b.inner.lock().contacts.get(&id) {
        Some(c) => Ok(data(StatusCode::OK, public(c))),
        None => Err(not_found("O contato não foi encontrado.")),
    }
}

pub async fn consumidor_final(State(b): State<Bling>) -> Answer {
    let inner = b.inner.lock();
    Ok(data(StatusCode::OK, inner.contacts.get(&CONSUMIDOR_FINAL).map(public).unwrap_or_default()))
}

/// The list fields of a contact.
fn summary(c: &Value) -> Value {
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    json!({"id": c["id"], "nome": c["nome"], "codigo": text("codigo"), "situacao": c["situacao"],
           "numeroDocumento": text("numeroDocumento"), "telefone": text("telefone"), "celular": text("celular")})
}

pub async fn list(State(b): State<Bling>, q: Params) -> Answer {
    // criterio: 1 all, 2 deleted, 3 (default) the most recently added first, 4 without movement.
    let criterio = q.choice("criterio", &[1, 2, 3, 4], 3)?;
    let ids = q.ints("idsContatos[]")?;
    let tipo_pessoa = q.int("tipoPessoa")?;
    let tipo = match tipo_pessoa {
        None => None,
        Some(1) => Some("F"),
        Some(2) => Some("J"),
        Some(3) => Some("E"),
        Some(_) => {
            return Err(validation(vec![field_in(
                "CONTATOS",
                1,
                "tipoPessoa",
                "O parâmetro tipoPessoa deve ser 1, 2 ou 3",
            )]));
        }
    };
    let documento = q.one("numeroDocumento").map(digits);
    let pesquisa = q.one("pesquisa").map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty());
    let inner = b.inner.lock();
    let mut found: Vec<&Value> = inner
        .contacts
        .values()
        .filter(|c| {
            let situacao = c["situacao"].as_str().unwrap_or("A");
            match criterio {
                2 => situacao == "E",
                4 => situacao == "S",
                _ => situacao != "E",
            }
        })
        .filter(|c| ids.is_empty() || c["id"].as_i64().is_some_and(|id| ids.contains(&id)))
        .filter(|c| tipo.is_none_or(|t| c["tipo"] == t))
        .filter(|c| documento.as_deref().is_none_or(|d| digits(c["numeroDocumento"].as_str().unwrap_or_default()) == d))
        .filter(|c| {
            pesquisa.as_deref().is_none_or(|p| {
                ["nome", "fantasia", "email", "codigo"]
                    .iter()
                    .any(|k| c[*k].as_str().is_some_and(|v| v.to_lowercase().contains(p)))
                    || digits(c["numeroDocumento"].as_str().unwrap_or_default()) == digits(p) && !digits(p).is_empty()
            })
        })
        .collect();
    if criterio == 3 {
        found.sort_by(|a, b| {
            b["_incluido"].as_str().cmp(&a["_incluido"].as_str()).then(b["id"].as_i64().cmp(&a["id"].as_i64()))
        });
    }
    let items = found.into_iter().map(summary).collect();
    Ok(data(StatusCode::OK, Value::Array(q.page(items)?)))
}
