//! catalog-sync's side of event delivery, over gRPC against real PostgreSQL: bad events are
//! refused naming the field, an event older than the newest accepted one of its entity is
//! STALE, and an event whose switch is off is SKIPPED saying which.

use ponte_core::time::to_timestamp;
use ponte_proto::v1::{
    CatalogSyncServiceHandleEventRequest, EventOutcome, InboundEvent, Provider,
    catalog_sync_service_client::CatalogSyncServiceClient,
};
use ponte_tests::Mesh;
use sqlx::Row;
use tonic::Code;

fn event(id: &str, entity: &str, at_ms: i64) -> InboundEvent {
    InboundEvent {
        event_id: id.into(),
        tenant_id: "loja".into(),
        source: Provider::Bling as i32,
        source_event_id: format!("bling-{id}"),
        event_type: "order.updated".into(),
        entity_key: entity.into(),
        occurred_at: Some(to_timestamp(at_ms)),
        received_at: Some(to_timestamp(at_ms + 5)),
        payload: b"{}".to_vec(),
        attempt: 1,
    }
}

#[tokio::test]
async fn older_events_are_stale_newer_ones_are_accepted_and_every_one_is_logged() {
    let mesh = Mesh::start(&[&ponte_catalog_sync::SPEC]).await;
    let mut cs = CatalogSyncServiceClient::new(mesh.channel("catalog-sync").await);
    let handle = |e: InboundEvent| {
        let mut cs = cs.clone();
        async move { cs.handle_event(CatalogSyncServiceHandleEventRequest { event: Some(e) }).await }
    };
    let newer = handle(event("e2", "order:1", 2_000)).await.unwrap().into_inner();
    assert_eq!(newer.outcome(), EventOutcome::Skipped);
    assert_eq!(newer.detail, "orders are not sent to Bitrix24 (switch off)");
    let older = handle(event("e1", "order:1", 1_000)).await.unwrap().into_inner();
    assert_eq!(older.outcome(), EventOutcome::Stale);
    assert!(older.detail.contains("order:1"), "{}", older.detail);
    // The same time again is not older; another entity is independent.
    assert_eq!(handle(event("e3", "order:1", 2_000)).await.unwrap().into_inner().outcome(), EventOutcome::Skipped);
    assert_eq!(handle(event("e4", "order:2", 500)).await.unwrap().into_inner().outcome(), EventOutcome::Skipped);

    let db = mesh.db("catalog_sync").await;
    let log: Vec<(String, String)> = sqlx::query("SELECT event_id, outcome FROM event_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [("e2", "skipped"), ("e1", "stale"), ("e3", "skipped"), ("e4", "skipped")];
    assert_eq!(log, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let newest: String = sqlx::query_scalar("SELECT event_id FROM entity_versions WHERE entity_key = 'order:1'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(newest, "e3");

    for (mutate, field) in [
        (Box::new(|e: &mut InboundEvent| e.tenant_id.clear()) as Box<dyn Fn(&mut InboundEvent)>, "event.tenant_id"),
        (Box::new(|e: &mut InboundEvent| e.event_type = "sale.completed".into()), "event.event_type"),
        (Box::new(|e: &mut InboundEvent| e.occurred_at = None), "event.occurred_at"),
        (Box::new(|e: &mut InboundEvent| e.entity_key = ":1".into()), "event.entity_key"),
    ] {
        let mut e = event("bad", "product:9", 1);
        mutate(&mut e);
        let err = handle(e).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(err.message().starts_with(field), "{}", err.message());
    }
    let none = cs.handle_event(CatalogSyncServiceHandleEventRequest { event: None }).await.unwrap_err();
    assert!(none.message().starts_with("event"), "{}", none.message());
    mesh.shutdown().await;
}
