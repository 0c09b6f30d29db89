//! Stock in the Bling sandbox, kept per depósito: an order's write-off lands on the depósito
//! asked for (or the default one), happens once, and is returned to the same depósito;
//! `POST /estoques` balances, adds and takes; balances show each depósito; and the admin state
//! shows every movement so a test can tell where a write-off landed and that it landed once.

use ponte_sandbox::bling::{CONSUMIDOR_FINAL, Config, DEPOSITO_GERAL, DEPOSITOS, FORMAS, Operacao};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::support::BlingClient;

const CENTRO: i64 = DEPOSITOS[1].0;

struct World {
    h: ponte_sandbox::bling::Handle,
    c: BlingClient,
    token: String,
    caneca: i64,
    prato: i64,
}

async fn world() -> World {
    let (h, c) = BlingClient::start(Config { per_second: 10_000, ..Config::default() }).await;
    let token = c.access_token(&h).await;
    let caneca = h.bling.seed_product(json!({"nome": "Caneca", "codigo": "CAN", "preco": 30}));
    let prato = h.bling.seed_product(json!({"nome": "Prato", "codigo": "PRA", "preco": 20}));
    for (p, d, n) in [(caneca, DEPOSITO_GERAL, 10), (caneca, CENTRO, 5), (prato, CENTRO, 8)] {
        h.bling.set_stock(p, d, n.into());
    }
    World { h, c, token, caneca, prato }
}

impl World {
    /// An order for 2 canecas and 3 pratos; its id.
    async fn order(&self) -> i64 {
        let body = json!({"contato": {"id": CONSUMIDOR_FINAL}, "data": "2026-03-02", "dataSaida": "2026-03-02",
            "dataPrevista": "2026-03-02",
            "itens": [{"produto": {"id": self.caneca}, "quantidade": 2, "valor": 30, "descricao": "Caneca"},
                      {"produto": {"id": self.prato}, "quantidade": 3, "valor": 20, "descricao": "Prato"}],
            "parcelas": [{"dataVencimento": "2026-03-02", "valor": 120, "formaPagamento": {"id": FORMAS[0].0}}]});
        let (status, created) = self.c.post(&self.token, "/pedidos/vendas", body).await;
        assert_eq!(status, 201, "{created}");
        created["data"]["id"].as_i64().unwrap()
    }

    async fn post(&self, path: &str) -> (u16, Value) {
        self.c.post(&self.token, path, json!({})).await
    }

    fn stock(&self, produto: i64, deposito: i64) -> Decimal {
        self.h.bling.stock(produto, deposito)
    }

    async fn state(&self) -> Value {
        reqwest::get(format!("http://{}/__admin/state", self.h.addr)).await.unwrap().json().await.unwrap()
    }
}

