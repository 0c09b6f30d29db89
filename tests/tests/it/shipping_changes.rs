//! Later Bling changes to released orders, end to end: an edit before dispatch reaches 360 and
//! one after is recorded for a person, not lost; a Bling cancellation cancels at 360, and one
//! after delivery is recorded; an order cancelled before it reached the hub, or parked for a
//! missing address, goes once the merchant releases or fixes it; one released again after its
//! 360 order was cancelled is not sent twice.

use ponte_proto::v1::ShippingStatus;
use serde_json::Value;

use ponte_tests::shipping::{CANCELADO, EM_ANDAMENTO, ShippingWorld};

/// The order's body with item `index`'s quantity set to `quantidade`.
fn edited(world: &ShippingWorld, order: i64, index: usize, quantidade: i64) -> Value {
    let mut body = world.order_body(order);
    body["itens"][index]["quantidade"] = quantidade.into();
    body
}

#[tokio::test]
async fn an_edit_before_dispatch_reaches_360_and_one_after_is_recorded_not_lost() {
    let world = ShippingWorld::start().await;
    world.set_up(false).await;
    let customer = world.customer();
    let (a, b) = (world.product("CAM-AZ-M", 59.9, 1), world.product("MEIA-01", 12.5, 0));
    let order = world.order(customer, &[(a, 2, 59.9)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    let at_hub = world.until_at_hub(order).await;
    let hub_id = at_hub["id"].as_str().unwrap().to_owned();

    // More shirts, and a pair of socks 360 has never seen.
    let mut body = edited(&world, order, 0, 3);
    body["itens"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"produto": {"id": b}, "quantidade": 1, "valor": 12.5,
        "codigo": "MEIA-01", "descricao": "Produto MEIA-01"}));
    world.put_order(order, body).await;
    let forwarded = ponte_tests::eventually(std::time::Duration::from_secs(20), || async {
        let o = world.hub.hub.order(&hub_id).unwrap();
        o["items"].as_array().unwrap().len() == 2 && o["items"][0]["quantity"].as_f64() == Some(3.0)
    })
    .await;
    assert!(forwarded, "the edit never reached 360: {}", world.hub.hub.order(&hub_id).unwrap());
    assert!(world.hub.hub.products().iter().any(|p| p["external_id"].as_str() == Some(&*b.to_string())));

    world.hub.hub.set_status(&hub_id, "in_transit").unwrap();
    let rota = world.situacao("Em rota de entrega").await;
    world.until_situacao(order, rota).await;
    let calls = world.hub.hub.stats().requests;
    world.put_order(order, edited(&world, order, 0, 4)).await;
    let s = world
        .until_shipment(order, "the edit recorded", |s| s.attention.contains("changed in Bling after dispatch"))
        .await;
    assert_eq!(s.attention, "changed in Bling after dispatch, not forwarded (360Envios: in transit)");
    assert_eq!(
        world.hub.hub.order(&hub_id).unwrap()["items"][0]["quantity"].as_f64(),
        Some(3.0),
        "360 keeps what it shipped"
    );
    assert_eq!(world.hub.hub.stats().requests, calls, "nothing is sent for an order in transit");
    let recorded = s.history.iter().find(|h| h.action.contains("recorded for a person")).unwrap();
    assert_eq!(recorded.trigger, "Bling order.updated");
    assert_eq!(world.hub_orders(order).len(), 1);
}

#[tokio::test]
async fn cancellations_reach_360_before_delivery_and_are_recorded_after() {
    let world = ShippingWorld::start().await;
    world.set_up(false).await;
    let customer = world.customer();
    let product = world.product("CAM-AZ-M", 59.9, 0);

    // Released, cancelled in Bling: cancelled at 360; released again: not sent twice.
    let first = world.order(customer, &[(product, 1, 59.9)], true).await;
    world.move_order(first, EM_ANDAMENTO).await;
    let hub_first = world.until_at_hub(first).await["id"].as_str().unwrap().to_owned();
    world.move_order(first, CANCELADO).await;
    world.until_shipment(first, "its cancellation", |s| s.status() == ShippingStatus::Cancelled).await;
    assert_eq!(world.hub.hub.order(&hub_first).unwrap()["status"], "cancelled");
    world.move_order(first, EM_ANDAMENTO).await;
    let again = world.until_shipment(first, "a note", |s| !s.attention.is_empty()).await;
    assert!(
        again.attention.starts_with("released again in Bling after its 360Envios order was cancelled"),
        "{again:?}"
    );
    assert_eq!(world.hub_orders(first).len(), 1, "one 360 order per Bling order");

    // Delivered, then cancelled in Bling: recorded for a person.
    let second = world.order(customer, &[(product, 1, 59.9)], true).await;
    world.move_order(second, EM_ANDAMENTO).await;
    let hub_second = world.until_at_hub(second).await["id"].as_str().unwrap().to_owned();
    world.hub.hub.set_status(&hub_second, "delivered").unwrap();
    world.until_situacao(second, ponte_tests::shipping::ATENDIDO).await;
    world.move_order(second, CANCELADO).await;
    let after = world.until_shipment(second, "a note", |s| !s.attention.is_empty()).await;
    assert_eq!(after.attention, "cancelled in Bling after dispatch, not forwarded (360Envios: delivered)");
    assert_eq!(
        (after.status(), world.hub.hub.order(&hub_second).unwrap()["status"].as_str()),
        (ShippingStatus::Delivered, Some("delivered"))
    );

    // Parked for its address, cancelled before it reached the hub, released and fixed: sent.
    let third = world.order(customer, &[(product, 1, 59.9)], false).await;
    world.move_order(third, EM_ANDAMENTO).await;
    let parked = world.until_shipment(third, "a reason to wait", |s| !s.waiting_reason.is_empty()).await;
    assert_eq!(
        parked.waiting_reason,
        "fill in the delivery address (transporte → endereço de entrega: endereço, número, bairro, município, UF, CEP) in Bling"
    );
    world.move_order(third, CANCELADO).await;
    world.until_shipment(third, "its cancellation", |s| s.status() == ShippingStatus::Cancelled).await;
    world.move_order(third, EM_ANDAMENTO).await;
    world.until_shipment(third, "a reason to wait", |s| s.status() == ShippingStatus::Unspecified).await;
    let mut body = world.order_body(third);
    body["transporte"]["etiqueta"] = serde_json::json!({"nome": "Maria Souza", "endereco": "Rua Augusta", "numero": "1500",
        "municipio": "São Paulo", "uf": "SP", "cep": "01304-001", "bairro": "Consolação"});
    world.put_order(third, body).await;
    world.until_at_hub(third).await;
    let sent = world.until_shipment(third, "the hub's order", |s| s.status() == ShippingStatus::Received).await;
    assert!(sent.waiting_reason.is_empty(), "{sent:?}");
    assert_eq!(world.hub_orders(third).len(), 1);
}
