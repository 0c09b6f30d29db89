//! 360Envios: the connector against the sandbox, and the sandbox's webhooks as the contract
//! describes them.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, http::HeaderMap, http::StatusCode, routing::post};
use ponte_connectors::{
    ConnectorError,
    envios360::{
        Envios360Client,
        client::Created,
        types::{Address, Customer, NewProduct, OrderBody, OrderItem, OrderStatus},
    },
};
use ponte_core::ratelimit::{MemoryRateLimiter, Quota};
use ponte_sandbox::envios360::{Config, Envios360};
use rust_decimal::Decimal;

/// A client on ponte's budget for 360Envios (5 requests/s per token), or on `quota`.
fn client(base_url: &str, quota: Quota) -> Envios360Client {
    Envios360Client::new(ponte_connectors::http::client(), base_url, Arc::new(MemoryRateLimiter::default()), quota)
}

fn order(external: &str) -> OrderBody {
    OrderBody {
        external_id: external.into(),
        number: "123".into(),
        store_ref: None,
        customer: Customer { name: "Maria".into(), document: Some("12345678909".into()), email: None, phone: None },
        address: Address {
            street: "Rua A".into(),
            number: "10".into(),
            complement: None,
            district: "Centro".into(),
            city: "São Paulo".into(),
            state: "SP".into(),
            zip: "01001000".into(),
        },
        items: vec![OrderItem {
            product_id: "pr_1".into(),
            external_product_id: "16059781281".into(),
            sku: "CAM-AZ-M".into(),
            name: "Camiseta".into(),
            quantity: Decimal::from(2),
            unit_price: Decimal::new(5990, 2),
        }],
        total: Decimal::new(11980, 2),
        shipping_cost: None,
    }
}

#[tokio::test]
async fn creates_are_safe_to_retry_and_the_life_cycle_only_moves_forward() {
    let hub = Envios360::new(Config { per_second: 1000, ..Config::default() }).spawn(None).await.unwrap();
    let c = client(&hub.base_url, Quota::per_second(1000.0, 100));
    let token = hub.hub.config().api_token.clone();
    let product = NewProduct {
        external_id: "16059781281".into(),
        sku: "CAM-AZ-M".into(),
        name: "Camiseta".into(),
        price: Decimal::new(5990, 2),
        gtin: None,
        weight_kg: None,
        dimensions_cm: None,
        images: vec![],
    };
    let Created::New(pid) = c.create_product(&token, &product).await.unwrap() else { panic!("not new") };
    assert_eq!(c.create_product(&token, &product).await.unwrap(), Created::Existing(pid.clone()));
    assert_eq!(
        c.product(&token, &pid).await.unwrap().approval_status,
        ponte_connectors::envios360::types::ApprovalStatus::Pending
    );

    let created = c.create_order(&token, &order("12345678")).await.unwrap();
    let Created::New(oid) = created else { panic!("not new") };
    // A create retried after a timeout: the hub answers with the existing order.
    assert_eq!(c.create_order(&token, &order("12345678")).await.unwrap(), Created::Existing(oid.clone()));
    assert_eq!(c.find_order(&token, "12345678").await.unwrap().unwrap().id, oid);
    assert!(c.find_order(&token, "999").await.unwrap().is_none());

    c.update_order(&token, &oid, &OrderBody { number: "124".into(), ..order("12345678") }).await.unwrap();
    hub.hub.set_status(&oid, "in_packing_list").unwrap();
    assert!(hub.hub.set_status(&oid, "received").is_err(), "statuses never move back");
    hub.hub.set_status(&oid, "in_transit").unwrap();
    assert_eq!(c.order(&token, &oid).await.unwrap().status, OrderStatus::InTransit);
    let edit = c.update_order(&token, &oid, &order("12345678")).await.unwrap_err();
    assert!(matches!(edit, ConnectorError::Rejected { status: 422, .. }), "{edit:?}");
    let cancel = c.cancel_order(&token, &oid).await.unwrap_err();
    assert!(matches!(cancel, ConnectorError::Rejected { status: 422, .. }), "{cancel:?}");

    let bad = c.create_order(&token, &OrderBody { external_id: String::new(), ..order("x") }).await.unwrap_err();
    let ConnectorError::Rejected { status, fields, .. } = bad else { panic!("{bad:?}") };
    assert_eq!((status, fields), (400, vec!["external_id: is required".to_owned()]));
    let unauthorized = c.order("wrong-token", &oid).await.unwrap_err();
    assert!(matches!(unauthorized, ConnectorError::InvalidToken { .. }));
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let hub = Envios360::new(Config::default()).spawn(None).await.unwrap();
    // A client that does not pace itself, to meet the hub's own limit.
    let c = client(&hub.base_url, Quota::per_second(1000.0, 100));
    let token = hub.hub.config().api_token.clone();
    let calls = (0..8).map(|_| c.find_order(&token, "1"));
    let results = futures::future::join_all(calls).await;
    let limited: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(limited.len(), 3, "5 a second are allowed");
    assert!(limited.iter().all(
        |e| matches!(e, ConnectorError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(1))
    ));
    assert_eq!(hub.hub.rate_limited(), 3);
}

