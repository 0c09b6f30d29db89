//! Sales orders in the Bling sandbox as a client written against Bling meets them: every field
//! Bling checks is refused by name, the contact and delivery data come back as stored, PUT
//! replaces the whole order, orders are found by `numeroLoja`, situações change within the
//! Vendas module only, and every change is echoed as a signed `order.*` webhook.

use ponte_sandbox::bling::{CANAIS, Config, FORMAS, MODULO_COMPRAS};
use serde_json::{Value, json};

use crate::support::{BlingClient, Receiver, expected_signature};

/// A sandbox with lenient limits, a product, a contact with an address, and a token.
struct World {
    h: ponte_sandbox::bling::Handle,
    c: BlingClient,
    token: String,
    produto: i64,
    contato: i64,
}

async fn world(cfg: Config) -> World {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..cfg }).await;
    let token = c.access_token(&h).await;
    let produto = h.bling.seed_product(json!({"nome": "Camiseta azul M", "codigo": "CAM-AZ-M", "preco": 59.9}));
    let contato = h.bling.seed_contact(json!({"nome": "Maria Silva", "tipo": "F", "numeroDocumento": "123.456.789-09",
        "email": "maria@example.com", "celular": "(11) 99999-0000",
        "endereco": {"geral": {"endereco": "Rua Direita", "numero": "10", "bairro": "Sé", "municipio": "São Paulo",
                               "uf": "SP", "cep": "01001-000"}}}));
    World { h, c, token, produto, contato }
}

impl World {
    /// A complete order: two items, freight, one parcela paying it all.
    fn order(&self, numero_loja: &str) -> Value {
        json!({"contato": {"id": self.contato}, "data": "2026-03-02", "dataSaida": "2026-03-02",
            "dataPrevista": "2026-03-06", "numeroLoja": numero_loja, "loja": {"id": CANAIS[0].0},
            "itens": [{"produto": {"id": self.produto}, "codigo": "CAM-AZ-M", "quantidade": 2, "valor": 59.9,
                       "descricao": "Camiseta azul M"}],
            "transporte": {"fretePorConta": 0, "frete": 15.5,
                "etiqueta": {"nome": "Maria Silva", "endereco": "Rua Direita", "numero": "10", "complemento": "ap 12",
                             "municipio": "São Paulo", "uf": "SP", "cep": "01001-000", "bairro": "Sé"}},
            "parcelas": [{"dataVencimento": "2026-03-02", "valor": 135.3, "formaPagamento": {"id": FORMAS[1].0}}]})
    }

    async fn post(&self, body: Value) -> (u16, Value) {
        self.c.post(&self.token, "/pedidos/vendas", body).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body, _) = self.c.get(&self.token, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.c.send(&self.token, method, path, body).await
    }
}

/// The `element` of each entry of a refusal's `error.fields`.
fn elements(refusal: &Value) -> Vec<String> {
    refusal["error"]["fields"].as_array().unwrap().iter().map(|f| f["element"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_order_is_refused_naming_each_field_bling_checks() {
    let w = world(Config::default()).await;
    let mut no_dates = w.order("V-1");
    for k in ["data", "dataSaida", "dataPrevista"] {
        no_dates.as_object_mut().unwrap().remove(k);
    }
    let (status, refused) = w.post(no_dates).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["type"], "VALIDATION_ERROR");
    assert_eq!(elements(&refused), ["data", "dataSaida", "dataPrevista"]);

    let mut bad = w.order("V-1");
    bad["contato"]["id"] = json!(1);
    bad["dataPrevista"] = json!("06/03/2026");
    bad["itens"][0]["produto"]["id"] = json!(2);
    bad["loja"]["id"] = json!(203);
    bad["transporte"]["fretePorConta"] = json!(7);
    bad["parcelas"][0]["formaPagamento"]["id"] = json!(3);
    let (status, refused) = w.post(bad).await;
    assert_eq!(status, 400);
    assert_eq!(
        elements(&refused),
        ["contato", "dataPrevista", "produto", "transporte.fretePorConta", "loja", "parcelas"]
    );
    let codes: Vec<i64> =
        refused["error"]["fields"].as_array().unwrap().iter().map(|f| f["code"].as_i64().unwrap()).collect();
    assert_eq!(codes, [37, 32, 42, 46, 50, 49]);
    let parcela = &refused["error"]["fields"][5]["collection"][0];
    assert_eq!((parcela["index"].as_i64(), parcela["code"].as_i64()), (Some(1), Some(12)));
    assert_eq!(parcela["element"], "formaPagamento");
    assert!(w.h.bling.orders().is_empty(), "nothing refused is stored");

    let mut short = w.order("V-1");
    short["parcelas"][0]["valor"] = json!(119.8);
    let (status, refused) = w.post(short).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["fields"][0]["code"], 22, "the freight is part of the total: {refused}");
}

#[tokio::test]
async fn an_order_keeps_its_contact_and_delivery_data_as_sent() {
    let w = world(Config::default()).await;
    let (status, created) = w.post(w.order("V-1")).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["data"].get("numero").is_none(), "Bling answers a create without numero");
    let id = created["data"]["id"].as_i64().unwrap();
    let order = w.get(&format!("/pedidos/vendas/{id}")).await["data"].clone();
    assert_eq!(
        order["contato"],
        json!({"id": w.contato, "nome": "Maria Silva", "tipoPessoa": "F", "numeroDocumento": "123.456.789-09"})
    );
    assert_eq!(order["transporte"], w.order("V-1")["transporte"], "the delivery data as sent");
    assert_eq!((order["totalProdutos"].as_f64(), order["total"].as_f64()), (Some(119.8), Some(135.3)));
    assert_eq!(order["situacao"], json!({"id": 6, "valor": 0}));
    assert_eq!(order["numero"], 1);
    assert!(order["itens"][0]["id"].is_i64() && order["parcelas"][0]["id"].is_i64(), "stored lines get ids");
    let contact = w.get(&format!("/contatos/{}", w.contato)).await["data"].clone();
    assert_eq!(contact["endereco"]["geral"]["cep"], "01001-000", "the contact's address is there to ship to");
}

