//! A cancellation that arrives while the worker is writing the sale's stock off (the last step
//! of posting) is not forgotten: the worker that records the sale as posted sees the request
//! and reverses it, and a sale left posted with a cancellation pending (its worker died right
//! after) is taken up again by the scanner. Found by the chaos run (seed 4, 500 events).

use std::time::Duration;

use ponte_proto::v1::{CancelSaleRequest, SaleState};
use ponte_sandbox::common::FaultSettings;
use ponte_tests::{eventually, webhooks::TENANT};

use crate::sales_support::{SalesWorld, camisetas};

#[tokio::test]
async fn a_cancellation_during_the_write_off_returns_the_stock_and_cancels_the_order() {
    let w = SalesWorld::start().await;
    // A first sale makes the consumidor final and the product known.
    let first = w.ring_up(camisetas("V-1"));
    w.wait_for(&first, SaleState::Posted).await;

    // Every Bling answer now takes a while: the write-off is still in flight when the
    // cancellation comes.
    w.world.bling.bling.faults().set(FaultSettings { latency_ms: 1500, ..Default::default() });
    let id = w.ring_up(camisetas("V-2"));
    let ordered = eventually(Duration::from_secs(30), || async { w.orders_of(&id).len() == 1 }).await;
    assert!(ordered, "the order was never made");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writing_off = w.sale(&id).await.unwrap();
    assert!(
        writing_off.state() == SaleState::Received && writing_off.bling_order_id != 0 && !writing_off.stock_written_off,
        "the write-off is under way: {writing_off:?}"
    );
    w.sales()
        .await
        .cancel_sale(CancelSaleRequest { tenant_id: TENANT.into(), sale_id: id.clone(), reason: "desistiu".into() })
        .await
        .unwrap();
    w.world.bling.bling.faults().set(FaultSettings::default());

    let cancelled = w.wait_for(&id, SaleState::Cancelled).await;
    assert!(!cancelled.stock_written_off);
    let order = w.orders_of(&id)[0].clone();
    assert_eq!(order["situacao"]["id"], 12, "Cancelado");
    let ops: Vec<String> = w.movements_of(order["id"].as_i64().unwrap()).into_iter().map(|m| m.1).collect();
    assert_eq!(ops, ["S", "E"], "written off once, returned once");
}
