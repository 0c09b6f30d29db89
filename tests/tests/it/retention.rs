//! Retention against real PostgreSQL: events received through the gateway (real signed Bling
//! webhooks), aged in the database, then one retention pass: settled events past their age go
//! with their deliveries, recent ones stay, events still on their way never go whatever their
//! age, dead letters go only past theirs; a resend of a recent event is still answered as a
//! duplicate by the database alone (Redis emptied); the pass runs on one replica at a time;
//! the history tables of catalog-sync, sales-ingest and shipping-status lose only old rows.

use ponte_core::{
    db::Database,
    retention::{RetentionConfig, Rule, run_once},
    time::now_millis,
};
use ponte_tests::{
    Mesh, count,
    webhooks::{BlingWorld, bling_body, date},
};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;

fn cfg() -> RetentionConfig {
    RetentionConfig::from_env(&ponte_core::Env::default()).unwrap()
}

/// Sets an event's state and age, and gives it one delivery in `delivery_state`.
async fn age(db: &Database, source_event_id: &str, state: &str, days: i64, delivery_state: &str) {
    let received = now_millis() - days * DAY;
    sqlx::query("UPDATE inbox_events SET state = $1, receive_time = $2 WHERE source_event_id = $3")
        .bind(state)
        .bind(received)
        .bind(source_event_id)
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "DELETE FROM inbox_deliveries WHERE event_id IN (SELECT event_id FROM inbox_events WHERE source_event_id = $1)",
    )
    .bind(source_event_id)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, next_attempt_time, \
         create_time) SELECT event_id, 'catalog-sync', lane, $2, 0, $3, $2, $2 FROM inbox_events WHERE source_event_id = $1",
    )
    .bind(source_event_id)
    .bind(received)
    .bind(delivery_state)
    .execute(db.pool())
    .await
    .unwrap();
}

