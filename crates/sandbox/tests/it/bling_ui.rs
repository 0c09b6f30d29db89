//! What a merchant does in Bling's UI, through the sandbox's admin routes: a product added
//! (`POST /__admin/products`, with its stock on the Depósito Geral) sends `product.created`, a
//! change (`PATCH /__admin/products/{id}`) sends `product.updated`; the API then shows both; a
//! form Bling would refuse is refused naming each field, and nothing is sent.

use std::time::Duration;

use ponte_sandbox::bling::{Bling, Config, DEPOSITO_GERAL};
use serde_json::json;

use crate::support::{Receiver, call, eventually, get_json, post_json};

#[tokio::test]
async fn products_added_and_changed_in_the_ui_send_their_webhooks() {
    let r = Receiver::start(0).await;
    let cfg =
        Config { webhook_url: Some(r.url.clone()), webhook_backoff: Duration::from_millis(20), ..Config::default() };
    let h = Bling::new(cfg).spawn(None).await.unwrap();
    let admin = format!("http://{}/__admin/products", h.addr);

    let (status, made) =
        post_json(&admin, &json!({"nome": "Caneca", "codigo": "CAN-1", "preco": "39.90", "estoque": 15})).await;
    assert_eq!(status, 201, "{made}");
    let id = made["data"]["id"].as_i64().unwrap();
    assert_eq!((made["data"]["codigo"].as_str(), made["data"]["estoque"].as_str()), (Some("CAN-1"), Some("15")));
    let hooks = r.wait_for(1).await;
    let created = hooks[0].json();
    assert_eq!((created["event"].as_str(), created["data"]["id"].as_i64()), (Some("product.created"), Some(id)));
    assert_eq!(created["data"]["preco"], 39.9);
    assert_eq!(h.bling.product(id).unwrap()["nome"], "Caneca");

    let (status, changed) =
        call(reqwest::Method::PATCH, &format!("{admin}/{id}"), None, Some(&json!({"preco": 42, "estoque": "12"})))
            .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["data"]["estoque"], "12");
    let hooks = r.wait_for(2).await;
    let updated = hooks[1].json();
    assert_eq!((updated["event"].as_str(), updated["data"]["preco"].as_f64()), (Some("product.updated"), Some(42.0)));
    let (_, state) = get_json(&format!("http://{}/__admin/state", h.addr)).await;
    let stock = state["stock"].as_array().unwrap().iter().find(|s| s["produto"] == id).cloned().unwrap();
    assert_eq!((stock["deposito"].as_i64(), stock["saldo"].as_str()), (Some(DEPOSITO_GERAL), Some("12")));

    // Refusals name each field, as Bling's form does; nothing more is sent.
    let (status, refused) = post_json(&admin, &json!({"nome": " ", "codigo": "CAN-2", "preco": -1})).await;
    assert_eq!(status, 400, "{refused}");
    let fields: Vec<&str> =
        refused["error"]["fields"].as_array().unwrap().iter().filter_map(|f| f["element"].as_str()).collect();
    assert_eq!(fields, ["nome", "preco"]);
    let (status, taken) = post_json(&admin, &json!({"nome": "Outra", "codigo": "CAN-1", "preco": 1})).await;
    assert_eq!(status, 400);
    assert!(taken["error"]["fields"][0]["msg"].as_str().unwrap().contains("CAN-1"), "{taken}");
    let (status, _) = call(reqwest::Method::PATCH, &format!("{admin}/999"), None, Some(&json!({"preco": 1}))).await;
    assert_eq!(status, 404);
    let (status, _) =
        call(reqwest::Method::PATCH, &format!("{admin}/{id}"), None, Some(&json!({"situacao": "X"}))).await;
    assert_eq!(status, 400);
    tokio::time::sleep(Duration::from_millis(200)).await;
    eventually(|| r.seen().len() == 2).await;
}
