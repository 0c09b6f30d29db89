//! A mesh of `ponte serve` processes for the operations tests, as Kubernetes runs it: one process
//! per service replica against one PostgreSQL database and one Redis, each service behind a
//! [`Balancer`] (a port spreading new connections over the service's live processes, as a
//! Service does), the sandboxes of Bling, Bitrix24 and CPLUG in the test's process, and tenant
//! `loja` connected to all three. [`ProcessMesh::roll`] replaces one process as a rolling update
//! does: the new one starts and turns ready, takes the old one's place in the balancer, and the
//! old one gets SIGTERM.

use std::{
    net::SocketAddr,
    process::{Command, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use ponte_sandbox::{bitrix24, bling, cplug};
use ponte_tests::{TestDatabase, eventually, webhooks};
use std::sync::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::support::{Killed, free_addr};

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
    child: Killed,
}

impl Proc {
    /// Starts `ponte serve <service>` with `env` and waits until it is ready.
    pub async fn start(service: &'static str, env: &[(String, String)]) -> Self {
        let (grpc, http) = (free_addr(), free_addr());
        let port_var = if service == "gateway" { "PONTE_HTTP_ADDR" } else { "PONTE_METRICS_ADDR" };
        let child = Command::new(env!("CARGO_BIN_EXE_ponte"))
            .args(["serve", service])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(crate::support::api_env())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PONTE_GRPC_ADDR", grpc.to_string())
            .env(port_var, http.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
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

    /// Its `/metrics`, as OpenMetrics (with exemplars) when `open_metrics`.
    pub async fn metrics(&self, open_metrics: bool) -> String {
        let mut req = reqwest::Client::new().get(format!("http://{}/metrics", self.http));
        if open_metrics {
            req = req.header("accept", "application/openmetrics-text; version=1.0.0");
        }
        req.send().await.unwrap().text().await.unwrap()
    }
}

/// The mesh's services, in the order they start.
pub const SERVICES: [&str; 3] = ["auth-token", "mapping", "catalog-sync"];

pub struct ProcessMesh {
    pub database: Arc<TestDatabase>,
    pub bling: bling::Handle,
    pub portal: bitrix24::Handle,
    pub pos: cplug::Handle,
    env: Vec<(String, String)>,
    /// One per service (gRPC), and `gateway-http` for webhooks.
    balancers: Vec<(&'static str, Balancer)>,
    pub procs: Vec<Proc>,
}

impl ProcessMesh {
    /// auth-token, mapping, catalog-sync and `gateways` gateways, with `extra` settings for every
    /// process; tenant `loja` connected to Bling, the Bitrix24 portal and the CPLUG store.
    pub async fn start(gateways: usize, extra: &[(&str, String)]) -> Self {
        // Outside systems 1,000 times faster than real, ponte's budgets scaled the same
        // (PONTE_RATE_LIMIT_SCALE): their rate limits are not what these tests measure.
        let bling =
            bling::Bling::new(bling::Config { per_second: 5000, ..Default::default() }).spawn(None).await.unwrap();
        let portal_config = bitrix24::Config { per_second: 5000.0, burst: 5000.0, ..bitrix24::Config::for_tests() };
        let portal = bitrix24::Bitrix24::new(portal_config).spawn(None).await.unwrap();
        let pos = cplug::Cplug::new(Default::default()).spawn(None).await.unwrap();
        let database = ponte_tests::fresh_database().await;
        let mut balancers = Vec::new();
        for name in SERVICES.iter().copied().chain(["gateway", "gateway-http"]) {
            balancers.push((name, Balancer::start().await));
        }
        let url_of = |name: &str| balancers.iter().find(|(n, _)| *n == name).unwrap().1.url();
        let cfg = bling.bling.config().clone();
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", database.url().to_owned()),
            ("REDIS_URL", ponte_tests::redis_url()),
            ("PONTE_REDIS_PREFIX", ponte_tests::unique_prefix()),
            ("PONTE_SEALING_KEYS", ponte_core::crypto::generate_key_entry("ops")),
            ("PONTE_BLING_CLIENT_ID", cfg.client_id.clone()),
            ("PONTE_BLING_CLIENT_SECRET", cfg.client_secret.clone()),
            ("PONTE_BLING_API_URL", bling.base_url.clone()),
            ("PONTE_BLING_AUTHORIZE_URL", format!("{}/oauth/authorize", bling.base_url)),
            ("PONTE_BLING_TOKEN_URL", format!("{}/oauth/token", bling.base_url)),
            ("PONTE_CPLUG_API_URL", pos.base_url.clone()),
            ("PONTE_RATE_LIMIT_SCALE", "1000".to_owned()),
            ("PONTE_AUTH_TOKEN_URL", url_of("auth-token")),
            ("PONTE_MAPPING_URL", url_of("mapping")),
            ("PONTE_CATALOG_SYNC_URL", url_of("catalog-sync")),
            ("PONTE_DISPATCH_BACKOFF_MS", "100".to_owned()),
            ("PONTE_DISPATCH_MAX_BACKOFF_SECONDS", "1".to_owned()),
            ("PONTE_DISPATCH_MAX_ATTEMPTS", "100".to_owned()),
            ("PONTE_DISPATCH_POLL_MS", "200".to_owned()),
            ("PONTE_LOG", "warn".to_owned()),
            ("PONTE_STARTUP_TIMEOUT_SECONDS", "30".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(crate::support::api_env())
        .collect();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push(((*k).to_owned(), v.clone()));
        }
        let mut mesh = Self { database, bling, portal, pos, env, balancers, procs: Vec::new() };
        for service in SERVICES {
            mesh.spawn(service).await;
        }
        for _ in 0..gateways {
            mesh.spawn("gateway").await;
        }
        let auth = mesh.channel("auth-token").await;
        webhooks::create_tenant_with_bling(auth.clone(), &mesh.bling).await;
        webhooks::connect_portal_at(auth.clone(), &mesh.portal).await;
        webhooks::connect_cplug_at(auth, &mesh.pos).await;
        mesh
    }

    fn balancer(&self, name: &str) -> &Balancer {
        &self.balancers.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// Starts one more process of `service` and puts it behind its balancers.
    pub async fn spawn(&mut self, service: &'static str) {
        let p = Proc::start(service, &self.env).await;
        self.balancer(service).add(p.grpc);
        if service == "gateway" {
            self.balancer("gateway-http").add(p.http);
        }
        self.procs.push(p);
    }

    /// Replaces process `index` as a rolling update does (surge one, then terminate the old
    /// one); the old process's exit.
    pub async fn roll(&mut self, index: usize) -> ExitStatus {
        let service = self.procs[index].service;
        self.spawn(service).await;
        let old = self.procs.remove(index);
        self.balancer(service).remove(old.grpc);
        if service == "gateway" {
            self.balancer("gateway-http").remove(old.http);
        }
        old.terminate().await
    }

    /// Stops process `index` with SIGTERM (out of its balancers first, as a scale-down does);
    /// its exit.
    pub async fn stop(&mut self, index: usize) -> ExitStatus {
        let old = self.procs.remove(index);
        self.balancer(old.service).remove(old.grpc);
        if old.service == "gateway" {
            self.balancer("gateway-http").remove(old.http);
        }
        old.terminate().await
    }

    /// The value of setting `var` every process got.
    pub fn setting(&self, var: &str) -> &str {
        self.env.iter().find(|(k, _)| k == var).map_or("", |(_, v)| v.as_str())
    }

    /// A channel to `service` through its balancer.
    pub async fn channel(&self, service: &str) -> ponte_tests::Channel {
        let ch =
            tonic::transport::Endpoint::from_shared(self.balancer(service).url()).unwrap().connect().await.unwrap();
        crate::support::with_token(ch)
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
        ponte_core::db::Database::connect(self.database.url(), schema, 2, Duration::from_secs(5)).await.unwrap()
    }
}
