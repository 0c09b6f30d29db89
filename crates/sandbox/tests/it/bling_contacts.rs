//! Contacts in the Bling sandbox: created with the fields Bling requires and a valid CPF or
//! CNPJ, found by document whatever its punctuation, read with their address, and the
//! consumidor final among them.

use ponte_sandbox::bling::{CONSUMIDOR_FINAL, Config};
use serde_json::{Value, json};

use crate::support::BlingClient;

#[tokio::test]
async fn contacts_are_created_and_found_by_document_without_punctuation() {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    let maria = json!({"nome": "Maria Silva", "tipo": "F", "situacao": "A", "numeroDocumento": "123.456.789-09",
        "email": "maria@example.com", "celular": "(11) 99999-0000", "codigo": "C-1",
        "endereco": {"geral": {"endereco": "Rua Direita", "numero": "10", "complemento": "ap 12", "bairro": "Sé",
                               "municipio": "São Paulo", "uf": "SP", "cep": "01001-000"}}});
    let (status, created) = c.post(&token, "/contatos", maria.clone()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let loja = json!({"nome": "Loja Exemplo LTDA", "tipo": "J", "situacao": "A", "numeroDocumento": "11222333000181"});
    assert_eq!(c.post(&token, "/contatos", loja).await.0, 201, "a valid CNPJ");

    let ids = |v: &Value| v["data"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&c.get(&token, "/contatos?numeroDocumento=12345678909").await.1), [id]);
    assert_eq!(ids(&c.get(&token, "/contatos?numeroDocumento=123.456.789-09").await.1), [id]);
    assert_eq!(ids(&c.get(&token, "/contatos?numeroDocumento=98765432100").await.1), Vec::<i64>::new());
    let listed = c.get(&token, "/contatos?pesquisa=maria").await.1["data"][0].clone();
    assert_eq!(
        listed,
        json!({"id": id, "nome": "Maria Silva", "codigo": "C-1", "situacao": "A", "numeroDocumento": "123.456.789-09",
               "telefone": "", "celular": "(11) 99999-0000"})
    );
    let (status, read, _) = c.get(&token, &format!("/contatos/{id}")).await;
    assert_eq!(status, 200);
    let mut expected = maria;
    expected["id"] = json!(id);
    assert_eq!(read["data"], expected, "everything sent comes back, address included");
    assert_eq!(c.get(&token, "/contatos/1").await.0, 404);
    assert_eq!(h.bling.contacts().len(), 3, "the consumidor final and the two created");
}

#[tokio::test]
async fn a_contact_is_refused_naming_each_field_at_fault() {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    let elements = |v: &Value| {
        v["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["element"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (status, refused) = c.post(&token, "/contatos", json!({"numeroDocumento": "123"})).await;
    assert_eq!(status, 400);
    assert_eq!(elements(&refused), ["nome", "tipo", "situacao"]);
    let bad = json!({"nome": "X", "tipo": "F", "situacao": "A", "numeroDocumento": "123.456.789-00", "email": "x@",
        "endereco": {"geral": {"uf": "sp", "cep": "0100"}}});
    let (status, refused) = c.post(&token, "/contatos", bad).await;
    assert_eq!(status, 400);
    assert_eq!(elements(&refused), ["numeroDocumento", "email", "endereco.geral.uf", "endereco.geral.cep"]);
    assert_eq!(refused["error"]["fields"][0]["msg"], "O CPF informado é inválido");
    let cnpj_as_person = json!({"nome": "X", "tipo": "F", "situacao": "A", "numeroDocumento": "11222333000181"});
    assert_eq!(c.post(&token, "/contatos", cnpj_as_person).await.0, 400, "a CNPJ is not a person's document");
    assert_eq!(h.bling.contacts().len(), 1, "only the consumidor final");
}

#[tokio::test]
async fn the_consumidor_final_is_a_contact_orders_can_name() {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    let (_, cf, _) = c.get(&token, "/contatos/consumidor-final").await;
    assert_eq!(cf["data"]["id"], CONSUMIDOR_FINAL);
    let (_, by_id, _) = c.get(&token, &format!("/contatos/{CONSUMIDOR_FINAL}")).await;
    assert_eq!(by_id["data"], cf["data"]);
}
