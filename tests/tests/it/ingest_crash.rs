//! The gateway dies (or drops the request) after deciding an event is new and before its row
//! is committed: the sender's retry must be stored, never answered "duplicate" with nothing kept.

use std::time::Duration;

use ponte_tests::{
    count, eventually,
    webhooks::{BlingWorld, bling_body, date, sign},
};
use serde_json::{Value, json};

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

#[tokio::test]
async fn a_gateway_killed_before_the_inbox_commit_stores_the_senders_retry() {
    let w = BlingWorld::start(SPECS).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let body = bling_body("crash-before-commit", "product.created", &w.company_id(), &date(0), json!({"id": 4242}));
    let signature = sign(&w.client_secret(), body.as_bytes());

    // The inbox table is locked, so the insert waits.
    let mut lock = gw.db.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE inbox_events IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();

    // The sender gives up after a second; the gateway process dies while its insert waits.
    let first = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap()
        .post(gw.url("/webhooks/bling"))
        .header("content-type", "application/json")
        .header("X-Bling-Signature-256", signature.clone())
        .body(body.clone())
        .send()
        .await;
    assert!(first.is_err(), "the insert should have been waiting on the lock: {first:?}");
    let waiting =
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    assert!(eventually(Duration::from_secs(5), || async { count(&gw.db, waiting).await >= 1 }).await);
    let db = gw.db.clone();
    gw.kill();
    // Its connections die with it: the waiting insert never commits.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .execute(db.pool())
    .await
    .unwrap();
    lock.rollback().await.unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM inbox_events").await, 0);

    // The sender retries on a restarted gateway: the event is stored, not a duplicate.
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let retry = w.post_bling(&gw, body.clone()).await;
    assert_eq!(retry.status().as_u16(), 200);
    let answer: Value = retry.json().await.unwrap();
    assert_eq!(answer["status"], "stored", "{answer}");
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, 1);

    // Once stored, the same event is a duplicate, and it reaches catalog-sync once.
    let again: Value = w.post_bling(&gw, body).await.json().await.unwrap();
    assert_eq!(again["status"], "duplicate", "{again}");
    let cs = w.mesh.db("catalog_sync").await;
    let handled = "SELECT COUNT(*) FROM event_log";
    assert!(eventually(Duration::from_secs(10), || async { count(&cs, handled).await >= 1 }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&cs, handled).await, 1);
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, 1);
}
