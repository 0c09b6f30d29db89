//! One record's history through the gateway's `GetRecordHistory`: the inbox's receipt and
//! deliveries merged with the owning service's own log, each step carrying the trace of the
//! webhook that caused it, rendered as a link by `PONTE_TRACE_URL_TEMPLATE`. The services record
//! trace ids only under a tracing subscriber with OpenTelemetry, which is process-wide state:
//! each test runs in a process of its own ([`ponte_tests::run_alone`]).

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use ponte_core::config::Env;
use ponte_proto::v1::{
    GetEntityHistoryRequest, GetRecordHistoryRequest, RecordHistoryEntry, SaleState,
    catalog_sync_service_client::CatalogSyncServiceClient, inbox_service_client::InboxServiceClient,
};
use ponte_sandbox::bitrix24::{self, Bitrix24};
use ponte_tests::{
    eventually,
    shipping::{EM_ANDAMENTO, ShippingWorld},
    webhooks::{BlingWorld, TENANT, bling_body, date, sign},
};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

use crate::sales_support::{SalesWorld, sales_env};

const TEMPLATE: &str = "https://grafana.example/explore?traceId={trace_id}";

/// Installs, for this thread, a subscriber that gives every span an OpenTelemetry context.
fn traced() -> tracing::subscriber::DefaultGuard {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_default(subscriber)
}

async fn history(gateway: ponte_tests::Channel, entity: &str) -> Vec<RecordHistoryEntry> {
    InboxServiceClient::new(gateway)
        .get_record_history(GetRecordHistoryRequest { tenant_id: TENANT.into(), entity: entity.into() })
        .await
        .expect("GetRecordHistory")
        .into_inner()
        .entries
}

fn steps(entries: &[RecordHistoryEntry]) -> Vec<String> {
    entries.iter().map(|e| format!("{} | {} | {} | {}", e.component, e.action, e.outcome, e.trace_id)).collect()
}

/// Every entry is in time order, and each traced one links to its trace.
fn well_formed(entries: &[RecordHistoryEntry]) {
    let times: Vec<_> = entries.iter().map(|e| e.time.map(|t| (t.seconds, t.nanos))).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not in time order: {:#?}", steps(entries));
    for e in entries {
        if e.trace_id.is_empty() {
            assert!(e.trace_url.is_empty());
        } else {
            assert_eq!(e.trace_url, TEMPLATE.replace("{trace_id}", &e.trace_id));
        }
    }
}

#[test]
fn a_product_s_history_runs_from_the_bling_webhook_to_the_bitrix24_write_in_one_trace() {
    ponte_tests::run_alone("record_history::product_history_alone");
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "run in a process of its own by a_product_s_history_runs_from_the_bling_webhook_to_the_bitrix24_write_in_one_trace"]
async fn product_history_alone() {
    let _guard = traced();
    let specs: &[&ponte_core::service::ServiceSpec] =
        &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];
    let env = Env::default().with("PONTE_TRACE_URL_TEMPLATE", TEMPLATE);
    let w = BlingWorld::start_with_env(specs, Default::default(), &ponte_tests::redis_url(), env).await;
    let portal = Bitrix24::new(bitrix24::Config::for_tests()).spawn(None).await.unwrap();
    w.connect_portal(&portal).await;
    let product = w.bling.bling.seed_product(json!({"nome": "Copo", "codigo": "COPO-1", "preco": 12.5}));
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone().with("PONTE_DISPATCH_POLL_MS", "100")).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = bling_body("hist-1", "product.updated", &w.company_id(), &date(0), json!({"id": product}));
    let resp = reqwest::Client::new()
        .post(gw.url("/webhooks/bling"))
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("X-Bling-Signature-256", sign(&w.client_secret(), body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let entity = format!("product:{product}");
    let gateway = w.mesh.channel("gateway").await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            history(gateway.clone(), &entity).await.iter().any(|e| e.component == "catalog-sync")
        })
        .await,
        "catalog-sync never logged the event"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            history(gateway.clone(), &entity).await.iter().any(|e| e.action == "delivered to catalog-sync")
        })
        .await
    );
    let entries = history(gateway.clone(), &entity).await;
    well_formed(&entries);
    let shown = steps(&entries);
    let received = entries.iter().position(|e| e.action == "received bling product.updated");
    let delivered = entries.iter().position(|e| e.action == "delivered to catalog-sync");
    let handled = entries.iter().position(|e| e.component == "catalog-sync");
    let (received, delivered, handled) = (received.unwrap(), delivered.unwrap(), handled.unwrap());
    assert!(received < handled && handled <= delivered + 1, "{shown:#?}");
    assert_eq!(entries[received].outcome, "delivered", "{shown:#?}");
    assert_eq!(entries[delivered].outcome, "applied", "{shown:#?}");
    let h = &entries[handled];
    assert_eq!((h.action.as_str(), h.outcome.as_str()), ("handled bling product.updated", "applied"), "{shown:#?}");
    assert!(h.detail.contains("Bitrix24 product"), "{}", h.detail);
    assert!(entries.iter().all(|e| e.trace_id == trace_id), "every step in the webhook's trace: {shown:#?}");
    assert_eq!(h.trace_url, format!("https://grafana.example/explore?traceId={trace_id}"));
    assert!(entries.iter().all(|e| !e.event_id.is_empty()));
    assert_eq!(portal.portal.products().len(), 1);

    // A record nobody touched has an empty history; a malformed one is refused naming the field.
    assert!(history(gateway.clone(), "product:999").await.is_empty());
    let err = InboxServiceClient::new(gateway)
        .get_record_history(GetRecordHistoryRequest { tenant_id: TENANT.into(), entity: "product".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("entity"), "{}", err.message());

    // A service that cannot be asked (shipping-status is not running here) is a step saying so;
    // the rest of the history is still shown.
    let order = history(w.mesh.channel("gateway").await, "order:5").await;
    assert_eq!(order.len(), 1, "{:#?}", steps(&order));
    assert_eq!((order[0].component.as_str(), order[0].outcome.as_str()), ("shipping-status", "unavailable"));

    // catalog-sync's own RPC checks what it is asked.
    let mut cs = CatalogSyncServiceClient::new(w.mesh.channel("catalog-sync").await);
    let ask = |tenant: &str, entity: &str| GetEntityHistoryRequest { tenant_id: tenant.into(), entity: entity.into() };
    let own = cs.get_entity_history(ask(TENANT, &entity)).await.unwrap().into_inner().entries;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].trace_id, trace_id);
    let err = cs.get_entity_history(ask(TENANT, ":1")).await.unwrap_err();
    assert!(err.code() == tonic::Code::InvalidArgument && err.message().starts_with("entity"), "{err:?}");
    let err = cs.get_entity_history(ask("", &entity)).await.unwrap_err();
    assert!(err.code() == tonic::Code::InvalidArgument && err.message().starts_with("tenant_id"), "{err:?}");
}

