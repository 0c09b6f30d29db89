//! gRPC scaffolding shared by every service: the server (health, reflection v1 and v1alpha,
//! trace propagation, graceful shutdown) and traced client channels to the other services.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    service::{Routes, interceptor::InterceptedService},
    transport::{Channel, Endpoint, Server},
};
use tonic_health::ServingStatus;

use crate::{
    config::ConfigError,
    db::Database,
    idempotency::IdempotencyStore,
    identity::{BearerToken, Identity, IdentityLayer},
    telemetry::{TraceInterceptor, grpc_server_span},
};

type Check = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What must answer before a service reports SERVING: its database, Redis, …
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// The service's database must answer `SELECT 1`.
    pub fn database(mut self, db: Database) -> Self {
        self.checks.push((
            "database",
            Arc::new(move || {
                let db = db.clone();
                Box::pin(async move { db.ping().await.map_err(|e| e.to_string()) })
            }),
        ));
        self
    }

    /// The idempotency store (Redis) must answer `PING`.
    pub fn idempotency(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.checks.push((
            "redis",
            Arc::new(move || {
                let store = store.clone();
                Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
            }),
        ));
        self
    }

    /// Not ready once `stopping` turns true: a process shutting down leaves its Service first.
    pub fn unless_stopping(mut self, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        self.checks.push((
            "shutdown",
            Arc::new(move || {
                let stopping = *stopping.borrow();
                Box::pin(async move { if stopping { Err("the process is shutting down".into()) } else { Ok(()) } })
            }),
        ));
        self
    }

    /// Runs every check (each bounded by a 2 s timeout); the first failure names its dependency.
    pub async fn check(&self) -> Result<(), String> {
        for (name, check) in &self.checks {
            match tokio::time::timeout(Duration::from_secs(2), check()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("{name}: {e}")),
                Err(_) => return Err(format!("{name}: no answer within 2s")),
            }
        }
        Ok(())
    }
}

/// Serves `routes` on `listener` with `grpc.health.v1` and reflection until `shutdown` resolves.
///
/// Health starts NOT_SERVING for every name in `services` and the server as a whole (""), and
/// follows `readiness`, checked every few seconds. When `shutdown` resolves, health turns
/// NOT_SERVING for good, the server stops accepting connections and tells its clients
/// (HTTP/2 GOAWAY), and it returns once the calls in flight have finished.
pub async fn serve(
    services: &[&'static str],
    routes: Routes,
    listener: TcpListener,
    readiness: Readiness,
    identity: Identity,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use futures::FutureExt;
    let shutdown = shutdown.shared();
    let (reporter, health) = tonic_health::server::health_reporter();
    let names: Vec<&'static str> = std::iter::once("").chain(services.iter().copied()).collect();
    for name in &names {
        reporter.set_service_status(*name, ServingStatus::NotServing).await;
    }
    let stopping = shutdown.clone();
    let watcher = tokio::spawn(async move {
        let mut last: Option<bool> = None;
        let mut stopping = std::pin::pin!(stopping);
        loop {
            let result = readiness.check().await;
            let ok = result.is_ok();
            if last != Some(ok) {
                match &result {
                    Ok(()) => tracing::info!("dependencies answer; serving"),
                    Err(e) => tracing::warn!(dependency = %e, "a dependency does not answer; not serving"),
                }
                let status = if ok { ServingStatus::Serving } else { ServingStatus::NotServing };
                for name in &names {
                    reporter.set_service_status(*name, status).await;
                }
                last = Some(ok);
            }
            let wait = if ok { Duration::from_secs(5) } else { Duration::from_millis(500) };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut stopping => {
                    for name in &names {
                        reporter.set_service_status(*name, ServingStatus::NotServing).await;
                    }
                    tracing::info!("shutting down: not serving; finishing the calls in flight");
                    return;
                }
            }
        }
    });
    // Reflection lists only what this server serves, though it can describe every ponte type.
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        services.iter().fold(
            b.register_encoded_file_descriptor_set(ponte_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health"),
            |b, name| b.with_service_name(*name),
        )
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure()).build_v1()?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?;
    let routes = routes.add_service(health).add_service(reflection_v1).add_service(reflection_v1alpha);
    let result = Server::builder()
        .layer(crate::metrics::GrpcMetricsLayer)
        .layer(IdentityLayer(identity))
        .trace_fn(grpc_server_span)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    // The health service is gone with the server; the watcher has nothing left to report to.
    watcher.abort();
    Ok(result?)
}

/// A channel to another ponte service that carries the caller's trace context and its API token.
pub type TracedChannel = InterceptedService<Channel, MeshInterceptor>;

/// Adds the trace context and the bearer token to every call.
#[derive(Clone, Debug, Default)]
pub struct MeshInterceptor(pub BearerToken);

impl tonic::service::Interceptor for MeshInterceptor {
    fn call(&mut self, req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut req = tonic::service::Interceptor::call(&mut TraceInterceptor, req)?;
        self.0.apply(&mut req);
        Ok(req)
    }
}

/// A lazily connected, traced channel to `url` (`http://host:port`) presenting `token`.
pub fn channel(var: &str, url: &str, token: &BearerToken) -> Result<TracedChannel, ConfigError> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| ConfigError::new(var, format!("'{url}' is not a gRPC endpoint ({e})")))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    Ok(InterceptedService::new(endpoint.connect_lazy(), MeshInterceptor(token.clone())))
}

/// Resolves on SIGINT or SIGTERM (what Kubernetes sends before stopping a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown requested");
}
