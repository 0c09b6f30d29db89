//! One trace from the webhook to the Bitrix24 write: the inbox row keeps the receipt's trace
//! context, the delivery is its child, the service's span is the delivery's child, and the
//! service's calls to Bling and Bitrix24 are client spans under it. The test installs a tracing
//! subscriber, and tracing's per-callsite caches are shared with whatever else runs in the
//! process: it runs in a process of its own ([`ponte_tests::run_alone`]).

use std::time::Duration;

use ponte_sandbox::bitrix24::{self, Bitrix24};
use ponte_tests::{
    eventually,
    webhooks::{BlingWorld, bling_body, date, sign},
};
use serde_json::json;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

#[test]
fn the_whole_sync_is_one_trace_from_the_webhook_to_the_bitrix24_call() {
    ponte_tests::run_alone("gateway_trace::one_trace_in_a_process_of_its_own");
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "run in a process of its own by the_whole_sync_is_one_trace_from_the_webhook_to_the_bitrix24_call"]
async fn one_trace_in_a_process_of_its_own() {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Debug, Default, Clone)]
    struct Spans(Arc<Mutex<Vec<SpanData>>>);
    impl SpanProcessor for Spans {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let spans = Spans::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_span_processor(spans.clone()).build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // A current-thread runtime: every task of the mesh runs on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let w = BlingWorld::start(SPECS).await;
    let portal = Bitrix24::new(bitrix24::Config::for_tests()).spawn(None).await.unwrap();
    w.connect_portal(&portal).await;
    let product = w.bling.bling.seed_product(json!({"nome": "Copo", "codigo": "COPO-1", "preco": 12.5}));
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone().with("PONTE_DISPATCH_POLL_MS", "200")).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = bling_body("traced-1", "product.updated", &w.company_id(), &date(0), json!({"id": product}));
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
    let stored: String =
        sqlx::query_scalar("SELECT traceparent FROM inbox_events").fetch_one(gw.db.pool()).await.unwrap();
    assert!(stored.starts_with(&format!("00-{trace_id}-")), "stored trace context: {stored}");

    let find = |name: &str| {
        spans
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name.starts_with(name) && s.span_context.trace_id().to_string() == trace_id)
            .cloned()
    };
    assert!(
        eventually(Duration::from_secs(10), || async { find("ponte.v1.CatalogSyncService/HandleEvent").is_some() })
            .await,
        "no HandleEvent span in the webhook's trace: {:?}",
        spans
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|s| (s.name.to_string(), s.span_context.trace_id().to_string()))
            .collect::<Vec<_>>()
    );
    assert!(eventually(Duration::from_secs(5), || async { find("deliver ").is_some() }).await);
    assert!(
        eventually(Duration::from_secs(10), || async { find("Bitrix24 crm.product.add").is_some() }).await,
        "no Bitrix24 write in the webhook's trace: {:?}",
        spans.0.lock().unwrap().iter().map(|s| s.name.to_string()).collect::<Vec<_>>()
    );
    let receive = find("POST /webhooks/bling").expect("receive span");
    let deliver = find("deliver ").expect("delivery span");
    let handle = find("ponte.v1.CatalogSyncService/HandleEvent").expect("service span");
    assert_eq!(receive.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(deliver.parent_span_id, receive.span_context.span_id(), "the delivery is not a child of the receipt");
    assert_eq!(
        handle.parent_span_id,
        deliver.span_context.span_id(),
        "the service span is not a child of the delivery"
    );

    // The client calls hang under the service's span, wherever they sit in its work.
    let all = spans.0.lock().unwrap().clone();
    let descends_from = |span: &SpanData, ancestor: &SpanData| {
        let mut parent = span.parent_span_id;
        while let Some(p) = all.iter().find(|s| s.span_context.span_id() == parent) {
            if p.span_context.span_id() == ancestor.span_context.span_id() {
                return true;
            }
            parent = p.parent_span_id;
        }
        false
    };
    let read = find("Bling GET").expect("the Bling read's span");
    let write = find("Bitrix24 crm.product.add").expect("the Bitrix24 write's span");
    assert!(descends_from(&read, &handle), "the Bling read is outside the service's span");
    assert!(descends_from(&write, &handle), "the Bitrix24 write is outside the service's span");
    let status = write.attributes.iter().find(|kv| kv.key.as_str() == "http.response.status_code");
    assert_eq!(status.map(|kv| kv.value.to_string()), Some("200".to_owned()));
    assert!(
        write.attributes.iter().all(|kv| !kv.value.to_string().contains(&portal.webhook_url)),
        "the webhook URL (a secret) is a span attribute"
    );
    assert_eq!(portal.portal.products().len(), 1);
}
