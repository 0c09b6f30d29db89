//! What shipping does not act on, and says why: Bling order events before setup, point-of-sale
//! sales and orders that never reach the release situação are answered SKIPPED with the reason
//! (never a dead letter); a 360 webhook for an order ponte never sent, or with a status it does
//! not know, is stored, answered 2xx and reported in the flow's status; a product 360 rejects is
//! shown on the shipment with the hub's reason; and ListShipments finds the stuck ones.

use ponte_proto::v1::{
    CreateStoreMapRequest, Flow, ListShipmentsRequest, ProductApproval, ShippingStatus, StoreMap,
    mapping_service_client::MappingServiceClient,
};
use ponte_sandbox::bling::{CANAL_PDV, DEPOSITO_GERAL};
use ponte_tests::{
    count,
    webhooks::{TENANT, sign},
};
use reqwest::Method;
use serde_json::json;

use ponte_tests::shipping::{ATENDIDO, EM_ANDAMENTO, ShippingWorld};

/// What shipping-status answered for each Bling event of `order`, oldest first.
async fn answers(world: &ShippingWorld, entity: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT d.state, d.outcome, d.detail FROM inbox_deliveries d JOIN inbox_events e ON e.event_id = d.event_id \
         WHERE d.subscriber = 'shipping-status' AND e.entity_key = $1 ORDER BY d.order_time, d.create_time",
    )
    .bind(entity)
    .fetch_all(world.gateway.db.pool())
    .await
    .unwrap()
}

/// Waits until shipping-status has answered `n` events of `entity` (senders send after
/// answering their caller); the answers.
async fn answered(world: &ShippingWorld, entity: &str, n: usize) -> Vec<(String, String, String)> {
    let done = ponte_tests::eventually(std::time::Duration::from_secs(30), || async {
        let got = answers(world, entity).await;
        got.len() >= n && got.iter().all(|(state, _, _)| state == "delivered")
    })
    .await;
    assert!(done, "{entity}: {:?}", answers(world, entity).await);
    answers(world, entity).await
}

#[tokio::test]
async fn order_events_that_do_not_concern_shipping_are_skipped_with_the_reason() {
    let world = ShippingWorld::start().await;
    let customer = world.customer();
    let product = world.product("CAM-AZ-M", 59.9, 0);

    let early = world.order(customer, &[(product, 1, 59.9)], true).await;
    world.move_order(early, EM_ANDAMENTO).await;
    let got = answered(&world, &format!("order:{early}"), 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(state, outcome, _)| state == "delivered" && outcome == "skipped"), "{got:?}");
    assert!(got[1].2.starts_with("shipping is not set up for tenant 'loja'"), "{got:?}");

    world.set_up(false).await;
    MappingServiceClient::new(world.w.mesh.channel("mapping").await)
        .create_store_map(CreateStoreMapRequest {
            map: Some(StoreMap {
                tenant_id: TENANT.into(),
                cplug_store_id: "loja-centro".into(),
                bling_loja_id: CANAL_PDV,
                bling_deposito_id: DEPOSITO_GERAL,
                create_time: None,
            }),
            validate_only: false,
        })
        .await
        .unwrap();
    let body = json!({"contato": {"id": customer}, "data": "2026-03-02", "dataSaida": "2026-03-02",
        "dataPrevista": "2026-03-02", "numeroLoja": "V-000123", "loja": {"id": CANAL_PDV},
        "itens": [{"produto": {"id": product}, "quantidade": 1, "valor": 59.9, "descricao": "Camiseta"}]});
    let sale = world.bling_api(Method::POST, "/pedidos/vendas", Some(body)).await["data"]["id"].as_i64().unwrap();
    world.move_order(sale, ATENDIDO).await;
    world.move_order(sale, EM_ANDAMENTO).await;
    let kept = world.order(customer, &[(product, 1, 59.9)], true).await;
    world.move_order(kept, ATENDIDO).await;

    let sale_answers = answered(&world, &format!("order:{sale}"), 3).await;
    let details: Vec<&str> = sale_answers.iter().map(|(_, _, d)| d.as_str()).collect();
    assert!(details[1].starts_with("the order is at situação 'Atendido' (9)"), "{details:?}");
    assert_eq!(details[2], format!("a point-of-sale sale (Bling loja {CANAL_PDV}) is not shipped"));
    assert!(answered(&world, &format!("order:{kept}"), 2).await.iter().all(|(_, o, _)| o == "skipped"));
    assert!(world.hub.hub.orders().is_empty() && world.hub.hub.products().is_empty(), "nothing reached 360");
    let dead = count(&world.gateway.db, "SELECT COUNT(*) FROM inbox_deliveries WHERE state = 'dead'").await;
    assert_eq!(dead, 0, "no order event is a dead letter");
}

