//! Test harness for ponte's end-to-end tests: a fresh PostgreSQL database per test, a Redis key
//! prefix per test, the mesh's own services started in-process on ephemeral ports (real gRPC
//! over TCP), and a TCP proxy that can cut a dependency off mid-test.
//!
//! `PONTE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `PONTE_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) name the servers; `scripts/test.sh`
//! starts them when none is running.

pub mod chaos;
pub mod costs;
pub mod otlp;
pub mod procs;
pub mod scan;
pub mod shipping;
pub mod webhooks;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use ponte_core::{
    config::Env,
    config::Peers,
    db::Database,
    grpc::MeshInterceptor,
    idempotency::{RedisTimeouts, connect_redis},
    identity::{BearerToken, ENV_TOKEN, ENV_TOKENS_FILE},
    service::{ServiceSpec, Shared},
};
use sqlx::{Connection, Executor};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

/// The server the tests create their databases on. Loopback to a local server: without TLS
/// (`sslmode=disable`), which would only cost CPU there (sqlx's default would negotiate it).
pub fn admin_database_url() -> String {
    std::env::var("PONTE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".into())
}

pub fn redis_url() -> String {
    std::env::var("PONTE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The address of the tests' Redis server (to put a [`TcpProxy`] in front of it).
pub fn redis_addr() -> SocketAddr {
    url::Url::parse(&redis_url())
        .ok()
        .and_then(|u| u.socket_addrs(|| Some(6379)).ok())
        .and_then(|a| a.into_iter().next())
        .expect("redis address")
}

/// A Redis key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("ponte-test:{}:", uuid::Uuid::new_v4().simple())
}

/// An empty PostgreSQL database made for one test, dropped when the last handle to it goes
/// (with `FORCE`: connections a test left open do not keep it). It reads as its URL.
pub struct TestDatabase {
    url: String,
    name: String,
}

impl TestDatabase {
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl std::ops::Deref for TestDatabase {
    type Target = str;

    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs inside a test's runtime, which cannot block on a future: a thread of its own does.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_database_url()).await.ok()?;
                conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// Set by scripts/capacity/grown.sh for the benchmarks: the database every fresh one is a copy
/// of (a month of traffic, made by SQL), instead of an empty one.
pub const BENCH_TEMPLATE_VAR: &str = "PONTE_BENCH_DATABASE_TEMPLATE";

/// Creates an empty database for one test (or a copy of [`BENCH_TEMPLATE_VAR`]'s); it is dropped
/// with the last handle.
pub async fn fresh_database() -> Arc<TestDatabase> {
    scan::init();
    let admin = admin_database_url();
    let name = format!("ponte_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL for tests (see scripts/test.sh)");
    // A benchmark of grown tables copies a pre-filled database (scripts/capacity/grown.sh).
    let create = match std::env::var(BENCH_TEMPLATE_VAR) {
        Ok(t) if !t.is_empty() => {
            assert!(
                t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{BENCH_TEMPLATE_VAR}"
            );
            // FILE_COPY: a copy of the files after a checkpoint, instead of writing a grown month
            // (gigabytes) through the WAL, whose flushing would then run into the benchmark.
            format!("CREATE DATABASE {name} TEMPLATE {t} STRATEGY = FILE_COPY")
        }
        _ => format!("CREATE DATABASE {name}"),
    };
    conn.execute(sqlx::AssertSqlSafe(create)).await.expect("create test database");
    let mut url = url::Url::parse(&admin).expect("PONTE_TEST_DATABASE_URL");
    url.set_path(&name);
    Arc::new(TestDatabase { url: url.to_string(), name })
}

/// The mesh's services, in-process, against real PostgreSQL and Redis.
pub struct Mesh {
    /// The mesh's database (dropped when the mesh and every other handle to it are gone).
    pub database_url: Arc<TestDatabase>,
    pub redis_url: String,
    pub redis_prefix: String,
    /// The services' own settings, which a gateway started with [`Mesh::start_gateway_http`]
    /// gets too.
    pub env: Env,
    pub peers: Peers,
    addrs: Vec<(&'static str, SocketAddr)>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Mesh {
    /// Starts `specs` (each on its own port) sharing one fresh database and Redis prefix.
    /// Services not started are unreachable peers.
    pub async fn start(specs: &[&'static ServiceSpec]) -> Self {
        Self::start_with(specs, &redis_url(), Env::default()).await
    }

    /// As [`Mesh::start`], with Redis reached at `redis_url` (e.g. through a [`TcpProxy`]) and
    /// the services' own settings (`PONTE_BLING_*`, `PONTE_SEALING_KEYS`, …) from `env`.
    pub async fn start_with(specs: &[&'static ServiceSpec], redis_url: &str, env: Env) -> Self {
        Self::start_on(specs, redis_url, env, fresh_database().await).await
    }

    /// As [`Mesh::start_with`], on an existing database (a restart of the same deployment).
    pub async fn start_on(
        specs: &[&'static ServiceSpec],
        redis_url: &str,
        env: Env,
        database_url: Arc<TestDatabase>,
    ) -> Self {
        Self::start_shared(specs, redis_url, env, database_url, unique_prefix()).await
    }

    /// Another replica of this deployment: same database, same Redis prefix.
    pub async fn replica(&self, specs: &[&'static ServiceSpec], env: Env) -> Self {
        Self::start_shared(specs, &redis_url(), env, self.database_url.clone(), self.redis_prefix.clone()).await
    }

    /// More services of this deployment in a mesh of their own (same database and Redis
    /// prefix; this mesh's services as their peers), which a test can drop as a killed process
    /// and start again.
    pub async fn join(&self, specs: &[&'static ServiceSpec], env: Env) -> Self {
        let database_url = self.database_url.clone();
        Self::start_peered(specs, &self.redis_url, env, database_url, self.redis_prefix.clone(), Some(&self.peers))
            .await
    }

    async fn start_shared(
        specs: &[&'static ServiceSpec],
        redis_url: &str,
        env: Env,
        database_url: Arc<TestDatabase>,
        redis_prefix: String,
    ) -> Self {
        Self::start_peered(specs, redis_url, env, database_url, redis_prefix, None).await
    }

    async fn start_peered(
        specs: &[&'static ServiceSpec],
        redis_url: &str,
        env: Env,
        database_url: Arc<TestDatabase>,
        redis_prefix: String,
        others: Option<&Peers>,
    ) -> Self {
        let env = if env.get("PONTE_SEALING_KEYS").is_some() {
            env
        } else {
            env.with("PONTE_SEALING_KEYS", &ponte_core::crypto::generate_key_entry("test"))
        };
        let env = with_api_tokens(env);
        let settings: Vec<(String, String)> =
            env.names().map(|k| (k.to_owned(), env.get(k).unwrap_or_default().to_owned())).collect();
        scan::record_settings(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut listeners = Vec::new();
        for spec in specs {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listeners.push((*spec, l));
        }
        let other = |name: &str| {
            others.map(|p| match name {
                "auth-token" => p.auth_token.clone(),
                "mapping" => p.mapping.clone(),
                "catalog-sync" => p.catalog_sync.clone(),
                "sales-ingest" => p.sales_ingest.clone(),
                "gateway" => p.gateway.clone(),
                _ => p.shipping_status.clone(),
            })
        };
        let addr_of = |name: &str| {
            listeners
                .iter()
                .find(|(s, _)| s.name == name)
                .map(|(_, l)| format!("http://{}", l.local_addr().expect("addr")))
                .or_else(|| other(name))
                .unwrap_or_else(|| "http://127.0.0.1:1".into())
        };
        let peers = Peers {
            auth_token: addr_of("auth-token"),
            mapping: addr_of("mapping"),
            catalog_sync: addr_of("catalog-sync"),
            sales_ingest: addr_of("sales-ingest"),
            shipping_status: addr_of("shipping-status"),
            gateway: addr_of("gateway"),
            token: BearerToken::new(ENV_TOKEN, env.get(ENV_TOKEN).unwrap_or_default()).expect("token"),
        };
        let shared = test_shared(redis_url, &redis_prefix).await;
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        for (spec, listener) in listeners {
            // Exactly as `ponte serve` starts a service.
            let db = spec.database(&database_url, 5, Duration::from_secs(5), true).await.expect("database");
            let deps = shared.deps(db, peers.clone(), env.clone());
            addrs.push((spec.name, listener.local_addr().expect("addr")));
            let mut rx = stop.subscribe();
            let server = spec
                .serve(&deps, listener, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .expect("service settings");
            tasks.spawn(server);
        }
        Self { database_url, redis_url: redis_url.to_owned(), redis_prefix, env, peers, addrs, stop, tasks }
    }

    /// Starts a gateway's HTTP side (webhook routes, inbox writers, dispatcher) against this
    /// mesh's database, Redis and services, configured by `env` (start from `mesh.env` to share
    /// the services' settings, e.g. `PONTE_BLING_CLIENT_SECRET`). Call it twice for two replicas.
    pub async fn start_gateway_http(&self, env: Env) -> GatewayHttp {
        self.start_gateway_http_with(env, self.peers.clone(), None).await
    }

    /// As [`Mesh::start_gateway_http`], delivering to `peers` (e.g. a service behind a
    /// [`TcpProxy`]) and serving on `listener` when given (so a sender can be told the URL first).
    pub async fn start_gateway_http_with(&self, env: Env, peers: Peers, listener: Option<TcpListener>) -> GatewayHttp {
        let spec = &ponte_gateway::SPEC;
        let db = spec.database(&self.database_url, 10, Duration::from_secs(5), true).await.expect("database");
        let shared = test_shared(&self.redis_url, &self.redis_prefix).await;
        let deps = shared.deps(db.clone(), peers, env);
        let readiness = ponte_gateway::Gateway::readiness(&deps);
        let (router, running) = ponte_gateway::build(&deps, readiness).expect("gateway settings");
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        };
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        GatewayHttp { addr, db, origin: running.origin().to_owned(), running: Some(running), server }
    }

    /// A pool on the mesh's database in service schema `schema` (e.g. `catalog_sync`), for
    /// asserting on what a service stored.
    pub async fn db(&self, schema: &str) -> Database {
        Database::connect(&self.database_url, schema, 2, Duration::from_secs(5)).await.expect("connect")
    }

    /// The address a service listens on.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs.iter().find(|(n, _)| *n == name).map(|(_, a)| *a).unwrap_or_else(|| panic!("{name} not started"))
    }

    /// A channel to a service presenting the mesh's service token (`PONTE_API_TOKEN`).
    pub async fn channel(&self, name: &str) -> Channel {
        self.channel_as(name, self.env.get(ENV_TOKEN).unwrap_or_default()).await
    }

    /// A channel to a service presenting `token` (none when empty), e.g. one of the tokens of
    /// a file from [`api_tokens_file`] passed in the mesh's `PONTE_API_TOKENS_FILE`.
    pub async fn channel_as(&self, name: &str, token: &str) -> Channel {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr(name)))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let token = BearerToken::new(ENV_TOKEN, token).expect("token");
        tonic::service::interceptor::InterceptedService::new(ch, MeshInterceptor(token))
    }

    /// Stops every service and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while let Some(r) = self.tasks.join_next().await {
            r.expect("join").expect("service ended with an error");
        }
    }
}

/// A channel to a ponte service with the caller's API token, as the mesh's own clients have.
pub type Channel = ponte_core::grpc::TracedChannel;

/// `channel` presenting `env`'s `PONTE_API_TOKEN` (see [`with_api_tokens`]).
pub fn with_token(env: &Env, channel: tonic::transport::Channel) -> Channel {
    let token = BearerToken::new(ENV_TOKEN, env.get(ENV_TOKEN).unwrap_or_default()).expect("token");
    tonic::service::interceptor::InterceptedService::new(channel, MeshInterceptor(token))
}

/// Writes a tokens file of `(name, token, scope)` entries (scope `service`, `operator` or
/// `tenant:<id>`) in the temporary directory; its path, for `PONTE_API_TOKENS_FILE`.
pub fn api_tokens_file(entries: &[(&str, &str, &str)]) -> String {
    scan::record(entries.iter().map(|(_, token, _)| *token));
    let mut text = String::new();
    for (name, token, scope) in entries {
        text.push_str(&format!(
            "- name: {name}\n  token_sha256: {}\n  scope: '{scope}'\n",
            ponte_core::identity::token_sha256(token)
        ));
    }
    let path = std::env::temp_dir().join(format!("ponte-api-tokens-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).expect("write the tokens file");
    path.to_str().expect("a UTF-8 temporary directory").to_owned()
}

/// `env` with the API's tokens: unless it names them already, a fresh service token
/// (`PONTE_API_TOKEN`, which the mesh's services and [`Mesh::channel`] present) in a tokens file.
pub fn with_api_tokens(env: Env) -> Env {
    if env.get(ENV_TOKENS_FILE).is_some() || env.get(ponte_core::identity::ENV_AUTH).is_some() {
        return env;
    }
    let token = ponte_core::identity::generate_token();
    let file = api_tokens_file(&[("mesh", &token, "service")]);
    env.with(ENV_TOKENS_FILE, &file).with(ENV_TOKEN, &token)
}

async fn test_shared(redis_url: &str, prefix: &str) -> Shared {
    let redis = connect_redis(
        redis_url,
        RedisTimeouts { connect: Duration::from_millis(300), response: Duration::from_millis(300) },
        Duration::from_secs(5),
    )
    .await
    .expect("Redis for tests (see scripts/test.sh)");
    Shared::redis(redis, prefix)
}

/// A gateway's HTTP side in this process. Dropping it stops it at once.
pub struct GatewayHttp {
    pub addr: SocketAddr,
    /// The gateway's own database pool (schema `gateway`), for asserting on the inbox.
    pub db: Database,
    /// The origin its notifications to other gateways carry.
    pub origin: String,
    running: Option<ponte_gateway::Running>,
    server: tokio::task::JoinHandle<()>,
}

impl GatewayHttp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops it as SIGTERM does: no more webhooks, the dispatcher finishes what is in flight
    /// within `grace` and hands back the rest. True when everything finished within `grace`.
    pub async fn stop(mut self, grace: Duration) -> bool {
        self.server.abort();
        match self.running.take() {
            Some(running) => running.stop(grace).await,
            None => true,
        }
    }

    /// Stops it abruptly, as a killed process: nothing finishes, claimed deliveries stay
    /// claimed until their lease expires.
    pub fn kill(mut self) {
        self.server.abort();
        drop(self.running.take());
    }
}

impl Drop for GatewayHttp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A TCP listener that accepts connections and never answers: a peer that hangs.
pub async fn black_hole() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

/// Runs the ignored test `path` (e.g. `gateway_trace::inner`) of this test binary in a process
/// of its own and fails when it fails: for the few tests that install process-wide state
/// (a tracing subscriber whose per-callsite caches every other test would share).
pub fn run_alone(path: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", path, "--ignored", "--nocapture", "--test-threads", "1"])
        .output()
        .expect("run the test alone");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{path} failed alone:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{path} did not run: {stdout}");
}

/// The single number a test's `SELECT COUNT(*) …` (or any one-value query) returns.
pub async fn count(db: &ponte_core::db::Database, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(db.pool()).await.expect("count query")
}

/// Waits until `f` returns true, polling every 50 ms, for at most `within`.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TCP proxy in front of a server that a test can cut (existing connections are dropped and
/// new ones refused until it is restored) to simulate an outage, or have answer calls as a peer
/// that is stopping does ([`TcpProxy::reset_next_calls`]).
pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    resets: Arc<AtomicU32>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let resets = Arc::new(AtomicU32::new(0));
        let (generation, _) = watch::channel(0_u64);
        let (up2, gen2, resets2) = (up.clone(), generation.clone(), resets.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropping the socket refuses the connection
                }
                if resets2.load(Ordering::SeqCst) > 0 {
                    tokio::spawn(reset_calls(inbound, resets2.clone()));
                    continue;
                }
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, generation, resets }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// The next `calls` gRPC calls are answered as a server shutting down answers the calls it
    /// will not take: their HTTP/2 streams are reset (RST_STREAM NO_ERROR, no gRPC status), on
    /// new connections (existing ones are dropped first); the connection then goes away
    /// (GOAWAY) and later ones reach the target again.
    pub fn reset_next_calls(&self, calls: u32) {
        self.resets.store(calls, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// How many of the calls to reset are still to come.
    pub fn resets_left(&self) -> u32 {
        self.resets.load(Ordering::SeqCst)
    }
}

/// Serves one HTTP/2 connection by resetting each call's stream without an answer while
/// `left` counts down; then goes away.
async fn reset_calls(inbound: tokio::net::TcpStream, left: Arc<AtomicU32>) {
    let Ok(mut conn) = h2::server::handshake(inbound).await else { return };
    while let Some(Ok((_request, mut respond))) = conn.accept().await {
        respond.send_reset(h2::Reason::NO_ERROR);
        let before = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).unwrap_or(0);
        if before <= 1 {
            conn.graceful_shutdown();
        }
    }
}

/// Backfills [`webhooks::TENANT`]'s Bling products into Bitrix24 through catalog-sync at
/// `channel` and follows `WatchBackfill` to the end; the backfill as it ended.
pub async fn backfill_products_to_bitrix24(channel: Channel) -> Result<ponte_proto::v1::Backfill, tonic::Status> {
    use ponte_proto::v1::{
        BackfillScope, StartBackfillRequest, SyncTarget, WatchBackfillRequest,
        catalog_sync_service_client::CatalogSyncServiceClient,
    };
    let mut cs = CatalogSyncServiceClient::new(channel);
    let started = cs
        .start_backfill(StartBackfillRequest {
            tenant_id: webhooks::TENANT.into(),
            target: SyncTarget::Bitrix24 as i32,
            scope: BackfillScope::Products as i32,
        })
        .await?
        .into_inner()
        .backfill
        .unwrap_or_default();
    let mut stream = cs.watch_backfill(WatchBackfillRequest { backfill_id: started.backfill_id.clone() }).await?;
    let mut last = started;
    while let Some(msg) = stream.get_mut().message().await? {
        last = msg.backfill.unwrap_or_default();
    }
    Ok(last)
}
