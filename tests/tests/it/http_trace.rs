//! Outbound HTTP calls carry the W3C trace context of the span that makes them, so a sync's
//! trace continues into the outside system's logs.

use std::sync::{Arc, Mutex};

use axum::{Router, http::HeaderMap, routing::get};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn reqwest_calls_carry_the_current_trace() {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let seen2 = seen.clone();
    let app = Router::new().route(
        "/",
        get(move |h: HeaderMap| {
            let seen = seen2.clone();
            async move {
                *seen.lock().unwrap() = h.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let span = tracing::info_span!("sync");
    let trace_id = span.context().span().span_context().trace_id().to_string();
    async {
        let client = ponte_connectors::http::client();
        ponte_core::telemetry::traced(client.get(format!("http://{addr}/"))).send().await.unwrap();
    }
    .instrument(span)
    .await;

    let header = seen.lock().unwrap().clone().expect("no traceparent header reached the server");
    assert!(header.starts_with(&format!("00-{trace_id}-")), "{header} does not continue trace {trace_id}");
}
