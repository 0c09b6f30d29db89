//! 360Envios status webhooks: every step of the life cycle and every approval decision is
//! posted as JSON signed `X-360-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`,
//! retried with the same `event_id` until answered 2xx, and can be duplicated or dropped by an
//! injected fault.

use std::time::Duration;

use ponte_sandbox::envios360::{self, Config};
use serde_json::{Value, json};

use crate::support::{Receiver, expected_signature};

fn order(external_id: &str) -> Value {
    json!({"external_id": external_id, "number": "123",
           "customer": {"name": "Maria"},
           "address": {"street": "Rua A", "number": "1", "district": "Centro", "city": "Campinas", "state": "SP", "zip": "13010000"},
           "items": [{"product_id": "pr_1", "external_product_id": "9", "sku": "A", "name": "A", "quantity": 1, "unit_price": 10}],
           "total": 10})
}

async fn create_order(base: &str, token: &str, external_id: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .bearer_auth(token)
        .json(&order(external_id))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_step_is_signed_and_carries_the_previous_status() {
    let rx = Receiver::start(0).await;
    let url = rx.url.clone();
    let cfg = Config { webhook_url: Some(url), ..Config::for_tests() };
    let hub = envios360::spawn(cfg.clone()).await.unwrap();
    let id = create_order(&hub.base_url, &cfg.api_token, "12345678").await;
    let http = reqwest::Client::new();
    for _ in 0..4 {
        let r = http.post(format!("{}/orders/{id}/advance", hub.admin_url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let seen = rx.wait_for(4).await;
    assert_eq!(seen.len(), 4);
    let mut chain = vec![];
    for hook in &seen {
        let (sig, v) = (hook.header("x-360-signature"), hook.json());
        assert_eq!(sig, expected_signature(&cfg.webhook_secret, &hook.body), "the signature covers the raw body");
        assert_eq!(v["event"], "order.status_changed");
        assert_eq!(v["order"]["id"], id.as_str());
        assert_eq!(v["order"]["external_id"], "12345678");
        assert!(v["occurred_at"].as_str().is_some_and(|t| t.ends_with('Z')));
        chain.push((
            v["order"]["previous_status"].as_str().unwrap().to_owned(),
            v["order"]["status"].as_str().unwrap().to_owned(),
        ));
    }
    chain.sort_by_key(|(_, to)| envios360::STATUSES.iter().position(|s| s == to));
    assert_eq!(
        chain,
        [
            ("received".to_owned(), "in_packing_list".to_owned()),
            ("in_packing_list".into(), "awaiting_shipment".into()),
            ("awaiting_shipment".into(), "in_transit".into()),
            ("in_transit".into(), "delivered".into()),
        ]
    );
    let last = seen.iter().find(|h| h.text().contains("\"delivered\"")).unwrap().json();
    assert!(last["order"]["tracking_code"].as_str().is_some_and(|c| c.ends_with("BR")));
    assert!(last["order"]["tracking_url"].as_str().is_some_and(|u| u.starts_with("https://")));
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_same_event_id() {
    let rx = Receiver::start(2).await;
    let url = rx.url.clone();
    let cfg = Config { webhook_url: Some(url), ..Config::for_tests() };
    let hub = envios360::spawn(cfg.clone()).await.unwrap();
    let id = create_order(&hub.base_url, &cfg.api_token, "555").await;
    let event_id = hub.set_status(&id, "awaiting_shipment").unwrap();
    let seen = rx.wait_for(3).await;
    assert_eq!(seen.len(), 3);
    for hook in &seen {
        assert_eq!(hook.header("x-360-signature"), expected_signature(&cfg.webhook_secret, &hook.body));
        assert_eq!(hook.json()["event_id"], event_id.as_str(), "the event id is stable across retries");
    }
    assert_eq!(seen[0].body, seen[2].body, "a retry sends the same bytes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = hub.deliveries();
    assert_eq!(
        log.iter().map(|d| (d.attempt, d.status)).collect::<Vec<_>>(),
        [(1, Some(503)), (2, Some(503)), (3, Some(200))]
    );
}

#[tokio::test]
async fn approval_decisions_are_pushed_and_a_cancel_through_the_api_too() {
    let rx = Receiver::start(0).await;
    let url = rx.url.clone();
    let cfg = Config { webhook_url: Some(url), ..Config::for_tests() };
    let hub = envios360::spawn(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let product: Value = http
        .post(format!("{}/products", hub.base_url))
        .bearer_auth(&cfg.api_token)
        .json(&json!({"external_id": "16059781281", "sku": "A", "name": "A", "price": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = product["id"].as_str().unwrap();
    hub.reject_product(pid, "Sem foto").unwrap();
    let seen = rx.wait_for(1).await;
    let v = seen[0].json();
    assert_eq!(v["event"], "product.approval_changed");
    assert_eq!(
        v["product"],
        json!({"id": pid, "external_id": "16059781281", "approval_status": "rejected", "rejection_reason": "Sem foto"})
    );

    let id = create_order(&hub.base_url, &cfg.api_token, "9").await;
    http.post(format!("{}/orders/{id}/cancel", hub.base_url)).bearer_auth(&cfg.api_token).send().await.unwrap();
    let seen = rx.wait_for(2).await;
    let v = seen[1].json();
    assert_eq!(
        (v["order"]["status"].as_str(), v["order"]["previous_status"].as_str()),
        (Some("cancelled"), Some("received"))
    );
}

#[tokio::test]
async fn injected_faults_duplicate_or_drop_deliveries() {
    let rx = Receiver::start(0).await;
    let url = rx.url.clone();
    let cfg = Config { webhook_url: Some(url), ..Config::for_tests() };
    let hub = envios360::spawn(cfg.clone()).await.unwrap();
    let faults = format!("{}/faults", hub.admin_url);
    let http = reqwest::Client::new();
    let id = create_order(&hub.base_url, &cfg.api_token, "1").await;

    http.put(&faults).json(&json!({"webhook_duplicate_rate": 1.0})).send().await.unwrap();
    let event_id = hub.advance(&id).unwrap().1;
    let seen = rx.wait_for(2).await;
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|h| h.json()["event_id"] == event_id.as_str()));

    http.put(&faults).json(&json!({"webhook_drop_rate": 1.0})).send().await.unwrap();
    hub.advance(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.seen().len(), 2, "a dropped event never arrives");
    assert_eq!(hub.stats().webhooks_dropped, 1);
    assert_eq!(hub.order(&id).unwrap()["status"], "awaiting_shipment", "the status moved all the same");
}

#[tokio::test]
async fn a_held_back_event_arrives_after_a_later_one() {
    let rx = Receiver::start(0).await;
    let url = rx.url.clone();
    let cfg = Config { webhook_url: Some(url), ..Config::for_tests() };
    let hub = envios360::spawn(cfg.clone()).await.unwrap();
    let order_admin = format!("{}/webhook-order", hub.admin_url);
    let http = reqwest::Client::new();
    let id = create_order(&hub.base_url, &cfg.api_token, "1").await;

    let r = http.put(&order_admin).json(&json!({"reorder_rate": 1.0, "hold_ms": 300})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, first) = hub.advance(&id).unwrap();
    http.put(&order_admin).json(&json!({"reorder_rate": 0.0})).send().await.unwrap();
    let (_, second) = hub.advance(&id).unwrap();
    let seen = rx.wait_for(2).await;
    let ids: Vec<Value> = seen.iter().map(|h| h.json()["event_id"].clone()).collect();
    assert_eq!(ids, [json!(second), json!(first)], "the later step arrived first");
    assert!(seen.iter().all(|h| h.header("x-360-signature") == expected_signature(&cfg.webhook_secret, &h.body)));
    let bad = http.put(&order_admin).json(&json!({"reorder_rate": 2.0})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}
