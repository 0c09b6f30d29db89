//! Prometheus metrics, named `ponte_*` with bounded labels. One registry per process: every
//! `ponte serve` exposes it at `/metrics` (the gateway on its HTTP port, other services on
//! `PONTE_METRICS_ADDR`), and `ponte dev` shows every service's through the gateway.
//!
//! The gRPC server layer counts every call by service, method and status code and records
//! its latency, so an SRE sees each service's error rate and tail latency without tracing.
//! The metrics every flow shares are here too, so each is recorded the same way everywhere:
//! sync latency per flow from the webhook's receipt to the target's write ([`record_sync`],
//! with the trace id as an exemplar), calls to the outside systems ([`record_outbound`]),
//! waits for their request budgets ([`record_budget_wait`]).
//!
//! `/metrics` answers OpenMetrics (with exemplars) to a scraper that asks for it
//! (`Accept: application/openmetrics-text`, as Prometheus does), and the Prometheus text
//! format otherwise ([`respond`]).

use std::{
    pin::Pin,
    sync::{LazyLock, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use ponte_proto::v1::Flow;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        exemplar::HistogramWithExemplars,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tonic::Status;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcCallLabels {
    pub service: String,
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcMethodLabels {
    pub service: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabels {
    pub flow: &'static str,
}

/// An exemplar's labels: the trace of the observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceLabels {
    pub trace_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboundLabels {
    pub provider: &'static str,
    pub operation: String,
    /// The HTTP status, or `error` when no answer came (connection, timeout).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub provider: &'static str,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// The budget's kind (`bling`, `bitrix24`, `bling-token`, …), never an account.
    pub budget: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub budget: String,
    /// `daily_exhausted` or `wait_too_long`.
    pub reason: &'static str,
}

/// The process's registry and the metrics every service shares.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Every metric's name as registered (an empty family is not encoded, but is exported).
    names: Mutex<Vec<String>>,
    pub grpc_requests: Family<GrpcCallLabels, Counter>,
    pub grpc_latency: Family<GrpcMethodLabels, Histogram>,
    pub sync_latency: Family<FlowLabels, HistogramWithExemplars<TraceLabels>>,
    pub outbound: Family<OutboundLabels, Counter>,
    pub outbound_latency: Family<OperationLabels, Histogram>,
    pub budget_wait: Family<BudgetLabels, Histogram>,
    pub budget_refused: Family<RefusalLabels, Counter>,
    started: Instant,
    uptime: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let mut names = Vec::new();
    let mut registry = Recording { registry: &mut registry, names: &mut names };
    let grpc_requests = Family::<GrpcCallLabels, Counter>::default();
    registry.register("ponte_grpc_server_requests", "gRPC calls handled, by status code", grpc_requests.clone());
    let grpc_latency = Family::<GrpcMethodLabels, Histogram>::new_with_constructor(|| {
        // 0.5 ms .. ~16 s
        Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16))
    });
    registry.register(
        "ponte_grpc_server_latency_seconds",
        "gRPC call latency until the response headers",
        grpc_latency.clone(),
    );
    let build = Family::<BuildLabels, Gauge>::default();
    build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
    registry.register("ponte_build_info", "The running ponte version", build);
    let uptime = Gauge::default();
    registry.register("ponte_uptime_seconds", "Seconds since the process started", uptime.clone());
    // 50 ms .. ~7 h: a sync waits out its outside system's outages and rate limits.
    let sync_latency = Family::<FlowLabels, HistogramWithExemplars<TraceLabels>>::new_with_constructor(|| {
        HistogramWithExemplars::new(exponential_buckets(0.05, 2.0, 20))
    });
    registry.register(
        "ponte_sync_latency_seconds",
        "Time from an event's receipt at the gateway to the write in the target system, by flow",
        sync_latency.clone(),
    );
    let outbound = Family::<OutboundLabels, Counter>::default();
    registry.register(
        "ponte_outbound_requests",
        "Calls to the outside systems, by provider, operation and HTTP status (error: no answer)",
        outbound.clone(),
    );
    let outbound_latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
        // 5 ms .. ~40 s
        Histogram::new(exponential_buckets(0.005, 2.0, 14))
    });
    registry.register(
        "ponte_outbound_request_duration_seconds",
        "Duration of calls to the outside systems, until the whole answer was read",
        outbound_latency.clone(),
    );
    let budget_wait = Family::<BudgetLabels, Histogram>::new_with_constructor(|| {
        // 1 ms .. ~65 s
        Histogram::new(exponential_buckets(0.001, 2.0, 17))
    });
    registry.register(
        "ponte_ratelimit_wait_seconds",
        "Time a call waited for its outside system's request budget",
        budget_wait.clone(),
    );
    let budget_refused = Family::<RefusalLabels, Counter>::default();
    registry.register(
        "ponte_ratelimit_refused",
        "Calls not made because a budget is spent for the day or would take too long to free",
        budget_refused.clone(),
    );
    Metrics {
        registry: Mutex::new(std::mem::take(registry.registry)),
        names: Mutex::new(names),
        grpc_requests,
        grpc_latency,
        sync_latency,
        outbound,
        outbound_latency,
        budget_wait,
        budget_refused,
        started: Instant::now(),
        uptime,
    }
});

