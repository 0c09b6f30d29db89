//! A point-of-sale sale end to end: rung up at the CPLUG till, pushed to the gateway, posted by
//! sales-ingest as one Bling order and one write-off; the same sale pushed many times and over
//! gRPC at once; the Bling calls a sale costs once caches are warm; bad input refused naming
//! the field over gRPC and stored as failed when it comes by webhook.

use ponte_proto::v1::{
    IngestSaleRequest, ListSalesRequest, Payment, Sale, SaleItem, SaleState, SalesIngestServiceGetSyncStatusRequest,
};
use ponte_tests::webhooks::TENANT;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tonic::Code;

use crate::sales_support::{CPF, CREDITO, DEPOSITO_CENTRO, PIX, SalesWorld, camisetas};

fn reais(v: &Value) -> Decimal {
    v.to_string().parse().expect("a number")
}

#[tokio::test]
async fn a_sale_becomes_one_order_with_its_contact_items_parcelas_and_one_write_off() {
    let w = SalesWorld::start().await;
    w.map_payment("PIX", PIX).await;
    let id = w.ring_up(json!({"id": "V-000123", "store_id": "loja-centro", "register_id": "caixa-2",
        "customer": {"document": "123.456.789-09", "name": "Maria"},
        "items": [{"sku": "CAM-AZ-M", "quantity": 2, "unit_price": 59.90, "discount": 9.80},
                  {"sku": "QJ-1", "quantity": 0.75, "unit_price": 10.99}],
        "discount": 1.00,
        "payments": [{"method": "CREDITO", "amount": 100.00, "installments": 3}, {"method": "PIX", "amount": 17.24}]}));
    let record = w.wait_for(&id, SaleState::Posted).await;

    let orders = w.orders_of(&id);
    assert_eq!(orders.len(), 1, "one order: {orders:?}");
    let o = &orders[0];
    assert_eq!(o["id"], record.bling_order_id);
    assert_eq!(
        (o["loja"]["id"].as_i64(), o["situacao"]["id"].as_i64()),
        (Some(ponte_sandbox::bling::CANAL_PDV), Some(9)),
        "Atendido"
    );
    assert_eq!(o["contato"]["numeroDocumento"], CPF, "the customer, created in Bling by CPF");
    let itens = o["itens"].as_array().unwrap();
    assert_eq!(itens.len(), 2);
    assert!(itens.iter().all(|i| i["produto"]["id"].as_i64().is_some_and(|p| p > 0)));
    let parcelas = o["parcelas"].as_array().unwrap();
    assert_eq!(parcelas.len(), 4, "three credit installments and one pix");
    let sum: Decimal = parcelas.iter().map(|p| reais(&p["valor"])).sum();
    assert_eq!((sum, reais(&o["total"])), (Decimal::new(11724, 2), Decimal::new(11724, 2)));
    assert_eq!(parcelas[0]["formaPagamento"]["id"], CREDITO);
    assert_eq!(parcelas[3]["formaPagamento"]["id"], PIX);
    let movements = w.movements_of(record.bling_order_id);
    assert_eq!(movements, [(DEPOSITO_CENTRO, "S".to_owned()), (DEPOSITO_CENTRO, "S".to_owned())], "one write-off");

    let actions: Vec<String> = record_history(&w, &id).await;
    for step in ["received", "order post", "order created", "stock written off"] {
        assert!(actions.iter().any(|a| a == step), "{step} missing from {actions:?}");
    }

    // Steady state: the customer and the products are known, so a sale costs two Bling calls.
    let before = w.world.bling.bling.stats().api_requests;
    let next = w.ring_up(json!({"store_id": "loja-centro", "customer": {"document": CPF, "name": "Maria"},
        "items": [{"sku": "CAM-AZ-M", "quantity": 1, "unit_price": 59.90}], "payments": [{"method": "CREDITO", "amount": 59.90}]}));
    w.wait_for(&next, SaleState::Posted).await;
    assert_eq!(w.world.bling.bling.stats().api_requests - before, 2, "the order and the write-off only");

    let status = w
        .sales()
        .await
        .get_sync_status(SalesIngestServiceGetSyncStatusRequest { tenant_id: TENANT.into() })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    let counts = status.sales.unwrap();
    assert_eq!((counts.posted, counts.stores.len(), counts.stores[0].posted), (2, 1, 2));
    assert!(status.last_success_time.is_some());
}

