//! Retention against real PostgreSQL: events received through the gateway (real signed Bling
//! webhooks), aged in the database, then one retention pass: settled events past their age go
//! with their deliveries, recent ones stay, events still on their way never go whatever their
//! age, dead letters go only past theirs; a resend of a recent event is still answered as a
//! duplicate by the database alone (Redis emptied); the pass runs on one replica at a time;
//! the history tables of catalog-sync, sales-ingest and shipping-status lose only old rows.

use std::time::Duration;

use ponte_core::{
    db::{Backend, Database},
    retention::{Pace, RetentionConfig, Rule, others_running, run_once},
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
    assert!(metrics.contains("ponte_retention_pace_rows_per_second{table=\"inbox_events\"}"), "{metrics}");
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
        let history: Vec<_> = done.into_iter().filter(|(t, _)| *t == table).collect();
        assert_eq!(history, [(table, 2)], "{schema}");
        let left = count(&db, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(left, 2, "{schema}: the rows younger than 90 days stay");
        let oldest = count(&db, &format!("SELECT MIN({time}) FROM {table}")).await;
        assert!(now_millis() - oldest < 90 * DAY, "{schema}");
    }
}

/// Retention yields to the traffic: while another session of its database runs a statement,
/// a pass's pace falls to the minimum; while nothing else runs, it rises to the maximum.
#[tokio::test]
async fn retention_s_pace_falls_to_its_minimum_while_the_database_is_busy_and_rises_when_it_is_quiet() {
    let url = ponte_tests::fresh_database().await;
    let db = Database::connect(&url, "retention_pace", 3, Duration::from_secs(5)).await.unwrap();
    let cfg = RetentionConfig { min_rows_per_second: 2_000, max_rows_per_second: 10_000, ..cfg() };
    let mut conn = db.pool().acquire().await.unwrap();
    let mut pace = Pace::new(&cfg);
    assert_eq!(pace.rows_per_second(), 2_000, "a pass starts at the minimum");

    // Nothing else runs on the database: the next batch goes at the maximum.
    assert!(!others_running(&mut conn).await.unwrap());
    pace.pause(&mut conn, Backend::Postgres, Duration::ZERO).await.unwrap();
    assert_eq!((pace.busy(), pace.rows_per_second()), (0.0, 10_000));

    // Another session runs a long statement: back to the minimum.
    let mut other = db.pool().acquire().await.unwrap().detach();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut other).await.unwrap();
    let sleeping = tokio::spawn(async move { sqlx::query("SELECT pg_sleep(60)").execute(&mut other).await.is_err() });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !others_running(&mut conn).await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "the other session's statement never showed as running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pace.pause(&mut conn, Backend::Postgres, Duration::ZERO).await.unwrap();
    assert_eq!((pace.busy(), pace.rows_per_second()), (1.0, 2_000));

    // The statement ends (cancelled): the pace rises again.
    let cancelled: bool =
        sqlx::query_scalar("SELECT pg_cancel_backend($1)").bind(pid).fetch_one(&mut *conn).await.unwrap();
    assert!(cancelled);
    assert!(sleeping.await.unwrap(), "the long statement was cancelled");
    pace.pause(&mut conn, Backend::Postgres, Duration::ZERO).await.unwrap();
    assert_eq!((pace.busy(), pace.rows_per_second()), (0.0, 10_000));
}

/// A sale row as sales-ingest stores it, `days` since its last change, and one history row.
async fn sale(db: &Database, id: &str, state: &str, cancel_requested: i64, days: i64) {
    let at = now_millis() - days * DAY;
    sqlx::query(
        "INSERT INTO sales (tenant_id, sale_id, state, sale_json, cancel_requested, receive_time, update_time) \
         VALUES ('loja', $1, $2, '{\"customer\":{\"document\":\"39053344705\"}}', $3, $4, $4)",
    )
    .bind(id)
    .bind(state)
    .bind(cancel_requested)
    .bind(at)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sale_history (tenant_id, sale_id, event_time, action, outcome, detail) \
         VALUES ('loja', $1, $2, 'posted', 'ok', '')",
    )
    .bind(id)
    .bind(now_millis())
    .execute(db.pool())
    .await
    .unwrap();
}

/// A shipment row as shipping-status stores it, `days` since its last change, with one product
/// and one history row.
async fn shipment(db: &Database, tenant: &str, order: i64, status: &str, days: i64) {
    let at = now_millis() - days * DAY;
    sqlx::query(
        "INSERT INTO shipments (tenant_id, bling_order_id, status, create_time, update_time) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(tenant)
    .bind(order)
    .bind(status)
    .bind(at)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO shipment_products (tenant_id, bling_order_id, bling_product_id, position, sku, name, quantity) \
         VALUES ($1, $2, 7, 1, 'SKU', 'Camiseta', '1')",
    )
    .bind(tenant)
    .bind(order)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO history (tenant_id, bling_order_id, flow, at, trigger_name, action, outcome) \
         VALUES ($1, $2, 'bling_to_envios360_orders', $3, 'Bling order.updated', 'noted', 'applied')",
    )
    .bind(tenant)
    .bind(order)
    .bind(now_millis())
    .execute(db.pool())
    .await
    .unwrap();
}

async fn texts(db: &Database, sql: &'static str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(db.pool()).await.unwrap()
}

