//! A tiny OTLP/gRPC trace receiver on 127.0.0.1: keeps every span it is sent, and renders each
//! as one line (service, span name, every attribute and every event's attributes) for checks
//! that read what the processes exported.

use std::{net::SocketAddr, sync::Arc};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::Span,
};
use tokio::sync::Mutex;

/// Spans received, with the `service.name` of the process that sent them.
#[derive(Clone, Default)]
pub struct Receiver(pub Arc<Mutex<Vec<(String, Span)>>>);

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn pairs(kvs: &[KeyValue]) -> String {
    kvs.iter().map(|kv| format!("{}={}", kv.key, text(&kv.value))).collect::<Vec<_>>().join(" ")
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().await;
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(&kv.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                spans.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    /// A receiver on a free port of 127.0.0.1; its address (for
    /// `OTEL_EXPORTER_OTLP_ENDPOINT=http://…`).
    pub async fn start() -> std::io::Result<(Self, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok((Self::serve_on(listener), addr))
    }

    /// A receiver on `addr`.
    pub async fn serve(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self::serve_on(tokio::net::TcpListener::bind(addr).await?))
    }

    fn serve_on(listener: tokio::net::TcpListener) -> Self {
        let receiver = Self::default();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        receiver
    }

    /// One line per span: service, name, attributes, then each event's name and attributes.
    pub async fn lines(&self) -> Vec<String> {
        self.0.lock().await.iter().map(|(service, s)| line(service, s)).collect()
    }

    /// [`Receiver::lines`] of the spans received so far, which are forgotten.
    pub async fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().await).iter().map(|(service, s)| line(service, s)).collect()
    }
}

fn line(service: &str, s: &Span) -> String {
    let events: Vec<String> = s.events.iter().map(|e| format!("[{} {}]", e.name, pairs(&e.attributes))).collect();
    format!("{service} {} {} {}", s.name, pairs(&s.attributes), events.join(" "))
}
