//! Sync latency per flow, as an SRE reads it: `ponte serve` processes exporting their spans to
//! this test's OTLP receiver, one webhook per catalog flow sent with a trace context of its
//! own; each flow's `ponte_sync_latency_seconds` counts the write, and its OpenMetrics
//! exemplar carries that webhook's trace id, which the receiver got catalog-sync's spans of.
//! The outside calls are counted per provider, operation and status; the Prometheus text
//! format (no exemplars) is what a scraper that does not ask for OpenMetrics gets.

use std::time::Duration;

use ponte_proto::v1::SyncSettings;
use ponte_tests::{
    eventually,
    webhooks::{TENANT, bling_api_at, bling_body, date, sign},
};
use serde_json::json;

use crate::{ops_mesh, support::Collector};

/// A trace id of our own per flow, sent in the webhook's `traceparent`.
fn trace(n: u8) -> String {
    format!("4bf92f3577b34da6a3ce929d0e0e47{n:02x}")
}

async fn post(url: String, content_type: &str, body: String, trace_id: String, signature: Option<String>) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"));
    if let Some(sig) = signature {
        req = req.header("X-Bling-Signature-256", sig);
    }
    let resp = req.body(body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap());
}

/// The exemplar trace ids of `flow`'s buckets in an OpenMetrics text.
fn exemplars(text: &str, flow: &str) -> Vec<String> {
    let series = format!("flow=\"{flow}\"}}");
    text.lines()
        .filter(|l| l.starts_with("ponte_sync_latency_seconds_bucket{") && l.contains(&series))
        .filter_map(|l| l.split_once(" # {trace_id=\"")?.1.split_once('"').map(|(t, _)| t.to_owned()))
        .collect()
}

