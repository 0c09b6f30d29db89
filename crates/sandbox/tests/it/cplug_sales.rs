//! Sales rung up at the CPLUG till become signed webhooks: `sale.completed` and
//! `sale.cancelled`, `X-Cplug-Signature: sha256=<hex HMAC-SHA256(tenant secret, raw body)>`,
//! amounts with two decimals, retried with the same `event_id` until answered 2xx.

use std::time::Duration;

use ponte_sandbox::cplug::{self, Config};
use serde_json::{Value, json};

use crate::support::{Receiver, expected_signature};

/// A receiver that answers 502 to the first `failures` posts, then 204.
async fn receiver(failures: usize) -> Receiver {
    Receiver::answering(failures, 502, 204).await
}

fn sale() -> Value {
    json!({"store_id": "loja-centro", "register_id": "caixa-2",
           "customer": {"document": "12345678909", "name": "Maria"},
           "items": [{"sku": "CAM-AZ-M", "quantity": 2, "unit_price": 59.90, "discount": 0, "name": "Camiseta azul M"}],
           "payments": [{"method": "CREDITO", "method_name": "Cartão de crédito", "amount": 119.80, "installments": 3}],
           "discount": 0, "total": 119.80})
}

#[tokio::test]
async fn a_sale_rung_up_at_the_till_is_pushed_signed_and_its_cancellation_too() {
    let rx = receiver(0).await;
    let url = rx.url.clone();
    let cfg = Config { webhook_url: Some(url), ..Config::for_tests() };
    let pdv = cplug::spawn(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let r = http.post(format!("{}/sales", pdv.admin_url)).json(&sale()).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let rung: Value = r.json().await.unwrap();
    let sale_id = rung["sale"]["id"].as_str().unwrap().to_owned();
    assert_eq!(sale_id, "V-000001");

    let seen = rx.wait_for(1).await;
    assert_eq!(seen[0].header("x-cplug-signature"), expected_signature(&cfg.webhook_secret, &seen[0].body));
    let text = seen[0].text();
    assert!(text.contains(r#""total":119.80"#) && text.contains(r#""unit_price":59.90"#), "two decimals: {text}");
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["event"], "sale.completed");
    assert_eq!(v["event_id"], rung["event_id"]);
    assert!(v["occurred_at"].as_str().unwrap().ends_with("-03:00"));
    let s = &v["sale"];
    assert_eq!(
        (s["id"].as_str(), s["store_id"].as_str(), s["register_id"].as_str()),
        (Some("V-000001"), Some("loja-centro"), Some("caixa-2"))
    );
    assert_eq!(s["number"], 1);
    assert_eq!(s["customer"]["document"], "12345678909");
    assert_eq!(
        s["payments"][0],
        json!({"method": "CREDITO", "method_name": "Cartão de crédito", "amount": 119.8, "installments": 3})
    );

    let r = http.post(format!("{}/sales/{sale_id}/cancel", pdv.admin_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let seen = rx.wait_for(2).await;
    assert_eq!(seen[1].header("x-cplug-signature"), expected_signature(&cfg.webhook_secret, &seen[1].body));
    let c = seen[1].json();
    assert_eq!((c["event"].as_str(), c["sale"]["id"].as_str()), (Some("sale.cancelled"), Some("V-000001")));
    assert_ne!(c["event_id"], v["event_id"]);
    assert!(pdv.sales()["V-000001"].cancelled);
    let again = http.post(format!("{}/sales/{sale_id}/cancel", pdv.admin_url)).send().await.unwrap();
    assert_eq!(again.status(), 422, "a sale is cancelled once");
    assert_eq!(http.post(format!("{}/sales/V-404/cancel", pdv.admin_url)).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_refused_delivery_is_retried_with_the_same_event_id_and_bytes() {
    let rx = receiver(2).await;
    let url = rx.url.clone();
    let cfg = Config { webhook_url: Some(url), ..Config::for_tests() };
    let pdv = cplug::spawn(cfg.clone()).await.unwrap();
    // An anonymous sale paid in cash: the PDV fills the payment in.
    let (s, event_id) = pdv.ring_up(json!({"items": [{"sku": "CANECA", "quantity": 1, "unit_price": 25.5}]})).unwrap();
    assert_eq!(s.payments[0].method, "DINHEIRO");
    let seen = rx.wait_for(3).await;
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|h| h.body == seen[0].body), "every attempt sends the same bytes");
    let v = seen[2].json();
    assert_eq!(v["event_id"], event_id.as_str());
    assert!(v["sale"].get("customer").is_none(), "an anonymous sale has no customer");
    assert_eq!(v["sale"]["total"], json!(25.5));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let statuses: Vec<Option<u16>> = pdv.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Some(502), Some(502), Some(204)]);
}

#[tokio::test]
async fn a_sale_whose_payments_do_not_add_up_is_refused_at_the_till() {
    let pdv = cplug::spawn(Config::for_tests()).await.unwrap();
    let mut bad = sale();
    bad["payments"][0]["amount"] = json!(100);
    let r = reqwest::Client::new().post(format!("{}/sales", pdv.admin_url)).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(body["errors"]["payments"][0].as_str().unwrap().contains("119.80"), "{body}");
    let mut wrong_total = sale();
    wrong_total["total"] = json!(120);
    assert!(pdv.ring_up(wrong_total).unwrap_err().contains_key("total"));
    assert!(pdv.sales().is_empty());
}

#[tokio::test]
async fn each_account_signs_with_its_own_secret() {
    let rx = receiver(0).await;
    let url = rx.url.clone();
    let pdv = cplug::spawn(Config::for_tests()).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/accounts", pdv.admin_url))
        .json(&json!({"username": "caixa@outra", "password": "pw-2", "webhook_url": url, "webhook_secret": "segredo-outra"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = reqwest::Client::new()
        .post(format!("{}/sales?account=caixa@outra", pdv.admin_url))
        .json(&sale())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let seen = rx.wait_for(1).await;
    assert_eq!(seen[0].header("x-cplug-signature"), expected_signature("segredo-outra", &seen[0].body));
    assert_ne!(seen[0].header("x-cplug-signature"), expected_signature(&pdv.config().webhook_secret, &seen[0].body));
}

#[tokio::test]
async fn the_admin_state_shows_products_and_sales() {
    let pdv = cplug::spawn(Config::for_tests()).await.unwrap();
    pdv.ring_up(sale()).unwrap();
    pdv.cancel_sale("V-000001").unwrap();
    let state: Value = reqwest::get(format!("{}/state", pdv.admin_url)).await.unwrap().json().await.unwrap();
    let account = &state["accounts"][0];
    assert_eq!(account["username"], pdv.config().username.as_str());
    assert_eq!(account["sales"][0]["id"], "V-000001");
    assert_eq!(account["sales"][0]["cancelled"], true);
    assert_eq!(account["sales"][0]["total"], json!(119.8));
}

#[tokio::test]
async fn the_till_rings_up_sales_for_any_store_with_several_payments_or_no_customer() {
    let rx = receiver(0).await;
    let cfg = Config { webhook_url: Some(rx.url.clone()), ..Config::for_tests() };
    let pdv = cplug::spawn(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let split = json!({"store_id": "loja-shopping", "register_id": "caixa-7",
        "items": [{"sku": "CAM-AZ-M", "quantity": 1, "unit_price": 59.90}, {"sku": "CANECA", "quantity": 3, "unit_price": 25.00, "discount": 5.00}],
        "payments": [{"method": "CREDITO", "method_name": "Cartão de crédito", "amount": 100.00, "installments": 4},
                     {"method": "PIX", "amount": 29.90}],
        "total": 129.90});
    let r = http.post(format!("{}/sales", pdv.admin_url)).json(&split).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let mut centro = sale();
    centro.as_object_mut().unwrap().remove("customer");
    let r = http.post(format!("{}/sales", pdv.admin_url)).json(&centro).send().await.unwrap();
    assert_eq!(r.status(), 201);

    let seen = rx.wait_for(2).await;
    let mut sales: Vec<Value> = seen.iter().map(|h| h.json()["sale"].clone()).collect();
    sales.sort_by_key(|s| s["number"].as_u64());
    let shopping = &sales[0];
    assert_eq!((shopping["id"].as_str(), shopping["store_id"].as_str()), (Some("V-000001"), Some("loja-shopping")));
    assert_eq!(shopping["register_id"], "caixa-7");
    assert_eq!(
        shopping["payments"],
        json!([{"method": "CREDITO", "method_name": "Cartão de crédito", "amount": 100.0, "installments": 4},
               {"method": "PIX", "method_name": "PIX", "amount": 29.9, "installments": 1}])
    );
    assert_eq!(shopping["items"][1]["discount"], json!(5.0));
    assert!(shopping.get("customer").is_none());
    assert_eq!((sales[1]["store_id"].as_str(), sales[1]["number"].as_u64()), (Some("loja-centro"), Some(2)));
    assert!(sales[1].get("customer").is_none(), "an anonymous sale: Bling's consumidor final");
    assert!(seen.iter().all(|h| h.header("x-cplug-signature") == expected_signature(&cfg.webhook_secret, &h.body)));
    let stores: Vec<String> = pdv.sales().values().map(|s| s.store_id.clone()).collect();
    assert_eq!(stores, ["loja-shopping", "loja-centro"]);
}

#[tokio::test]
async fn a_burst_of_a_thousand_sales_is_delivered_once_each_with_its_own_event_id() {
    let rx = receiver(0).await;
    let pdv = cplug::spawn(Config { webhook_url: Some(rx.url.clone()), ..Config::for_tests() }).await.unwrap();
    let http = reqwest::Client::new();
    let stores = ["loja-centro", "loja-shopping", "loja-bairro"];
    let ring = (0..1000).map(|i| {
        let mut s = sale();
        s["store_id"] = json!(stores[i % 3]);
        s["id"] = json!(format!("S-{i:04}"));
        http.post(format!("{}/sales", pdv.admin_url)).json(&s).send()
    });
    let answers = futures::future::join_all(ring).await;
    assert!(answers.iter().all(|r| r.as_ref().is_ok_and(|r| r.status() == 201)), "every sale was rung up");

    let seen = rx.wait_for(1000).await;
    assert_eq!(seen.len(), 1000);
    let events: std::collections::HashSet<String> =
        seen.iter().map(|h| h.json()["event_id"].as_str().unwrap().to_owned()).collect();
    let sales: std::collections::HashSet<String> =
        seen.iter().map(|h| h.json()["sale"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!((events.len(), sales.len()), (1000, 1000), "one delivery per sale, each its own event");
    assert_eq!(pdv.stats().webhooks, 1000);
    assert_eq!(pdv.sales().values().filter(|s| s.store_id == "loja-bairro").count(), 333);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rx.seen().len(), 1000, "nothing delivered twice");
}
