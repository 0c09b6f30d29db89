//! The operations tests' mesh of `ponte serve` processes ([`ponte_tests::procs`]) running this
//! package's `ponte` binary: auth-token, mapping, catalog-sync and the gateways against one
//! fresh database and the tests' Redis, with the sandboxes of Bling, Bitrix24 and CPLUG.

use ponte_tests::procs::MeshOptions;
pub use ponte_tests::procs::{Proc, ProcessMesh};

/// auth-token, mapping, catalog-sync and `gateways` gateways, with `extra` settings for every
/// process; tenant `loja` connected to Bling, the Bitrix24 portal and the CPLUG store.
pub async fn start(gateways: usize, extra: &[(&str, String)]) -> ProcessMesh {
    let mut opts = MeshOptions::new(env!("CARGO_BIN_EXE_ponte"), gateways);
    opts.extra = extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    ProcessMesh::start(opts).await
}

/// Starts `ponte serve <service>` with `env` and waits until it is ready.
pub async fn start_proc(service: &'static str, env: &[(String, String)]) -> Proc {
    let mut env = env.to_vec();
    env.extend(crate::support::api_env());
    Proc::start(std::path::Path::new(env!("CARGO_BIN_EXE_ponte")), service, &env).await
}

/// As [`start`], with every service: sales-ingest and shipping-status too.
pub async fn start_all(gateways: usize, extra: &[(&str, String)]) -> ProcessMesh {
    let mut opts = MeshOptions::new(env!("CARGO_BIN_EXE_ponte"), gateways);
    opts.services = ponte_tests::procs::ALL_SERVICES.to_vec();
    opts.extra = extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    ProcessMesh::start(opts).await
}

/// The till's product (`COPO-1` at R$ 10,00, 100 in stock in Bling's first depósito), the
/// till's store `loja-centro` mapped to Bling's PDV channel and that depósito, and cash mapped
/// to a forma de pagamento; the product's Bling id.
pub async fn set_up_till(mesh: &ProcessMesh) -> i64 {
    use ponte_proto::v1::{
        CreatePaymentMethodMapRequest, PaymentMethodMap, mapping_service_client::MappingServiceClient,
    };
    let b = &mesh.bling.bling;
    let id = b.seed_product(serde_json::json!({"nome": "Copo", "codigo": "COPO-1", "preco": 10.0}));
    b.set_stock(id, ponte_sandbox::bling::DEPOSITOS[0].0, rust_decimal::Decimal::from(100));
    map_store(mesh, "loja-centro").await;
    let map = PaymentMethodMap {
        tenant_id: ponte_tests::webhooks::TENANT.into(),
        cplug_method: "DINHEIRO".into(),
        bling_forma_pagamento_id: 11_010_299,
        ..Default::default()
    };
    MappingServiceClient::new(mesh.channel("mapping").await)
        .create_payment_method_map(CreatePaymentMethodMapRequest { map: Some(map), validate_only: false })
        .await
        .unwrap();
    id
}

/// Maps CPLUG store `store` to Bling's PDV channel and first depósito.
pub async fn map_store(mesh: &ProcessMesh, store: &str) {
    use ponte_proto::v1::{CreateStoreMapRequest, StoreMap, mapping_service_client::MappingServiceClient};
    let map = StoreMap {
        tenant_id: ponte_tests::webhooks::TENANT.into(),
        cplug_store_id: store.into(),
        bling_loja_id: ponte_sandbox::bling::CANAL_PDV,
        bling_deposito_id: ponte_sandbox::bling::DEPOSITOS[0].0,
        create_time: None,
    };
    MappingServiceClient::new(mesh.channel("mapping").await)
        .create_store_map(CreateStoreMapRequest { map: Some(map), validate_only: false })
        .await
        .unwrap();
}

/// A till sale `id` at `store`: one `COPO-1`, paid in cash.
pub fn sale(id: &str, store: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "store_id": store, "items": [{"sku": "COPO-1", "quantity": 1, "unit_price": 10.0}],
        "total": 10.0, "payments": [{"method": "DINHEIRO", "amount": 10.0}]})
}

/// Posts the till's signed `sale.completed` webhook for `sale` to the gateways (with a trace
/// context of `trace_id`, when given) and expects it acknowledged.
pub async fn push_sale(mesh: &ProcessMesh, event_id: &str, sale: serde_json::Value, trace_id: Option<&str>) {
    let (headers, body) = mesh.pos.cplug.sale_webhook(event_id, "sale.completed", sale);
    let url = mesh.gateway_url(&format!("/webhooks/cplug/{}", ponte_tests::webhooks::TENANT));
    let mut req = reqwest::Client::new().post(url);
    if let Some(t) = trace_id {
        req = req.header("traceparent", format!("00-{t}-00f067aa0ba902b7-01"));
    }
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap());
}

/// Bling's Em andamento: an order moved there is released to 360Envios.
pub const EM_ANDAMENTO: i64 = 15;

/// Runs shipping setup for the tenant (its situações made in Bling and mapped), again while
/// Bling asks to wait.
pub async fn set_up_shipping(mesh: &ProcessMesh) {
    use ponte_proto::v1::{SetUpShippingRequest, shipping_status_service_client::ShippingStatusServiceClient};
    let mut shipping = ShippingStatusServiceClient::new(mesh.channel("shipping-status").await);
    let req =
        SetUpShippingRequest { tenant_id: ponte_tests::webhooks::TENANT.into(), dry_run: false, ..Default::default() };
    for _ in 0..20 {
        match shipping.set_up_shipping(req.clone()).await {
            Ok(_) => return,
            Err(s) if ponte_core::error::is_retriable(&s) => {
                let wait = ponte_core::error::retry_after(&s).unwrap_or(std::time::Duration::from_millis(500));
                tokio::time::sleep(wait).await;
            }
            Err(s) => panic!("set up shipping: {s:?}"),
        }
    }
    panic!("shipping was never set up");
}

/// A customer with a CPF, added in Bling's UI.
pub fn shipping_customer(mesh: &ProcessMesh) -> i64 {
    mesh.bling
        .bling
        .seed_contact(serde_json::json!({"nome": "Maria Souza", "numeroDocumento": "123.456.789-09", "tipo": "F"}))
}

/// A Bling sales order of one `product` (code `codigo`) for `contato`, with a delivery address, made through
/// Bling's API and moved to Em andamento (no webhook sent); its id.
pub async fn released_order(auth: ponte_tests::Channel, contato: i64, product: i64, codigo: &str) -> i64 {
    use ponte_tests::webhooks::bling_api_at;
    use serde_json::json;
    let etiqueta = json!({"nome": "Maria Souza", "endereco": "Rua Augusta", "numero": "1500", "complemento": "ap 12",
        "municipio": "São Paulo", "uf": "SP", "cep": "01304-001", "bairro": "Consolação"});
    let body = json!({"contato": {"id": contato}, "data": "2026-03-02", "dataSaida": "2026-03-02",
        "dataPrevista": "2026-03-05", "transporte": {"fretePorConta": 0, "frete": 15, "etiqueta": etiqueta},
        "itens": [{"produto": {"id": product}, "quantidade": 1, "valor": 59.9, "codigo": codigo,
            "descricao": "Camiseta"}]});
    let order = bling_api_at(auth.clone(), reqwest::Method::POST, "/pedidos/vendas", Some(body)).await["data"]["id"]
        .as_i64()
        .unwrap();
    bling_api_at(auth, reqwest::Method::PATCH, &format!("/pedidos/vendas/{order}/situacoes/{EM_ANDAMENTO}"), None)
        .await;
    order
}