#[tokio::test]
async fn the_connector_keeps_each_token_under_the_hubs_limit() {
    let hub = Envios360::new(Config::default()).spawn(None).await.unwrap();
    let other = "tok-360-other-merchant-000000";
    hub.hub.add_merchant(other, None, "whsec-other");
    // Two replicas' clients sharing one limiter, as they share Redis: 12 calls per token.
    let limiter: Arc<dyn ponte_core::ratelimit::RateLimiter> = Arc::new(MemoryRateLimiter::default());
    let replica =
        || Envios360Client::new(ponte_connectors::http::client(), &hub.base_url, limiter.clone(), Quota::envios360());
    let (a, b) = (replica(), replica());
    let token = hub.hub.config().api_token.clone();
    let calls = (0..24).map(|i| {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        let t = if i % 4 < 2 { token.clone() } else { other.to_owned() };
        async move { c.find_order(&t, "1").await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
    assert_eq!(hub.hub.rate_limited(), 0, "paced under 5 a second per token");
    assert_eq!(hub.hub.stats().requests, 24);
}

#[tokio::test]
async fn status_webhooks_are_signed_and_retried_with_the_same_event_id() {
    // A receiver that fails the first two deliveries.
    let seen: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let seen2 = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen2.clone();
            async move {
                let sig = headers.get("x-360-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let mut s = seen.lock().unwrap();
                s.push((sig, body));
                if s.len() <= 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cfg = Config {
        webhook_url: Some(url),
        per_second: 1000,
        webhook_backoff: Duration::from_millis(20),
        ..Config::default()
    };
    let hub = Envios360::new(cfg.clone()).spawn(None).await.unwrap();
    let c = client(&hub.base_url, Quota::envios360());
    let oid = c.create_order(&cfg.api_token, &order("777")).await.unwrap().id().to_owned();
    let event_id = hub.hub.set_status(&oid, "awaiting_shipment").unwrap();

    let delivered = ponte_tests::eventually(Duration::from_secs(5), || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().len() >= 3 }
    })
    .await;
    assert!(delivered, "the webhook was not retried until a 2xx");
    let got = seen.lock().unwrap().clone();
    for (sig, body) in &got {
        assert_eq!(sig, &format!("sha256={}", ponte_sandbox::cplug::sign(&cfg.webhook_secret, body)));
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["event_id"], event_id.as_str(), "event_id changes across retries");
        assert_eq!(
            (v["order"]["status"].as_str(), v["order"]["previous_status"].as_str()),
            (Some("awaiting_shipment"), Some("received"))
        );
    }
    let log = hub.hub.deliveries();
    assert_eq!(log.iter().map(|d| d.status).collect::<Vec<_>>(), [Some(503), Some(503), Some(200)]);
}
