//! Sales undone or moved: a cancellation after the sale was posted returns its stock and
//! cancels the order; one that comes before its sale keeps the late sale from ever being posted;
//! two stores write off on their own depósitos, and a sale posted to the wrong store is moved.

use ponte_proto::v1::{MoveSaleRequest, SaleState};
use ponte_tests::webhooks::TENANT;
use rust_decimal::Decimal;

use crate::sales_support::{DEPOSITO_CENTRO, DEPOSITO_GERAL, SalesWorld, camisetas};

fn camiseta_stock(w: &SalesWorld, deposito: i64) -> Decimal {
    w.world.bling.bling.stock(w.products["CAM-AZ-M"], deposito)
}

#[tokio::test]
async fn a_cancellation_after_posting_returns_the_stock_and_cancels_the_order() {
    let w = SalesWorld::start().await;
    let id = w.ring_up(camisetas("V-1"));
    let posted = w.wait_for(&id, SaleState::Posted).await;
    assert_eq!(camiseta_stock(&w, DEPOSITO_CENTRO), Decimal::from(98));
    w.pos.cancel_sale(&id).unwrap();
    let cancelled = w.wait_for(&id, SaleState::Cancelled).await;
    assert!(!cancelled.stock_written_off);
    assert_eq!(camiseta_stock(&w, DEPOSITO_CENTRO), Decimal::from(100), "the stock is back");
    let order = w.world.bling.bling.order(posted.bling_order_id).unwrap();
    assert_eq!(order["situacao"]["id"], 12, "Cancelado");
    let ops: Vec<String> = w.movements_of(posted.bling_order_id).into_iter().map(|m| m.1).collect();
    assert_eq!(ops, ["S", "E"]);
}

#[tokio::test]
async fn a_cancellation_that_comes_before_its_sale_means_the_sale_is_never_posted() {
    let w = SalesWorld::start().await;
    let mut sale = camisetas("V-50");
    sale["store_id"] = serde_json::json!("loja-centro");
    assert!(w.push("evt-c", "sale.cancelled", sale.clone()).await.status().is_success());
    w.wait_for("V-50", SaleState::Cancelled).await;
    sale["total"] = serde_json::json!(119.80);
    assert!(w.push("evt-s", "sale.completed", sale.clone()).await.status().is_success());
    assert!(
        ponte_tests::eventually(std::time::Duration::from_secs(10), || async {
            w.sale("V-50").await.and_then(|r| r.sale).is_some_and(|s| !s.items.is_empty())
        })
        .await,
        "the late sale is stored"
    );
    // Give the worker a chance to (wrongly) post it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = w.sale("V-50").await.unwrap();
    assert_eq!(r.state(), SaleState::Cancelled);
    assert!(w.orders_of("V-50").is_empty(), "never posted");
}

#[tokio::test]
async fn two_stores_write_off_on_their_own_depositos_and_a_sale_is_moved() {
    let w = SalesWorld::start().await;
    w.map_store("loja-shopping", DEPOSITO_GERAL).await;
    let centro = w.ring_up(camisetas("V-1"));
    let mut s = camisetas("V-2");
    s["store_id"] = serde_json::json!("loja-shopping");
    let shopping = w.ring_up(s);
    let a = w.wait_for(&centro, SaleState::Posted).await;
    let b = w.wait_for(&shopping, SaleState::Posted).await;
    assert_eq!(w.movements_of(a.bling_order_id), [(DEPOSITO_CENTRO, "S".to_owned())]);
    assert_eq!(w.movements_of(b.bling_order_id), [(DEPOSITO_GERAL, "S".to_owned())]);

    // The centro sale really was made at the shopping store.
    w.sales()
        .await
        .move_sale(MoveSaleRequest {
            tenant_id: TENANT.into(),
            sale_id: centro.clone(),
            to_store_id: "loja-shopping".into(),
        })
        .await
        .unwrap();
    let moved = crate::sales_support::poll(std::time::Duration::from_secs(20), || async {
        w.sale(&centro).await.filter(|r| r.cplug_store_id == "loja-shopping" && r.state() == SaleState::Posted)
    })
    .await
    .expect("the move finishes");
    assert_eq!(moved.bling_deposito_id, DEPOSITO_GERAL);
    assert_eq!(
        w.movements_of(a.bling_order_id),
        [(DEPOSITO_CENTRO, "S".to_owned()), (DEPOSITO_CENTRO, "E".to_owned()), (DEPOSITO_GERAL, "S".to_owned())]
    );
    let history = w.sale(&centro).await.unwrap().history;
    assert!(history.iter().any(|h| h.action == "moved"), "{history:?}");
    let err = w
        .sales()
        .await
        .move_sale(MoveSaleRequest { tenant_id: TENANT.into(), sale_id: centro, to_store_id: "loja-sem-mapa".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

/// A cancellation that arrives while the write-off is on its way to Bling: the sale is still
/// being posted when the cancellation is flagged, the write-off lands, and the reversal must
/// follow it (the stock returned, the order cancelled) instead of leaving the sale posted.
#[tokio::test]
async fn a_cancellation_that_arrives_during_the_write_off_still_reverses_the_sale() {
    use ponte_proto::v1::CancelSaleRequest;
    use ponte_sandbox::common::FaultSettings;
    let w = SalesWorld::start().await;
    // Every Bling call takes long enough for the cancellation to come in while the write-off,
    // which follows the order's creation at once, is in flight.
    w.world.bling.bling.faults().set(FaultSettings { latency_ms: 1500, ..Default::default() });
    let id = w.ring_up(camisetas("V-7"));
    let order_created = crate::sales_support::poll(std::time::Duration::from_secs(30), || async {
        w.sale(&id).await.filter(|r| r.bling_order_id != 0 || r.state() != SaleState::Received)
    })
    .await
    .expect("the order is created");
    assert_eq!(order_created.state(), SaleState::Received, "{order_created:?}");
    assert!(!order_created.stock_written_off);
    // The worker is now inside the write-off call.
    w.sales()
        .await
        .cancel_sale(CancelSaleRequest { tenant_id: TENANT.into(), sale_id: id.clone(), reason: "desistência".into() })
        .await
        .unwrap();
    // Cancelled, and no longer on its way there (a reversal under way reads as cancelled too).
    let cancelled = crate::sales_support::poll(std::time::Duration::from_secs(60), || async {
        w.sale(&id).await.filter(|r| r.state() == SaleState::Cancelled && !r.cancel_requested)
    })
    .await
    .expect("the sale is cancelled and its reversal done");
    assert!(!cancelled.stock_written_off);
    assert_eq!(camiseta_stock(&w, DEPOSITO_CENTRO), Decimal::from(100), "the stock is back");
    let order = w.world.bling.bling.order(order_created.bling_order_id).unwrap();
    assert_eq!(order["situacao"]["id"], 12, "Cancelado: {:?}", cancelled.history);
    let ops: Vec<String> = w.movements_of(order_created.bling_order_id).into_iter().map(|m| m.1).collect();
    assert_eq!(ops, ["S", "E"]);
}
