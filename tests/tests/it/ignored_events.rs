//! Signed events no ponte service subscribes to (Bling `stock.*`, `invoice.*`) are kept as
//! ignored: answered 2xx, visible through GetEvent, counted, and never among the dead letters.

use ponte_proto::v1::{EventState, GetEventRequest, ListDeadLettersRequest, inbox_service_client::InboxServiceClient};
use ponte_tests::{
    count,
    webhooks::{BlingWorld, bling_body, date},
};
use serde_json::{Value, json};

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

#[tokio::test]
async fn events_nobody_subscribes_to_are_ignored_not_dead_letters() {
    let w = BlingWorld::start(SPECS).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let company = w.company_id();
    let mut ids = Vec::new();
    for (i, event) in ["stock.updated", "invoice.created", "stock.created"].iter().enumerate() {
        let body = bling_body(&format!("ign-{i}"), event, &company, &date(0), json!({"produto": {"id": 1}}));
        let resp = w.post_bling(&gw, body).await;
        assert_eq!(resp.status().as_u16(), 200);
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["status"], "ignored", "{answer}");
        assert!(answer["reason"].as_str().unwrap().contains(event), "{answer}");
        ids.push(answer["eventId"].as_str().unwrap().to_owned());
    }
    // A real dead letter beside them.
    let unusable = bling_body("dead-1", "product.updated", &company, &date(0), json!({"nome": "sem id"}));
    let answer: Value = w.post_bling(&gw, unusable).await.json().await.unwrap();
    assert_eq!(answer["status"], "dead_letter", "{answer}");

    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'ignored'").await, 3);
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_deliveries").await, 0);
    let mut inbox = InboxServiceClient::new(w.mesh.channel("gateway").await);
    let dead = inbox.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner().events;
    assert_eq!(dead.iter().map(|e| e.source_event_id.as_str()).collect::<Vec<_>>(), ["dead-1"]);
    let got = inbox.get_event(GetEventRequest { event_id: ids[0].clone() }).await.unwrap().into_inner().event.unwrap();
    assert_eq!(got.state(), EventState::Ignored);
    assert!(got.dead_reason.contains("stock.updated"), "{}", got.dead_reason);

    let text = ponte_core::metrics::global().encode();
    assert!(
        text.lines().any(|l| l.starts_with("ponte_gateway_events_ignored_total{source=\"bling\"}")),
        "no ignored counter in the metrics"
    );
}