/// Sales and shipments hold customers' names, documents and addresses: the settled ones go after
/// their retention with their history and products; the ones on their way, parked or failed,
/// or with a cancel pending, stay whatever their age; so do other tenants' recent ones.
async fn settled_records_go_and_the_others_stay(sales_db: &Database, shipping_db: &Database) {
    for (id, state, cancel, days) in [
        ("posted-old", "posted", 0, 91),
        ("cancelled-old", "cancelled", 0, 120),
        ("posted-recent", "posted", 0, 89),
        ("posted-cancel-pending", "posted", 1, 200),
        ("parked-old", "parked", 0, 200),
        ("failed-old", "failed", 0, 200),
        ("received-old", "received", 0, 200),
        ("order-created-old", "order_created", 0, 200),
    ] {
        sale(sales_db, id, state, cancel, days).await;
    }
    for (tenant, order, status, days) in [
        ("loja", 1, "SHIPPING_STATUS_DELIVERED", 91),
        ("loja", 2, "SHIPPING_STATUS_CANCELLED", 100),
        ("loja", 3, "SHIPPING_STATUS_IN_TRANSIT", 200),
        ("loja", 4, "SHIPPING_STATUS_DELIVERED", 10),
        ("outra", 1, "SHIPPING_STATUS_DELIVERED", 10),
        ("outra", 5, "SHIPPING_STATUS_UNSPECIFIED", 300),
    ] {
        shipment(shipping_db, tenant, order, status, days).await;
    }

    let done = run_once(sales_db, &ponte_sales_ingest::RETENTION, &cfg(), now_millis()).await.unwrap().unwrap();
    assert!(done.contains(&("sales", 2)), "{done:?}");
    assert_eq!(
        texts(sales_db, "SELECT sale_id FROM sales ORDER BY sale_id").await,
        ["failed-old", "order-created-old", "parked-old", "posted-cancel-pending", "posted-recent", "received-old"]
    );
    assert_eq!(
        texts(sales_db, "SELECT DISTINCT sale_id FROM sale_history ORDER BY sale_id").await,
        texts(sales_db, "SELECT sale_id FROM sales ORDER BY sale_id").await,
        "the deleted sales' history went with them"
    );

    let done = run_once(shipping_db, &ponte_shipping_status::RETENTION, &cfg(), now_millis()).await.unwrap().unwrap();
    assert!(done.contains(&("shipments", 2)), "{done:?}");
    let left = "SELECT tenant_id || ':' || CAST(bling_order_id AS TEXT) FROM shipments ORDER BY 1";
    assert_eq!(texts(shipping_db, left).await, ["loja:3", "loja:4", "outra:1", "outra:5"]);
    for table in ["shipment_products", "history"] {
        let orphans = count(
            shipping_db,
            &format!(
                "SELECT COUNT(*) FROM {table} p WHERE NOT EXISTS (SELECT 1 FROM shipments s \
                 WHERE s.tenant_id = p.tenant_id AND s.bling_order_id = p.bling_order_id)"
            ),
        )
        .await;
        assert_eq!(orphans, 0, "{table}: the deleted shipments' rows went with them");
        assert_eq!(count(shipping_db, &format!("SELECT COUNT(*) FROM {table}")).await, 4, "{table}");
    }

    // A longer setting keeps them all.
    let long = RetentionConfig { sales_days: 365, shipments_days: 365, ..cfg() };
    let done = run_once(sales_db, &ponte_sales_ingest::RETENTION, &long, now_millis()).await.unwrap().unwrap();
    assert!(done.contains(&("sales", 0)), "{done:?}");
}

#[tokio::test]
async fn settled_sales_and_shipments_go_after_their_retention_with_what_hangs_off_them() {
    let mesh = Mesh::start(&[&ponte_sales_ingest::SPEC, &ponte_shipping_status::SPEC]).await;
    let (sales_db, shipping_db) = (mesh.db("sales_ingest").await, mesh.db("shipping_status").await);
    settled_records_go_and_the_others_stay(&sales_db, &shipping_db).await;
    // Each pick can walk its partial index of settled records (with sequential scans off, a
    // query the index's predicate does not cover would still scan the table).
    let picks = [
        (&sales_db, ponte_sales_ingest::RETENTION[1].pick, "sales_settled"),
        (&shipping_db, ponte_shipping_status::RETENTION[1].pick, "shipments_settled"),
    ];
    for (db, pick, index) in picks {
        let mut conn = db.pool().acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
        let explain = format!("EXPLAIN {}", pick.replace("$1", "1").replace("$2", "1000"));
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain)).fetch_all(&mut *conn).await.unwrap();
        assert!(plan.iter().any(|l| l.contains(index)), "{plan:?}");
        sqlx::query("RESET enable_seqscan").execute(&mut *conn).await.unwrap();
    }
}

/// `ponte dev` keeps sales and shipments in SQLite: the same rules work there.
#[tokio::test]
async fn settled_sales_and_shipments_go_on_sqlite_too() {
    let dir = tempfile::tempdir().unwrap();
    let sales_db = Database::sqlite_in(dir.path(), "sales_ingest").await.unwrap();
    sales_db.migrate(ponte_sales_ingest::SPEC.migrations).await.unwrap();
    let shipping_db = Database::sqlite_in(dir.path(), "shipping_status").await.unwrap();
    shipping_db.migrate(ponte_shipping_status::SPEC.migrations).await.unwrap();
    settled_records_go_and_the_others_stay(&sales_db, &shipping_db).await;
}
