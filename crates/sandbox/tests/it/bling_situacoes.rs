//! Situações in the Bling sandbox: the Vendas module's defaults, custom situações that inherit
//! a default of their own module under a name unique in it, each read by id, and the module's
//! transitions and actions.

use ponte_sandbox::bling::{CONSUMIDOR_FINAL, Config, MODULO_COMPRAS, MODULO_VENDAS, SITUACOES_VENDAS};
use serde_json::{Value, json};

use crate::support::BlingClient;

#[tokio::test]
async fn custom_situacoes_inherit_a_default_of_their_module_under_a_name_unique_in_it() {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    let create = |body: Value| c.post(&token, "/situacoes", body);
    let romaneio = json!({"idModuloSistema": MODULO_VENDAS, "nome": "Em romaneio", "idHerdado": 15, "cor": "#1E90FF"});
    let (status, created) = create(romaneio.clone()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let (_, read, _) = c.get(&token, &format!("/situacoes/{id}")).await;
    assert_eq!(read["data"], json!({"id": id, "nome": "Em romaneio", "idHerdado": 15, "cor": "#1E90FF"}));

    let element = |v: &Value| v["error"]["fields"][0]["element"].as_str().unwrap().to_owned();
    for (body, field) in [
        (romaneio.clone(), "nome"),
        (json!({"idModuloSistema": MODULO_VENDAS, "nome": "EM ROMANEIO ", "idHerdado": 15}), "nome"),
        (json!({"idModuloSistema": MODULO_VENDAS, "nome": "Em rota", "idHerdado": id}), "idHerdado"),
        (json!({"idModuloSistema": MODULO_VENDAS, "nome": "Em rota", "idHerdado": 37}), "idHerdado"),
        (json!({"idModuloSistema": MODULO_VENDAS, "nome": "Em rota", "idHerdado": 15, "cor": "azul"}), "cor"),
        (json!({"idModuloSistema": 1, "nome": "Em rota", "idHerdado": 15}), "idModuloSistema"),
    ] {
        let (status, refused) = create(body.clone()).await;
        assert_eq!((status, element(&refused)), (400, field.to_owned()), "{body}");
    }
    let in_compras = json!({"idModuloSistema": MODULO_COMPRAS, "nome": "Em romaneio", "idHerdado": 37});
    assert_eq!(create(in_compras).await.0, 201, "names are unique per module");

    let (_, vendas, _) = c.get(&token, &format!("/situacoes/modulos/{MODULO_VENDAS}")).await;
    let listed: Vec<i64> = vendas["data"].as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    let mut expected: Vec<i64> = SITUACOES_VENDAS.iter().map(|s| s.0).collect();
    expected.push(id);
    assert_eq!(listed, expected, "the defaults, then the merchant's own; not Compras'");

    // An order moved to it takes the normalized valor of the situação it inherits.
    let produto = h.bling.seed_product(json!({"nome": "Copo", "codigo": "COPO", "preco": 5}));
    let order = json!({"contato": {"id": CONSUMIDOR_FINAL}, "data": "2026-03-02", "dataSaida": "2026-03-02",
        "dataPrevista": "2026-03-02", "itens": [{"produto": {"id": produto}, "quantidade": 1, "valor": 5}]});
    let pedido = c.post(&token, "/pedidos/vendas", order).await.1["data"]["id"].as_i64().unwrap();
    let mut moves = h.bling.situacao_moves();
    let before = std::time::Instant::now();
    let patch = c.send(&token, reqwest::Method::PATCH, &format!("/pedidos/vendas/{pedido}/situacoes/{id}"), None).await;
    assert_eq!(patch.0, 204);
    assert_eq!(h.bling.order(pedido).unwrap()["situacao"], json!({"id": id, "valor": 3}));
    // Each move is reported as it is applied; moving to the situação it is in is none.
    let again = c.send(&token, reqwest::Method::PATCH, &format!("/pedidos/vendas/{pedido}/situacoes/{id}"), None).await;
    assert_eq!(again.0, 204);
    let moved = moves.try_recv().unwrap();
    assert_eq!((moved.pedido, moved.situacao), (pedido, id));
    assert!(moved.at >= before);
    assert!(moves.try_recv().is_err(), "no move for a situação the order is in");
}

#[tokio::test]
async fn the_vendas_module_lists_its_transitions_and_actions() {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    let (_, modulos, _) = c.get(&token, "/situacoes/modulos").await;
    assert_eq!(
        modulos["data"][0],
        json!({"id": MODULO_VENDAS, "nome": "Vendas", "descricao": "Pedidos de Venda", "criarSituacoes": true})
    );
    let (_, transicoes, _) = c.get(&token, &format!("/situacoes/modulos/{MODULO_VENDAS}/transicoes")).await;
    let first = &transicoes["data"][0];
    assert_eq!(first["situacaoOrigem"], json!({"id": 6, "nome": "Em aberto"}));
    assert_eq!(first["situacaoDestino"], json!({"id": 15, "nome": "Em andamento"}));
    assert_eq!(
        (first["ativo"].as_bool(), first["acoes"].clone()),
        (Some(true), json!([])),
        "no stock moves on a change"
    );
    let (_, acoes, _) = c.get(&token, &format!("/situacoes/modulos/{MODULO_VENDAS}/acoes")).await;
    assert!(acoes["data"].as_array().unwrap().iter().any(|a| a["nome"] == "estornarEstoque"));
    assert_eq!(c.get(&token, "/situacoes/modulos/1/transicoes").await.0, 404);
}

#[tokio::test]
async fn transitions_are_created_between_two_situacoes_of_the_vendas_module_once() {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    let romaneio = json!({"idModuloSistema": MODULO_VENDAS, "nome": "Em romaneio", "idHerdado": 15});
    let id = c.post(&token, "/situacoes", romaneio).await.1["data"]["id"].as_i64().unwrap();
    let create = |origem: i64, destino: i64| {
        c.post(
            &token,
            "/situacoes/transicoes",
            json!({"situacaoOrigem": {"id": origem}, "situacaoDestino": {"id": destino}}),
        )
    };
    let (status, created) = create(15, id).await;
    assert_eq!(status, 201, "{created}");
    let new_id = created["data"]["id"].as_i64().unwrap();
    let element = |v: &Value| v["error"]["fields"][0]["element"].as_str().unwrap().to_owned();
    for (origem, destino, field) in [
        (15, id, "situacaoDestino"),
        (15, 15, "situacaoDestino"),
        (28, id, "situacaoOrigem"),
        (15, 999, "situacaoDestino"),
    ] {
        let (status, refused) = create(origem, destino).await;
        assert_eq!((status, element(&refused)), (400, field.to_owned()), "{origem} → {destino}: {refused}");
    }
    let (_, transicoes, _) = c.get(&token, &format!("/situacoes/modulos/{MODULO_VENDAS}/transicoes")).await;
    let last = transicoes["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["id"], new_id);
    assert_eq!(last["situacaoDestino"], json!({"id": id, "nome": "Em romaneio"}));
}
