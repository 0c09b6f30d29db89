//! Webhooks as they really arrive, and outside systems as they really fail: every webhook of an
//! order's life delivered ten times and in reverse order leaves the same final states as the
//! cycle in order (one 360 order, the Bling order Atendido, the shipment delivered); 429 and 5xx
//! storms on both sides delay the shipments but never duplicate a 360 order or product.

use ponte_proto::v1::{EventOutcome, ShippingStatus};
use ponte_sandbox::common::FaultSettings;

use ponte_tests::shipping::{ATENDIDO, EM_ANDAMENTO, ShippingWorld};

#[tokio::test]
async fn webhooks_repeated_ten_times_in_reverse_order_leave_the_same_final_states() {
    let world = ShippingWorld::start().await;
    world.set_up(false).await;
    // Both senders send every webhook twice as well (the same event id each time).
    let twice = FaultSettings { webhook_duplicate_rate: 1.0, seed: Some(7), ..FaultSettings::default() };
    world.w.bling.bling.faults().set(twice.clone());
    world.hub.hub.faults().set(twice);
    let customer = world.customer();
    let product = world.product("CAM-AZ-M", 59.9, 2);

    world.relay.hold();
    let order = world.order(customer, &[(product, 2, 59.9)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    world.relay.until_held(4).await;
    let held = world.relay.release();
    assert_eq!(held.len(), 4, "order.created and order.updated, each sent twice");
    for h in held.iter().rev() {
        for _ in 0..10 {
            assert!(world.relay.deliver(h).await.is_success());
        }
    }
    let hub_id = world.until_at_hub(order).await["id"].as_str().unwrap().to_owned();
    world.until_quiet().await;

    world.relay.hold();
    for status in ["in_packing_list", "awaiting_shipment", "in_transit", "delivered"] {
        world.hub.hub.set_status(&hub_id, status).unwrap();
    }
    world.relay.until_held(8).await;
    let held = world.relay.release();
    assert_eq!(held.len(), 8, "four statuses, each sent twice");
    for h in held.iter().rev() {
        for _ in 0..10 {
            assert!(world.relay.deliver(h).await.is_success());
        }
    }
    world.until_situacao(order, ATENDIDO).await;
    world.until_quiet().await;

    let s = world.shipment(order).await.unwrap();
    assert_eq!((s.status(), s.bling_situacao_id), (ShippingStatus::Delivered, ATENDIDO));
    assert!(!s.tracking_code.is_empty(), "{s:?}");
    assert_eq!(world.hub_orders(order).len(), 1);
    assert_eq!(world.hub.hub.products().len(), 1);
    assert_eq!(world.hub.hub.stats().requests, 2, "one product, one order: nothing repeated");
    assert_eq!(world.bling_order(order)["situacao"]["id"], ATENDIDO);
    let stale = s.history.iter().filter(|h| h.outcome() == EventOutcome::Stale).count();
    assert_eq!(stale, 3, "the three statuses behind 'delivered' changed nothing: {:#?}", s.history);
    let moves = s.history.iter().filter(|h| h.action.contains("moved the Bling order")).count();
    assert_eq!(moves, 1, "{:#?}", s.history);
}

#[tokio::test]
async fn storms_of_429_and_5xx_on_both_sides_delay_but_never_duplicate() {
    let world = ShippingWorld::start().await;
    world.set_up(false).await;
    let customer = world.customer();
    let products: Vec<i64> = (0..3).map(|i| world.product(&format!("SKU-{i}"), 10.0 + f64::from(i), 1)).collect();
    let mut orders = Vec::new();
    for i in 0..4 {
        let lines = [(products[i % 3], 1, 10.0), (products[(i + 1) % 3], 2, 11.0)];
        orders.push(world.order(customer, &lines, true).await);
    }
    let storm = |storm, error_rate| FaultSettings { storm, error_rate, seed: Some(11), ..FaultSettings::default() };
    world.hub.hub.faults().set(storm(8, 0.35));
    for order in &orders {
        world.move_order(*order, EM_ANDAMENTO).await;
    }
    // After the merchant's own calls, which are not ponte's to retry.
    world.w.bling.bling.faults().set(storm(4, 0.2));
    for order in &orders {
        world.until_at_hub(*order).await;
    }
    world.until_quiet().await;
    for order in &orders {
        assert_eq!(world.hub_orders(*order).len(), 1, "order {order} was created more than once");
    }
    assert_eq!(world.hub.hub.products().len(), 3, "each product sent once");
    assert_eq!(world.hub.hub.faults().get().storm, 0, "the whole 429 storm reached ponte");

    // The way back under the same storms.
    for order in &orders {
        let hub_id = world.hub_orders(*order)[0]["id"].as_str().unwrap().to_owned();
        world.hub.hub.set_status(&hub_id, "delivered").unwrap();
    }
    for order in &orders {
        world.until_situacao(*order, ATENDIDO).await;
    }
    world.w.bling.bling.faults().set(FaultSettings::default());
    world.hub.hub.faults().set(FaultSettings::default());
    world.until_quiet().await;
    for order in &orders {
        let s = world.shipment(*order).await.unwrap();
        assert_eq!(s.status(), ShippingStatus::Delivered);
        assert_eq!(world.hub_orders(*order).len(), 1);
    }
    let dead =
        ponte_tests::count(&world.gateway.db, "SELECT COUNT(*) FROM inbox_deliveries WHERE state = 'dead'").await;
    assert_eq!(dead, 0);
}