/// A registry that remembers the names it was given.
struct Recording<'a> {
    registry: &'a mut Registry,
    names: &'a mut Vec<String>,
}

impl Recording<'_> {
    fn register(&mut self, name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
        self.names.push(name.to_owned());
        self.registry.register(name, help, metric);
    }
}

/// Records one sync of `flow` whose event the gateway received at `received_at_ms` (Unix ms,
/// `InboundEvent.received_at`), written to the target now; the current trace is its exemplar.
pub fn record_sync(flow: Flow, received_at_ms: i64) {
    let seconds = (crate::time::now_millis() - received_at_ms).max(0) as f64 / 1000.0;
    let exemplar = crate::telemetry::current_trace_id().map(|trace_id| TraceLabels { trace_id });
    global().sync_latency.get_or_create(&FlowLabels { flow: flow.label() }).observe(seconds, exemplar, None);
}

/// Records one call to `provider` (`bling`, `bitrix24`, `cplug`, `envios360`): its operation
/// (a bounded name: a REST method, or a path with its ids replaced), its HTTP status (`None`:
/// no answer) and how long it took.
pub fn record_outbound(provider: &'static str, operation: &str, status: Option<u16>, took: std::time::Duration) {
    let m = global();
    let code = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    m.outbound.get_or_create(&OutboundLabels { provider, operation: operation.to_owned(), code }).inc();
    m.outbound_latency
        .get_or_create(&OperationLabels { provider, operation: operation.to_owned() })
        .observe(took.as_secs_f64());
}

/// The kind of a rate-limit key (`bling:12345` is a `bling` budget): no account in a label.
fn budget_kind(key: &str) -> String {
    key.split(':').next().unwrap_or(key).to_owned()
}

/// Records how long a call waited for budget `key` (see [`crate::ratelimit::acquire`]).
pub fn record_budget_wait(key: &str, waited: std::time::Duration) {
    global().budget_wait.get_or_create(&BudgetLabels { budget: budget_kind(key) }).observe(waited.as_secs_f64());
}

/// Records a call refused by budget `key`: `daily_exhausted` or `wait_too_long`.
pub fn record_budget_refused(key: &str, reason: &'static str) {
    global().budget_refused.get_or_create(&RefusalLabels { budget: budget_kind(key), reason }).inc();
}

