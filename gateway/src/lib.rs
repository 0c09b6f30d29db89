//! gateway: the only HTTP entry to ponte. Webhooks from Bling, 360Envios, CPLUG and Bitrix24
//! are verified, deduplicated and stored in the inbox before they are acknowledged; a
//! dispatcher delivers them to the owning services over gRPC. It also serves the OAuth
//! callbacks, the Bitrix24 app's installation path, `/healthz`, `/readyz`, `/metrics`, and the
//! inbox's operator API over gRPC.

mod api;
pub mod dispatch;
pub mod inbox;
mod ingest;
mod install;
mod lookups;
mod metrics;
mod oauth;
mod problem;
mod routing;
pub mod sources;
pub mod subscribers;
pub mod wake;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{FromRef, State},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use ponte_core::{
    config::ConfigError,
    grpc::{Readiness, TracedChannel},
    service::Deps,
};
use ponte_proto::{
    service_names,
    v1::{auth_token_service_client::AuthTokenServiceClient, inbox_service_server::InboxServiceServer},
};
use tokio::{sync::watch, task::JoinHandle};
use tonic::service::Routes;

pub use api::Inbox;
pub use dispatch::DispatchConfig;
pub use ingest::MAX_BODY;
pub use wake::Wake;

ponte_core::service_spec! {
    /// The gateway's gRPC side (the inbox operator API) on its own, as a [`ServiceSpec`] builds it:
    /// its replays reach the dispatchers through PostgreSQL `NOTIFY` (on SQLite, their poll). A
    /// process that also runs the HTTP side builds both from one [`Gateway`] instead.
    pub static SPEC = { name: "gateway", schema: "gateway", grpc_services: &[service_names::INBOX], routes: routes };
}

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    Gateway::new().routes(deps)
}

/// One gateway: its gRPC side (the inbox operator API) and its HTTP side (webhooks, inbox
/// writers, dispatcher) share its [`Wake`], so its writer and its replays wake its dispatcher
/// in-process.
#[derive(Clone, Default)]
pub struct Gateway {
    wake: Wake,
}

impl Gateway {
    pub fn new() -> Self {
        Self::default()
    }

    /// The gRPC routes.
    pub fn routes(&self, deps: &Deps) -> Result<Routes, ConfigError> {
        Ok(Routes::new(InboxServiceServer::new(Inbox::new(deps.db.clone(), self.wake.clone()))))
    }

    /// The HTTP routes and the work behind them (inbox writers, dispatcher).
    pub fn build(&self, deps: &Deps, readiness: Readiness) -> Result<(Router, Running), ConfigError> {
        let cfg = GatewayConfig::from_env(&deps.env)?;
        if cfg.bling_secret.is_none() {
            tracing::warn!("PONTE_BLING_CLIENT_SECRET is not set: Bling webhooks will be answered 503");
        }
        let auth_channel = deps.auth_token_channel()?;
        let lookups = lookups::Lookups::new(auth_channel.clone());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let writer = inbox::Writer::spawn(deps.db.clone(), cfg.writers, self.wake.clone(), &mut tasks);
        if cfg.dispatch.enabled {
            let d = dispatch::Dispatcher::new(deps, cfg.dispatch.clone(), lookups.clone(), self.wake.clone())?;
            tasks.push(tokio::spawn(Arc::new(d).run(stopped)));
        }
        let ingest =
            Arc::new(ingest::Ingest::new(writer, lookups, deps.idempotency.clone(), cfg.bling_secret, cfg.dedupe_ttl));
        let state = HttpState { readiness, auth: AuthTokenServiceClient::new(auth_channel), ingest };
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(serve_metrics))
            .route("/oauth/{provider}/callback", get(oauth::callback))
            .route("/install/bitrix24", post(install::bitrix24))
            .route("/webhooks/bling", post(ingest::bling))
            .route("/webhooks/envios360/{tenant}", post(ingest::envios360))
            .route("/webhooks/cplug/{tenant}", post(ingest::cplug))
            .route("/webhooks/bitrix24/{tenant}", post(ingest::bitrix24))
            .fallback(problem::no_route)
            .method_not_allowed_fallback(problem::wrong_method)
            .with_state(state);
        Ok((router, Running { stop, tasks, wake: self.wake.clone() }))
    }

    /// The HTTP routes; the inbox writers and the dispatcher run for the life of the process.
    pub fn http_router(&self, deps: &Deps, readiness: Readiness) -> Result<Router, ConfigError> {
        let (router, running) = self.build(deps, readiness)?;
        running.detach();
        Ok(router)
    }
}

/// A gateway's HTTP routes and the work behind them, for a gateway whose gRPC side runs apart
/// (see [`SPEC`]).
pub fn build(deps: &Deps, readiness: Readiness) -> Result<(Router, Running), ConfigError> {
    Gateway::new().build(deps, readiness)
}

/// What the HTTP handlers share; each takes the part it needs.
#[derive(Clone, FromRef)]
struct HttpState {
    readiness: Readiness,
    auth: AuthTokenServiceClient<TracedChannel>,
    ingest: Arc<ingest::Ingest>,
}

/// The background work behind a gateway's HTTP side: the inbox writers and the dispatcher.
/// Dropping it stops them at once (as a killed process would); [`Running::detach`] lets them
/// run for the life of the process.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    wake: Wake,
}

impl Running {
    /// The origin the gateway's notifications carry (see [`Wake::origin`]).
    pub fn origin(&self) -> &str {
        self.wake.origin()
    }

    /// Leaves the tasks running after this handle is gone.
    pub fn detach(mut self) {
        self.tasks.clear();
    }

    /// Stops claiming new deliveries and waits up to `grace` for the tasks to end.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        let wait = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let _ = tokio::time::timeout(grace, wait).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Settings of the gateway's HTTP side, from the environment.
struct GatewayConfig {
    bling_secret: Option<lookups::Secret>,
    dedupe_ttl: Duration,
    writers: usize,
    dispatch: DispatchConfig,
}

impl GatewayConfig {
    fn from_env(env: &ponte_core::Env) -> Result<Self, ConfigError> {
        let writers: usize = env.parse_or("PONTE_INBOX_WRITERS", 2, "a whole number of writer tasks")?;
        if writers == 0 || writers > 16 {
            return Err(ConfigError::new("PONTE_INBOX_WRITERS", format!("{writers} is not between 1 and 16")));
        }
        Ok(Self {
            bling_secret: env.get("PONTE_BLING_CLIENT_SECRET").map(|s| lookups::Secret::new(s.as_bytes())),
            dedupe_ttl: env.seconds_or("PONTE_INBOX_DEDUPE_TTL_SECONDS", 86_400, 1)?,
            writers,
            dispatch: DispatchConfig::from_env(env)?,
        })
    }
}

/// Ready when the database and Redis answer; 503 naming the one that does not otherwise.
async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")),
    }
}

async fn serve_metrics() -> impl IntoResponse {
    metrics::get();
    ([(axum::http::header::CONTENT_TYPE, ponte_core::metrics::CONTENT_TYPE)], ponte_core::metrics::global().encode())
}
