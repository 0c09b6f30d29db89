//! What the binary's tests share: the `ponte` command with a clean environment, free local
//! ports, child processes that are killed when a test ends, panicking or not, and an OTLP
//! receiver the processes export their spans to.

use std::{net::SocketAddr, process::Command, sync::Arc};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::Span,
};
use tokio::sync::Mutex;

/// The API token the binary's tests give their processes (`ponte serve`, `ponte dev` and the
/// CLI's commands alike), as the mesh's service token.
pub const API_TOKEN: &str = "ponte-cli-tests-0123456789abcdef0123456789abcdef";

/// `PONTE_API_TOKENS_FILE` (a file naming [`API_TOKEN`]) and `PONTE_API_TOKEN`.
pub fn api_env() -> Vec<(String, String)> {
    static FILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let file = FILE.get_or_init(|| ponte_tests::api_tokens_file(&[("tests", API_TOKEN, "service")]));
    vec![("PONTE_API_TOKENS_FILE".into(), file.clone()), ("PONTE_API_TOKEN".into(), API_TOKEN.into())]
}

/// `channel` presenting [`API_TOKEN`].
pub fn with_token(channel: tonic::transport::Channel) -> ponte_tests::Channel {
    ponte_tests::with_token(&ponte_core::config::Env::from_pairs(api_env()), channel)
}

/// The `ponte` binary, with nothing of the test's environment but `PATH` and [`api_env`].
pub fn ponte() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ponte"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(api_env());
    cmd
}

/// A free address on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A base port with `n` free ports from it, picked away from the defaults.
pub fn free_port_block(n: u16) -> u16 {
    for i in 0..200_u16 {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let base = 21_000 + ((seed as u16 ^ std::process::id() as u16).wrapping_add(i * 97) % 18_000);
        if (0..n).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return base;
        }
    }
    panic!("no free block of ports");
}

/// A child process killed (and reaped) when dropped, unless a test takes it first.
pub struct Killed(Option<std::process::Child>);

impl Killed {
    pub fn new(child: std::process::Child) -> Self {
        Self(Some(child))
    }

    /// The process, for a test that stops it itself.
    pub fn take(&mut self) -> std::process::Child {
        self.0.take().expect("the process was taken already")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Spans received, with the service.name of the process that sent them.
#[derive(Clone, Default)]
pub struct Collector(pub Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
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
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                spans.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Collector {
    /// A receiver on 127.0.0.1; its address (for `OTEL_EXPORTER_OTLP_ENDPOINT=http://…`).
    pub async fn start() -> (Self, SocketAddr) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let otlp = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (collector, otlp)
    }

    /// The trace ids (32 hex digits) of the spans `service` sent.
    pub async fn traces_of(&self, service: &str) -> std::collections::HashSet<String> {
        self.0
            .lock()
            .await
            .iter()
            .filter(|(svc, _)| svc == service)
            .map(|(_, s)| s.trace_id.iter().map(|b| format!("{b:02x}")).collect())
            .collect()
    }
}