/// An outside call's path as a bounded label: numeric and long opaque segments become `{id}`
/// (`/produtos/16059781281/situacoes` → `/produtos/{id}/situacoes`).
pub fn operation_of(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path
        .split('/')
        .map(|seg| {
            let id_like = seg.bytes().any(|b| b.is_ascii_digit()) && seg.len() > 3 || seg.len() > 40;
            if id_like { "{id}" } else { seg }
        })
        .collect();
    format!("{method} {}", segments.join("/"))
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    /// Registers a metric of a service (its name should start with `ponte_`).
    pub fn register(&self, name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, metric);
        }
        if let Ok(mut names) = self.names.lock() {
            names.push(name.to_owned());
        }
    }

    /// The name of every metric registered so far (a counter's samples add `_total`, a
    /// histogram's `_bucket`, `_sum` and `_count`).
    pub fn names(&self) -> Vec<String> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Everything in the OpenMetrics text format (exemplars included).
    pub fn encode(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs() as i64);
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = encode(&mut out, &r);
        }
        out
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format, for scrapers that do not ask for OpenMetrics.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/metrics` for a request that sent `accept`: OpenMetrics (with exemplars) when it asks for
/// it, otherwise the Prometheus text format (which has no exemplars). The content type and body.
pub fn respond(accept: Option<&str>) -> (&'static str, String) {
    let text = global().encode();
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        (CONTENT_TYPE, text)
    } else {
        (PROMETHEUS_CONTENT_TYPE, to_prometheus_text(&text))
    }
}

/// OpenMetrics text as the Prometheus 0.0.4 format: no exemplars, no `# EOF` or `# UNIT`, and
/// counters declared under their samples' `_total` name.
fn to_prometheus_text(open_metrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in open_metrics.lines() {
        if let Some(name) = line.strip_prefix("# TYPE ").and_then(|l| l.strip_suffix(" counter")) {
            counters.insert(name.to_owned());
        }
    }
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let line = match line.split_once(" # {") {
            Some((sample, _exemplar)) => sample,
            None => line,
        };
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn code_name(code: &str) -> &'static str {
    match code.trim().parse::<i32>().map(tonic::Code::from_i32) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "CANCELLED",
        Ok(tonic::Code::Unknown) => "UNKNOWN",
        Ok(tonic::Code::InvalidArgument) => "INVALID_ARGUMENT",
        Ok(tonic::Code::DeadlineExceeded) => "DEADLINE_EXCEEDED",
        Ok(tonic::Code::NotFound) => "NOT_FOUND",
        Ok(tonic::Code::AlreadyExists) => "ALREADY_EXISTS",
        Ok(tonic::Code::PermissionDenied) => "PERMISSION_DENIED",
        Ok(tonic::Code::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        Ok(tonic::Code::FailedPrecondition) => "FAILED_PRECONDITION",
        Ok(tonic::Code::Aborted) => "ABORTED",
        Ok(tonic::Code::OutOfRange) => "OUT_OF_RANGE",
        Ok(tonic::Code::Unimplemented) => "UNIMPLEMENTED",
        Ok(tonic::Code::Internal) => "INTERNAL",
        Ok(tonic::Code::Unavailable) => "UNAVAILABLE",
        Ok(tonic::Code::DataLoss) => "DATA_LOSS",
        Ok(tonic::Code::Unauthenticated) => "UNAUTHENTICATED",
        Err(_) => "UNKNOWN",
    }
}

/// Tower layer recording every gRPC call of ponte's own services (health and reflection
/// calls are left out: probes would drown the signal).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
}

type Recorder = Box<dyn FnOnce(&str) + Send>;

fn recorder(service: String, method: String) -> Recorder {
    Box::new(move |code: &str| {
        global().grpc_requests.get_or_create(&GrpcCallLabels { service, method, code: code_name(code).into() }).inc();
    })
}