async fn record_history(w: &SalesWorld, id: &str) -> Vec<String> {
    w.sale(id).await.unwrap().history.into_iter().map(|h| h.action).collect()
}

#[tokio::test]
async fn the_same_sale_pushed_twenty_times_and_over_grpc_at_once_is_one_order_and_one_write_off() {
    let w = SalesWorld::start().await;
    let sale = json!({"id": "V-777", "store_id": "loja-centro", "register_id": "caixa-1", "number": 777,
        "items": [{"sku": "BON-1", "quantity": 1, "unit_price": 35.00, "discount": 0.00, "name": "Boné"}],
        "payments": [{"method": "DINHEIRO", "method_name": "Dinheiro", "amount": 35.00, "installments": 1}],
        "discount": 0.00, "total": 35.00});
    // Half are the till's retries (same event id), half new events about the same sale.
    let events: Vec<String> = (0..20).map(|n| format!("evt-{}", n % 10)).collect();
    let pushes: Vec<_> = events.iter().map(|e| w.push(e, "sale.completed", sale.clone())).collect();
    let grpc = Sale {
        sale_id: "V-777".into(),
        store_id: "loja-centro".into(),
        register_id: "caixa-1".into(),
        number: 777,
        items: vec![SaleItem {
            sku: "BON-1".into(),
            quantity: "1".into(),
            unit_price_cents: 3500,
            discount_cents: 0,
            name: "Boné".into(),
        }],
        payments: vec![Payment {
            method: "DINHEIRO".into(),
            method_name: "Dinheiro".into(),
            amount_cents: 3500,
            installments: 1,
        }],
        total_cents: 3500,
        ..Default::default()
    };
    let mut calls = Vec::new();
    for _ in 0..3 {
        let mut c = w.sales().await;
        let req = IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(grpc.clone()) };
        calls.push(tokio::spawn(async move { c.ingest_sale(req).await }));
    }
    for answer in futures::future::join_all(pushes).await {
        assert!(answer.status().is_success());
    }
    for c in calls {
        c.await.unwrap().expect("IngestSale answers");
    }
    let record = w.wait_for("V-777", SaleState::Posted).await;
    // Let every delivery finish before counting.
    ponte_tests::eventually(std::time::Duration::from_secs(10), || async {
        let pending = ponte_tests::count(
            &w.gateway.as_ref().unwrap().db,
            "SELECT COUNT(*) FROM inbox_deliveries WHERE state <> 'delivered'",
        )
        .await;
        pending == 0
    })
    .await;
    assert_eq!(w.orders_of("V-777").len(), 1, "one order");
    assert_eq!(w.movements_of(record.bling_order_id).len(), 1, "one write-off");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_over_grpc_and_stored_as_failed_by_webhook() {
    let w = SalesWorld::start().await;
    let mut c = w.sales().await;
    let good = Sale {
        sale_id: "V-9".into(),
        store_id: "loja-centro".into(),
        items: vec![
            SaleItem { sku: "BON-1".into(), quantity: "1".into(), unit_price_cents: 3500, ..Default::default() },
            SaleItem { sku: "QJ-1".into(), quantity: "1".into(), unit_price_cents: 1099, ..Default::default() },
        ],
        payments: vec![Payment {
            method: "DINHEIRO".into(),
            amount_cents: 4599,
            installments: 1,
            ..Default::default()
        }],
        total_cents: 4599,
        ..Default::default()
    };
    let mut zero = good.clone();
    zero.items.push(SaleItem {
        sku: "CAM-AZ-M".into(),
        quantity: "0".into(),
        unit_price_cents: 5990,
        ..Default::default()
    });
    for (sale, field) in [
        (zero, "sale.items[2].quantity: "),
        (Sale { sale_id: String::new(), ..good.clone() }, "sale.sale_id: "),
        (Sale { total_cents: -1, ..good.clone() }, "sale.payments: "),
        (
            Sale { items: vec![SaleItem { sku: "BON 1".into(), ..good.items[0].clone() }], ..good.clone() },
            "sale.items[0].sku: ",
        ),
        (Sale { store_id: String::new(), ..good.clone() }, "sale.store_id: "),
    ] {
        let err = c.ingest_sale(IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) }).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().starts_with(field), "{field}: {}", err.message());
    }
    assert!(w.sale("V-9").await.is_none(), "nothing refused over gRPC is stored");

    // The same mistake by webhook: stored as failed, with the reason, and the delivery is done.
    let mut bad = camisetas("V-10");
    bad["payments"][0]["amount"] = json!(100.00);
    bad["total"] = json!(119.80);
    assert!(w.push("evt-bad", "sale.completed", bad).await.status().is_success());
    let failed = w.wait_for("V-10", SaleState::Failed).await;
    assert!(failed.failure.starts_with("sale.payments: add up to 10000 cents"), "{}", failed.failure);
    let listed = c
        .list_sales(ListSalesRequest {
            tenant_id: TENANT.into(),
            state: SaleState::Failed as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(listed.iter().map(|r| r.sale.as_ref().unwrap().sale_id.as_str()).collect::<Vec<_>>(), ["V-10"]);
    let gw = &w.gateway.as_ref().unwrap().db;
    assert!(
        ponte_tests::eventually(std::time::Duration::from_secs(10), || async {
            ponte_tests::count(gw, "SELECT COUNT(*) FROM inbox_deliveries WHERE subscriber = 'sales-ingest' AND state = 'delivered' AND outcome = 'parked'").await == 1
        })
        .await,
        "the delivery ends, recorded as parked, not as a dead letter"
    );
    assert!(w.orders_of("V-10").is_empty());
}

#[tokio::test]
async fn the_tenants_situacao_and_store_time_zone_shape_the_order() {
    use ponte_proto::v1::{SalesSettings, UpdateSalesSettingsRequest};
    let w = SalesWorld::start().await;
    let mut c = w.sales().await;
    let bad = SalesSettings { tenant_id: TENANT.into(), time_zone: "Europe/Lisbon".into(), ..Default::default() };
    let err = c.update_sales_settings(UpdateSalesSettingsRequest { settings: Some(bad) }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("settings.time_zone: 'Europe/Lisbon'"), "{}", err.message());
    let settings = SalesSettings {
        tenant_id: TENANT.into(),
        order_situacao_id: 15,
        store_time_zones: [("loja-centro".to_owned(), "America/Manaus".to_owned())].into(),
        ..Default::default()
    };
    let stored = c.update_sales_settings(UpdateSalesSettingsRequest { settings: Some(settings) }).await.unwrap();
    let stored = stored.into_inner().settings.unwrap();
    assert_eq!((stored.cancel_situacao_id, stored.time_zone.as_str()), (12, "America/Sao_Paulo"), "defaults filled in");
    // 03:30 UTC on the 2nd is 00:30 in São Paulo but still the 1st in Manaus.
    let mut sale = Sale {
        sale_id: "V-TZ".into(),
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
    };
    sale.occurred_at = Some(ponte_core::time::to_timestamp(1_772_422_200_000));
    c.ingest_sale(IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) }).await.unwrap();
    w.wait_for("V-TZ", SaleState::Posted).await;
    let order = &w.orders_of("V-TZ")[0];
    assert_eq!((order["data"].as_str(), order["situacao"]["id"].as_i64()), (Some("2026-03-01"), Some(15)));
}
