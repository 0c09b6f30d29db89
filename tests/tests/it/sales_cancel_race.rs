//! Cancellations that meet a write-off in flight, found by the chaos run (seeds 4 and 5, 500
//! events): one that arrives while the worker is writing the sale's stock off is not forgotten
//! (the worker that records the sale as posted reverses it; a sale left posted with a
//! cancellation pending is taken up again by the scanner), and a sale cancelled after a
//! write-off whose answer never came gets its stock back all the same, and a write-off held up
//! on its way to Bling past the lease is abandoned before another worker can take the sale over
//! and cancel it, so it never lands on a cancelled sale. A sale parked after its Bling order was
//! created (its write-off unconfirmed) is cancelled with its order and with any stock Bling took.

use std::{sync::atomic::Ordering, time::Duration};

use ponte_core::config::Env;
use ponte_proto::v1::{
    CancelSaleRequest, DeleteStoreMapRequest, IngestSaleRequest, Payment, Sale, SaleItem, SaleState,
    sales_ingest_service_client::SalesIngestServiceClient,
};
use ponte_sandbox::common::FaultSettings;
use ponte_tests::{eventually, webhooks::TENANT};

use crate::sales_support::{Answer, AnswerProxy, DEPOSITO_CENTRO, SalesWorld, camisetas, sales_env};

fn boné(id: &str) -> Sale {
    Sale {
        sale_id: id.into(),
        store_id: "loja-centro".into(),
        items: vec![SaleItem {
            sku: "BON-1".into(),
            quantity: "1".into(),
            unit_price_cents: 3500,
            ..Default::default()
        }],
        payments: vec![Payment {
            method: "DINHEIRO".into(),
            amount_cents: 3500,
            installments: 1,
            ..Default::default()
        }],
        total_cents: 3500,
        ..Default::default()
    }
}

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

/// A mesh whose sales-ingest reaches Bling through `proxy`, in a process of its own.
async fn sales_ingest_through(w: &SalesWorld, proxy: &AnswerProxy) -> ponte_tests::Mesh {
    let env: Env = w.world.mesh.env.clone();
    let env = env
        .with("PONTE_BLING_API_URL", &format!("http://{}/Api/v3", proxy.addr))
        // Long enough for the cancellation to come before the other process takes over.
        .with("PONTE_SALES_LEASE_SECONDS", "6");
    w.world.mesh.join(&[&ponte_sales_ingest::SPEC], env).await
}

#[tokio::test]
async fn a_sale_cancelled_while_its_write_off_went_unanswered_gets_its_stock_back() {
    let w = SalesWorld::start_with(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], sales_env()).await;
    let proxy = AnswerProxy::start(w.world.bling.addr).await;
    let sales = sales_ingest_through(&w, &proxy).await;
    let mut client = SalesIngestServiceClient::new(sales.channel("sales-ingest").await);
    let ingest = |sale| IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) };
    client.ingest_sale(ingest(boné("V-1"))).await.unwrap();
    w.wait_for_in(&sales, "V-1", SaleState::Posted).await;

    // The write-off reaches Bling; its answer never comes back.
    proxy.swallow("/lancar-estoque/", Answer::Hold, 1);
    let _ = client.ingest_sale(ingest(boné("V-2"))).await;
    let held = eventually(Duration::from_secs(10), || async { proxy.swallowed.load(Ordering::SeqCst) == 1 }).await;
    assert!(held);
    let order = w.orders_of("V-2")[0]["id"].as_i64().unwrap();
    assert_eq!(w.movements_of(order).len(), 1, "Bling wrote it off");

    // The sale is cancelled through another process while the first still holds it; then the
    // first dies, and the other takes the sale over when the lease runs out.
    let other = sales_ingest_through(&w, &proxy).await;
    SalesIngestServiceClient::new(other.channel("sales-ingest").await)
        .cancel_sale(CancelSaleRequest { tenant_id: TENANT.into(), sale_id: "V-2".into(), reason: "desistiu".into() })
        .await
        .unwrap();
    drop(client);
    drop(sales);
    let cancelled = w.wait_for_in(&other, "V-2", SaleState::Cancelled).await;
    assert_eq!(cancelled.bling_order_id, order);
    assert_eq!(w.orders_of("V-2")[0]["situacao"]["id"], 12, "Cancelado");
    let ops: Vec<String> = w.movements_of(order).into_iter().map(|m| m.1).collect();
    assert_eq!(ops, ["S", "E"], "the write-off Bling made is returned");
}

