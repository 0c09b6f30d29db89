//! A process told to stop (SIGTERM, as a rollout or a scale-down does) wraps up its background
//! work instead of abandoning it: catalog-sync finishes the backfill page in hand, commits it and
//! hands the backfill's lease back at once, so the next process goes on without waiting for the
//! lease to expire, and the catalog arrives exactly once.

use std::time::Duration;

use ponte_proto::v1::{
    Backfill, BackfillScope, BackfillState, GetBackfillRequest, StartBackfillRequest, SyncTarget,
    catalog_sync_service_client::CatalogSyncServiceClient,
};
use ponte_sandbox::common::FaultSettings;
use ponte_tests::{eventually, webhooks::TENANT};
use serde_json::json;

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
