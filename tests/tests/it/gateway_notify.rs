//! The dispatcher woken by `NOTIFY`, against real PostgreSQL. Only the gateway's own writer and
//! replays wake its dispatcher in-process; another gateway (in this process or not) reaches it
//! through `NOTIFY` alone.

use std::time::Duration;

use ponte_tests::{count, eventually, webhooks::BlingWorld};

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

/// Work committed by another process reaches this one's dispatcher through `NOTIFY`, long before
/// its poll; its own notifications are skipped (it was woken in-process already).
#[tokio::test]
async fn another_processs_notification_wakes_the_dispatcher() {
    let w = BlingWorld::start(SPECS).await;
    let gw = w
        .mesh
        .start_gateway_http_with(w.mesh.env.clone().with("PONTE_DISPATCH_POLL_MS", "60000"), w.mesh.peers.clone(), None)
        .await;
    // Let the dispatcher reach its idle wait (the poll), then queue an event behind its back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = ponte_core::time::now_millis();
    sqlx::query(
        "INSERT INTO inbox_events (event_id, source, source_event_id, tenant_id, event_type, entity_key, state, \
         payload, occurred_time, receive_time) VALUES ('elsewhere', 'bling', 'x-1', 'loja', 'product.updated', \
         'product:3', 'pending', $1, $2, $2)",
    )
    .bind(b"{}".to_vec())
    .bind(now)
    .execute(gw.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, next_attempt_time, \
         create_time) VALUES ('elsewhere', 'catalog-sync', 'loja|product:3', $1, 1, 'pending', $1, $1)",
    )
    .bind(now)
    .execute(gw.db.pool())
    .await
    .unwrap();
    let attempts = "SELECT attempts FROM inbox_deliveries WHERE event_id = 'elsewhere'";
    let channel = ponte_gateway::Wake::channel(&gw.db);
    // A notification from this gateway is not a reason to look.
    sqlx::query("SELECT pg_notify($1, $2)").bind(&channel).bind(&gw.origin).execute(gw.db.pool()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(count(&gw.db, attempts).await, 0, "the dispatcher looked without being told");
    sqlx::query("SELECT pg_notify($1, 'another-process')").bind(&channel).execute(gw.db.pool()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async { count(&gw.db, attempts).await >= 1 }).await,
        "another process's notification did not wake the dispatcher"
    );
}
