//! The gateway's dispatcher against real PostgreSQL, Redis and catalog-sync over gRPC: retries
//! until a service is back, dead letters and replay, restarts and killed replicas, two replicas
//! at once, order per entity and coalescing.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use ponte_core::{config::Env, db::Database};
use ponte_proto::v1::{
    DeadLetterFilter, ListDeadLettersRequest, ReplayRequest, inbox_service_client::InboxServiceClient,
    replay_request::Target,
};
use ponte_tests::{
    GatewayHttp, TcpProxy, black_hole, count, eventually,
    webhooks::{BlingWorld, bling_body, date},
};
use serde_json::{Value, json};
use sqlx::Row;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

/// Fast retries, a short poll: what a test can wait for.
fn fast(w: &BlingWorld) -> Env {
    w.mesh
        .env
        .clone()
        .with("PONTE_DISPATCH_BACKOFF_MS", "50")
        .with("PONTE_DISPATCH_MAX_BACKOFF_SECONDS", "1")
        .with("PONTE_DISPATCH_POLL_MS", "200")
}

async fn send(w: &BlingWorld, gw: &GatewayHttp, event_id: &str, event: &str, secs: i64, id: i64) -> Value {
    let body = bling_body(event_id, event, &w.company_id(), &date(secs), json!({"id": id, "nome": "Produto"}));
    let resp = w.post_bling(gw, body).await;
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

async fn catalog_db(w: &BlingWorld) -> Database {
    w.mesh.db("catalog_sync").await
}

/// What catalog-sync handled, in order: (source event id, entity, occurred ms, outcome).
async fn log(db: &Database) -> Vec<(String, String, i64, String)> {
    sqlx::query("SELECT source_event_id, entity_key, occurred_time, outcome FROM event_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// Waits until no event of the inbox is waiting for a delivery.
async fn settled(gw: &GatewayHttp, within: Duration) -> bool {
    let ok = eventually(within, || async {
        count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state IN ('pending', 'received')").await == 0
    })
    .await;
    if !ok {
        let rows: Vec<(String, String, String, i64, String, i64)> = sqlx::query_as(
            "SELECT event_id, subscriber, state, attempts, last_error, next_attempt_time FROM inbox_deliveries ORDER BY create_time",
        )
        .fetch_all(gw.db.pool())
        .await
        .unwrap();
        eprintln!("not settled; now {}: {rows:#?}", ponte_core::time::now_millis());
    }
    ok
}

#[tokio::test]
async fn a_service_that_is_down_gets_its_events_when_it_is_back_and_dead_letters_replay() {
    let w = BlingWorld::start(SPECS).await;
    let proxy = TcpProxy::start(w.mesh.addr("catalog-sync")).await;
    let peers = ponte_core::config::Peers { catalog_sync: format!("http://{}", proxy.addr), ..w.mesh.peers.clone() };
    proxy.cut();
    let gw = w.mesh.start_gateway_http_with(fast(&w), peers.clone(), None).await;
    send(&w, &gw, "down-1", "product.created", 0, 501).await;
    // It fails while catalog-sync is unreachable, and is retried.
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(&gw.db, "SELECT COUNT(*) FROM inbox_deliveries WHERE attempts >= 2 AND state = 'pending'").await == 1
        })
        .await
    );
    let error: String =
        sqlx::query_scalar("SELECT last_error FROM inbox_deliveries").fetch_one(gw.db.pool()).await.unwrap();
    // Refused or cut off, depending on when the proxy dropped the connection.
    assert!(error.starts_with("catalog-sync: Unavailable") || error.starts_with("catalog-sync: Cancelled"), "{error}");
    proxy.restore();
    assert!(settled(&gw, Duration::from_secs(15)).await, "not delivered after catalog-sync came back");
    let cs = catalog_db(&w).await;
    assert_eq!(log(&cs).await.len(), 1);
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'delivered'").await, 1);
    drop(gw);

    // Out of attempts: a dead letter that names the service and the error; replayed, delivered.
    proxy.cut();
    let gw = w.mesh.start_gateway_http_with(fast(&w).with("PONTE_DISPATCH_MAX_ATTEMPTS", "3"), peers, None).await;
    let stored = send(&w, &gw, "down-2", "product.created", 1, 502).await;
    let event_id = stored["eventId"].as_str().unwrap().to_owned();
    assert!(
        eventually(Duration::from_secs(15), || async {
            count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'dead'").await == 1
        })
        .await
    );
    let mut inbox = InboxServiceClient::new(w.mesh.channel("gateway").await);
    let dead = inbox
        .list_dead_letters(ListDeadLettersRequest {
            filter: Some(DeadLetterFilter { reason_contains: "gave up after 3 attempts".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dead.events.len(), 1, "{dead:?}");
    assert_eq!(dead.events[0].event_id, event_id);
    assert!(dead.events[0].dead_reason.starts_with("catalog-sync: "), "{}", dead.events[0].dead_reason);
    assert_eq!(dead.events[0].deliveries[0].attempts, 3);
    proxy.restore();
    let replayed = inbox
        .replay(ReplayRequest { target: Some(Target::Filter(DeadLetterFilter::default())) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.event_ids, std::slice::from_ref(&event_id));
    assert!(settled(&gw, Duration::from_secs(15)).await);
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'delivered'").await, 2);
    assert_eq!(log(&cs).await.len(), 2);
    let again = inbox.replay(ReplayRequest { target: Some(Target::EventId(event_id)) }).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "a delivered event was replayed");
}

/// A service stopping gracefully resets the calls it will not take (an HTTP/2 GOAWAY or
/// RST_STREAM, no gRPC status), which the client reports as INTERNAL: the service never saw the
/// event, so it is tried again, not dead-lettered (a rolling restart lost an event that way).
#[tokio::test]
async fn a_call_reset_by_a_stopping_service_is_retried_not_dead_lettered() {
    let w = BlingWorld::start(SPECS).await;
    let proxy = TcpProxy::start(w.mesh.addr("catalog-sync")).await;
    let peers = ponte_core::config::Peers { catalog_sync: format!("http://{}", proxy.addr), ..w.mesh.peers.clone() };
    proxy.reset_next_calls(2);
    let gw = w.mesh.start_gateway_http_with(fast(&w), peers, None).await;
    send(&w, &gw, "reset-1", "product.created", 0, 601).await;
    assert!(settled(&gw, Duration::from_secs(15)).await, "not delivered after the resets");
    let (state, attempts, error): (String, i64, String) =
        sqlx::query_as("SELECT state, attempts, last_error FROM inbox_deliveries")
            .fetch_one(gw.db.pool())
            .await
            .unwrap();
    assert_eq!(state, "delivered", "{error}");
    assert_eq!(proxy.resets_left(), 0, "the calls were not reset");
    assert!(attempts >= 3, "two resets, then delivered: {attempts} attempts");
    assert!(error.starts_with("catalog-sync: Internal: h2 protocol error"), "{error}");
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'delivered'").await, 1);
    assert_eq!(log(&catalog_db(&w).await).await.len(), 1, "catalog-sync applied the event once");
}

#[tokio::test]
async fn events_stored_before_a_crash_are_delivered_after_the_restart() {
    let w = BlingWorld::start(SPECS).await;
    // Stored, then the process dies before its dispatcher got to them.
    let gw = w.mesh.start_gateway_http(fast(&w).with("PONTE_DISPATCH_ENABLED", "false")).await;
    for i in 0..10 {
        send(&w, &gw, &format!("crash-{i}"), "product.created", i, 600 + i).await;
    }
    gw.kill();
    let cs = catalog_db(&w).await;
    assert!(log(&cs).await.is_empty());

    // Killed in the middle of a delivery: its claim is held by a process that is gone.
    let hang =
        ponte_core::config::Peers { catalog_sync: format!("http://{}", black_hole().await), ..w.mesh.peers.clone() };
    let env = fast(&w).with("PONTE_DISPATCH_DEADLINE_SECONDS", "2").with("PONTE_DISPATCH_LEASE_SECONDS", "3");
    let gw = w.mesh.start_gateway_http_with(env.clone(), hang, None).await;
    send(&w, &gw, "crash-mid", "product.created", 20, 700).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            count(&gw.db, "SELECT COUNT(*) FROM inbox_deliveries WHERE state = 'in_flight'").await >= 1
        })
        .await
    );
    gw.kill();

    let gw = w.mesh.start_gateway_http(env).await;
    assert!(settled(&gw, Duration::from_secs(20)).await, "events stored before the crash were not delivered");
    let handled = log(&cs).await;
    assert_eq!(handled.len(), 11, "{handled:?}");
    let ids: HashSet<_> = handled.iter().map(|h| h.0.clone()).collect();
    assert_eq!(ids.len(), 11);
    assert!(ids.contains("crash-mid"));
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once_and_each_entity_in_order() {
    let w = BlingWorld::start(SPECS).await;
    let a = w.mesh.start_gateway_http(fast(&w)).await;
    let b = w.mesh.start_gateway_http(fast(&w)).await;
    // 20 products, 5 updates each; each round of updates reaches the two replicas alternately.
    for round in 0..5_i64 {
        let sends = (0..20_i64).map(|p| {
            let gw = if (p + round) % 2 == 0 { &a } else { &b };
            let id = format!("rep-{p}-{round}");
            let w = &w;
            async move { send(w, gw, &id, "product.updated", round, 800 + p).await }
        });
        futures::future::join_all(sends).await;
    }
    assert!(settled(&a, Duration::from_secs(30)).await);
    let cs = catalog_db(&w).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let handled = log(&cs).await;
    let ids: HashSet<_> = handled.iter().map(|h| h.0.clone()).collect();
    assert_eq!(ids.len(), handled.len(), "an event was delivered twice");
    let mut last: HashMap<String, i64> = HashMap::new();
    for (id, entity, occurred, outcome) in &handled {
        assert_eq!(outcome, "skipped", "{id} was {outcome}: events of one entity arrived out of order");
        if let Some(prev) = last.insert(entity.clone(), *occurred) {
            assert!(*occurred > prev, "{entity}: {id} handled after a newer event");
        }
    }
    assert_eq!(last.len(), 20);
    let newest = chrono::DateTime::parse_from_rfc3339(&date(4)).unwrap().timestamp_millis();
    assert!(last.values().all(|t| *t == newest), "an entity's newest update was not handled");
    // What was not delivered was replaced by a newer update of its product.
    let (delivered, coalesced) = (
        count(&a.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'delivered'").await,
        count(&a.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'coalesced'").await,
    );
    assert_eq!((delivered + coalesced, delivered), (100, handled.len() as i64));
}

#[tokio::test]
async fn five_updates_of_one_product_are_applied_in_order_or_coalesced_to_the_last() {
    let w = BlingWorld::start(&[
        &ponte_auth_token::SPEC,
        &ponte_catalog_sync::SPEC,
        &ponte_shipping_status::SPEC,
        &ponte_gateway::SPEC,
    ])
    .await;
    let proxy = TcpProxy::start(w.mesh.addr("catalog-sync")).await;
    let peers = ponte_core::config::Peers { catalog_sync: format!("http://{}", proxy.addr), ..w.mesh.peers.clone() };
    let gw = w.mesh.start_gateway_http_with(fast(&w), peers, None).await;
    let cs = catalog_db(&w).await;

    // Sent one after another while catalog-sync answers: each is handled, in order.
    for i in 0..5 {
        send(&w, &gw, &format!("p1-{i}"), "product.updated", i, 901).await;
    }
    assert!(settled(&gw, Duration::from_secs(10)).await);
    let handled: Vec<_> = log(&cs).await.into_iter().filter(|h| h.1 == "product:901").collect();
    assert!(!handled.is_empty());
    assert!(handled.windows(2).all(|p| p[0].2 < p[1].2), "{handled:?}");
    assert_eq!(handled.last().unwrap().0, "p1-4");
    assert!(handled.iter().all(|h| h.3 == "skipped"), "{handled:?}");

    // Queued while catalog-sync is unreachable: the five collapse into the last one. Order
    // events go to shipping-status too, where every one is delivered on its own.
    proxy.cut();
    for i in 0..5 {
        send(&w, &gw, &format!("p2-{i}"), "product.updated", 10 + i, 902).await;
        send(&w, &gw, &format!("o-{i}"), "order.updated", 10 + i, 77).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    assert!(settled(&gw, Duration::from_secs(20)).await);
    let handled: Vec<_> = log(&cs).await.into_iter().filter(|h| h.1 != "product:901").collect();
    let product: Vec<_> = handled.iter().filter(|h| h.1 == "product:902").collect();
    assert_eq!(product.len(), 1, "{handled:?}");
    assert_eq!(product[0].0, "p2-4");
    let order: Vec<_> = handled.iter().filter(|h| h.1 == "order:77").collect();
    assert_eq!(order.len(), 1, "{handled:?}");
    assert_eq!(order[0].0, "o-4");
    assert_eq!(
        count(
            &gw.db,
            "SELECT COUNT(*) FROM inbox_deliveries WHERE subscriber = 'catalog-sync' AND state = 'coalesced' \
             AND lane IN ('loja|product:902', 'loja|order:77')"
        )
        .await,
        8
    );
    assert_eq!(
        count(
            &gw.db,
            "SELECT COUNT(*) FROM inbox_deliveries WHERE subscriber = 'shipping-status' AND state <> 'coalesced'"
        )
        .await,
        5,
        "order events to shipping-status must not be coalesced"
    );
}

/// Two deliveries of one event finishing at the same moment in two transactions (catalog-sync
/// and shipping-status each get order events): the second to commit must see the first's result,
/// or the event stays pending with nothing left to deliver.
#[tokio::test]
async fn two_deliveries_of_one_event_finishing_together_settle_the_event() {
    let url = ponte_tests::fresh_database().await;
    let db = Database::connect(&url, ponte_gateway::SPEC.schema, 4, Duration::from_secs(5)).await.unwrap();
    db.migrate(ponte_gateway::SPEC.migrations).await.unwrap();
    sqlx::query(
        "INSERT INTO inbox_events (event_id, source, source_event_id, event_type, entity_key, state, payload, \
         receive_time) VALUES ('ev', 'bling', 'e-1', 'order.updated', 'order:1', 'pending', $1, 0)",
    )
    .bind(b"{}".to_vec())
    .execute(db.pool())
    .await
    .unwrap();
    for sub in ["catalog-sync", "shipping-status"] {
        sqlx::query(
            "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, \
             next_attempt_time, lease_owner, create_time) VALUES ('ev', $1, 'loja|order:1', 0, 1, 'in_flight', 0, 'r', 0)",
        )
        .bind(sub)
        .execute(db.pool())
        .await
        .unwrap();
    }
    let finish = |sub: &'static str, state: &'static str| {
        let db = db.clone();
        async move {
            let mut tx = db.pool().begin().await.unwrap();
            sqlx::query("UPDATE inbox_deliveries SET state = $1 WHERE event_id = 'ev' AND subscriber = $2")
                .bind(state)
                .bind(sub)
                .execute(&mut *tx)
                .await
                .unwrap();
            (tx, db)
        }
    };
    // Both deliveries are written; the first settles (the event is still pending for it).
    let (mut first, _) = finish("catalog-sync", "delivered").await;
    let (mut second, db2) = finish("shipping-status", "dead").await;
    let settled = ponte_gateway::inbox::settle(&mut first, db.backend(), "ev").await.unwrap();
    assert_eq!(settled.label(), "pending");
    // The second settles while the first is still open, then the first commits.
    let second_settles = tokio::spawn(async move {
        let state = ponte_gateway::inbox::settle(&mut second, db2.backend(), "ev").await.unwrap();
        second.commit().await.unwrap();
        state
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.commit().await.unwrap();
    assert_eq!(second_settles.await.unwrap().label(), "dead");
    let state: String =
        sqlx::query_scalar("SELECT state FROM inbox_events WHERE event_id = 'ev'").fetch_one(db.pool()).await.unwrap();
    assert_eq!(state, "dead", "every delivery has finished, so the event has too");
}

/// The shared blocks a statement's plan read (`EXPLAIN (ANALYZE, BUFFERS)`, its top node).
async fn blocks_read(conn: &mut sqlx::PgConnection, sql: &str) -> (u64, Vec<String>) {
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")))
        .fetch_all(conn)
        .await
        .unwrap();
    let top = plan.iter().find(|l| l.trim_start().starts_with("Buffers: shared")).expect("a Buffers line");
    let blocks = top
        .split_whitespace()
        .filter_map(|w| {
            w.split_once('=').and_then(|(k, v)| ["hit", "read"].contains(&k).then(|| v.parse::<u64>().ok()))
        })
        .flatten()
        .sum();
    (blocks, plan)
}

/// A gateway database whose 20,000 settled deliveries (in 5,000 lanes) were analysed while
/// nothing was pending, a connection to it on the gateway's schema, and now (epoch ms). The
/// database lives as long as the first value.
async fn analysed_while_quiet() -> (std::sync::Arc<ponte_tests::TestDatabase>, sqlx::PgConnection, i64) {
    let url = ponte_tests::fresh_database().await;
    let db = Database::connect(&url, "gateway", 2, Duration::from_secs(5)).await.unwrap();
    db.migrate(ponte_gateway::SPEC.migrations).await.unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("SET search_path = gateway").execute(&mut conn).await.unwrap();
    let now = ponte_core::time::now_millis();
    sqlx::query(
        "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, next_attempt_time, \
         create_time) SELECT 'old-' || i, 'catalog-sync', 'loja|product:' || (i % 5000), $1 - 1000000 + i, 1, \
         'delivered', $1 - 1000000 + i, $1 - 1000000 + i FROM generate_series(1, 20000) AS i",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE inbox_deliveries").execute(&mut conn).await.unwrap();
    (url, conn, now)
}

/// A claim's work follows the queue, not the planner's statistics. A table of settled
/// deliveries is analysed while nothing is pending; then a burst is queued in 300 lanes, the
/// statistics still saying that nothing is pending (as on a large table, until autoanalyze
/// comes). The claim reads a few blocks per queued delivery: chosen by those statistics, the
/// lane check had become an anti-join that read the whole queue for each candidate.
#[tokio::test]
async fn a_claim_reads_the_queue_once_while_the_statistics_still_say_nothing_is_pending() {
    let (_url, mut conn, now) = analysed_while_quiet().await;
    // The burst: 3,000 deliveries, ten in each of 300 lanes.
    sqlx::query(
        "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, next_attempt_time, \
         create_time) SELECT 'new-' || i, 'catalog-sync', 'loja|product:' || (i % 300), $1 + i, 1, 'pending', $1, \
         $1 FROM generate_series(1, 3000) AS i",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();

    let heads = ponte_gateway::dispatch::heads_sql(ponte_core::db::Backend::Postgres)
        .replace("$1", &(now + 1).to_string())
        .replace("$2", "64");
    let (blocks, plan) = blocks_read(&mut conn, &heads).await;
    let plan = plan.join("\n");
    assert!(plan.contains("rows=64 loops=1"), "64 heads claimed:\n{plan}");
    assert!(blocks < 30_000, "the claim read {blocks} blocks for 3,000 queued deliveries:\n{plan}");
    // Each head is its lane's oldest delivery.
    let lanes: Vec<(String, String, String, i64, i64)> =
        sqlx::query_as(sqlx::AssertSqlSafe(heads)).fetch_all(&mut conn).await.unwrap();
    assert_eq!(lanes.len(), 64);
    assert_eq!(lanes.iter().map(|l| &l.2).collect::<HashSet<_>>().len(), 64, "one head per lane");
    for (event, _, lane, _, queued_behind) in &lanes {
        assert_eq!(*queued_behind, 1, "{event}: nine more wait in {lane}");
        let n: i64 = event.trim_start_matches("new-").parse().unwrap();
        let first = if n % 300 == 0 { 300 } else { n % 300 };
        assert_eq!(n, first, "{event} heads {lane}");
    }
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of `sql` run as a prepared statement with `args`, its plan
/// custom or generic (as a connection's cached statement may come to be): the blocks read
/// and the plan. Run in a transaction that is rolled back.
async fn blocks_prepared(conn: &mut sqlx::PgConnection, sql: &str, args: &str, generic: bool) -> (u64, String) {
    let mode = if generic { "force_generic_plan" } else { "force_custom_plan" };
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL plan_cache_mode = {mode}"))).execute(&mut *conn).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("PREPARE probe AS {sql}"))).execute(&mut *conn).await.unwrap();
    let (blocks, plan) = blocks_read(conn, &format!("EXECUTE probe({args})")).await;
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
    sqlx::query("DEALLOCATE probe").execute(&mut *conn).await.unwrap();
    (blocks, format!("{mode}:\n{}", plan.join("\n")))
}

/// A delivery's work follows its lane, not the queue, while the statistics still say that
/// nothing is pending. A table of settled deliveries is analysed while nothing is pending; then
/// 30,000 are queued in 3,000 lanes, and 20,000 others are leased and finished. Claiming 64,
/// reading a lane's queue (coalescing), asking whether a delivery waits in a lane, and
/// completing a delivery each read a few blocks per delivery they handle, with a custom plan and
/// with the generic one a connection's cached statement may switch to. They had each read the
/// whole queue: the look-ups took the due index (believed empty) and filtered it, the
/// completion walked the index of leases, and the claim read every due delivery before sorting.
#[tokio::test]
async fn a_delivery_s_statements_read_its_lane_not_the_queue_while_the_statistics_say_nothing_is_pending() {
    use ponte_gateway::dispatch::{complete_alone_sql, heads_sql, lane};

    let (_url, mut conn, now) = analysed_while_quiet().await;
    // The burst: 30,000 deliveries, ten in each of 3,000 lanes; lane 7's oldest is in flight.
    sqlx::query(
        "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, next_attempt_time, \
         create_time, lease_owner) SELECT 'new-' || i, 'catalog-sync', 'loja|product:' || (i % 3000), $1 + i, 1, \
         CASE WHEN i = 7 THEN 'in_flight' ELSE 'pending' END, $1, $1, CASE WHEN i = 7 THEN 'replica-a' ELSE '' END \
         FROM generate_series(1, 30000) AS i",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();
    // 20,000 deliveries went through a lease and finished: the index of leases keeps their
    // entries until vacuum comes.
    for state in ["in_flight", "delivered"] {
        sqlx::query("UPDATE inbox_deliveries SET state = $1, lease_until = 1 WHERE event_id LIKE 'old-%'")
            .bind(state)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO inbox_events (event_id, source, source_event_id, tenant_id, event_type, entity_key, state, \
         payload, receive_time, account, lane) VALUES ('new-7', 'bling', 'src-7', 'loja', 'product.updated', \
         'product:7', 'pending', '\\x7b7d', $1, 'acct', 'loja|product:7')",
    )
    .bind(now)
    .execute(&mut conn)
    .await
    .unwrap();

    for generic in [false, true] {
        let (blocks, plan) = blocks_prepared(
            &mut conn,
            &heads_sql(ponte_core::db::Backend::Postgres),
            &format!("{}, 64", now + 1),
            generic,
        )
        .await;
        assert!(plan.contains("rows=64 loops=1"), "64 heads claimed:\n{plan}");
        assert!(blocks < 3_000, "the claim of 64 read {blocks} blocks for 30,000 queued deliveries:\n{plan}");

        let (blocks, plan) =
            blocks_prepared(&mut conn, &lane::queue_sql(), "'catalog-sync', 'loja|product:8'", generic).await;
        assert!(plan.contains("rows=10 loops=1"), "lane 8 holds ten:\n{plan}");
        assert!(blocks < 100, "reading one lane of ten read {blocks} blocks:\n{plan}");

        let (blocks, plan) =
            blocks_prepared(&mut conn, &lane::waiting_sql(), "'catalog-sync', 'loja|product:9'", generic).await;
        assert!(plan.contains("rows=1 loops=1"), "lane 9 has a delivery waiting:\n{plan}");
        assert!(blocks < 100, "asking whether a lane has a delivery waiting read {blocks} blocks:\n{plan}");

        let completion = format!("'delivered', {now}, '', 'applied', '', {now}, 'new-7', 'catalog-sync', 'replica-a'");
        let (blocks, plan) = blocks_prepared(&mut conn, &complete_alone_sql(), &completion, generic).await;
        assert!(
            plan.lines().nth(1).is_some_and(|top| top.contains("rows=1 loops=1")),
            "one delivery completed:\n{plan}"
        );
        assert!(blocks < 200, "completing a delivery read {blocks} blocks:\n{plan}");
    }
    // What completing says, on the statement the dispatcher runs: nine more wait in lane 7.
    let waiting: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(complete_alone_sql()))
        .bind("delivered")
        .bind(now)
        .bind("")
        .bind("applied")
        .bind("")
        .bind(now)
        .bind("new-7")
        .bind("catalog-sync")
        .bind("replica-a")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(waiting, 1);
    let state: String = sqlx::query_scalar("SELECT state FROM inbox_events WHERE event_id = 'new-7'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(state, "delivered");
}