#[tokio::test]
async fn a_write_off_lands_on_the_deposito_asked_for_once_and_returns_there() {
    let w = world().await;
    let id = w.order().await;
    assert_eq!(w.post(&format!("/pedidos/vendas/{id}/lancar-estoque/{CENTRO}")).await.0, 204);
    assert_eq!((w.stock(w.caneca, CENTRO), w.stock(w.prato, CENTRO)), (3.into(), 5.into()));
    assert_eq!(w.stock(w.caneca, DEPOSITO_GERAL), 10.into(), "the general depósito is untouched");

    let (status, twice) = w.post(&format!("/pedidos/vendas/{id}/lancar-estoque/{CENTRO}")).await;
    assert_eq!((status, twice["error"]["fields"][0]["code"].as_i64()), (400, Some(60)));
    let (status, elsewhere) = w.post(&format!("/pedidos/vendas/{id}/lancar-estoque")).await;
    assert_eq!((status, elsewhere["error"]["fields"][0]["code"].as_i64()), (400, Some(60)), "once, wherever");
    assert_eq!(w.stock(w.caneca, CENTRO), 3.into());

    let state = w.state().await;
    let posting = state["postings"].as_array().unwrap().iter().find(|p| p["pedido"] == id).unwrap().clone();
    assert_eq!(posting, json!({"pedido": id, "estoqueLancado": true, "deposito": CENTRO, "contasLancadas": false}));
    let of_order = |state: &Value| -> Vec<(String, i64, i64, String)> {
        state["movements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["pedido"] == id)
            .map(|m| {
                let t = |k: &str| m[k].as_str().unwrap().to_owned();
                (t("operacao"), m["produto"].as_i64().unwrap(), m["deposito"].as_i64().unwrap(), t("quantidade"))
            })
            .collect()
    };
    assert_eq!(
        of_order(&state),
        [("S".into(), w.caneca, CENTRO, "2".into()), ("S".into(), w.prato, CENTRO, "3".into())],
        "one write-off per item, on the centro"
    );

    assert_eq!(w.post(&format!("/pedidos/vendas/{id}/estornar-estoque")).await.0, 204);
    assert_eq!((w.stock(w.caneca, CENTRO), w.stock(w.prato, CENTRO)), (5.into(), 8.into()), "returned where taken");
    assert_eq!(w.post(&format!("/pedidos/vendas/{id}/estornar-estoque")).await.0, 204, "nothing left to return");
    assert_eq!(w.stock(w.caneca, CENTRO), 5.into());
    assert_eq!(of_order(&w.state().await).len(), 4, "two out, two back, nothing more");
    let movements = w.h.bling.movements();
    assert_eq!(movements.iter().filter(|m| m.pedido == Some(id) && m.operacao == Operacao::Entrada).count(), 2);

    // Without a depósito, the default one; an unknown depósito is no depósito.
    assert_eq!(w.post(&format!("/pedidos/vendas/{id}/lancar-estoque")).await.0, 204);
    assert_eq!(w.stock(w.caneca, DEPOSITO_GERAL), 8.into());
    let other = w.order().await;
    let (status, unknown) = w.post(&format!("/pedidos/vendas/{other}/lancar-estoque/123")).await;
    assert_eq!((status, unknown["error"]["type"].as_str()), (404, Some("RESOURCE_NOT_FOUND")));
    assert_eq!(w.post("/pedidos/vendas/1/lancar-estoque").await.0, 404);
}

#[tokio::test]
async fn deleting_an_order_returns_its_stock_and_posted_contas_must_be_reversed_first() {
    let w = world().await;
    let id = w.order().await;
    w.post(&format!("/pedidos/vendas/{id}/lancar-estoque/{CENTRO}")).await;
    assert_eq!(w.post(&format!("/pedidos/vendas/{id}/lancar-contas")).await.0, 204);
    let path = format!("/pedidos/vendas/{id}");
    let (status, refused) = w.c.send(&w.token, reqwest::Method::DELETE, &path, None).await;
    assert_eq!((status, refused["error"]["fields"][0]["element"].as_str()), (400, Some("contas")));
    assert_eq!(w.post(&format!("/pedidos/vendas/{id}/estornar-contas")).await.0, 204);
    assert_eq!(w.c.send(&w.token, reqwest::Method::DELETE, &path, None).await.0, 204);
    assert_eq!(w.stock(w.caneca, CENTRO), 5.into(), "the write-off came back");
    assert!(w.h.bling.order(id).is_none());
}

#[tokio::test]
async fn post_estoques_balances_adds_and_takes_on_a_deposito() {
    let w = world().await;
    let movement = |operacao: &str, quantidade: f64| {
        json!({"produto": {"id": w.prato}, "deposito": {"id": DEPOSITO_GERAL}, "operacao": operacao,
               "quantidade": quantidade, "custo": 9.5, "observacoes": "inventário"})
    };
    let (status, created) = w.c.post(&w.token, "/estoques", movement("B", 12.0)).await;
    assert_eq!(status, 201, "{created}");
    let first = created["data"]["id"].as_i64().unwrap();
    w.c.post(&w.token, "/estoques", movement("E", 3.5)).await;
    w.c.post(&w.token, "/estoques", movement("S", 1.5)).await;
    assert_eq!(w.stock(w.prato, DEPOSITO_GERAL), 14.into());
    assert_eq!(w.stock(w.prato, CENTRO), 8.into(), "the other depósito is untouched");
    assert!(w.h.bling.movements().iter().any(|m| m.id == first && m.operacao == Operacao::Balanco));

    let (status, refused) =
        w.c.post(
            &w.token,
            "/estoques",
            json!({"produto": {"id": 1}, "deposito": {"id": 2}, "operacao": "X", "quantidade": -1}),
        )
        .await;
    assert_eq!(status, 400);
    let elements: Vec<&str> =
        refused["error"]["fields"].as_array().unwrap().iter().map(|f| f["element"].as_str().unwrap()).collect();
    assert_eq!(elements, ["produto", "deposito", "operacao", "quantidade"]);
    assert_eq!(w.stock(w.prato, DEPOSITO_GERAL), 14.into(), "nothing refused moved stock");
}

#[tokio::test]
async fn balances_show_each_deposito() {
    let w = world().await;
    let (_, all, _) = w.c.get(&w.token, &format!("/estoques/saldos?idsProdutos[]={}", w.caneca)).await;
    let item = &all["data"][0];
    assert_eq!(item["saldoFisicoTotal"], json!(15));
    assert_eq!(
        item["depositos"],
        json!([{"id": DEPOSITO_GERAL, "saldoFisico": 10, "saldoVirtual": 10},
                                         {"id": CENTRO, "saldoFisico": 5, "saldoVirtual": 5}])
    );
    let (_, centro, _) = w.c.get(&w.token, &format!("/estoques/saldos/{CENTRO}?idsProdutos[]={}", w.prato)).await;
    assert_eq!(
        centro["data"],
        json!([{"produto": {"id": w.prato, "codigo": "PRA"}, "saldoFisicoTotal": 8, "saldoVirtualTotal": 8}])
    );
    let (_, geral, _) =
        w.c.get(&w.token, &format!("/estoques/saldos/{DEPOSITO_GERAL}?idsProdutos[]={}", w.prato)).await;
    assert_eq!(geral["data"], json!([]), "no positive balance there: hidden by the default filter");
    let (_, zero, _) =
        w.c.get(&w.token, &format!("/estoques/saldos/{DEPOSITO_GERAL}?idsProdutos[]={}&filtroSaldoEstoque=0", w.prato))
            .await;
    assert_eq!(zero["data"][0]["produto"]["id"], w.prato);
}
