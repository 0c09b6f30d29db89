//! What a ponte service is to the process that runs it: a name, a database schema with its
//! migrations, the gRPC services it registers, and how to build them from shared dependencies.
//! Every process runs a [`ServiceSpec`] through the same two calls, [`ServiceSpec::database`]
//! and [`ServiceSpec::serve`]: the `ponte` binary alone (`serve`) or all together (`dev`), and
//! the tests' mesh.

use std::{future::Future, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::{
    background::Background,
    config::{ConfigError, Env, Peers},
    db::{Database, Migrations},
    expiring::{ExpiringStore, MemoryExpiring, RedisExpiring},
    grpc::{Readiness, TracedChannel, channel},
    idempotency::{IdempotencyStore, MemoryIdempotency, RedisIdempotency},
    identity::Identity,
    lock::{Locks, MemoryLocks, RedisLocks},
    ratelimit::{MemoryRateLimiter, RateLimiter, RedisRateLimiter},
};

/// Everything a service is built from.
#[derive(Clone)]
pub struct Deps {
    pub db: Database,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The shared request budgets of the outside systems.
    pub limiter: Arc<dyn RateLimiter>,
    pub locks: Arc<dyn Locks>,
    /// Short-lived values every replica sees (the console's sessions).
    pub expiring: Arc<dyn ExpiringStore>,
    pub peers: Peers,
    /// The environment, for the settings only one service reads (e.g. `PONTE_BLING_CLIENT_ID`).
    pub env: Env,
    /// The process's background work, stopped with it.
    pub background: Background,
}

/// The process-wide parts of [`Deps`] kept in Redis, or in memory for `ponte dev`.
#[derive(Clone)]
pub struct Shared {
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub locks: Arc<dyn Locks>,
    pub expiring: Arc<dyn ExpiringStore>,
    /// The process's background work: one stop for all its services.
    pub background: Background,
}

impl Shared {
    /// Everything in Redis under `prefix`, shared by every replica.
    pub fn redis(conn: redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self {
            idempotency: Arc::new(RedisIdempotency::new(conn.clone(), prefix)),
            limiter: Arc::new(RedisRateLimiter::new(conn.clone(), prefix)),
            locks: Arc::new(RedisLocks::new(conn.clone(), prefix)),
            expiring: Arc::new(RedisExpiring::new(conn, prefix)),
            background: Background::default(),
        }
    }

    /// Everything in this process's memory (a single replica).
    pub fn memory() -> Self {
        Self {
            idempotency: Arc::new(MemoryIdempotency::default()),
            limiter: Arc::new(MemoryRateLimiter::default()),
            locks: Arc::new(MemoryLocks::default()),
            expiring: Arc::new(MemoryExpiring::default()),
            background: Background::default(),
        }
    }

    pub fn deps(&self, db: Database, peers: Peers, env: Env) -> Deps {
        Deps {
            db,
            idempotency: self.idempotency.clone(),
            limiter: self.limiter.clone(),
            locks: self.locks.clone(),
            expiring: self.expiring.clone(),
            peers,
            env,
            background: self.background.clone(),
        }
    }
}

impl Deps {
    /// What must answer before the service reports SERVING: its database and Redis.
    pub fn readiness(&self) -> Readiness {
        Readiness::new().database(self.db.clone()).idempotency(self.idempotency.clone())
    }

    /// What a flow service (catalog-sync, sales-ingest, shipping-status) starts with: its
    /// retention `rules` running in the background, with their settings from the environment,
    /// and the check of the tenants its requests name.
    pub fn start_flow(
        &self,
        rules: &'static [crate::retention::Rule],
    ) -> Result<crate::tenants::TenantCheck, ConfigError> {
        crate::retention::spawn(self.db.clone(), rules, crate::retention::RetentionConfig::from_env(&self.env)?);
        Ok(crate::tenants::TenantCheck::new(self.auth_token_channel()?, TENANT_CACHE_TTL))
    }

    /// A traced channel to the auth-token service.
    pub fn auth_token_channel(&self) -> Result<TracedChannel, ConfigError> {
        channel("PONTE_AUTH_TOKEN_URL", &self.peers.auth_token, &self.peers.token)
    }

    pub fn mapping_channel(&self) -> Result<TracedChannel, ConfigError> {
        channel("PONTE_MAPPING_URL", &self.peers.mapping, &self.peers.token)
    }

    pub fn catalog_sync_channel(&self) -> Result<TracedChannel, ConfigError> {
        channel("PONTE_CATALOG_SYNC_URL", &self.peers.catalog_sync, &self.peers.token)
    }

    pub fn sales_ingest_channel(&self) -> Result<TracedChannel, ConfigError> {
        channel("PONTE_SALES_INGEST_URL", &self.peers.sales_ingest, &self.peers.token)
    }

    pub fn shipping_status_channel(&self) -> Result<TracedChannel, ConfigError> {
        channel("PONTE_SHIPPING_STATUS_URL", &self.peers.shipping_status, &self.peers.token)
    }

    pub fn gateway_channel(&self) -> Result<TracedChannel, ConfigError> {
        channel("PONTE_GATEWAY_URL", &self.peers.gateway, &self.peers.token)
    }
}

/// A service as the binary sees it.
pub struct ServiceSpec {
    /// The name used on the command line and in logs, e.g. "auth-token".
    pub name: &'static str,
    /// Its PostgreSQL schema (and SQLite file name), e.g. "auth_token".
    pub schema: &'static str,
    /// The fully qualified gRPC services it serves (reported by health).
    pub grpc_services: &'static [&'static str],
    pub migrations: &'static Migrations,
    /// Builds the gRPC routes.
    pub routes: fn(&Deps) -> Result<Routes, ConfigError>,
}