#[tokio::test]
async fn an_order_is_created_in_the_vendas_situacao_its_body_names() {
    let w = world(Config::default()).await;
    let mut atendido = w.order("V-1");
    atendido["situacao"] = json!({"id": 9});
    let id = w.post(atendido).await.1["data"]["id"].as_i64().unwrap();
    let order = w.get(&format!("/pedidos/vendas/{id}")).await["data"].clone();
    assert_eq!(order["situacao"], json!({"id": 9, "valor": 1}));
    let mut compras = w.order("V-2");
    compras["situacao"] = json!({"id": 28});
    let (status, refused) = w.post(compras).await;
    assert_eq!((status, refused["error"]["fields"][0]["element"].as_str()), (400, Some("situacao")));
    assert_eq!(w.h.bling.orders().len(), 1, "the refused order is not stored");
}

#[tokio::test]
async fn put_replaces_the_whole_order_and_refuses_an_unchanged_one_or_stale_ids() {
    let w = world(Config::default()).await;
    let id = w.post(w.order("V-1")).await.1["data"]["id"].as_i64().unwrap();
    let path = format!("/pedidos/vendas/{id}");
    w.send(reqwest::Method::PATCH, &format!("{path}/situacoes/15"), None).await;
    let stored = w.get(&path).await["data"].clone();

    let (status, _) = w.send(reqwest::Method::PUT, &path, Some(&stored)).await;
    assert_eq!(status, 400, "an unchanged order");
    let (_, unchanged) = w.send(reqwest::Method::PUT, &path, Some(&stored)).await;
    assert_eq!(unchanged["error"]["fields"][0]["code"], 3);

    let mut stale = stored.clone();
    stale["itens"][0]["id"] = json!(1);
    stale["parcelas"][0]["id"] = json!(2);
    let (status, refused) = w.send(reqwest::Method::PUT, &path, Some(&stale)).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["fields"][0]["code"], 43, "{refused}");
    assert_eq!(refused["error"]["fields"][1]["collection"][0]["code"], 15);

    // Without `transporte`, the order has none any more; the parcela follows the new total.
    let mut replaced = w.order("V-1");
    replaced.as_object_mut().unwrap().remove("transporte");
    replaced["parcelas"][0]["valor"] = json!(119.8);
    replaced["observacoes"] = json!("sem frete");
    let (status, answer) = w.send(reqwest::Method::PUT, &path, Some(&replaced)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["id"], id);
    let now = w.get(&path).await["data"].clone();
    assert!(now.get("transporte").is_none(), "an omitted block is wiped: {now}");
    assert_eq!((now["total"].as_f64(), now["observacoes"].as_str()), (Some(119.8), Some("sem frete")));
    assert_eq!((now["numero"].clone(), now["situacao"]["id"].clone()), (json!(1), json!(15)), "kept by a PUT");
    assert_ne!(now["itens"][0]["id"], stored["itens"][0]["id"], "lines sent without ids are new lines");
    assert_eq!(w.send(reqwest::Method::PUT, "/pedidos/vendas/1", Some(&replaced)).await.0, 404);
}

