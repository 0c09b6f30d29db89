//! The seed's whole cycle, end to end through the gateway with the Bling and 360Envios
//! sandboxes sending real signed webhooks: setup creates the three situações once; an order
//! moved to Em andamento appears at 360 with only its products (which wait for approval, their
//! images sent along); the hub advancing it moves the Bling order through Em romaneio →
//! Aguardando coleta → Em rota de entrega → Atendido; each of ponte's own situação writes comes
//! back from Bling as a webhook and causes no call to 360.

use ponte_proto::v1::{EventOutcome, Flow, ProductApproval, SetUpAction, ShippingStatus};

use ponte_tests::shipping::{ATENDIDO, EM_ANDAMENTO, ShippingWorld};

fn actions(r: &ponte_proto::v1::SetUpShippingResponse, action: SetUpAction) -> Vec<String> {
    r.steps.iter().filter(|s| s.action == action as i32).map(|s| s.subject.clone()).collect()
}

#[tokio::test]
async fn an_order_goes_through_the_whole_cycle_and_ponte_s_own_writes_come_back_without_a_call_to_360() {
    let world = ShippingWorld::start().await;

    let dry = world.set_up(true).await;
    assert_eq!(actions(&dry, SetUpAction::WouldCreate).len(), 3 + 6, "{dry:?}");
    assert!(actions(&dry, SetUpAction::Created).is_empty());
    let first = world.set_up(false).await;
    assert_eq!(
        actions(&first, SetUpAction::Created)[..3],
        ["situação 'Em romaneio'", "situação 'Aguardando coleta'", "situação 'Em rota de entrega'"]
    );
    assert_eq!(actions(&first, SetUpAction::Created).len(), 3 + 6, "{first:?}");
    let again = world.set_up(false).await;
    assert!(actions(&again, SetUpAction::Created).is_empty(), "a second run creates nothing: {again:?}");
    assert_eq!(actions(&again, SetUpAction::Found).len(), 3 + 6, "{again:?}");
    let romaneio = world.situacao("Em romaneio").await;
    let coleta = world.situacao("Aguardando coleta").await;
    let rota = world.situacao("Em rota de entrega").await;

    let customer = world.customer();
    let (camiseta, meia) = (world.product("CAM-AZ-M", 59.9, 3), world.product("MEIA-01", 12.5, 0));
    let caneca = world.product("CAN-01", 30.0, 1);
    let order = world.order(customer, &[(camiseta, 2, 59.9), (meia, 1, 12.5)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;

    let at_hub = world.until_at_hub(order).await;
    let skus: Vec<&str> = at_hub["items"].as_array().unwrap().iter().map(|i| i["sku"].as_str().unwrap()).collect();
    assert_eq!(skus, ["CAM-AZ-M", "MEIA-01"]);
    let products = world.hub.hub.products();
    let sent: Vec<String> = products.iter().map(|p| p["external_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sent.len(), 2, "only the order's products are sent: {sent:?}");
    assert!(!sent.contains(&caneca.to_string()), "a product in no order is never sent");
    let shirt = products.iter().find(|p| p["external_id"].as_str() == Some(&*camiseta.to_string())).unwrap();
    assert_eq!(shirt["approval_status"], "pending");
    assert_eq!(shirt["images"].as_array().unwrap().len(), 3, "the Bling product's images go with it: {shirt}");
    assert_eq!(at_hub["address"]["zip"], "01304001");
    assert_eq!(at_hub["customer"]["document"], "12345678909");
    let shipment = world.until_shipment(order, "the 360 order", |s| !s.envios360_order_id.is_empty()).await;
    assert_eq!(shipment.status(), ShippingStatus::Received);
    assert!(shipment.products.iter().all(|p| p.approval() == ProductApproval::Pending), "{:?}", shipment.products);
    let hub_calls_after_release = world.hub.hub.stats().requests;
    assert_eq!(hub_calls_after_release, 3, "two products and the order");

    let hub_id = at_hub["id"].as_str().unwrap().to_owned();
    world.hub.hub.approve_product(shirt["id"].as_str().unwrap()).unwrap();
    for (status, situacao) in
        [("in_packing_list", romaneio), ("awaiting_shipment", coleta), ("in_transit", rota), ("delivered", ATENDIDO)]
    {
        world.hub.hub.set_status(&hub_id, status).unwrap();
        world.until_situacao(order, situacao).await;
    }
    // Bling sends each echo after answering ponte's move: wait for the four of them.
    let echoes_after_release = |s: &ponte_proto::v1::Shipment| {
        let released = s.history.iter().position(|h| h.action.starts_with("created 360Envios order"));
        released.map_or(0, |r| s.history[r + 1..].iter().filter(|h| h.trigger == "Bling order.updated").count())
    };
    world.until_shipment(order, "four echoes", |s| echoes_after_release(s) >= 4).await;
    world.until_quiet().await;

    let done = world.shipment(order).await.unwrap();
    assert_eq!(done.status(), ShippingStatus::Delivered);
    assert_eq!(done.bling_situacao_id, ATENDIDO);
    assert!(done.tracking_code.ends_with("BR") && done.tracking_url.contains(&done.tracking_code), "{done:?}");
    assert_eq!(world.hub.hub.stats().requests, hub_calls_after_release, "ponte's own writes echoed back called 360");
    let moves = done.history.iter().filter(|h| h.action.contains("moved the Bling order")).count();
    assert_eq!(moves, 4, "{:#?}", done.history);
    // Each write's echo is recognised as such, or (when the hub's next status overtook it) read
    // and found to change nothing 360 holds: skipped either way.
    let released = done.history.iter().position(|h| h.action.starts_with("created 360Envios order")).unwrap();
    let echoes: Vec<_> = done.history[released + 1..].iter().filter(|h| h.trigger == "Bling order.updated").collect();
    assert_eq!(echoes.len(), 4, "{:#?}", done.history);
    assert!(echoes.iter().all(|h| h.outcome() == EventOutcome::Skipped), "{echoes:#?}");
    assert!(echoes.iter().any(|h| h.action.contains("echoing ponte's own move")), "{echoes:#?}");
    let approved = done.products.iter().find(|p| p.bling_product_id == camiseta).unwrap();
    assert_eq!(approved.approval(), ProductApproval::Approved);
    assert_eq!(world.hub_orders(order).len(), 1);

    let flows = world.sync_status().await;
    let names: Vec<Flow> = flows.iter().map(|f| f.flow()).collect();
    assert_eq!(names, [Flow::BlingToEnvios360Orders, Flow::Envios360ToBlingStatus]);
    for f in &flows {
        // The test's own Bling calls share the account's 3 requests/s: a 429 ponte waited out
        // may be the last error, never after the last success.
        let at = |t: Option<&prost_types::Timestamp>| t.map(ponte_core::time::from_timestamp);
        assert!(f.last_success_time.is_some(), "{f:?}");
        assert!(f.last_error.is_empty() || at(f.last_error_time.as_ref()) <= at(f.last_success_time.as_ref()), "{f:?}");
        assert_eq!(f.shipping.unwrap().delivered, 1);
    }
    assert!(done.history.iter().any(|h| h.outcome() == EventOutcome::Applied));
}
