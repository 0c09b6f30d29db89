use ponte_core::{
    TenantId,
    config::{Env, Peers},
    service::Shared,
};
use ponte_proto::v1::EventOutcome;

use super::*;
use crate::{
    inbox::{EventState, NewEvent, Stored, Writer},
    sources::{Bling, WebhookSource},
};

fn event(id: &str, entity: &str, at: i64) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        source: "bling",
        source_event_id: id.into(),
        tenant: Some(TenantId::parse("loja").unwrap()),
        account: "c".into(),
        event_type: "product.updated".into(),
        entity_key: entity.into(),
        state: EventState::Pending,
        dead_reason: String::new(),
        payload: b"{}".to_vec(),
        headers_json: "{}".into(),
        traceparent: String::new(),
        occurred_time: Some(at),
        receive_time: now_millis(),
        routes: Bling::routes("product.updated"),
    }
}

/// `ponte dev` keeps the inbox in SQLite: storing, deduplicating, claiming one delivery per
/// lane and coalescing work there too.
#[tokio::test]
async fn the_inbox_works_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::sqlite_in(dir.path(), "gateway").await.unwrap();
    db.migrate(crate::SPEC.migrations).await.unwrap();
    let mut tasks = Vec::new();
    let wake = Wake::new();
    let writer = Writer::spawn(db.clone(), 2, wake.clone(), &mut tasks);
    assert_eq!(writer.store(event("e1", "product:1", 1)).await.unwrap(), Stored::Inserted);
    // The commit woke this gateway's dispatcher.
    tokio::time::timeout(Duration::from_secs(5), wake.wait()).await.expect("the writer woke the dispatcher");
    assert_eq!(writer.store(event("e1", "product:1", 1)).await.unwrap(), Stored::Duplicate);
    for (i, id) in ["e2", "e3"].iter().enumerate() {
        writer.store(event(id, "product:1", 2 + i as i64)).await.unwrap();
    }
    writer.store(event("e4", "product:2", 1)).await.unwrap();

    let deps = Shared::memory().deps(db.clone(), Peers::local(1), Env::default());
    let cfg = DispatchConfig::from_env(&Env::default()).unwrap();
    let d = Dispatcher::new(&deps, cfg, Lookups::new(deps.auth_token_channel().unwrap()), wake).unwrap();
    let claimed = d.claims.claim(10).await.unwrap();
    let mut got: Vec<_> = claimed.iter().map(|c| (c.event.source_event_id.clone(), c.attempt)).collect();
    got.sort();
    // One per lane; product:1's three queued updates collapse into the newest.
    assert_eq!(got, [("e3".to_owned(), 1), ("e4".to_owned(), 1)]);
    assert!(d.claims.claim(10).await.unwrap().is_empty(), "a lane with a delivery in flight gave out another");
    let coalesced: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox_events WHERE state = 'coalesced'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(coalesced, 2);
    let c = claimed.into_iter().find(|c| c.event.source_event_id == "e3").unwrap();
    assert_eq!(c.lane, "loja|product:1");
    let done = Completion::Delivered { outcome: EventOutcome::Skipped, detail: "ok".into() };
    let owner = d.claims.owner();
    assert_eq!(complete(&db, owner, &c, &done).await.unwrap(), Completed::Recorded(Successor::Unknown));
    let st: String = sqlx::query_scalar("SELECT state FROM inbox_events WHERE source_event_id = 'e3'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(st, "delivered");
    // Recorded once: the delivery is no longer this replica's.
    assert_eq!(complete(&db, owner, &c, &done).await.unwrap(), Completed::LeaseLost);
    assert!(!successor_waiting(&db, &c).await.unwrap());
}
