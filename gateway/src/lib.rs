//! gateway: the only HTTP entry to ponte. Webhooks from Bling, 360Envios, CPLUG and Bitrix24
//! are verified, deduplicated and stored in the inbox before they are acknowledged; a
//! dispatcher delivers them to the owning services over gRPC. It also serves the OAuth
//! callbacks, the Bitrix24 app's installation path, `/healthz`, `/readyz`, `/metrics`, the
//! operator console under `/console`, and the inbox's operator API over gRPC.

mod api;
mod console;
pub mod dispatch;
pub mod history;
pub mod inbox;
mod ingest;
mod install;
mod lookups;
mod metrics;
pub mod oauth;
mod problem;
pub mod retention;
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
pub use console::COOKIE as CONSOLE_COOKIE;
pub use dispatch::DispatchConfig;
pub use ingest::MAX_BODY;
pub use wake::Wake;

ponte_core::service_spec! {
    /// The gateway's gRPC side (the inbox operator API) on its own, as a [`ServiceSpec`] builds it:
    /// its replays reach the dispatchers through PostgreSQL `NOTIFY` (on SQLite, their poll). A
    /// process that also runs the HTTP side builds both from one [`Gateway`] instead.
    pub static SPEC = { name: "gateway", schema: "gateway", grpc_services: &[service_names::INBOX, service_names::TENANT_DATA], routes: routes };
}

/// What the inbox holds of a tenant besides its events: their deliveries, and the dedupe claims
/// of their ids in Redis.
static INBOX_ERASURE: ponte_core::erasure::ErasePlan = ponte_core::erasure::ErasePlan {
    children: &[(
        "inbox_deliveries",
        "DELETE FROM inbox_deliveries WHERE event_id IN (SELECT event_id FROM inbox_events WHERE tenant_id = $1)",
    )],
    last: &[],
    claims: Some("SELECT 'inbox:' || source || ':' || source_event_id FROM inbox_events WHERE tenant_id = $1"),
};

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
        let histories = history::Histories::new(deps)?;
        Ok(Routes::new(InboxServiceServer::new(Inbox::new(deps.db.clone(), self.wake.clone(), histories)))
            .add_service(ponte_core::erasure::TenantData::server(deps, &INBOX_ERASURE)))
    }

    /// What the gateway's health follows: its database alone. Redis is only the fast path of
    /// deduplication (the inbox's unique key decides without it), so an outage of Redis must not
    /// take every gateway out of its Service.
    pub fn readiness(deps: &Deps) -> Readiness {
        Readiness::new().database(deps.db.clone())
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
        let notifier = self.wake.spawn_notifier(deps.db.clone());
        let mut dispatcher = None;
        if cfg.dispatch.enabled {
            let d =
                Arc::new(dispatch::Dispatcher::new(deps, cfg.dispatch.clone(), lookups.clone(), self.wake.clone())?);
            tasks.push(tokio::spawn(d.clone().run(stopped)));
            dispatcher = Some(d);
        }
        let ingest =
            Arc::new(ingest::Ingest::new(writer, lookups, deps.idempotency.clone(), cfg.bling_secret, cfg.dedupe_ttl));
        metrics::get();
        let state =
            HttpState { readiness, auth: AuthTokenServiceClient::new(auth_channel), ingest, db: deps.db.clone() };
        let console = console::router(deps)?;
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
            .with_state(state)
            .nest("/console", console);
        let retention = ponte_core::retention::spawn(deps.db.clone(), &retention::RULES, cfg.retention);
        Ok((router, Running { stop, tasks, notifier, dispatcher, wake: self.wake.clone(), retention }))
    }
}

/// Registers the gateway's metrics (they are exported from the start, before any event).
pub fn register_metrics() {
    metrics::get();
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
    db: ponte_core::db::Database,
}

/// The background work behind a gateway's HTTP side: the inbox writers and the dispatcher.
/// Dropping it stops them at once (as a killed process would); [`Running::stop`] stops them
/// as a process told to (SIGTERM) does.
pub struct Running {
    stop: watch::Sender<bool>,
    /// The writers and the dispatcher.
    tasks: Vec<JoinHandle<()>>,
    /// Tells other gateways about committed work; stopped last.
    notifier: Option<JoinHandle<()>>,
    dispatcher: Option<Arc<dispatch::Dispatcher>>,
    wake: Wake,
    /// Inbox retention; stopped at once (a batch cut short rolls back).
    retention: JoinHandle<()>,
}

impl Running {
    /// The origin the gateway's notifications carry (see [`Wake::origin`]).
    pub fn origin(&self) -> &str {
        self.wake.origin()
    }

    /// A graceful stop: the dispatcher claims nothing more and finishes the deliveries in flight
    /// (each bounded by its deadline), the writers commit what they were handed (they end once
    /// the HTTP side that feeds them is gone), all within `grace`. Deliveries still unfinished
    /// then are handed back at once, for another replica to take without waiting for their
    /// leases to expire. True when everything finished within `grace`.
    pub async fn stop(mut self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        self.retention.abort();
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let finished = tokio::time::timeout(grace, futures::future::join_all(tasks)).await.is_ok();
        if !finished {
            tracing::warn!("background work still running after the shutdown grace; stopping it");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            if let Some(d) = &self.dispatcher {
                d.hand_back().await;
            }
        }
        finished
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in self.tasks.iter().chain(&self.notifier) {
            t.abort();
        }
        self.retention.abort();
    }
}

/// Settings of the gateway's HTTP side, from the environment.
struct GatewayConfig {
    bling_secret: Option<lookups::Secret>,
    dedupe_ttl: Duration,
    writers: usize,
    dispatch: DispatchConfig,
    retention: ponte_core::retention::RetentionConfig,
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
            retention: ponte_core::retention::RetentionConfig::from_env(env)?,
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

/// Every metric of the process, the inbox's depth read afresh (OpenMetrics when asked for).
async fn serve_metrics(
    State(db): State<ponte_core::db::Database>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    if let Err(e) = metrics::read_inbox(&db).await {
        tracing::warn!(error = %e, "could not read the inbox's depth for /metrics");
    }
    let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = ponte_core::metrics::respond(accept);
    ([(axum::http::header::CONTENT_TYPE, content_type)], body)
}
