//! A mesh of `ponte serve` processes, as Kubernetes runs it: one process per service replica
//! against one PostgreSQL database and one Redis, each service behind a [`Balancer`] (a port
//! spreading new connections over the service's live processes, as a Service does), the
//! sandboxes of Bling, Bitrix24, CPLUG and 360Envios in the caller's process, and tenant `loja`
//! connected to all four (360Envios sends its webhooks to the gateways). [`ProcessMesh::roll`] replaces one process as a rolling update does;
//! [`ProcessMesh::kill`] kills one with SIGKILL and starts its replacement, as a crashed pod is
//! restarted. [`PrivatePostgres`] and [`PrivateRedis`] are servers of the caller's own (on free
//! ports, in a temporary directory) that can be restarted without touching anyone else's.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use ponte_sandbox::{bitrix24, bling, cplug, envios360};
use tokio::net::{TcpListener, TcpStream};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::{TestDatabase, eventually, webhooks};

/// A free address on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A child process killed (and reaped) when dropped.
pub struct Killed(Option<Child>);

impl Killed {
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// The process, for a caller that stops it itself.
    pub fn take(&mut self) -> Child {
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

/// New connections to `addr` go to the live backends in turn; a backend that refuses is skipped.
/// Taking a backend out leaves its open connections alone (as kube-proxy does).
pub struct Balancer {
    pub addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Balancer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backends: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let live = backends.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let targets = live.lock().unwrap().clone();
                let first = next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    for i in 0..targets.len() {
                        if let Ok(mut outbound) = TcpStream::connect(targets[(first + i) % targets.len()]).await {
                            let _ = outbound.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, backends }
    }

    pub fn add(&self, backend: SocketAddr) {
        self.backends.lock().unwrap().push(backend);
    }

    pub fn remove(&self, backend: SocketAddr) {
        self.backends.lock().unwrap().retain(|b| *b != backend);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// One `ponte serve` process.
pub struct Proc {
    pub service: &'static str,
    pub grpc: SocketAddr,
    /// The gateway's HTTP port, or another service's metrics port.
    pub http: SocketAddr,
    pub child: Killed,
}

impl Proc {
    /// Starts `<bin> serve <service>` with `env` (and nothing else of this process's
    /// environment but `PATH`) and waits until it is ready. Its logs are dropped.
    pub async fn start(bin: &Path, service: &'static str, env: &[(String, String)]) -> Self {
        Self::start_logging(bin, service, env, false).await
    }

    /// As [`Proc::start`]; with `logs`, its log lines (stdout) go to this process's stderr.
    pub async fn start_logging(bin: &Path, service: &'static str, env: &[(String, String)], logs: bool) -> Self {
        let mut env = env.to_vec();
        crate::scan::process_env(&mut env);
        let stdout = if let Some(file) = crate::scan::process_log(service) {
            Stdio::from(file)
        } else if logs {
            use std::os::fd::AsFd;
            std::io::stderr().as_fd().try_clone_to_owned().map_or_else(|_| Stdio::null(), Stdio::from)
        } else {
            Stdio::null()
        };
        let (grpc, http) = (free_addr(), free_addr());
        let port_var = if service == "gateway" { "PONTE_HTTP_ADDR" } else { "PONTE_METRICS_ADDR" };
        let child = Command::new(bin)
            .args(["serve", service])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PONTE_GRPC_ADDR", grpc.to_string())
            .env(port_var, http.to_string())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let p = Self { service, grpc, http, child: Killed::new(child) };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).unwrap();
        let serving = eventually(Duration::from_secs(60), || {
            let endpoint = endpoint.clone();
            async move {
                let Ok(ch) = endpoint.connect().await else { return false };
                HealthClient::new(ch)
                    .check(HealthCheckRequest { service: String::new() })
                    .await
                    .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
            }
        })
        .await;
        assert!(serving, "ponte serve {service} on {grpc} never turned SERVING");
        p
    }

    /// SIGTERM, then its exit.
    pub async fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap()
    }

    /// SIGKILL: the process dies wherever it was.
    pub async fn kill9(mut self) {
        let mut child = self.child.take();
        Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    }

    /// Its `/metrics`, as OpenMetrics (with exemplars) when `open_metrics`.
    pub async fn metrics(&self, open_metrics: bool) -> String {
        let mut req = reqwest::Client::new().get(format!("http://{}/metrics", self.http));
        if open_metrics {
            req = req.header("accept", "application/openmetrics-text; version=1.0.0");
        }
        req.send().await.unwrap().text().await.unwrap()
    }
}

/// The services of the operations tests' mesh, in the order they start.
pub const SERVICES: [&str; 3] = ["auth-token", "mapping", "catalog-sync"];

/// Every service of ponte but the gateway, in the order they start.
pub const ALL_SERVICES: [&str; 5] = ["auth-token", "mapping", "catalog-sync", "sales-ingest", "shipping-status"];

/// How a [`ProcessMesh`] is made.
pub struct MeshOptions {
    /// The `ponte` binary.
    pub bin: PathBuf,
    pub services: Vec<&'static str>,
    pub gateways: usize,
    /// Settings for every process, over the defaults.
    pub extra: Vec<(String, String)>,
    /// The database the mesh uses; a fresh one on the tests' server when `None`.
    pub database_url: Option<String>,
    /// The Redis the mesh uses; the tests' one when `None`.
    pub redis_url: Option<String>,
    pub bling: bling::Config,
    pub portal: bitrix24::Config,
    pub pos: cplug::Config,
    /// The 360Envios hub's settings (default: the sandbox's test settings); the tenant is
    /// connected to it and its webhooks go to the gateways.
    pub hub: Option<envios360::Config>,
    /// The Bling and CPLUG sandboxes send their webhooks to the gateways.
    pub webhooks: bool,
    /// The processes' log lines go to this process's stderr (else they are dropped).
    pub logs: bool,
}

impl MeshOptions {
    /// auth-token, mapping, catalog-sync and `gateways` gateways; outside systems 1,000 times
    /// faster than real, ponte's budgets scaled the same (`PONTE_RATE_LIMIT_SCALE`).
    pub fn new(bin: impl Into<PathBuf>, gateways: usize) -> Self {
        Self {
            bin: bin.into(),
            services: SERVICES.to_vec(),
            gateways,
            extra: Vec::new(),
            database_url: None,
            redis_url: None,
            bling: bling::Config { per_second: 5000, ..Default::default() },
            portal: bitrix24::Config { per_second: 5000.0, burst: 5000.0, ..bitrix24::Config::for_tests() },
            pos: cplug::Config::default(),
            hub: None,
            webhooks: false,
            logs: false,
        }
    }
}

pub struct ProcessMesh {
    /// The fresh database the mesh made, kept while the mesh lives.
    pub database: Option<Arc<TestDatabase>>,
    pub database_url: String,
    pub bling: bling::Handle,
    pub portal: bitrix24::Handle,
    pub pos: cplug::Handle,
    pub hub: envios360::Handle,
    bin: PathBuf,
    env: Vec<(String, String)>,
    logs: bool,
    /// One per service (gRPC), and `gateway-http` for webhooks.
    balancers: Vec<(&'static str, Balancer)>,
    pub procs: Vec<Proc>,
}

impl ProcessMesh {
    /// Starts the mesh of `opts`, with tenant `loja` connected to Bling, the Bitrix24 portal
    /// and the CPLUG store.
    pub async fn start(opts: MeshOptions) -> Self {
        let mut balancers = Vec::new();
        for name in opts.services.iter().copied().chain(["gateway", "gateway-http"]) {
            balancers.push((name, Balancer::start().await));
        }
        let url_of = |name: &str| balancers.iter().find(|(n, _)| *n == name).map(|(_, b)| b.url());
        let gateway_http = url_of("gateway-http").unwrap();
        let mut bling_config = opts.bling;
        let mut pos_config = opts.pos;
        if opts.webhooks {
            bling_config.webhook_url = Some(format!("{gateway_http}/webhooks/bling"));
            pos_config.webhook_url = Some(format!("{gateway_http}/webhooks/cplug/{}", webhooks::TENANT));
        }
        let bling = bling::Bling::new(bling_config).spawn(None).await.unwrap();
        let portal = bitrix24::Bitrix24::new(opts.portal).spawn(None).await.unwrap();
        let pos = cplug::Cplug::new(pos_config).spawn(None).await.unwrap();
        let mut hub_config = opts.hub.unwrap_or_else(envios360::Config::for_tests);
        hub_config.webhook_url = Some(format!("{gateway_http}/webhooks/envios360/{}", webhooks::TENANT));
        let hub = envios360::Envios360::new(hub_config).spawn(None).await.unwrap();
        let (database, database_url) = match opts.database_url {
            Some(url) => (None, url),
            None => {
                let db = crate::fresh_database().await;
                let url = db.url().to_owned();
                (Some(db), url)
            }
        };
        let cfg = bling.bling.config().clone();
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", database_url.clone()),
            ("REDIS_URL", opts.redis_url.unwrap_or_else(crate::redis_url)),
            ("PONTE_REDIS_PREFIX", crate::unique_prefix()),
            ("PONTE_SEALING_KEYS", ponte_core::crypto::generate_key_entry("ops")),
            ("PONTE_BLING_CLIENT_ID", cfg.client_id.clone()),
            ("PONTE_BLING_CLIENT_SECRET", cfg.client_secret.clone()),
            ("PONTE_BLING_API_URL", bling.base_url.clone()),
            ("PONTE_BLING_AUTHORIZE_URL", format!("{}/oauth/authorize", bling.base_url)),
            ("PONTE_BLING_TOKEN_URL", format!("{}/oauth/token", bling.base_url)),
            ("PONTE_CPLUG_API_URL", pos.base_url.clone()),
            ("PONTE_ENVIOS360_API_URL", hub.base_url.clone()),
            ("PONTE_RATE_LIMIT_SCALE", "1000".to_owned()),
            ("PONTE_DISPATCH_BACKOFF_MS", "100".to_owned()),
            ("PONTE_DISPATCH_MAX_BACKOFF_SECONDS", "1".to_owned()),
            ("PONTE_DISPATCH_MAX_ATTEMPTS", "100".to_owned()),
            ("PONTE_DISPATCH_POLL_MS", "200".to_owned()),
            ("PONTE_LOG", "warn".to_owned()),
            ("PONTE_STARTUP_TIMEOUT_SECONDS", "30".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // The mesh's own service token, as the Kubernetes Secret `ponte-api-tokens` gives it.
        let token = format!("mesh-{}", uuid::Uuid::new_v4().simple());
        env.push(("PONTE_API_TOKENS_FILE".to_owned(), crate::api_tokens_file(&[("mesh", &token, "service")])));
        env.push(("PONTE_API_TOKEN".to_owned(), token));
        for (var, service) in [
            ("PONTE_AUTH_TOKEN_URL", "auth-token"),
            ("PONTE_MAPPING_URL", "mapping"),
            ("PONTE_CATALOG_SYNC_URL", "catalog-sync"),
            ("PONTE_SALES_INGEST_URL", "sales-ingest"),
            ("PONTE_SHIPPING_STATUS_URL", "shipping-status"),
        ] {
            if let Some(url) = url_of(service) {
                env.push((var.to_owned(), url));
            }
        }
        for (k, v) in opts.extra {
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        }
        let mut mesh = Self {
            database,
            database_url,
            bling,
            portal,
            pos,
            hub,
            bin: opts.bin,
            env,
            logs: opts.logs,
            balancers,
            procs: Vec::new(),
        };
        for service in opts.services {
            mesh.spawn(service).await;
        }
        for _ in 0..opts.gateways {
            mesh.spawn("gateway").await;
        }
        let auth = mesh.channel("auth-token").await;
        webhooks::create_tenant_with_bling(auth.clone(), &mesh.bling).await;
        webhooks::connect_portal_at(auth.clone(), &mesh.portal).await;
        webhooks::connect_cplug_at(auth.clone(), &mesh.pos).await;
        webhooks::connect_envios360_at(auth, &mesh.hub).await;
        mesh
    }

    fn balancer(&self, name: &str) -> &Balancer {
        &self.balancers.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// The settings every process gets.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Starts one more process of `service` and puts it behind its balancers.
    pub async fn spawn(&mut self, service: &'static str) {
        let p = Proc::start_logging(&self.bin, service, &self.env, self.logs).await;
        self.balancer(service).add(p.grpc);
        if service == "gateway" {
            self.balancer("gateway-http").add(p.http);
        }
        self.procs.push(p);
    }

    fn take_out(&mut self, index: usize) -> Proc {
        let old = self.procs.remove(index);
        self.balancer(old.service).remove(old.grpc);
        if old.service == "gateway" {
            self.balancer("gateway-http").remove(old.http);
        }
        old
    }

    /// Replaces process `index` as a rolling update does (surge one, then terminate the old
    /// one); the old process's exit.
    pub async fn roll(&mut self, index: usize) -> ExitStatus {
        let service = self.procs[index].service;
        self.spawn(service).await;
        self.take_out(index).terminate().await
    }

    /// Kills process `index` with SIGKILL and starts its replacement (a crashed pod restarted);
    /// the service killed.
    pub async fn kill(&mut self, index: usize) -> &'static str {
        let old = self.take_out(index);
        let service = old.service;
        old.kill9().await;
        self.spawn(service).await;
        service
    }

    /// A channel to `service` through its balancer.
    /// A channel to `service` through its balancer, presenting the mesh's service token.
    pub async fn channel(&self, service: &str) -> crate::Channel {
        let ch =
            tonic::transport::Endpoint::from_shared(self.balancer(service).url()).unwrap().connect().await.unwrap();
        crate::with_token(&ponte_core::config::Env::from_pairs(self.env.clone()), ch)
    }

    /// The value of setting `var` every process got.
    pub fn setting(&self, var: &str) -> &str {
        self.env.iter().find(|(k, _)| k == var).map_or("", |(_, v)| v.as_str())
    }

    /// Stops process `index` with SIGTERM (out of its balancers first, as a scale-down does);
    /// its exit.
    pub async fn stop(&mut self, index: usize) -> ExitStatus {
        self.take_out(index).terminate().await
    }

    /// `path` on the gateways (through their balancer).
    pub fn gateway_url(&self, path: &str) -> String {
        format!("{}{path}", self.balancer("gateway-http").url())
    }

    /// The running process of `service` (the first, when there are several).
    pub fn proc(&self, service: &str) -> &Proc {
        self.procs.iter().find(|p| p.service == service).unwrap()
    }

    /// Sets tenant `loja`'s sync switches (through catalog-sync).
    pub async fn settings(&self, settings: ponte_proto::v1::SyncSettings) {
        use ponte_proto::v1::{UpdateSyncSettingsRequest, catalog_sync_service_client::CatalogSyncServiceClient};
        let settings = ponte_proto::v1::SyncSettings { tenant_id: webhooks::TENANT.into(), ..settings };
        CatalogSyncServiceClient::new(self.channel("catalog-sync").await)
            .update_sync_settings(UpdateSyncSettingsRequest { settings: Some(settings) })
            .await
            .unwrap();
    }

    /// A pool on the mesh's database in `schema`.
    pub async fn db(&self, schema: &str) -> ponte_core::db::Database {
        ponte_core::db::Database::connect(&self.database_url, schema, 2, Duration::from_secs(5)).await.unwrap()
    }
}

/// Runs `cmd` as the `postgres` user when this process is root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL server of one's own: `initdb` into a temporary directory, `pg_ctl` on a free
/// port of 127.0.0.1 (binaries in `PONTE_PG_BIN`, default `/usr/lib/postgresql/15/bin`).
/// Stopped and removed when dropped.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn start() -> anyhow::Result<Self> {
        let bin = PathBuf::from(std::env::var("PONTE_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()));
        let dir = tempfile::Builder::new().prefix("ponte-pg-").tempdir()?;
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if root {
            let ok = Command::new("chown").args(["postgres"]).arg(dir.path()).status()?.success();
            anyhow::ensure!(ok, "chown postgres {}", dir.path().display());
        }
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()
            .context("initdb")?;
        if !out.status.success() {
            bail!("initdb: {}", String::from_utf8_lossy(&out.stderr));
        }
        let pg = Self { port: free_addr().port(), dir, bin };
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400",
            self.port,
            self.dir.path().display()
        );
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .context("pg_ctl start")?;
        if !out.status.success() {
            bail!("pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    fn pg_ctl_stop(&self) -> anyhow::Result<()> {
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .context("pg_ctl stop")?;
        if !out.status.success() {
            bail!("pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable", self.port)
    }

    /// Creates `database` on the server; its URL.
    pub async fn create_database(&self, database: &str) -> anyhow::Result<String> {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres")).await?;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).await?;
        Ok(self.url(database))
    }

    /// An immediate stop (as a crash: no checkpoint, clients cut off) and a start on the same
    /// port and data.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl_stop()?;
        self.pg_ctl_start()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl_stop();
    }
}

/// A `redis-server` of one's own on a free port of 127.0.0.1, writing every command to its
/// append-only file so that a restart keeps what it held. Killed when dropped.
pub struct PrivateRedis {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Killed,
}

impl PrivateRedis {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ponte-redis-").tempdir()?;
        let port = free_addr().port();
        let child = Self::spawn(dir.path(), port)?;
        let redis = Self { dir, port, child };
        redis.until_up().await?;
        Ok(redis)
    }

    fn spawn(dir: &Path, port: u16) -> anyhow::Result<Killed> {
        let child = Command::new(std::env::var("PONTE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server")?;
        Ok(Killed::new(child))
    }

    async fn until_up(&self) -> anyhow::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let up = eventually(Duration::from_secs(20), || async move { TcpStream::connect(addr).await.is_ok() }).await;
        anyhow::ensure!(up, "redis-server on {addr} never answered");
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL and a start on the same port and data.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            Command::new("kill").args(["-KILL", &pid.to_string()]).status()?;
        }
        let _ = self.child.take().wait();
        // The port is free again once the old process is reaped.
        self.child = Self::spawn(self.dir.path(), self.port)?;
        self.until_up().await
    }
}
