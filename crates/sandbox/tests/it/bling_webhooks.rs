//! The Bling sandbox's webhooks: v1 envelopes signed over the raw body with the client secret,
//! retried until a 2xx, and a resource's hook switched off after failed deliveries.

use std::time::Duration;

use ponte_sandbox::bling::{Bling, Config};
use serde_json::{Value, json};

use crate::support::{Receiver, eventually, expected_signature};

#[tokio::test]
async fn changes_are_signed_v1_events_retried_until_accepted() {
    let r = Receiver::start(2).await;
    let cfg =
        Config { webhook_url: Some(r.url.clone()), webhook_backoff: Duration::from_millis(20), ..Config::default() };
    let bling = Bling::new(cfg.clone());
    let id = bling.seed_product(json!({"nome": "Copo", "codigo": "COPO", "preco": 4.99}));
    assert!(bling.edit_product_in_ui(id, json!({"preco": 5.49})));
    eventually(|| bling.stats().webhooks_delivered == 1).await;
    let seen = r.seen();
    assert_eq!(seen.len(), 3, "two failures, then accepted");
    for hook in &seen {
        assert_eq!(hook.header("x-bling-signature-256"), expected_signature(&cfg.client_secret, &hook.body));
        let v = hook.json();
        assert_eq!((v["event"].as_str(), v["version"].as_str()), (Some("product.updated"), Some("v1")));
        assert_eq!(v["companyId"], cfg.company_id.as_str());
        assert_eq!(v["data"]["id"].as_i64(), Some(id));
        assert_eq!(v["data"]["preco"], 5.49);
        assert_eq!(v["eventId"], seen[0].json()["eventId"], "retries keep the event id");
    }
}

#[tokio::test]
async fn a_hook_that_keeps_failing_is_switched_off() {
    let r = Receiver::start(usize::MAX).await;
    let cfg = Config {
        webhook_url: Some(r.url.clone()),
        webhook_backoff: Duration::from_millis(10),
        webhook_attempts: 3,
        ..Config::default()
    };
    let bling = Bling::new(cfg);
    let id = bling.seed_product(json!({"nome": "Copo"}));
    bling.edit_product_in_ui(id, json!({"nome": "Copo 2"}));
    eventually(|| !bling.stats().hooks_disabled.is_empty()).await;
    assert_eq!(bling.stats().hooks_disabled, ["product"]);
    assert_eq!(r.seen().len(), 3);
    bling.edit_product_in_ui(id, json!({"nome": "Copo 3"}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.seen().len(), 3, "a switched-off hook sends nothing");
}

#[tokio::test]
async fn webhooks_can_be_held_back_so_later_ones_overtake_them() {
    let r = Receiver::start(0).await;
    let cfg = Config { webhook_url: Some(r.url.clone()), ..Config::default() };
    let bling = Bling::new(cfg);
    let id = bling.seed_product(json!({"nome": "Copo", "codigo": "COPO", "preco": 4.99}));
    // The first change is held back 300 ms; the second goes at once and arrives first.
    bling.faults().set(ponte_sandbox::common::FaultSettings {
        webhook_reorder_rate: 1.0,
        webhook_hold_ms: 300,
        ..Default::default()
    });
    assert!(bling.edit_product_in_ui(id, json!({"preco": 5.49})));
    bling.faults().set(ponte_sandbox::common::FaultSettings::default());
    assert!(bling.edit_product_in_ui(id, json!({"preco": 5.99})));
    eventually(|| bling.stats().webhooks_delivered == 2).await;
    let prices: Vec<f64> = r.seen().iter().map(|h| h.json()["data"]["preco"].as_f64().unwrap()).collect();
    assert_eq!(prices, [5.99, 5.49], "the held change arrives last");
}

#[tokio::test]
async fn the_admin_state_shows_what_the_account_holds() {
    let handle = Bling::new(Config::default()).spawn(None).await.unwrap();
    let id = handle.bling.seed_product(json!({"nome": "Copo", "codigo": "COPO", "preco": 4.99}));
    handle.bling.set_stock(id, ponte_sandbox::bling::DEPOSITO_GERAL, rust_decimal::Decimal::new(7, 0));
    let admin = handle.base_url.trim_end_matches("/Api/v3").to_owned();
    let state: Value = reqwest::get(format!("{admin}/__admin/state")).await.unwrap().json().await.unwrap();
    assert_eq!(state["products"][0]["codigo"], "COPO");
    assert_eq!(state["stock"][0]["saldo"], "7");
    assert!(state["situacoes"].as_array().unwrap().iter().any(|s| s["nome"] == "Atendido"));
    assert!(state["products"][0].get("_criado").is_none(), "bookkeeping fields stay private");
}