impl ServiceSpec {
    /// The service's database at `url` (its own schema), with its migrations applied when
    /// `migrate` (PostgreSQL takes an advisory lock, so replicas starting together apply them once);
    /// otherwise waits up to `startup_timeout` for `ponte migrate` to have applied them.
    pub async fn database(
        &self,
        url: &str,
        max_connections: u32,
        startup_timeout: Duration,
        migrate: bool,
    ) -> anyhow::Result<Database> {
        let db = Database::connect(url, self.schema, max_connections, startup_timeout).await?;
        if migrate {
            db.migrate(self.migrations).await.with_context(|| format!("applying the {} migrations", self.name))?;
        } else {
            db.wait_for_migrations(self.migrations, startup_timeout).await?;
        }
        Ok(db)
    }

    /// The service's own SQLite file under `dir`, migrated (the `ponte dev` layout).
    pub async fn sqlite_database(&self, dir: &Path) -> anyhow::Result<Database> {
        let db = Database::sqlite_in(dir, self.schema).await?;
        db.migrate(self.migrations).await.with_context(|| format!("applying the {} migrations", self.name))?;
        Ok(db)
    }

    /// Builds the service from `deps` and returns the server that serves it on `listener`, with
    /// health and reflection, until `shutdown` resolves.
    pub fn serve(
        &'static self,
        deps: &Deps,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<impl Future<Output = anyhow::Result<()>> + Send + 'static, ConfigError> {
        let identity = Identity::from_env(&deps.env)?;
        Ok(self.serve_routes(deps.readiness(), (self.routes)(deps)?, identity, listener, shutdown))
    }

    /// As [`ServiceSpec::serve`], with routes the caller built (a service whose gRPC side shares
    /// state with another part of the same process, as the gateway's with its HTTP side) and
    /// what its health follows, checking callers against `identity`.
    pub fn serve_routes(
        &'static self,
        readiness: Readiness,
        routes: Routes,
        identity: Identity,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        crate::grpc::serve(self.grpc_services, routes, listener, readiness, identity, shutdown)
    }
}

/// How long a tenant id known to exist is trusted without asking auth-token again.
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(60);

/// Declares a service's [`ServiceSpec`] with its migrations, which live in the service crate's
/// `migrations/postgres` and `migrations/sqlite` folders (one set per SQL dialect):
///
/// ```ignore
/// ponte_core::service_spec! {
///     /// The mapping service as the binary runs it.
///     pub static SPEC = { name: "mapping", schema: "mapping", grpc_services: &[MAPPING], routes: routes };
/// }
/// ```
#[macro_export]
macro_rules! service_spec {
    ($(#[$meta:meta])* $vis:vis static $spec:ident = {
        name: $name:literal, schema: $schema:literal, grpc_services: $grpc:expr, routes: $routes:expr $(,)?
    };) => {
        $(#[$meta])*
        $vis static $spec: $crate::service::ServiceSpec = {
            static PG: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/postgres");
            static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/sqlite");
            static MIGRATIONS: $crate::db::Migrations = $crate::db::Migrations { postgres: &PG, sqlite: &SQLITE };
            $crate::service::ServiceSpec {
                name: $name,
                schema: $schema,
                grpc_services: $grpc,
                migrations: &MIGRATIONS,
                routes: $routes,
            }
        };
    };
}