#[tokio::test]
async fn unknown_360_webhooks_are_stored_answered_and_reported_and_rejections_shown() {
    let world = ShippingWorld::start().await;
    world.set_up(false).await;
    let customer = world.customer();
    let (a, b) = (world.product("CAM-AZ-M", 59.9, 2), world.product("MEIA-01", 12.5, 0));
    let order = world.order(customer, &[(a, 1, 59.9), (b, 2, 12.5)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    world.until_at_hub(order).await;
    let parked = world.order(customer, &[(a, 1, 59.9)], false).await;
    world.move_order(parked, EM_ANDAMENTO).await;
    world.until_shipment(parked, "a reason to wait", |s| !s.waiting_reason.is_empty()).await;

    let rejected = world.hub.hub.products().into_iter().find(|p| p["external_id"].as_str() == Some(&*a.to_string()));
    world.hub.hub.reject_product(rejected.unwrap()["id"].as_str().unwrap(), "Foto com marca d'água").unwrap();
    let s = world
        .until_shipment(order, "the rejection", |s| {
            s.products.iter().any(|p| p.approval() == ProductApproval::Rejected)
        })
        .await;
    let shown = s.products.iter().find(|p| p.bling_product_id == a).unwrap();
    assert_eq!(shown.rejection_reason, "Foto com marca d'água");
    assert_eq!(s.products.iter().find(|p| p.bling_product_id == b).unwrap().approval(), ProductApproval::Pending);
    assert!(s.history.iter().any(|h| h.trigger == "360Envios product.approval_changed"), "{:?}", s.history);

    let secret = world.hub.hub.config().webhook_secret.clone();
    let post = |body: serde_json::Value| {
        let body = body.to_string();
        reqwest::Client::new()
            .post(world.gateway.url(&format!("/webhooks/envios360/{TENANT}")))
            .header("content-type", "application/json")
            .header("X-360-Signature", sign(&secret, body.as_bytes()))
            .body(body)
            .send()
    };
    let unknown_order = json!({"event_id": "u-1", "event": "order.status_changed", "occurred_at": "2026-03-02T14:05:11Z",
        "order": {"id": "o_999", "external_id": "999", "status": "in_transit", "previous_status": "awaiting_shipment"}});
    let unknown_status = json!({"event_id": "u-2", "event": "order.status_changed", "occurred_at": "2026-03-02T14:06:11Z",
        "order": {"id": "o_1", "external_id": order.to_string(), "status": "lost_in_space"}});
    for body in [unknown_order, unknown_status] {
        assert!(post(body).await.unwrap().status().is_success());
    }
    world.until_quiet().await;
    assert_eq!(answers(&world, "order:999").await[0].1, "skipped");
    let shipment = world.shipment(order).await.unwrap();
    assert_eq!(shipment.status(), ShippingStatus::Received, "an unknown status changes nothing");
    let flows = world.sync_status().await;
    let hub_flow = flows.iter().find(|f| f.flow() == Flow::Envios360ToBlingStatus).unwrap();
    assert_eq!(
        hub_flow.last_error,
        format!(
            "360Envios sent status 'lost_in_space' for Bling order {order}, which ponte does not know; nothing changed"
        )
    );
    let counts = hub_flow.shipping.unwrap();
    assert_eq!((counts.received, counts.waiting), (1, 1));

    let stuck = world.shipments(ListShipmentsRequest { stuck: true, ..Default::default() }).await;
    let stuck: Vec<i64> = stuck.iter().map(|s| s.bling_order_id).collect();
    assert_eq!(stuck, [parked]);
    let received =
        world.shipments(ListShipmentsRequest { status: ShippingStatus::Received as i32, ..Default::default() }).await;
    assert_eq!(received.iter().map(|s| s.bling_order_id).collect::<Vec<_>>(), [order]);
    let page = world.shipments(ListShipmentsRequest { page_size: 1, ..Default::default() }).await;
    assert_eq!(page.iter().map(|s| s.bling_order_id).collect::<Vec<_>>(), [parked], "newest first");
}