fn count(text: &str, flow: &str) -> u64 {
    let prefix = format!("ponte_sync_latency_seconds_count{{flow=\"{flow}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn every_catalog_flow_records_its_sync_latency_with_the_webhooks_trace_as_exemplar() {
    let (collector, otlp) = Collector::start().await;
    let mesh = ops_mesh::start(
        1,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")), ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned())],
    )
    .await;
    mesh.settings(SyncSettings {
        bling_create_creates_in_bitrix24: true,
        bling_update_updates_bitrix24: true,
        orders_to_bitrix24: true,
        bitrix24_export_to_bling: true,
        catalog_to_cplug: true,
        ..Default::default()
    })
    .await;
    let cfg = mesh.bling.bling.config().clone();
    let bling_webhook = |event_id: &str, event: &str, data: serde_json::Value, trace_id: String| {
        let body = bling_body(event_id, event, &cfg.company_id, &date(0), data);
        let sig = sign(&cfg.client_secret, body.as_bytes());
        post(mesh.gateway_url("/webhooks/bling"), "application/json", body, trace_id, Some(sig))
    };

    // A Bling product: into Bitrix24 and into CPLUG (the webhook carries the product).
    let product =
        json!({"nome": "Copo", "codigo": "COPO-1", "preco": 12.5, "situacao": "A", "tipo": "P", "formato": "S"});
    let id = mesh.bling.bling.seed_product(product.clone());
    let mut sent = product.clone();
    sent["id"] = json!(id);
    bling_webhook("ops-product", "product.created", sent, trace(1)).await;
    let portal = &mesh.portal.portal;
    assert!(eventually(Duration::from_secs(30), || async { portal.products().len() == 1 }).await, "no CRM product");
    let pos = &mesh.pos.cplug;
    assert!(eventually(Duration::from_secs(30), || async { pos.products().len() == 1 }).await, "no CPLUG product");

    // A Bling order: a Bitrix24 deal.
    let auth = mesh.channel("auth-token").await;
    let order = bling_api_at(
        auth,
        reqwest::Method::POST,
        "/pedidos/vendas",
        Some(json!({"contato": {"id": ponte_sandbox::bling::CONSUMIDOR_FINAL}, "data": "2026-11-22",
            "dataSaida": "2026-11-22", "dataPrevista": "2026-11-22",
            "itens": [{"produto": {"id": id}, "quantidade": 1, "valor": 12.5, "descricao": "Copo"}]})),
    )
    .await["data"]["id"]
        .as_i64()
        .unwrap();
    bling_webhook("ops-order", "order.created", json!({"id": order}), trace(2)).await;
    assert!(eventually(Duration::from_secs(30), || async { portal.deals().len() == 1 }).await, "no deal");

    // A product made in the CRM: exported into Bling.
    let crm_id = portal.create_product_in_ui(json!({"NAME": "Prato", "XML_ID": "PRA-1", "PRICE": 20})).unwrap();
    let pc = portal.config();
    let form = serde_urlencoded::to_string([
        ("event", "ONCRMPRODUCTADD".to_owned()),
        ("event_handler_id", "1".to_owned()),
        ("data[FIELDS][ID]", crm_id.to_string()),
        ("ts", chrono::Utc::now().timestamp().to_string()),
        ("auth[domain]", pc.domain.clone()),
        ("auth[member_id]", pc.member_id.clone()),
        ("auth[application_token]", pc.application_token.clone()),
    ])
    .unwrap();
    let url = mesh.gateway_url(&format!("/webhooks/bitrix24/{TENANT}"));
    post(url, "application/x-www-form-urlencoded", form, trace(3), None).await;
    // The export marks the CRM product with the Bling id it created.
    let exported_id = || {
        let key =
            portal.properties().into_iter().find(|p| p.code == "BLING_ID").map(|p| format!("PROPERTY_{}", p.id))?;
        let p = portal.product(crm_id)?;
        ponte_connectors::bitrix24::client::field_values(p.get(&key)).into_iter().next()?.parse::<i64>().ok()
    };
    assert!(eventually(Duration::from_secs(30), || async { exported_id().is_some() }).await, "not exported");
    assert_eq!(mesh.bling.bling.product(exported_id().unwrap()).unwrap()["nome"], "Prato");

    let catalog_sync = mesh.proc("catalog-sync");
    let flows = [
        ("bling_to_bitrix24_products", trace(1)),
        ("bling_to_cplug_products", trace(1)),
        ("bling_to_bitrix24_orders", trace(2)),
        ("bitrix24_to_bling_products", trace(3)),
    ];
    let text = catalog_sync.metrics(true).await;
    for (flow, trace_id) in &flows {
        assert_eq!(count(&text, flow), 1, "{flow}: {text}");
        assert_eq!(exemplars(&text, flow), vec![trace_id.clone()], "{flow}'s exemplar");
    }
    // The exemplars' traces are the ones catalog-sync exported.
    let exported = eventually(Duration::from_secs(10), || async {
        let seen = collector.traces_of("ponte-catalog-sync").await;
        flows.iter().all(|(_, t)| seen.contains(t))
    })
    .await;
    assert!(exported, "catalog-sync exported {:?}", collector.traces_of("ponte-catalog-sync").await);

    // Every call to an outside system is counted by provider, operation and status.
    let plain = catalog_sync.metrics(false).await;
    assert!(!plain.contains("trace_id=") && !plain.contains("# EOF"), "exemplars in the Prometheus format");
    for want in [
        r#"ponte_outbound_requests_total{provider="bling",operation="GET /produtos/{id}",code="200"}"#,
        r#"ponte_outbound_requests_total{provider="bitrix24",operation="crm.product.add",code="200"}"#,
        r#"ponte_outbound_requests_total{provider="cplug",operation="PUT /products/{id}",code="200"}"#,
        r#"ponte_ratelimit_wait_seconds_count{budget="bling"}"#,
    ] {
        assert!(plain.contains(want), "missing {want} in:\n{plain}");
    }
    // The gateway's inbox is empty again, for every subscriber.
    let gateway = mesh.proc("gateway").metrics(false).await;
    assert!(gateway.contains(r#"ponte_inbox_pending{subscriber="catalog-sync"} 0"#), "{gateway}");
    assert!(gateway.contains(r#"ponte_inbox_oldest_pending_age_seconds{subscriber="catalog-sync"} 0"#), "{gateway}");
}

/// A POS sale becomes a Bling order under the trace of the webhook that brought it, whether it
/// is posted at once or waits (parked: its store had no map) and is taken up later by the
/// scanner: both record `cplug_sales_to_bling` with their webhook's trace as exemplar, and
/// sales-ingest exports its spans under those traces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pos_sales_record_their_sync_latency_under_the_webhooks_trace_even_when_resumed_later() {
    let (collector, otlp) = Collector::start().await;
    let mesh = ops_mesh::start_all(
        1,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("PONTE_SALES_SCAN_MS", "100".to_owned()),
            ("PONTE_SALES_RECHECK_SECONDS", "1".to_owned()),
        ],
    )
    .await;
    ops_mesh::set_up_till(&mesh).await;
    let b = &mesh.bling.bling;
    let push = |event_id: &'static str, sale: serde_json::Value, trace_id: String| {
        let mesh = &mesh;
        async move { ops_mesh::push_sale(mesh, event_id, sale, Some(&trace_id)).await }
    };
    let sale = ops_mesh::sale;
    let orders =
        |numero_loja: &str| b.orders().into_iter().filter(|o| o["numeroLoja"].as_str() == Some(numero_loja)).count();
    let sales_ingest = mesh.proc("sales-ingest");
    let db = mesh.db("sales_ingest").await;
    let gateway = mesh.db("gateway").await;
    let where_sales = || async {
        let sales: Vec<(String, String, String, String, String)> =
            sqlx::query_as("SELECT sale_id, state, park_reason, reason, last_error FROM sales")
                .fetch_all(db.pool())
                .await
                .unwrap();
        let inbox: Vec<(String, String)> = sqlx::query_as("SELECT d.state, d.last_error FROM inbox_deliveries d")
            .fetch_all(gateway.pool())
            .await
            .unwrap();
        format!("sales {sales:?}, deliveries {inbox:?}")
    };

    // Posted at once.
    push("ops-sale-1", sale("V-1", "loja-centro"), trace(4)).await;
    let posted_at_once = eventually(Duration::from_secs(30), || async { orders("V-1") == 1 }).await;
    assert!(posted_at_once, "V-1 never posted: {}", where_sales().await);
    let posted = || async { count(&sales_ingest.metrics(true).await, "cplug_sales_to_bling") };
    assert!(eventually(Duration::from_secs(10), || async { posted().await == 1 }).await, "V-1's sync not recorded");

    // Parked (its store has no map), then taken up by the scanner once the store is mapped.
    push("ops-sale-2", sale("V-2", "loja-nova"), trace(5)).await;
    let parked = eventually(Duration::from_secs(30), || async {
        ponte_tests::count(&db, "SELECT COUNT(*) FROM sales WHERE sale_id = 'V-2' AND state = 'parked'").await == 1
    })
    .await;
    assert!(parked, "V-2 never parked: {}", where_sales().await);
    ops_mesh::map_store(&mesh, "loja-nova").await;
    let resumed = eventually(Duration::from_secs(30), || async { orders("V-2") == 1 }).await;
    assert!(resumed, "V-2 never posted: {}", where_sales().await);
    assert!(eventually(Duration::from_secs(10), || async { posted().await == 2 }).await, "V-2's sync not recorded");

    let text = sales_ingest.metrics(true).await;
    let seen = exemplars(&text, "cplug_sales_to_bling");
    assert!(seen.contains(&trace(5)), "the resumed sale's exemplar is not its webhook's trace: {seen:?}\n{text}");
    assert!(seen.iter().all(|t| *t == trace(4) || *t == trace(5)), "an exemplar of a trace no webhook had: {seen:?}");
    let exported = eventually(Duration::from_secs(10), || async {
        let seen = collector.traces_of("ponte-sales-ingest").await;
        seen.contains(&trace(4)) && seen.contains(&trace(5))
    })
    .await;
    assert!(exported, "sales-ingest exported {:?}", collector.traces_of("ponte-sales-ingest").await);
}

/// The trace id in a `traceparent` value.
fn trace_of(traceparent: &str) -> String {
    traceparent.split('-').nth(1).unwrap_or_default().to_owned()
}

/// The two shipping flows, each from a webhook's receipt at the gateway to its write: a Bling
/// order released to shipping (its `order.updated` webhook sent with a trace context of our
/// own) becomes a 360Envios order, and the hub's status webhook moves the Bling order on. Each
/// records its `ponte_sync_latency_seconds` with its webhook's trace as exemplar (for the hub's
/// webhook, the trace the gateway gave it when it stored it), which shipping-status exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_flows_record_their_sync_latency_with_the_webhooks_trace_as_exemplar() {
    let (collector, otlp) = Collector::start().await;
    let mesh = ops_mesh::start_all(
        1,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")), ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned())],
    )
    .await;
    ops_mesh::set_up_shipping(&mesh).await;
    let b = &mesh.bling.bling;
    let contato = ops_mesh::shipping_customer(&mesh);
    let product = b.seed_product(json!({"nome": "Camiseta", "codigo": "CAM-1", "preco": 59.9, "pesoBruto": 0.4}));
    let auth = mesh.channel("auth-token").await;
    let order = ops_mesh::released_order(auth, contato, product, "CAM-1").await;
    let em_andamento = ops_mesh::EM_ANDAMENTO;
    let cfg = mesh.bling.bling.config().clone();
    let data = json!({"id": order, "situacao": {"id": em_andamento}});
    let body = bling_body("ops-ship-order", "order.updated", &cfg.company_id, &date(0), data);
    let sig = sign(&cfg.client_secret, body.as_bytes());
    post(mesh.gateway_url("/webhooks/bling"), "application/json", body, trace(6), Some(sig)).await;
    let hub = &mesh.hub.hub;
    assert!(eventually(Duration::from_secs(30), || async { hub.orders().len() == 1 }).await, "no 360 order");

    // The hub moves it on: its webhook (signed by the hub, straight to the gateway) moves the
    // Bling order to the mapped situação.
    let hub_id = hub.orders()[0]["id"].as_str().unwrap().to_owned();
    hub.set_status(&hub_id, "in_packing_list").unwrap();
    let situacao = || b.order(order).and_then(|o| o.pointer("/situacao/id").and_then(serde_json::Value::as_i64));
    let moved = eventually(Duration::from_secs(30), || async { situacao() != Some(em_andamento) }).await;
    assert!(moved, "the Bling order never moved: {:?}", b.order(order));

    let shipping_status = mesh.proc("shipping-status");
    let counted = eventually(Duration::from_secs(10), || async {
        let text = shipping_status.metrics(true).await;
        count(&text, "bling_to_envios360_orders") == 1 && count(&text, "envios360_to_bling_status") == 1
    })
    .await;
    let text = shipping_status.metrics(true).await;
    assert!(counted, "{text}");
    assert_eq!(exemplars(&text, "bling_to_envios360_orders"), vec![trace(6)], "the release's exemplar");
    // The hub's webhook came without a trace context: the gateway began its trace and kept it
    // with the stored event.
    let gateway = mesh.db("gateway").await;
    let hub_traces: Vec<String> =
        sqlx::query_scalar("SELECT traceparent FROM inbox_events WHERE source = 'envios360' AND traceparent <> ''")
            .fetch_all(gateway.pool())
            .await
            .unwrap();
    let hub_traces: Vec<String> = hub_traces.iter().map(|t| trace_of(t)).collect();
    let status = exemplars(&text, "envios360_to_bling_status");
    assert_eq!(status.len(), 1, "{text}");
    assert!(
        hub_traces.contains(&status[0]),
        "the status exemplar {status:?} is no hub webhook's trace: {hub_traces:?}"
    );

    let wanted = [trace(6), status[0].clone()];
    let exported = eventually(Duration::from_secs(10), || async {
        let seen = collector.traces_of("ponte-shipping-status").await;
        wanted.iter().all(|t| seen.contains(t))
    })
    .await;
    assert!(
        exported,
        "shipping-status exported {:?}, not {wanted:?}",
        collector.traces_of("ponte-shipping-status").await
    );
}