#[test]
fn a_sale_s_history_carries_the_trace_of_the_cplug_webhook() {
    ponte_tests::run_alone("record_history::sale_history_alone");
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "run in a process of its own by a_sale_s_history_carries_the_trace_of_the_cplug_webhook"]
async fn sale_history_alone() {
    let _guard = traced();
    let specs: &[&ponte_core::service::ServiceSpec] =
        &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_sales_ingest::SPEC, &ponte_gateway::SPEC];
    let w = SalesWorld::start_with(specs, sales_env().with("PONTE_TRACE_URL_TEMPLATE", TEMPLATE)).await;
    let id = w.ring_up(json!({"id": "V-77", "store_id": "loja-centro",
        "items": [{"sku": "CAM-AZ-M", "quantity": 1, "unit_price": 59.90}],
        "payments": [{"method": "CREDITO", "amount": 59.90}]}));
    w.wait_for(&id, SaleState::Posted).await;
    let entity = format!("sale:{id}");
    let gateway = w.world.mesh.channel("gateway").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            history(gateway.clone(), &entity).await.iter().any(|e| e.action == "delivered to sales-ingest")
        })
        .await
    );
    let entries = history(gateway, &entity).await;
    well_formed(&entries);
    let shown = steps(&entries);
    let receipt = entries
        .iter()
        .find(|e| e.component == "gateway" && e.action.starts_with("received cplug "))
        .unwrap_or_else(|| panic!("no receipt in {shown:#?}"));
    assert_eq!(receipt.trace_id.len(), 32, "the gateway's trace: {shown:#?}");
    for step in ["received", "order created", "stock written off"] {
        let e = entries
            .iter()
            .find(|e| e.component == "sales-ingest" && e.action == step)
            .unwrap_or_else(|| panic!("{step} missing from {shown:#?}"));
        assert_eq!(e.trace_id, receipt.trace_id, "{step} is outside the webhook's trace: {shown:#?}");
    }
}

#[test]
fn a_shipment_s_history_carries_the_traces_of_the_webhooks_that_moved_it() {
    ponte_tests::run_alone("record_history::shipment_history_alone");
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "run in a process of its own by a_shipment_s_history_carries_the_traces_of_the_webhooks_that_moved_it"]
async fn shipment_history_alone() {
    let _guard = traced();
    let world = ShippingWorld::start_layout(
        ponte_tests::shipping::SPECS,
        None,
        Env::default().with("PONTE_TRACE_URL_TEMPLATE", TEMPLATE),
        |_| {},
        |_| {},
    )
    .await;
    world.set_up(false).await;
    let customer = world.customer();
    let shirt = world.product("CAM-AZ-M", 59.9, 0);
    let order = world.order(customer, &[(shirt, 1, 59.9)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    world.until_shipment(order, "the 360 order", |s| !s.envios360_order_id.is_empty()).await;
    world.until_quiet().await;

    let entries = history(world.w.mesh.channel("gateway").await, &format!("order:{order}")).await;
    well_formed(&entries);
    let shown = steps(&entries);
    let shipping: Vec<&RecordHistoryEntry> =
        entries.iter().filter(|e| e.component == "shipping-status" && !e.event_id.is_empty()).collect();
    assert!(
        shipping.iter().any(|e| e.action.contains("created 360Envios order")),
        "the release is in the history: {shown:#?}"
    );
    for e in &shipping {
        let receipt = entries
            .iter()
            .find(|r| r.component == "gateway" && r.event_id == e.event_id && r.action.starts_with("received "))
            .unwrap_or_else(|| panic!("no receipt of {} in {shown:#?}", e.event_id));
        assert_eq!(receipt.trace_id.len(), 32, "{shown:#?}");
        assert_eq!(e.trace_id, receipt.trace_id, "{} is outside its webhook's trace: {shown:#?}", e.action);
    }
    assert!(
        entries.iter().any(|e| e.component == "gateway" && e.action == "delivered to shipping-status"),
        "{shown:#?}"
    );
}
