//! Logs and traces. Every process logs through `tracing` (JSON lines carrying the trace id, or
//! text for people) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exports spans over OTLP/gRPC.
//! W3C trace context travels in gRPC metadata and outbound HTTP headers, so one sync is one
//! trace across every service it touches.
//!
//! Secrets are never recorded: span fields carry ids and counts, never tokens or bodies.

use std::fmt;

use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use serde_json::{Map, Value};
use tracing::{Span, field::Field};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::{ConfigError, Env, check_url};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable (development).
    Text,
}

/// Telemetry settings from `PONTE_LOG`, `PONTE_LOG_FORMAT`, `OTEL_SERVICE_NAME`,
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub service_name: String,
    pub format: LogFormat,
    pub filter: String,
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    pub fn from_env(env: &Env, default_service: &str, default_format: LogFormat) -> Result<Self, ConfigError> {
        let format = match env.get_or("PONTE_LOG_FORMAT", "").to_ascii_lowercase().as_str() {
            "" => default_format,
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(ConfigError::new("PONTE_LOG_FORMAT", format!("'{other}' is not json or text")));
            }
        };
        let filter = env.get_or("PONTE_LOG", "info").to_owned();
        EnvFilter::try_new(&filter)
            .map_err(|e| ConfigError::new("PONTE_LOG", format!("'{filter}' is not a log filter ({e})")))?;
        // Unset (or blank): spans are not exported.
        let otlp_endpoint = match env.get_or("OTEL_EXPORTER_OTLP_ENDPOINT", "") {
            "" => None,
            raw => {
                check_url("OTEL_EXPORTER_OTLP_ENDPOINT", raw, &["http", "https"])?;
                Some(raw.to_owned())
            }
        };
        Ok(Self {
            service_name: env.get_or("OTEL_SERVICE_NAME", default_service).to_owned(),
            format,
            filter,
            otlp_endpoint,
        })
    }
}

/// Keeps the exporter alive; flushes pending spans when dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Sends every finished span now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.force_flush()
        {
            eprintln!("ponte: flushing traces failed: {e}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber and propagator. Call once, at start.
pub fn init(cfg: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = match &cfg.otlp_endpoint {
        None => None,
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter =
                opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(cfg.service_name.clone()).build())
                .build();
            global::set_tracer_provider(provider.clone());
            Some(provider)
        }
    };
    // Spans are exported at info and above whatever `PONTE_LOG` lets through to the logs: quieter
    // logs must not cut the traces (nor the sync latency's exemplars, which read them).
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("ponte"))
            .with_level(true)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let fmt_layer = match cfg.format {
        LogFormat::Json => {
            tracing_subscriber::fmt::layer().event_format(JsonWithTrace { service: cfg.service_name.clone() }).boxed()
        }
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(otel_layer)
        .with(fmt_layer.with_filter(EnvFilter::new(&cfg.filter)))
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// The current trace id, as 32 hex digits, when a sampled span is active.
pub fn current_trace_id() -> Option<String> {
    let cx = Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// JSON log lines: time, level, target, message and fields, the span name and the trace id.
struct JsonWithTrace {
    service: String,
}

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let mut line = Map::new();
        line.insert(
            "time".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert("level".into(), Value::String(event.metadata().level().to_string()));
        line.insert("service".into(), Value::String(self.service.clone()));
        line.insert("target".into(), Value::String(event.metadata().target().to_owned()));
        if let Some(msg) = fields.remove("message") {
            line.insert("message".into(), msg);
        }
        if let Some(span) = ctx.lookup_current() {
            line.insert("span".into(), Value::String(span.name().to_owned()));
        }
        if let Some(trace_id) = current_trace_id() {
            line.insert("trace_id".into(), Value::String(trace_id));
        }
        if !fields.is_empty() {
            line.insert("fields".into(), Value::Object(fields));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(key), http::HeaderValue::try_from(value)) {
            self.0.insert(k, v);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's context into outbound headers (`traceparent`, `tracestate`).
pub fn inject_headers(headers: &mut http::HeaderMap) {
    inject_context(&Span::current().context(), headers);
}

/// Writes `cx` into outbound headers.
pub fn inject_context(cx: &Context, headers: &mut http::HeaderMap) {
    global::get_text_map_propagator(|p| p.inject_context(cx, &mut HeaderInjector(headers)));
}

/// Reads the remote context from inbound headers.
pub fn extract_headers(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// The current context encoded as a `traceparent` value, to keep with stored work (the inbox).
pub fn current_traceparent() -> Option<String> {
    let mut headers = http::HeaderMap::new();
    inject_headers(&mut headers);
    headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Makes `span` a child of the context in a stored `traceparent`.
pub fn set_parent_from_traceparent(span: &Span, traceparent: &str) {
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", v);
        let _ = span.set_parent(extract_headers(&headers));
    }
}

/// A reqwest request with the current trace context in its headers.
pub fn traced(builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let mut headers = http::HeaderMap::new();
    inject_headers(&mut headers);
    builder.headers(headers)
}

/// gRPC client interceptor that sends the current trace context in the call's metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut headers = http::HeaderMap::new();
        inject_headers(&mut headers);
        for (k, v) in &headers {
            if let Ok(key) = tonic::metadata::MetadataKey::from_bytes(k.as_str().as_bytes())
                && let Ok(val) = tonic::metadata::MetadataValue::try_from(v.as_bytes())
            {
                req.metadata_mut().insert(key, val);
            }
        }
        Ok(req)
    }
}

/// The server span of one gRPC call, child of the caller's context when it sent one.
pub fn grpc_server_span(req: &http::Request<()>) -> Span {
    let path = req.uri().path();
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %format!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let _ = span.set_parent(extract_headers(req.headers()));
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_log_settings_name_the_variable() {
        let err = TelemetryConfig::from_env(&Env::from_pairs([("PONTE_LOG_FORMAT", "xml")]), "x", LogFormat::Json)
            .unwrap_err();
        assert_eq!(err.var, "PONTE_LOG_FORMAT");
        let err =
            TelemetryConfig::from_env(&Env::from_pairs([("PONTE_LOG", "a=[")]), "x", LogFormat::Json).unwrap_err();
        assert_eq!(err.var, "PONTE_LOG");
        let err = TelemetryConfig::from_env(
            &Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]),
            "x",
            LogFormat::Json,
        )
        .unwrap_err();
        assert_eq!(err.var, "OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    #[test]
    fn a_traceparent_round_trips_through_headers() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", tp.parse().unwrap());
        let cx = extract_headers(&headers);
        assert_eq!(cx.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let mut out = http::HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(out.get("traceparent").unwrap(), tp);
    }
}