impl<S, B> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let trimmed = path.trim_start_matches('/');
            if trimmed.starts_with("grpc.") {
                return Ok(resp);
            }
            let (service, method) = trimmed.split_once('/').unwrap_or((trimmed, ""));
            let (service, method) = (service.to_owned(), method.to_owned());
            global()
                .grpc_latency
                .get_or_create(&GrpcMethodLabels { service: service.clone(), method: method.clone() })
                .observe(started.elapsed().as_secs_f64());
            let record = recorder(service, method);
            // Errors come "trailers-only", in the headers; successes in the trailers.
            if let Some(code) = resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()) {
                record(code);
                return Ok(resp);
            }
            let (parts, body) = resp.into_parts();
            Ok(http::Response::from_parts(
                parts,
                tonic::body::Body::new(Observed { inner: body, record: Some(record) }),
            ))
        })
    }
}

/// A response body that records the call's status when its trailers pass.
struct Observed {
    inner: tonic::body::Body,
    record: Option<Recorder>,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) =
                    frame.trailers_ref().and_then(|t| t.get("grpc-status")).and_then(|v| v.to_str().ok())
                    && let Some(record) = this.record.take()
                {
                    record(code);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(record) = this.record.take() {
                    record("2");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name("0"), "OK");
        assert_eq!(code_name("3"), "INVALID_ARGUMENT");
        assert_eq!(code_name("14"), "UNAVAILABLE");
        assert_eq!(code_name("x"), "UNKNOWN");
    }

    #[test]
    fn sync_latency_carries_the_trace_as_an_exemplar_in_open_metrics_only() {
        record_sync(Flow::BlingToCplugProducts, crate::time::now_millis() - 1500);
        global().sync_latency.get_or_create(&FlowLabels { flow: Flow::BlingToCplugProducts.label() }).observe(
            0.2,
            Some(TraceLabels { trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into() }),
            None,
        );
        let (open_type, open) = respond(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
        assert_eq!(open_type, CONTENT_TYPE);
        let bucket = open
            .lines()
            .find(|l| l.starts_with(r#"ponte_sync_latency_seconds_bucket{le="0.2",flow="bling_to_cplug_products"}"#))
            .unwrap_or_else(|| panic!("{open}"));
        assert!(bucket.ends_with(r#" # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.2"#), "{bucket}");
        assert!(open.ends_with("# EOF\n"));
        let (plain_type, plain) = respond(Some("text/plain"));
        assert_eq!(plain_type, PROMETHEUS_CONTENT_TYPE);
        assert!(!plain.contains("trace_id") && !plain.contains("# EOF"), "{plain}");
        record_outbound("bling", "GET /produtos/{id}", Some(429), std::time::Duration::from_millis(3));
        let (_, plain) = respond(None);
        assert!(plain.contains("# TYPE ponte_outbound_requests_total counter"), "{plain}");
        let sample = r#"ponte_outbound_requests_total{provider="bling",operation="GET /produtos/{id}",code="429"} 1"#;
        assert!(plain.contains(sample), "{plain}");
        assert!(global().names().contains(&"ponte_ratelimit_refused".to_owned()), "registered, if never observed");
        assert!(plain.contains(r#"ponte_sync_latency_seconds_count{flow="bling_to_cplug_products"} 2"#), "{plain}");
    }

    #[test]
    fn operations_and_budgets_are_bounded_labels() {
        assert_eq!(operation_of("GET", "/produtos/16059781281/situacoes"), "GET /produtos/{id}/situacoes");
        assert_eq!(operation_of("PUT", "/produtos/9?x=1"), "PUT /produtos/9");
        assert_eq!(operation_of("GET", "/empresas/me/dados-basicos"), "GET /empresas/me/dados-basicos");
        assert_eq!(budget_kind("bling:12345"), "bling");
        assert_eq!(budget_kind("bitrix24:loja.bitrix24.com.br"), "bitrix24");
    }

    #[test]
    fn the_registry_encodes_build_info() {
        let text = global().encode();
        assert!(text.contains("ponte_build_info{version="), "{text}");
        assert!(text.contains("# EOF"));
    }
}