#[tokio::test]
async fn a_write_off_held_up_past_the_lease_never_lands_after_the_sale_was_cancelled() {
    let w = SalesWorld::start_with(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], sales_env()).await;
    let proxy = AnswerProxy::start(w.world.bling.addr).await;
    let first = sales_ingest_through(&w, &proxy).await;
    let mut client = SalesIngestServiceClient::new(first.channel("sales-ingest").await);
    let ingest = |sale| IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) };
    client.ingest_sale(ingest(boné("V-1"))).await.unwrap();
    w.wait_for_in(&first, "V-1", SaleState::Posted).await;
    let product = w.products["BON-1"];
    assert_eq!(w.world.bling.bling.stock(product, DEPOSITO_CENTRO), 99.into());

    // The next write-off hangs on its way to Bling for twice the lease (6 s).
    let late = Duration::from_secs(12);
    proxy.swallow("/lancar-estoque/", Answer::Late(late), 1);
    let _ = client.ingest_sale(ingest(boné("V-2"))).await;
    let held = eventually(Duration::from_secs(10), || async { proxy.swallowed.load(Ordering::SeqCst) == 1 }).await;
    assert!(held, "the write-off never left");
    let held_at = tokio::time::Instant::now();
    let order = w.orders_of("V-2")[0]["id"].as_i64().unwrap();

    // The sale is cancelled through another process, which takes it over once the first one's
    // lease lapses; the first process lives on, its write-off still on its way.
    let other = sales_ingest_through(&w, &proxy).await;
    SalesIngestServiceClient::new(other.channel("sales-ingest").await)
        .cancel_sale(CancelSaleRequest { tenant_id: TENANT.into(), sale_id: "V-2".into(), reason: "desistiu".into() })
        .await
        .unwrap();
    let cancelled = w.wait_for_in(&other, "V-2", SaleState::Cancelled).await;
    assert_eq!(cancelled.bling_order_id, order);
    assert_eq!(w.orders_of("V-2")[0]["situacao"]["id"], 12, "Cancelado");

    // Past the moment the held write-off would have reached Bling: nothing landed after the
    // cancellation, and the stock is what the one posted sale left.
    tokio::time::sleep_until(held_at + late + Duration::from_secs(2)).await;
    let ops: Vec<String> = w.movements_of(order).into_iter().map(|m| m.1).collect();
    assert!(ops.is_empty() || ops == ["S", "E"], "every write-off of the cancelled sale is returned: {ops:?}");
    assert_eq!(w.world.bling.bling.stock(product, DEPOSITO_CENTRO), 99.into(), "only V-1 took stock");
    let after = crate::sales_support::sale_in(&other, "V-2").await.unwrap();
    assert_eq!(after.state(), SaleState::Cancelled);
    assert!(!after.stock_written_off);
    drop(client);
    drop(first);
}

#[tokio::test]
async fn a_sale_parked_after_its_order_was_created_is_cancelled_with_its_stock_returned() {
    let w = SalesWorld::start_with(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], sales_env()).await;
    let proxy = AnswerProxy::start(w.world.bling.addr).await;
    let sales = sales_ingest_through(&w, &proxy).await;
    let mut client = SalesIngestServiceClient::new(sales.channel("sales-ingest").await);
    let ingest = |sale| IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) };
    client.ingest_sale(ingest(boné("V-1"))).await.unwrap();
    w.wait_for_in(&sales, "V-1", SaleState::Posted).await;
    let product = w.products["BON-1"];

    // The write-off reaches Bling, its answer never comes back, and the process dies.
    proxy.swallow("/lancar-estoque/", Answer::Hold, 1);
    let _ = client.ingest_sale(ingest(boné("V-2"))).await;
    let held = eventually(Duration::from_secs(10), || async { proxy.swallowed.load(Ordering::SeqCst) == 1 }).await;
    assert!(held);
    drop(client);
    drop(sales);
    let order = w.orders_of("V-2")[0]["id"].as_i64().unwrap();
    assert_eq!(w.movements_of(order).len(), 1, "Bling wrote it off");

    // The store loses its map meanwhile: the process that takes the sale over parks it with its
    // order made and its write-off unconfirmed.
    w.mapping()
        .await
        .delete_store_map(DeleteStoreMapRequest { tenant_id: TENANT.into(), cplug_store_id: "loja-centro".into() })
        .await
        .unwrap();
    let other = sales_ingest_through(&w, &proxy).await;
    let parked = w.wait_for_in(&other, "V-2", SaleState::Parked).await;
    assert_eq!(parked.bling_order_id, order);
    assert!(!parked.stock_written_off);

    let mut c = SalesIngestServiceClient::new(other.channel("sales-ingest").await);
    c.cancel_sale(CancelSaleRequest { tenant_id: TENANT.into(), sale_id: "V-2".into(), reason: "desistiu".into() })
        .await
        .unwrap();
    let cancelled = w.wait_for_in(&other, "V-2", SaleState::Cancelled).await;
    assert_eq!(cancelled.bling_order_id, order);
    assert_eq!(w.orders_of("V-2")[0]["situacao"]["id"], 12, "Cancelado");
    let ops: Vec<String> = w.movements_of(order).into_iter().map(|m| m.1).collect();
    assert_eq!(ops, ["S", "E"], "the write-off Bling made is returned");
    assert_eq!(w.world.bling.bling.stock(product, DEPOSITO_CENTRO), 99.into(), "only V-1 took stock");
}
