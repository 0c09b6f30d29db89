//! A process told to stop (SIGTERM, as a rollout or a scale-down does) wraps up its background
//! work instead of abandoning it: catalog-sync finishes the backfill page in hand, commits it and
//! hands the backfill's lease back at once, so the next process goes on without waiting for the
//! lease to expire, and the catalog arrives exactly once. sales-ingest turns NOT_SERVING, finishes
//! the step of the sale in hand (its Bling call under way), hands the sale back and exits 0
//! within its grace; the next process posts the rest at once, and the sale is posted once.

use std::time::{Duration, Instant};

use ponte_proto::v1::{
    Backfill, BackfillScope, BackfillState, GetBackfillRequest, StartBackfillRequest, SyncTarget,
    catalog_sync_service_client::CatalogSyncServiceClient,
};
use ponte_sandbox::common::FaultSettings;
use ponte_tests::{count, eventually, webhooks::TENANT};
use serde_json::json;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::ops_mesh::ProcessMesh;

const PRODUCTS: usize = 500;

async fn get(mesh: &ProcessMesh, id: &str) -> Backfill {
    let req = GetBackfillRequest { backfill_id: id.to_owned() };
    let mut cs = CatalogSyncServiceClient::new(mesh.channel("catalog-sync").await);
    cs.get_backfill(req).await.unwrap().into_inner().backfill.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_catalog_sync_finishes_its_backfill_page_and_hands_the_lease_back_at_once() {
    let mut mesh = crate::ops_mesh::start(0, &[]).await;
    for i in 0..PRODUCTS {
        mesh.bling.bling.seed_product(json!({"nome": format!("Produto {i}"), "codigo": format!("P-{i}"), "preco": 10}));
    }
    // Each Bitrix24 call takes a while, so that a page (100 products) is in hand when the
    // process is told to stop.
    mesh.portal.portal.faults().set(FaultSettings { latency_ms: 400, ..Default::default() });
    let started = CatalogSyncServiceClient::new(mesh.channel("catalog-sync").await)
        .start_backfill(StartBackfillRequest {
            tenant_id: TENANT.into(),
            target: SyncTarget::Bitrix24 as i32,
            scope: BackfillScope::Products as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .backfill
        .unwrap();
    let id = started.backfill_id;
    // The first page is committed and the second is under way.
    let under_way = eventually(Duration::from_secs(60), || async {
        get(&mesh, &id).await.pages_done >= 1 && mesh.portal.portal.products().len() > 100
    })
    .await;
    assert!(under_way, "the backfill never got to its second page");

    let index = mesh.procs.iter().position(|p| p.service == "catalog-sync").unwrap();
    let exit = mesh.stop(index).await;
    assert!(exit.success(), "catalog-sync exited with {exit}");

    // The page in hand was finished and committed: the portal holds exactly the committed pages.
    let db = mesh.db("catalog_sync").await;
    let pages: i64 = sqlx::query_scalar("SELECT pages_done FROM backfills WHERE backfill_id = $1")
        .bind(&id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(pages >= 2, "the page in hand was not committed: {pages} pages done");
    let written = mesh.portal.portal.products().len();
    assert_eq!(written, usize::try_from(pages).unwrap() * 100, "products written beyond the checkpoint");

    // And its lease was handed back, not left to expire.
    let mut redis =
        redis::Client::open(ponte_tests::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let lease = format!("{}lock:backfill:{id}", mesh.setting("PONTE_REDIS_PREFIX"));
    let held: bool = redis::cmd("EXISTS").arg(&lease).query_async(&mut redis).await.unwrap();
    assert!(!held, "the backfill's lease is still held after the process stopped");

    // The next process goes on from the checkpoint and the catalog arrives exactly once.
    mesh.portal.portal.faults().set(FaultSettings::default());
    mesh.spawn("catalog-sync").await;
    let done = eventually(Duration::from_secs(60), || async {
        get(&mesh, &id).await.state == BackfillState::Succeeded as i32
    })
    .await;
    let last = get(&mesh, &id).await;
    assert!(done, "the backfill never finished: {last:?}");
    let counts = last.counts.unwrap();
    assert_eq!((counts.products, counts.created, counts.failed), (PRODUCTS as u64, PRODUCTS as u64, 0));
    assert_eq!(mesh.portal.portal.products().len(), PRODUCTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_sales_ingest_turns_not_serving_finishes_its_step_and_hands_the_sale_back_at_once() {
    const GRACE: u64 = 20;
    // A lease far longer than the test: a sale taken over before it expires was handed back.
    let mut mesh = crate::ops_mesh::start_all(
        1,
        &[
            ("PONTE_SHUTDOWN_GRACE_SECONDS", GRACE.to_string()),
            ("PONTE_SALES_LEASE_SECONDS", "600".to_owned()),
            ("PONTE_SALES_SCAN_MS", "100".to_owned()),
        ],
    )
    .await;
    let product = crate::ops_mesh::set_up_till(&mesh).await;
    let deposito = ponte_sandbox::bling::DEPOSITOS[0].0;
    let db = mesh.db("sales_ingest").await;
    let state = || async {
        sqlx::query_as::<_, (String, String)>("SELECT state, lease_owner FROM sales WHERE sale_id = 'V-STOP'")
            .fetch_optional(db.pool())
            .await
            .unwrap()
    };
    let index = mesh.procs.iter().position(|p| p.service == "sales-ingest").unwrap();
    let first = mesh.procs[index].grpc;

    // Every Bling call takes a while, so that one is under way when the process is told to stop.
    mesh.bling.bling.faults().set(FaultSettings { latency_ms: 2500, ..Default::default() });
    crate::ops_mesh::push_sale(&mesh, "stop-sale", crate::ops_mesh::sale("V-STOP", "loja-centro"), None).await;
    let held = eventually(Duration::from_secs(10), || async {
        state().await.is_some_and(|(s, owner)| s == "received" && !owner.is_empty())
    })
    .await;
    assert!(held, "the sale was never taken: {:?}", state().await);
    // The replacement starts (a rollout's surge), then the first process is told to stop while
    // it posts the sale's order.
    mesh.spawn("sales-ingest").await;
    let at_sigterm = state().await;
    assert_eq!(at_sigterm.as_ref().map(|(s, _)| s.as_str()), Some("received"), "the order was made too soon");

    // Readiness, watched on the stopping process itself.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{first}")).unwrap().connect().await.unwrap();
    let mut health =
        HealthClient::new(channel).watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(health.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    // When readiness turns NOT_SERVING, the sale is still in hand: it turns first.
    let watch_db = mesh.db("sales_ingest").await;
    let watched = tokio::spawn(async move {
        while let Ok(Some(m)) = health.message().await {
            if m.status() == ServingStatus::NotServing {
                let then: (String, String) =
                    sqlx::query_as("SELECT state, lease_owner FROM sales WHERE sale_id = 'V-STOP'")
                        .fetch_one(watch_db.pool())
                        .await
                        .unwrap();
                return Some((Instant::now(), then));
            }
        }
        None
    });
    let sigterm = Instant::now();
    let exit = mesh.stop(index).await;
    let took = sigterm.elapsed();
    assert!(exit.success(), "sales-ingest exited with {exit}");
    assert!(took < Duration::from_secs(GRACE), "stopping took {took:?}, beyond the grace of {GRACE} s");
    let (not_serving, then) = watched.await.unwrap().expect("readiness never turned NOT_SERVING");
    assert!(not_serving.duration_since(sigterm) < took, "NOT_SERVING came after the process ended");
    assert!(then.0 == "received" && !then.1.is_empty(), "the sale was no longer in hand at NOT_SERVING: {then:?}");

    // The step in hand (the order) was finished and recorded before the process went.
    let after = state().await.unwrap();
    assert_ne!(after.0, "received", "the step in hand was abandoned");
    let orders = || mesh.bling.bling.orders().into_iter().filter(|o| o["numeroLoja"] == "V-STOP").count();
    assert_eq!(orders(), 1, "the order in hand was not made");

    // The replacement takes the sale at once (the lease had ten minutes to run) and posts it.
    let posted =
        eventually(Duration::from_secs(30), || async { state().await.is_some_and(|(s, _)| s == "posted") }).await;
    assert!(posted, "the sale was not taken over: {:?}", state().await);
    assert_eq!(orders(), 1, "the sale was posted twice");
    assert_eq!(mesh.bling.bling.stock(product, deposito), rust_decimal::Decimal::from(99), "written off once");
    let handed =
        count(&db, "SELECT COUNT(*) FROM sale_history WHERE sale_id = 'V-STOP' AND action = 'order created'").await;
    assert_eq!(handed, 1, "the order step ran twice");
}
