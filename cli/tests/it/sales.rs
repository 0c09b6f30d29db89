//! `ponte sales …` against a running sales-ingest: a parked sale listed with its reason (table
//! and JSON), replayed once its payment method is mapped, shown with its history, cancelled;
//! `ponte connections cplug` reads its secrets from the environment only.

use std::time::Duration;

use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, CreateStoreMapRequest, IngestSaleRequest, Payment, PaymentMethodMap, Sale, SaleItem,
    StoreMap, mapping_service_client::MappingServiceClient, sales_ingest_service_client::SalesIngestServiceClient,
};
use ponte_sandbox::bling::{CANAL_PDV, DEPOSITO_GERAL};
use ponte_tests::{
    eventually,
    webhooks::{BlingWorld, TENANT},
};
use serde_json::Value;

use crate::support::ponte;

fn run(url: &str, args: &[&str]) -> String {
    let out =
        ponte().args(["sales"]).args(args).args(["--tenant", TENANT, "--sales-ingest-url", url]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str(&run(url, &all)).expect("JSON")
}

async fn map(world: &BlingWorld, method: &str, forma: i64) {
    let map = PaymentMethodMap {
        tenant_id: TENANT.into(),
        cplug_method: method.into(),
        bling_forma_pagamento_id: forma,
        ..Default::default()
    };
    let mut mapping = MappingServiceClient::new(world.mesh.channel("mapping").await);
    // The account's 3 requests/s are shared with sales-ingest: a busy second is waited out.
    for _ in 0..10 {
        let req = CreatePaymentMethodMapRequest { map: Some(map.clone()), validate_only: false };
        match mapping.create_payment_method_map(req).await {
            Ok(_) => return,
            Err(s) if s.code() == tonic::Code::Unavailable => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(s) => panic!("{s:?}"),
        }
    }
    panic!("the payment method map was never stored");
}

// The command runs as a child process the test waits for: the in-process services need threads
// of their own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_are_listed_replayed_shown_and_cancelled_from_the_command_line() {
    let world = BlingWorld::start_with_env(
        &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_sales_ingest::SPEC],
        Default::default(),
        &ponte_tests::redis_url(),
        ponte_core::config::Env::from_pairs(crate::support::api_env()),
    )
    .await;
    let store = StoreMap {
        tenant_id: TENANT.into(),
        cplug_store_id: "loja-centro".into(),
        bling_loja_id: CANAL_PDV,
        bling_deposito_id: DEPOSITO_GERAL,
        create_time: None,
    };
    MappingServiceClient::new(world.mesh.channel("mapping").await)
        .create_store_map(CreateStoreMapRequest { map: Some(store), validate_only: false })
        .await
        .unwrap();
    world.bling.bling.seed_product(serde_json::json!({"nome": "Boné", "codigo": "BON-1", "preco": 35.0}));
    let sale = Sale {
        sale_id: "V-1".into(),
        store_id: "loja-centro".into(),
        items: vec![SaleItem {
            sku: "BON-1".into(),
            quantity: "1".into(),
            unit_price_cents: 3500,
            ..Default::default()
        }],
        payments: vec![Payment { method: "PIX".into(), amount_cents: 3500, installments: 1, ..Default::default() }],
        total_cents: 3500,
        ..Default::default()
    };
    SalesIngestServiceClient::new(world.mesh.channel("sales-ingest").await)
        .ingest_sale(IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) })
        .await
        .unwrap();
    let url = format!("http://{}", world.mesh.addr("sales-ingest"));

    let table = run(&url, &["parked"]);
    assert!(table.starts_with("SALE"), "{table}");
    assert!(table.contains("forma de pagamento 'PIX' da loja 'loja-centro' não tem mapeamento no Bling"), "{table}");
    let parked = json(&url, &["parked", "--reason", "unmapped-payment-method"]);
    assert_eq!((parked[0]["sale_id"].as_str(), parked[0]["state"].as_str()), (Some("V-1"), Some("parked")));

    map(&world, "PIX", 11_010_302).await;
    run(&url, &["replay", "V-1"]);
    let posted =
        eventually(Duration::from_secs(30), || async { json(&url, &["show", "V-1"])["state"] == "posted" }).await;
    assert!(posted, "{}", run(&url, &["show", "V-1"]));
    let shown = json(&url, &["show", "V-1"]);
    assert_eq!(shown["total"], "35.00");
    let actions: Vec<&str> = shown["history"].as_array().unwrap().iter().filter_map(|h| h["action"].as_str()).collect();
    assert!(actions.contains(&"replay") && actions.contains(&"stock written off"), "{actions:?}");
    assert!(run(&url, &["show", "V-1"]).contains("TIME"), "the table shows the history");

    run(&url, &["cancel", "V-1"]);
    let cancelled = eventually(Duration::from_secs(30), || async {
        json(&url, &["list", "--state", "cancelled"]).as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert!(cancelled, "{}", run(&url, &["list"]));
}

#[test]
fn cplug_credentials_come_from_the_environment_only() {
    let out = ponte().args(["connections", "cplug", "--tenant", "loja"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PONTE_CPLUG_CLIENT_ID"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