#[tokio::test]
async fn orders_are_found_by_their_numero_loja_and_filters_are_checked() {
    let w = world(Config::default()).await;
    let mut ids = Vec::new();
    for n in ["V-1", "V-2", "V-3"] {
        ids.push(w.post(w.order(n)).await.1["data"]["id"].as_i64().unwrap());
    }
    let found = |v: &Value| v["data"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(found(&w.get("/pedidos/vendas?numerosLojas[]=V-2").await), [ids[1]]);
    assert_eq!(found(&w.get("/pedidos/vendas?numerosLojas[]=V-1&numerosLojas[]=V-3").await), [ids[0], ids[2]]);
    assert_eq!(found(&w.get("/pedidos/vendas?numerosLojas[]=V-9").await), Vec::<i64>::new());
    let listed = w.get("/pedidos/vendas?numerosLojas[]=V-2").await["data"][0].clone();
    assert_eq!((listed["numeroLoja"].as_str(), listed["totalProdutos"].as_f64()), (Some("V-2"), Some(119.8)));
    assert_eq!(found(&w.get(&format!("/pedidos/vendas?idContato={}&numero=3", w.contato)).await), [ids[2]]);
    for bad in ["/pedidos/vendas?idContato=maria", "/pedidos/vendas?dataInicial=2025-01-01&dataFinal=2026-03-02"] {
        let (status, body, _) = w.c.get(&w.token, bad).await;
        assert_eq!((status, body["error"]["type"].as_str()), (400, Some("VALIDATION_ERROR")), "{bad}");
    }
}

#[tokio::test]
async fn situacoes_change_within_vendas_and_every_change_is_echoed_as_a_signed_webhook() {
    let rx = Receiver::start(0).await;
    let w = world(Config { webhook_url: Some(rx.url.clone()), ..Config::default() }).await;
    // Each step waits for its webhook, so that they are seen in the order they were sent.
    let id = w.post(w.order("V-1")).await.1["data"]["id"].as_i64().unwrap();
    rx.wait_for(1).await;
    let path = format!("/pedidos/vendas/{id}");
    assert_eq!(w.send(reqwest::Method::PATCH, &format!("{path}/situacoes/15"), None).await.0, 204);
    rx.wait_for(2).await;
    assert_eq!(w.send(reqwest::Method::PATCH, &format!("{path}/situacoes/15"), None).await.0, 204, "no change");
    // 28 is a situação of the Compras module: it exists, but not for a sales order.
    assert!(w.get(&format!("/situacoes/modulos/{MODULO_COMPRAS}")).await["data"][0]["id"] == 28);
    let (status, other_module) = w.send(reqwest::Method::PATCH, &format!("{path}/situacoes/28"), None).await;
    assert_eq!((status, other_module["error"]["fields"][0]["element"].as_str()), (400, Some("situacao")));
    assert_eq!(w.send(reqwest::Method::PATCH, &format!("{path}/situacoes/999"), None).await.0, 404);
    assert_eq!(w.send(reqwest::Method::PATCH, "/pedidos/vendas/1/situacoes/9", None).await.0, 404);
    let mut edited = w.order("V-1");
    edited["observacoes"] = json!("presente");
    assert_eq!(w.send(reqwest::Method::PUT, &path, Some(&edited)).await.0, 200);
    rx.wait_for(3).await;
    assert_eq!(w.send(reqwest::Method::DELETE, &path, None).await.0, 204);

    let seen = rx.wait_for(4).await;
    let events: Vec<(String, Value)> = seen
        .iter()
        .map(|hook| {
            let secret = &w.c.cfg.client_secret;
            assert_eq!(hook.header("x-bling-signature-256"), expected_signature(secret, &hook.body));
            let v = hook.json();
            (v["event"].as_str().unwrap().to_owned(), v["data"].clone())
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["order.created", "order.updated", "order.updated", "order.deleted"], "one each, in order");
    assert_eq!(events[0].1["numeroLoja"], "V-1");
    assert_eq!(events[1].1["situacao"], json!({"id": 15, "valor": 3}));
    assert_eq!(events[2].1["situacao"]["id"], 15, "a PUT keeps the situação");
    assert_eq!(events[3].1, json!({"id": id}));
    assert_eq!(w.h.bling.stats().webhooks_delivered, 4);
    assert_eq!(w.send(reqwest::Method::GET, &path, None).await.0, 404, "deleted");
}