async fn kept(db: &Database) -> Vec<String> {
    sqlx::query_scalar("SELECT source_event_id FROM inbox_events ORDER BY source_event_id")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

async fn empty_redis(prefix: &str) {
    let client = redis::Client::open(ponte_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn old_settled_events_and_dead_letters_go_recent_and_unfinished_ones_stay_and_dedupe_still_answers() {
    let w = BlingWorld::start(&[&ponte_auth_token::SPEC, &ponte_gateway::SPEC]).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone().with("PONTE_DISPATCH_ENABLED", "false")).await;
    let mut bodies = std::collections::HashMap::new();
    for id in ["old-delivered", "old-coalesced", "recent-delivered", "old-pending", "old-received", "old-dead", "dead"]
    {
        let body = bling_body(id, "product.updated", &w.company_id(), &date(0), json!({"id": 1}));
        let resp = w.post_bling(&gw, body.clone()).await;
        assert!(resp.status().is_success(), "{}", resp.status());
        bodies.insert(id, body);
    }
    age(&gw.db, "old-delivered", "delivered", 15, "delivered").await;
    age(&gw.db, "old-coalesced", "coalesced", 20, "coalesced").await;
    age(&gw.db, "recent-delivered", "delivered", 2, "delivered").await;
    age(&gw.db, "old-pending", "pending", 200, "pending").await;
    age(&gw.db, "old-received", "received", 200, "pending").await;
    age(&gw.db, "old-dead", "dead", 91, "dead").await;
    age(&gw.db, "dead", "dead", 30, "dead").await;

    // Another replica holds the pass: this one skips it.
    let other = w.mesh.db("gateway").await;
    let mut held = other.pool().acquire().await.unwrap();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended('ponte-retention:gateway', 0))")
        .fetch_one(&mut *held)
        .await
        .unwrap();
    assert!(got);
    assert!(run_once(&gw.db, &ponte_gateway::retention::RULES, &cfg(), now_millis()).await.unwrap().is_none());
    assert_eq!(kept(&gw.db).await.len(), 7);
    // The other replica's pass ends.
    let _: bool = sqlx::query_scalar("SELECT pg_advisory_unlock(hashtextextended('ponte-retention:gateway', 0))")
        .fetch_one(&mut *held)
        .await
        .unwrap();
    drop(held);

    let done = run_once(&gw.db, &ponte_gateway::retention::RULES, &cfg(), now_millis()).await.unwrap().unwrap();
    assert_eq!(done, [("inbox_events", 3)]);
    assert_eq!(kept(&gw.db).await, ["dead", "old-pending", "old-received", "recent-delivered"]);
    let orphans = count(
        &gw.db,
        "SELECT COUNT(*) FROM inbox_deliveries d WHERE NOT EXISTS \
         (SELECT 1 FROM inbox_events e WHERE e.event_id = d.event_id)",
    )
    .await;
    assert_eq!(orphans, 0, "the deleted events' deliveries went with them");
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_deliveries").await, 4);
    // A second pass finds nothing more.
    let again = run_once(&gw.db, &ponte_gateway::retention::RULES, &cfg(), now_millis()).await.unwrap().unwrap();
    assert_eq!(again, [("inbox_events", 0)]);

    // Bling resends the recent event (within its retry window): with Redis emptied, the
    // inbox's unique key still answers duplicate.
    empty_redis(&w.mesh.redis_prefix).await;
    let resent = w.post_bling(&gw, bodies["recent-delivered"].clone()).await;
    assert_eq!(resent.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE source_event_id = 'recent-delivered'").await, 1);

    let metrics = ponte_core::metrics::global().encode();
    assert!(metrics.contains("ponte_retention_rows_deleted_total{table=\"inbox_events\"}"), "{metrics}");
    assert!(metrics.contains("ponte_retention_oldest_row_age_seconds{table=\"inbox_events\"}"), "{metrics}");
}

/// Inserts a history row of `table` `days` old; its columns as the service writes them.
async fn history_row(db: &Database, insert: &str, days: i64) {
    sqlx::query(sqlx::AssertSqlSafe(insert.to_owned()))
        .bind(now_millis() - days * DAY)
        .execute(db.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn history_tables_lose_only_rows_older_than_their_retention() {
    let mesh = Mesh::start(&[&ponte_catalog_sync::SPEC, &ponte_sales_ingest::SPEC, &ponte_shipping_status::SPEC]).await;
    let cases: [(&str, &[Rule], &str, &str, &str); 3] = [
        (
            "catalog_sync",
            &ponte_catalog_sync::RETENTION,
            "event_log",
            "handle_time",
            "INSERT INTO event_log (tenant_id, entity_key, event_id, source, source_event_id, event_type, \
             occurred_time, attempt, outcome, detail, handle_time) VALUES ('loja', 'product:1', 'e', 'bling', 'b', \
             'product.updated', $1, 1, 'applied', '', $1)",
        ),
        (
            "sales_ingest",
            &ponte_sales_ingest::RETENTION,
            "sale_history",
            "event_time",
            "INSERT INTO sale_history (tenant_id, sale_id, event_time, action, outcome, detail) \
             VALUES ('loja', 'V-1', $1, 'received', 'ok', '')",
        ),
        (
            "shipping_status",
            &ponte_shipping_status::RETENTION,
            "history",
            "at",
            "INSERT INTO history (tenant_id, bling_order_id, flow, at, trigger_name, action, outcome) \
             VALUES ('loja', 1, 'bling_to_envios360_orders', $1, 'Bling order.updated', 'noted', 'applied')",
        ),
    ];
    for (schema, rules, table, time, insert) in cases {
        let db = mesh.db(schema).await;
        for days in [120, 91, 89, 1] {
            history_row(&db, insert, days).await;
        }
        let done = run_once(&db, rules, &cfg(), now_millis()).await.unwrap().unwrap();
        assert_eq!(done, [(table, 2)], "{schema}");
        let left = count(&db, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(left, 2, "{schema}: the rows younger than 90 days stay");
        let oldest = count(&db, &format!("SELECT MIN({time}) FROM {table}")).await;
        assert!(now_millis() - oldest < 90 * DAY, "{schema}");
    }
}
