//! The gateway as a rollout and an outage see it: it stays ready, and keeps storing webhooks,
//! while Redis is away (the inbox's unique key deduplicates without it); stopped gracefully with
//! a delivery it cannot finish, it hands that delivery back at once, and another replica
//! delivers it without waiting for the lease to expire.

use std::time::Duration;

use ponte_tests::{
    TcpProxy, black_hole, count, eventually,
    webhooks::{BlingWorld, bling_body, date},
};
use serde_json::json;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

#[tokio::test]
async fn the_gateway_stays_ready_and_stores_webhooks_while_redis_is_away() {
    let proxy = TcpProxy::start(ponte_tests::redis_addr()).await;
    let w = BlingWorld::start_with(SPECS, Default::default(), &format!("redis://{}", proxy.addr)).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone().with("PONTE_DISPATCH_ENABLED", "false")).await;
    let ready = || async { reqwest::get(gw.url("/readyz")).await.unwrap().status().as_u16() };
    assert_eq!(ready().await, 200);

    proxy.cut();
    let post =
        |id: &str| w.post_bling(&gw, bling_body(id, "product.updated", &w.company_id(), &date(0), json!({"id": 7})));
    for i in 0..5 {
        let resp = post(&format!("no-redis-{i}")).await;
        assert_eq!(resp.status().as_u16(), 200, "a webhook refused without Redis");
        assert_eq!(ready().await, 200, "the gateway left its Service without Redis");
    }
    // The database alone still tells a duplicate.
    let again = post("no-redis-0").await;
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, 5);
    proxy.restore();
}

#[tokio::test]
async fn a_stopping_gateway_hands_back_what_it_could_not_finish() {
    let w = BlingWorld::start(SPECS).await;
    // Long leases: a delivery left to its lease would wait a minute.
    let env = w
        .mesh
        .env
        .clone()
        .with("PONTE_DISPATCH_DEADLINE_SECONDS", "20")
        .with("PONTE_DISPATCH_LEASE_SECONDS", "60")
        .with("PONTE_DISPATCH_POLL_MS", "200");
    let hang =
        ponte_core::config::Peers { catalog_sync: format!("http://{}", black_hole().await), ..w.mesh.peers.clone() };
    let stuck = w.mesh.start_gateway_http_with(env.clone(), hang, None).await;
    let body = bling_body("handed-1", "product.updated", &w.company_id(), &date(0), json!({"id": 9}));
    assert_eq!(w.post_bling(&stuck, body).await.status().as_u16(), 200);
    let in_flight = "SELECT COUNT(*) FROM inbox_deliveries WHERE state = 'in_flight'";
    assert!(eventually(Duration::from_secs(10), || async { count(&stuck.db, in_flight).await == 1 }).await);

    let db = stuck.db.clone();
    assert!(!stuck.stop(Duration::from_millis(300)).await, "a delivery to a hung service finished");
    assert_eq!(count(&db, in_flight).await, 0, "the stopping gateway kept its claim");
    let handed: (String, String, i64) = sqlx::query_as("SELECT state, lease_owner, lease_until FROM inbox_deliveries")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(handed, ("pending".to_owned(), String::new(), 0));

    // Another replica, whose catalog-sync answers, delivers it at once: well within the lease.
    let other = w.mesh.start_gateway_http(env).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&other.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'delivered'").await == 1
        })
        .await,
        "the handed-back delivery was not delivered by the other replica"
    );
    let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM inbox_deliveries").fetch_one(db.pool()).await.unwrap();
    assert_eq!(attempts, 2, "one attempt cut short, one delivered");
}
