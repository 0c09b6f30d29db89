//! Faults switched on at run time answer in each system's own shape; webhooks can be dropped
//! or duplicated.

use std::time::{Duration, Instant};

use ponte_sandbox::{bitrix24, bling, common::FaultSettings, envios360};
use serde_json::{Value, json};

use crate::support::Receiver;

#[tokio::test]
async fn storms_errors_and_latency_in_blings_own_shape() {
    let h = bling::Bling::new(bling::Config { per_second: 1000, ..Default::default() }).spawn(None).await.unwrap();
    let http = reqwest::Client::new();
    let admin = format!("http://{}/__admin/faults", h.addr);
    let api = format!("{}/empresas/me/dados-basicos", h.base_url);
    let put = |s: Value| http.put(&admin).json(&s).send();

    assert_eq!(put(json!({"storm": 3})).await.unwrap().status(), 200);
    for _ in 0..3 {
        let r = http.get(&api).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["type"], "TOO_MANY_REQUESTS");
    }
    // The storm is over: the next answer is the normal one (an unknown token here: 401).
    assert_eq!(http.get(&api).bearer_auth("not-a-token").send().await.unwrap().status(), 401);

    put(json!({"error_rate": 1.0})).await.unwrap();
    let r = http.get(&api).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["type"], "SERVER_ERROR");
    let current: FaultSettings = http.get(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(current.error_rate, 1.0, "admin routes are never faulted");

    put(json!({"latency_ms": 150})).await.unwrap();
    let started = Instant::now();
    http.get(&api).send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(put(json!({"error_rate": 2.0})).await.unwrap().status(), 400);
}

#[tokio::test]
async fn a_bitrix24_storm_is_query_limit_exceeded() {
    let h = bitrix24::Bitrix24::new(Default::default()).spawn(None).await.unwrap();
    h.portal.faults().set(FaultSettings { storm: 2, ..Default::default() });
    let http = reqwest::Client::new();
    for expect in [503, 503, 200] {
        let r = http.post(format!("{}crm.product.list.json", h.webhook_url)).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), expect);
        if expect == 503 {
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "QUERY_LIMIT_EXCEEDED");
        }
    }
}

#[tokio::test]
async fn webhooks_can_be_duplicated_or_dropped() {
    let rx = Receiver::answering(0, 200, 200).await;
    let url = rx.url.clone();
    let cfg = envios360::Config { webhook_url: Some(url), per_second: 1000, ..Default::default() };
    let hub = envios360::Envios360::new(cfg.clone()).spawn(None).await.unwrap();
    let http = reqwest::Client::new();
    let order = json!({"external_id": "1", "number": "1", "customer": {"name": "M"}, "total": 1,
        "items": [{"product_id": "pr_1", "external_product_id": "9", "sku": "A", "name": "A", "quantity": 1, "unit_price": 1}],
        "address": {"street": "R", "number": "1", "district": "C", "city": "SP", "state": "SP", "zip": "01001000"}});
    let created: Value = http
        .post(format!("{}/orders", hub.base_url))
        .bearer_auth(&cfg.api_token)
        .json(&order)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();

    hub.hub.faults().set(FaultSettings { webhook_duplicate_rate: 1.0, ..Default::default() });
    let event = hub.hub.set_status(id, "in_packing_list").unwrap();
    let seen = rx.wait_for(2).await;
    assert_eq!(seen.len(), 2, "the duplicate arrived");
    assert!(seen.iter().all(|h| h.json()["event_id"] == event.as_str()), "duplicates share their event_id");

    hub.hub.faults().set(FaultSettings { webhook_drop_rate: 1.0, ..Default::default() });
    hub.hub.set_status(id, "awaiting_shipment").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.seen().len(), 2, "a dropped webhook was delivered");
}
