//! Prometheus metrics, named `ponte_*` with bounded labels. One registry per process: every
//! `ponte serve` exposes it at `/metrics` (the gateway on its HTTP port, other services on
//! `PONTE_METRICS_ADDR`), and `ponte dev` shows every service's through the gateway.
//!
//! The gRPC server layer counts every call by service, method and status code and records
//! its latency, so an SRE sees each service's error rate and tail latency without tracing.

use std::{
    pin::Pin,
    sync::{LazyLock, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
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

/// The process's registry and the metrics every service shares.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub grpc_requests: Family<GrpcCallLabels, Counter>,
    pub grpc_latency: Family<GrpcMethodLabels, Histogram>,
    started: Instant,
    uptime: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
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
    Metrics { registry: Mutex::new(registry), grpc_requests, grpc_latency, started: Instant::now(), uptime }
});

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
    }

    /// Everything in the Prometheus text format.
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
    fn the_registry_encodes_build_info() {
        let text = global().encode();
        assert!(text.contains("ponte_build_info{version="), "{text}");
        assert!(text.contains("# EOF"));
    }
}
