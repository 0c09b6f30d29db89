//! Sales through failures: 429 storms and 5xx from Bling delay sales but never duplicate or
//! lose them; the answer to an order POST lost on the way still makes one order (found by
//! `numeroLoja`); sales-ingest killed between the order and the write-off writes it off once
//! after it starts again.

use std::time::Duration;

use ponte_core::config::Env;
use ponte_proto::v1::{IngestSaleRequest, Payment, Sale, SaleItem, SaleState};
use ponte_sandbox::common::FaultSettings;
use ponte_tests::{eventually, webhooks::TENANT};

use crate::sales_support::{Answer, AnswerProxy, SalesWorld, camisetas, sales_env};

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
async fn storms_of_429_and_5xx_delay_sales_but_never_duplicate_or_lose_them() {
    let w = SalesWorld::start().await;
    w.world.bling.bling.faults().set(FaultSettings { storm: 25, error_rate: 0.3, seed: Some(7), ..Default::default() });
    let ids: Vec<String> = (1..=8).map(|n| w.ring_up(camisetas(&format!("V-{n}")))).collect();
    for id in &ids {
        w.wait_for(id, SaleState::Posted).await;
    }
    assert_eq!(w.world.bling.bling.faults().get().storm, 0, "the whole storm of 429s was answered");
    w.world.bling.bling.faults().set(FaultSettings::default());
    for id in &ids {
        let orders = w.orders_of(id);
        assert_eq!(orders.len(), 1, "{id}: {orders:?}");
        let order = orders[0]["id"].as_i64().unwrap();
        assert_eq!(w.movements_of(order).len(), 1, "{id}: one write-off");
    }
}

/// A mesh whose sales-ingest reaches Bling through `proxy`, in a process of its own.
async fn sales_ingest_through(w: &SalesWorld, proxy: &AnswerProxy, lease: &str) -> ponte_tests::Mesh {
    let env: Env = w.world.mesh.env.clone();
    let env = env
        .with("PONTE_BLING_API_URL", &format!("http://{}/Api/v3", proxy.addr))
        .with("PONTE_SALES_LEASE_SECONDS", lease);
    w.world.mesh.join(&[&ponte_sales_ingest::SPEC], env).await
}

async fn ingest(mesh: &ponte_tests::Mesh, sale: Sale) -> Result<(), tonic::Status> {
    let mut c =
        ponte_proto::v1::sales_ingest_service_client::SalesIngestServiceClient::new(mesh.channel("sales-ingest").await);
    c.ingest_sale(IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) }).await.map(|_| ())
}

#[tokio::test]
async fn an_order_whose_answer_is_lost_is_found_by_numero_loja_and_not_made_again() {
    let w = SalesWorld::start_with(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], sales_env()).await;
    let proxy = AnswerProxy::start(w.world.bling.addr).await;
    let sales = sales_ingest_through(&w, &proxy, "30").await;
    // A first sale makes the consumidor final and the product known.
    ingest(&sales, boné("V-1")).await.unwrap();
    w.wait_for_in(&sales, "V-1", SaleState::Posted).await;

    proxy.swallow("POST /Api/v3/pedidos/vendas ", Answer::Drop, 1);
    ingest(&sales, boné("V-2")).await.unwrap();
    let posted = w.wait_for_in(&sales, "V-2", SaleState::Posted).await;
    assert_eq!(proxy.swallowed.load(std::sync::atomic::Ordering::SeqCst), 1, "the order's answer was lost");
    assert_eq!(w.orders_of("V-2").len(), 1, "one order");
    assert_eq!(w.movements_of(posted.bling_order_id).len(), 1);
    let history: Vec<String> = posted.history.iter().map(|h| h.action.clone()).collect();
    assert!(history.contains(&"order found".to_owned()), "{history:?}");
}

#[tokio::test]
async fn sales_ingest_killed_between_the_order_and_the_write_off_writes_it_off_once_after_restart() {
    let w = SalesWorld::start_with(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], sales_env()).await;
    let proxy = AnswerProxy::start(w.world.bling.addr).await;
    let sales = sales_ingest_through(&w, &proxy, "2").await;
    ingest(&sales, boné("V-1")).await.unwrap();
    w.wait_for_in(&sales, "V-1", SaleState::Posted).await;

    // The write-off reaches Bling; its answer never comes back, and the process dies.
    proxy.swallow("/lancar-estoque/", Answer::Hold, 1);
    let _ = ingest(&sales, boné("V-2")).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            proxy.swallowed.load(std::sync::atomic::Ordering::SeqCst) == 1
        })
        .await
    );
    drop(sales);
    let order = w.orders_of("V-2")[0]["id"].as_i64().unwrap();
    assert_eq!(w.movements_of(order).len(), 1, "Bling wrote it off before the process died");

    let restarted = sales_ingest_through(&w, &proxy, "2").await;
    let posted = w.wait_for_in(&restarted, "V-2", SaleState::Posted).await;
    assert_eq!(posted.bling_order_id, order);
    assert_eq!(w.orders_of("V-2").len(), 1, "one order");
    assert_eq!(w.movements_of(order).len(), 1, "one write-off");
}
