//! The Bling sandbox behaves as the contract says, over real HTTP.

use std::time::Duration;

use ponte_sandbox::bling::{CONSUMIDOR_FINAL, Config, DEPOSITO_GERAL};
use serde_json::{Value, json};

use crate::support::BlingClient;

#[tokio::test]
async fn codes_are_single_use_and_reuse_revokes_the_grant() {
    let (h, c) = BlingClient::start(Config::default()).await;
    let url = format!("{}/oauth/authorize?response_type=code&client_id={}&state=x", c.base, c.cfg.client_id);
    let (code, _) = h.authorize(&url).await.unwrap();
    let (s, tokens) = c.token(&[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(s, 200);
    assert_eq!(tokens["expires_in"], 21600);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(c.get(&access, "/empresas/me/dados-basicos").await.0, 200);

    let (s, again) = c.token(&[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(s, 400);
    assert_eq!(again["error"]["type"], "VALIDATION_ERROR");
    // The grant is revoked: its token and refresh token stop working.
    assert_eq!(c.get(&access, "/empresas/me/dados-basicos").await.0, 401);
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(c.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 400);
}

#[tokio::test]
async fn codes_expire_after_a_minute_and_clients_authenticate_with_basic_only() {
    let (h, c) = BlingClient::start(Config::default()).await;
    let url = format!("{}/oauth/authorize?response_type=code&client_id={}&state=x", c.base, c.cfg.client_id);
    let (code, _) = h.authorize(&url).await.unwrap();
    let in_body = c
        .http
        .post(format!("{}/oauth/token", c.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", c.cfg.client_id.as_str()),
            ("client_secret", c.cfg.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(in_body.status(), 401);
    assert_eq!(in_body.json::<Value>().await.unwrap()["error"]["type"], "invalid_client");
    h.bling.advance(Duration::from_secs(61));
    let (s, body) = c.token(&[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!((s, body["error"]["type"].as_str()), (400, Some("invalid_grant")));

    h.bling.deny_next_authorization();
    assert_eq!(h.authorize(&url).await.unwrap_err(), "access_denied");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_access_tokens_expire() {
    let (h, c) = BlingClient::start(Config::default()).await;
    let first = c.connect(&h).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (s, second) = c.token(&[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(s, 200);
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    let (s, used) = c.token(&[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!((s, used["error"]["type"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(h.bling.stats().stale_refresh_tokens, 1);

    let access = second["access_token"].as_str().unwrap();
    h.bling.advance(Duration::from_secs(21_601));
    let (s, body, _) = c.get(access, "/empresas/me/dados-basicos").await;
    assert_eq!((s, body["error"]["description"].as_str()), (401, Some("The access token provided has expired")));
}

#[tokio::test]
async fn a_burst_gets_exactly_the_excess_rejected_with_the_documented_body() {
    let (h, c) = BlingClient::start(Config::default()).await;
    let token = c.connect(&h).await["access_token"].as_str().unwrap().to_owned();
    let calls = (0..10).map(|_| c.get(&token, "/empresas/me/dados-basicos"));
    let results = futures::future::join_all(calls).await;
    let limited: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(limited.len(), 7, "3 per second are allowed");
    let (_, body, retry_after) = limited[0];
    assert_eq!(body["error"]["type"], "TOO_MANY_REQUESTS");
    assert_eq!((body["error"]["limit"].as_i64(), body["error"]["period"].as_str()), (Some(3), Some("second")));
    assert!(!retry_after, "Bling sends no Retry-After");
    assert_eq!(h.bling.stats().rate_limited, 7);
}

#[tokio::test]
async fn the_token_endpoint_blocks_the_ip_after_twenty_calls_a_minute() {
    let (_h, c) = BlingClient::start(Config::default()).await;
    let mut statuses = Vec::new();
    for _ in 0..22 {
        statuses.push(c.token(&[("grant_type", "refresh_token"), ("refresh_token", "nope")]).await.0);
    }
    assert!(statuses[..20].iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(&statuses[20..], &[403, 403]);
}

#[tokio::test]
async fn orders_validate_parcelas_and_move_stock() {
    let cfg = Config { per_second: 1000, ..Config::default() };
    let (h, c) = BlingClient::start(cfg).await;
    let token = c.connect(&h).await["access_token"].as_str().unwrap().to_owned();
    let produto = h.bling.seed_product(json!({"nome": "Camiseta azul M", "codigo": "CAM-AZ-M", "preco": 59.9}));
    h.bling.set_stock(produto, DEPOSITO_GERAL, 10.into());
    let order = |parcela: f64| {
        json!({"contato": {"id": CONSUMIDOR_FINAL}, "data": "2026-03-02", "dataSaida": "2026-03-02", "dataPrevista": "2026-03-02",
               "numeroLoja": "V-1", "itens": [{"produto": {"id": produto}, "quantidade": 2, "valor": 59.9, "descricao": "Camiseta"}],
               "parcelas": [{"dataVencimento": "2026-03-02", "valor": parcela, "formaPagamento": {"id": 11010299}}]})
    };
    let (s, bad) = c.post(&token, "/pedidos/vendas", order(100.0)).await;
    assert_eq!(s, 400);
    assert_eq!(bad["error"]["fields"][0]["code"], 22);
    let (s, ok) = c.post(&token, "/pedidos/vendas", order(119.8)).await;
    assert_eq!(s, 201, "{ok}");
    let id = ok["data"]["id"].as_i64().unwrap();
    let (_, found, _) = c.get(&token, "/pedidos/vendas?numerosLojas[]=V-1").await;
    assert_eq!(found["data"][0]["id"].as_i64(), Some(id));
    assert_eq!(c.post(&token, &format!("/pedidos/vendas/{id}/lancar-estoque"), json!({})).await.0, 204);
    assert_eq!(h.bling.stock(produto, DEPOSITO_GERAL), 8.into());
    assert_eq!(c.post(&token, &format!("/pedidos/vendas/{id}/lancar-estoque"), json!({})).await.0, 400, "posted twice");
    assert_eq!(c.post(&token, &format!("/pedidos/vendas/{id}/estornar-estoque"), json!({})).await.0, 204);
    assert_eq!(h.bling.stock(produto, DEPOSITO_GERAL), 10.into());
}

#[tokio::test]
async fn default_filters_hide_what_the_contract_says_they_hide() {
    let cfg = Config { per_second: 1000, ..Config::default() };
    let (h, c) = BlingClient::start(cfg).await;
    let old = h.bling.seed_product(json!({"nome": "Antigo", "codigo": "A"}));
    h.bling.advance(Duration::from_secs(8 * 86_400));
    let token = c.connect(&h).await["access_token"].as_str().unwrap().to_owned();
    let new = h.bling.seed_product(json!({"nome": "Novo", "codigo": "N"}));
    let ids = |v: &Value| v["data"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&c.get(&token, "/produtos").await.1), [new], "criterio 1 shows only recent products");
    assert_eq!(ids(&c.get(&token, "/produtos?criterio=5").await.1), [old, new]);
    h.bling.set_stock(new, DEPOSITO_GERAL, 3.into());
    let q = format!("/estoques/saldos?idsProdutos[]={old}&idsProdutos[]={new}");
    let default = c.get(&token, &q).await.1;
    assert_eq!(default["data"].as_array().unwrap().len(), 1, "zero balances are hidden by default");
    let zero = c.get(&token, &format!("{q}&filtroSaldoEstoque=0")).await.1;
    assert_eq!(zero["data"][0]["produto"]["id"].as_i64(), Some(old));
}

#[tokio::test]
async fn formas_de_pagamento_and_situacoes_a_merchant_creates_are_listed_and_usable() {
    let cfg = Config { per_second: 1000, ..Config::default() };
    let (h, c) = BlingClient::start(cfg).await;
    let token = c.connect(&h).await["access_token"].as_str().unwrap().to_owned();
    let ids = |v: &Value| v["data"].as_array().unwrap().iter().map(|f| f["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let (s, refused) = c.post(&token, "/formas-pagamentos", json!({"descricao": "Vale", "tipoPagamento": 6})).await;
    assert_eq!(s, 400);
    let elements: Vec<&str> =
        refused["error"]["fields"].as_array().unwrap().iter().map(|f| f["element"].as_str().unwrap()).collect();
    assert_eq!(elements, ["tipoPagamento", "finalidade", "destino"]);
    let vale = json!({"descricao": "Vale-Troca", "tipoPagamento": 21, "finalidade": 3, "destino": 1});
    let (s, created) = c.post(&token, "/formas-pagamentos", vale).await;
    assert_eq!(s, 201, "{created}");
    let forma = created["data"]["id"].as_i64().unwrap();
    assert!(ids(&c.get(&token, "/formas-pagamentos").await.1).contains(&forma));
    let produto = h.bling.seed_product(json!({"nome": "Copo", "codigo": "COPO", "preco": 5}));
    let order = json!({"contato": {"id": CONSUMIDOR_FINAL}, "data": "2026-03-02", "dataSaida": "2026-03-02", "dataPrevista": "2026-03-02",
        "numeroLoja": "V-2", "itens": [{"produto": {"id": produto}, "quantidade": 1, "valor": 5, "descricao": "Copo"}],
        "parcelas": [{"dataVencimento": "2026-03-02", "valor": 5, "formaPagamento": {"id": forma}}]});
    assert_eq!(c.post(&token, "/pedidos/vendas", order).await.0, 201, "the new forma pays an order");

    let romaneio = json!({"idModuloSistema": 98310, "nome": "Em romaneio", "idHerdado": 15, "cor": "#1E90FF"});
    let (s, created) = c.post(&token, "/situacoes", romaneio).await;
    assert_eq!(s, 201, "{created}");
    let situacao = created["data"]["id"].as_i64().unwrap();
    let listed = c.get(&token, "/situacoes/modulos/98310").await.1;
    assert!(ids(&listed).contains(&situacao));
    let (s, _) = c.post(&token, "/situacoes", json!({"idModuloSistema": 98310, "nome": "X", "idHerdado": 7})).await;
    assert_eq!(s, 400, "it must inherit from a situação of the module");
    let (s, unknown) = c.post(&token, "/situacoes", json!({"idModuloSistema": 1, "nome": "X", "idHerdado": 15})).await;
    assert_eq!(s, 400, "POST /situacoes answers 201 or 400 only");
    assert_eq!(unknown["error"]["fields"][0]["element"], "idModuloSistema");
}
