//! How the binary assembles services from configuration and runs them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use ponte_core::{
    background::Background,
    config::{Env, Peers, ServeConfig},
    db::Database,
    grpc,
    idempotency::{RedisTimeouts, connect_redis},
    identity::{self, ENV_AUTH, ENV_TOKEN, ENV_TOKENS_FILE, Identity},
    service::{ServiceSpec, Shared},
    telemetry::{self, LogFormat, TelemetryConfig},
};
use tokio::{net::TcpListener, sync::watch};

use crate::ServiceName;

/// Every service, in the order `ponte dev` assigns ports.
pub static SERVICES: [&ServiceSpec; 6] = [
    &ponte_auth_token::SPEC,
    &ponte_mapping::SPEC,
    &ponte_catalog_sync::SPEC,
    &ponte_sales_ingest::SPEC,
    &ponte_shipping_status::SPEC,
    &ponte_gateway::SPEC,
];

pub fn spec(name: ServiceName) -> &'static ServiceSpec {
    match name {
        ServiceName::AuthToken => &ponte_auth_token::SPEC,
        ServiceName::Mapping => &ponte_mapping::SPEC,
        ServiceName::CatalogSync => &ponte_catalog_sync::SPEC,
        ServiceName::SalesIngest => &ponte_sales_ingest::SPEC,
        ServiceName::ShippingStatus => &ponte_shipping_status::SPEC,
        ServiceName::Gateway => &ponte_gateway::SPEC,
    }
}

async fn bind(addr: SocketAddr, var: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ponte_core::ConfigError::new(var, format!("cannot listen on {addr}: {e}")).into())
}

/// A signal every task of the process waits on to stop.
fn shutdown_channel() -> (watch::Sender<bool>, impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) {
    let (tx, rx) = watch::channel(false);
    let waiter = move || {
        let mut rx = rx.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
    };
    (tx, waiter)
}

/// `ponte serve <service>`.
pub async fn serve(name: ServiceName) -> anyhow::Result<()> {
    let env = Env::from_process();
    let spec = spec(name);
    let telemetry_cfg = TelemetryConfig::from_env(&env, &format!("ponte-{}", spec.name), LogFormat::Json)?;
    let cfg = ServeConfig::from_env(&env)?;
    let guard = telemetry::init(&telemetry_cfg)?;
    let grpc_listener = bind(cfg.grpc_addr, "PONTE_GRPC_ADDR").await?;
    let http_listener = if name == ServiceName::Gateway {
        bind(cfg.http_addr, "PONTE_HTTP_ADDR").await?
    } else {
        bind(cfg.metrics_addr, "PONTE_METRICS_ADDR").await?
    };

    let db =
        spec.database(&cfg.database_url, cfg.db_max_connections, cfg.startup_timeout, cfg.migrate_on_start).await?;
    let redis = connect_redis(&cfg.redis_url, RedisTimeouts::default(), cfg.startup_timeout).await?;
    let shared = Shared::redis(redis, &cfg.redis_prefix);
    let deps = shared.deps(db, cfg.peers.clone(), env.clone());

    // SIGTERM: readiness turns NOT_SERVING at once, the servers stop accepting and finish the
    // calls in flight, the gateway's dispatcher finishes its deliveries and hands back the rest;
    // all within PONTE_SHUTDOWN_GRACE_SECONDS, and the process exits 0.
    let (stop, stopped) = shutdown_channel();
    let readiness =
        if name == ServiceName::Gateway { ponte_gateway::Gateway::readiness(&deps) } else { deps.readiness() }
            .unless_stopping(stop.subscribe());
    let background = deps.background.clone();
    tokio::spawn(async move {
        grpc::shutdown_signal().await;
        // Background work learns first, so that the servers' shutdown, which drops the
        // services, finds it wrapping up rather than abandons it.
        background.stop();
        let _ = stop.send(true);
    });
    tracing::info!(service = spec.name, grpc = %cfg.grpc_addr, "ponte service starting");
    let grace = cfg.shutdown_grace;
    let mut tasks = tokio::task::JoinSet::new();
    let router = if name == ServiceName::Gateway {
        // The gateway's two sides share one wake-up, so its replays wake its dispatcher in-process.
        let gateway = ponte_gateway::Gateway::new();
        let identity = Identity::from_env(&env)?;
        tasks.spawn(spec.serve_routes(readiness.clone(), gateway.routes(&deps)?, identity, grpc_listener, stopped()));
        let (router, running) = gateway.build(&deps, readiness)?;
        let stop = stopped();
        tasks.spawn(async move {
            stop.await;
            running.stop(grace).await;
            Ok(())
        });
        router
    } else {
        let identity = Identity::from_env(&env)?;
        tasks.spawn(spec.serve_routes(readiness, (spec.routes)(&deps)?, identity, grpc_listener, stopped()));
        metrics_router()
    };
    let stop = stopped();
    tasks.spawn(async move { Ok(axum::serve(http_listener, router).with_graceful_shutdown(stop).await?) });
    tasks.spawn(wrap_up(deps.background.clone(), stopped()));
    let result = run_until_done(tasks, stopped(), grace).await;
    tracing::info!(service = spec.name, "stopped");
    guard.flush();
    result
}

/// Once the process is told to stop: the services' background work wraps up (each task
/// finishes its step and hands back its lease); the caller bounds the wait by the grace.
async fn wrap_up(background: Background, stopped: impl Future<Output = ()>) -> anyhow::Result<()> {
    stopped.await;
    background.stop();
    background.wait().await;
    Ok(())
}

/// `/metrics` alone, for the services whose only other port is gRPC (OpenMetrics when asked for).
fn metrics_router() -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok());
            let (content_type, body) = ponte_core::metrics::respond(accept);
            ([(axum::http::header::CONTENT_TYPE, content_type)], body)
        }),
    )
}

/// Waits for every task; after a stop signal, gives them `grace` to finish.
async fn run_until_done(
    mut tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    stopped: impl Future<Output = ()>,
    grace: Duration,
) -> anyhow::Result<()> {
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => return Ok(()),
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(anyhow::anyhow!("a server task failed: {e}")),
            },
            () = &mut stopped => {
                let drain = async { while let Some(r) = tasks.join_next().await { r??; } anyhow::Ok(()) };
                // A moment past the grace: the gateway's own stop hands back its deliveries at
                // the grace, and must get to do so.
                return match tokio::time::timeout(grace + Duration::from_secs(1), drain).await {
                    Ok(r) => r,
                    Err(_) => { tracing::warn!("calls still running after the shutdown grace; stopping"); Ok(()) }
                };
            }
        }
    }
}

/// What `ponte migrate` reads: `DATABASE_URL` and `PONTE_STARTUP_TIMEOUT_SECONDS`.
pub struct MigrateConfig {
    url: String,
    timeout: Duration,
}

impl MigrateConfig {
    pub fn from_env(env: &Env) -> Result<Self, ponte_core::ConfigError> {
        let url = env.required("DATABASE_URL", "a postgres:// or sqlite: URL")?;
        ponte_core::config::check_database_url(&url)?;
        Ok(Self { url, timeout: env.seconds_or("PONTE_STARTUP_TIMEOUT_SECONDS", 10, 1)? })
    }
}

/// `ponte migrate`.
pub async fn migrate(only: Option<ServiceName>) -> anyhow::Result<()> {
    let cfg = MigrateConfig::from_env(&Env::from_process())?;
    let specs: Vec<&ServiceSpec> = match only {
        Some(name) => vec![spec(name)],
        None => SERVICES.to_vec(),
    };
    for spec in specs {
        spec.database(&cfg.url, 1, cfg.timeout, true).await?;
        println!("{}: migrations applied (schema {})", spec.name, spec.schema);
    }
    Ok(())
}

/// `ponte keys rotate`.
pub async fn rotate_keys() -> anyhow::Result<()> {
    let env = Env::from_process();
    let url = env.required("DATABASE_URL", "a postgres:// or sqlite: URL")?;
    ponte_core::config::check_database_url(&url)?;
    let sealer = ponte_core::crypto::Sealer::from_env(&env)?;
    let timeout = env.seconds_or("PONTE_STARTUP_TIMEOUT_SECONDS", 10, 1)?;
    let db = Database::connect(&url, ponte_auth_token::SPEC.schema, 2, timeout).await?;
    let report = ponte_auth_token::keys::reseal_all(&db, &sealer).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "keys: {} secrets re-sealed under '{}', {} already under it, {} changed meanwhile (run again)",
        report.resealed,
        sealer.active_key_id(),
        report.current,
        report.skipped
    );
    Ok(())
}

pub struct DevOptions {
    pub data_dir: PathBuf,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// Where to run the Bling sandbox, when asked for.
    pub bling_sandbox: Option<SocketAddr>,
    /// Set up the demo merchant against the sandboxes ([`crate::demo`]).
    pub demo: bool,
}

/// Starts the Bling sandbox on `addr`; the environment the mesh needs to use it.
async fn start_bling_sandbox(
    addr: SocketAddr,
    redirect_uri: String,
    webhook_url: Option<String>,
) -> anyhow::Result<(ponte_sandbox::bling::Handle, Vec<(String, String)>)> {
    let listener = bind(addr, "--bling-port").await?;
    let mut config = ponte_sandbox::bling::Config { redirect_uri, ..Default::default() };
    if webhook_url.is_some() {
        config.webhook_url = webhook_url;
        config.webhook_backoff = Duration::from_secs(1);
    }
    let handle = ponte_sandbox::bling::Bling::new(config.clone()).spawn(Some(listener)).await?;
    let env = vec![
        ("PONTE_BLING_CLIENT_ID".to_owned(), config.client_id.clone()),
        ("PONTE_BLING_CLIENT_SECRET".to_owned(), config.client_secret.clone()),
        ("PONTE_BLING_API_URL".to_owned(), handle.base_url.clone()),
        ("PONTE_BLING_AUTHORIZE_URL".to_owned(), format!("{}/oauth/authorize", handle.base_url)),
        ("PONTE_BLING_TOKEN_URL".to_owned(), format!("{}/oauth/token", handle.base_url)),
    ];
    Ok((handle, env))
}

/// The sandboxes other than Bling.
#[derive(Clone, Copy, Debug)]
pub enum Other {
    Bitrix24,
    Envios360,
    Cplug,
}

impl Other {
    /// Its name on the command line and in the data directory's `sandboxes.json`.
    pub fn key(self) -> &'static str {
        match self {
            Other::Bitrix24 => "bitrix24",
            Other::Envios360 => "envios360",
            Other::Cplug => "cplug",
        }
    }
}

/// How `ponte dev` wires a sandbox to the mesh.
#[derive(Default)]
struct Wiring {
    /// The mesh's HTTP address: the Bitrix24 app's installation path is the gateway's.
    gateway: Option<SocketAddr>,
    /// CPLUG and 360Envios send their webhooks to the gateway for this tenant (the demo's).
    demo_tenant: Option<&'static str>,
    /// Ids handed out start after this.
    first_id: Option<u64>,
}

/// A running sandbox: it serves until its handle is dropped.
type Running = Box<dyn std::any::Any + Send>;

/// Starts one sandbox; its handle and the lines that tell a person how to use it, and the
/// environment the mesh needs to reach it, wired as `wiring` says.
async fn start_other(
    which: Other,
    addr: SocketAddr,
    wiring: Wiring,
) -> anyhow::Result<(Running, Vec<String>, Vec<(String, String)>)> {
    let listener = bind(addr, "--bling-port").await?;
    let gateway = wiring.gateway;
    let hook = |source: &str| Some(format!("http://{}/webhooks/{source}/{}", gateway?, wiring.demo_tenant?));
    Ok(match which {
        Other::Bitrix24 => {
            let install_url = gateway.map(|g| format!("http://{g}/install/bitrix24"));
            let config = ponte_sandbox::bitrix24::Config { install_url, ..Default::default() };
            let h = ponte_sandbox::bitrix24::Bitrix24::new(config).spawn(Some(listener)).await?;
            if let Some(first) = wiring.first_id {
                h.portal.start_ids_at(first);
            }
            let c = h.portal.config().clone();
            let mut lines = vec![
                format!("  {:<16} {}  (sandbox; incoming webhook)", "bitrix24", h.webhook_url),
                format!(
                    "  {:<16} PONTE_BITRIX24_WEBHOOK_URL={} PONTE_BITRIX24_APPLICATION_TOKEN={}",
                    "", h.webhook_url, c.application_token
                ),
            ];
            if let Some(url) = &c.install_url {
                lines.push(format!("  {:<16} POST {}/__admin/install installs the app at {url}", "", h.base_url));
            }
            let env = vec![
                ("PONTE_BITRIX24_CLIENT_ID".to_owned(), c.client_id.clone()),
                ("PONTE_BITRIX24_CLIENT_SECRET".to_owned(), c.client_secret.clone()),
                ("PONTE_BITRIX24_TOKEN_URL".to_owned(), h.token_url.clone()),
            ];
            (Box::new(h) as Running, lines, env)
        }
        Other::Envios360 => {
            let mut config = ponte_sandbox::envios360::Config::default();
            if let Some(url) = hook("envios360") {
                config.webhook_url = Some(url);
                config.webhook_backoff = Duration::from_secs(1);
            }
            let h = ponte_sandbox::envios360::Envios360::new(config).spawn(Some(listener)).await?;
            if let Some(first) = wiring.first_id {
                h.hub.start_ids_at(first);
            }
            let c = h.hub.config().clone();
            let lines = vec![
                format!("  {:<16} {}  (sandbox)", "envios360", h.base_url),
                format!(
                    "  {:<16} PONTE_ENVIOS360_API_TOKEN={} PONTE_ENVIOS360_WEBHOOK_SECRET={}",
                    "", c.api_token, c.webhook_secret
                ),
            ];
            let env = vec![("PONTE_ENVIOS360_API_URL".to_owned(), h.base_url.clone())];
            (Box::new(h) as Running, lines, env)
        }
        Other::Cplug => {
            let mut config = ponte_sandbox::cplug::Config::default();
            if let Some(url) = hook("cplug") {
                config.webhook_url = Some(url);
                config.webhook_backoff = Duration::from_secs(1);
            }
            let h = ponte_sandbox::cplug::Cplug::new(config).spawn(Some(listener)).await?;
            if let Some(first) = wiring.first_id {
                h.cplug.start_ids_at(first);
            }
            let lines = vec![format!("  {:<16} {}  (sandbox)", "cplug", h.base_url)];
            let env = vec![("PONTE_CPLUG_API_URL".to_owned(), h.base_url.clone())];
            (Box::new(h) as Running, lines, env)
        }
    })
}

/// `ponte sandbox bitrix24|envios360|cplug`.
pub async fn sandbox_other(which: Other, addr: SocketAddr) -> anyhow::Result<()> {
    let (_handle, lines, env) = start_other(which, addr, Wiring::default()).await?;
    for line in lines {
        println!("{line}");
    }
    for (k, v) in env {
        println!("  {k}={v}");
    }
    grpc::shutdown_signal().await;
    Ok(())
}

/// `ponte sandbox bling`.
pub async fn sandbox_bling(addr: SocketAddr, redirect_uri: String) -> anyhow::Result<()> {
    let (handle, env) = start_bling_sandbox(addr, redirect_uri, None).await?;
    println!("Bling sandbox at {} (admin: http://{}/__admin/stats)", handle.base_url, handle.addr);
    for (k, v) in env {
        println!("  {k}={v}");
    }
    grpc::shutdown_signal().await;
    Ok(())
}

/// `ponte dev`: the whole mesh in one process.
pub async fn dev(opts: DevOptions) -> anyhow::Result<()> {
    let env = Env::from_process();
    let telemetry_cfg = TelemetryConfig::from_env(&env, "ponte-dev", LogFormat::Text)?;
    let guard = telemetry::init(&telemetry_cfg)?;
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| {
        ponte_core::ConfigError::new("--data-dir", format!("cannot create {}: {e}", opts.data_dir.display()))
    })?;
    let base = opts.grpc.port();
    let mut peers = if opts.grpc.ip().is_loopback() { Peers::local(base) } else { Peers::on(opts.grpc.ip(), base) };
    let shared = Shared::memory();
    let mut env = dev_env(env, &opts.data_dir)?;
    peers.token = ponte_core::identity::BearerToken::new(ENV_TOKEN, env.get(ENV_TOKEN).unwrap_or_default())?;
    let mut sandboxes = Vec::new();
    let mut others: Vec<Running> = Vec::new();
    let mut sandbox_lines = Vec::new();
    if let Some(addr) = opts.bling_sandbox {
        // The sandboxes start empty each time, with ids after any an earlier start handed out
        // (records kept in the data directory never meet a reused id).
        let first_id = crate::demo::first_sandbox_id();
        let demo = opts.demo.then_some(crate::demo::TENANT);
        let callback = format!("http://{}/oauth/bling/callback", opts.http);
        let webhook = demo.map(|_| format!("http://{}/webhooks/bling", opts.http));
        let (handle, vars) = start_bling_sandbox(addr, callback, webhook).await?;
        handle.bling.start_ids_at(17_000_000_000 + first_id as i64);
        sandbox_lines.push(format!("  {:<16} {}  (sandbox)", "bling", handle.base_url));
        for (k, v) in vars {
            if env.get(&k).is_none() {
                env = env.with(&k, &v);
            }
        }
        let mut addrs = vec![("bling", format!("http://{}", handle.addr))];
        sandboxes.push(handle);
        let mut port = addr.port();
        for which in [Other::Bitrix24, Other::Envios360, Other::Cplug] {
            port = port.checked_add(1).context("--bling-port is too high for four sandboxes")?;
            let at = SocketAddr::new(addr.ip(), port);
            let wiring = Wiring { gateway: Some(opts.http), demo_tenant: demo, first_id: Some(first_id) };
            let (handle, lines, vars) = start_other(which, at, wiring).await?;
            addrs.push((which.key(), format!("http://{at}")));
            sandbox_lines.extend(lines);
            for (k, v) in vars {
                if env.get(&k).is_none() {
                    env = env.with(&k, &v);
                }
            }
            others.push(handle);
        }
        crate::sandbox_cmd::write_addresses(&opts.data_dir, &addrs)?;
    }
    let (stop, stopped) = shutdown_channel();
    let mut tasks = tokio::task::JoinSet::new();
    let mut lines = Vec::new();
    let mut gateway = None;
    let gateway_parts = ponte_gateway::Gateway::new();
    for (i, spec) in SERVICES.iter().enumerate() {
        let port = base.checked_add(i as u16).context("--grpc-port is too high for six services")?;
        let addr = SocketAddr::new(opts.grpc.ip(), port);
        let listener = bind(addr, "--grpc-port").await?;
        let db = spec.sqlite_database(&opts.data_dir).await?;
        let deps = shared.deps(db, peers.clone(), env.clone());
        if spec.name == "gateway" {
            gateway = Some(deps.clone());
        }
        if spec.name == "gateway" {
            let readiness = ponte_gateway::Gateway::readiness(&deps);
            let identity = Identity::from_env(&deps.env)?;
            tasks.spawn(spec.serve_routes(readiness, gateway_parts.routes(&deps)?, identity, listener, stopped()));
        } else {
            tasks.spawn(spec.serve(&deps, listener, stopped())?);
        }
        lines.push(format!("  {:<16} grpc://{addr}   ({})", spec.name, spec.grpc_services.join(", ")));
    }
    let http = bind(opts.http, "--http-port").await?;
    let gateway_deps = gateway.context("the gateway is one of the services")?;
    let (router, running) = gateway_parts.build(&gateway_deps, ponte_gateway::Gateway::readiness(&gateway_deps))?;
    let stop_http = stopped();
    tasks.spawn(async move { Ok(axum::serve(http, router).with_graceful_shutdown(stop_http).await?) });
    let stop_gateway = stopped();
    tasks.spawn(async move {
        stop_gateway.await;
        running.stop(Duration::from_secs(5)).await;
        Ok(())
    });
    tasks.spawn(wrap_up(shared.background.clone(), stopped()));
    lines.push(format!("  {:<16} http://{}  (webhooks, /healthz, /readyz, /metrics)", "gateway", opts.http));
    println!("ponte dev: every service in one process, data in {}", opts.data_dir.display());
    for line in lines.iter().chain(&sandbox_lines) {
        println!("{line}");
    }
    if opts.demo {
        let handles = || -> Option<crate::demo::Sandboxes<'_>> {
            Some(crate::demo::Sandboxes {
                bling: sandboxes.first()?,
                portal: others.first()?.downcast_ref()?,
                hub: others.get(1)?.downcast_ref()?,
                pos: others.get(2)?.downcast_ref()?,
            })
        };
        let s = handles().context("--demo runs with the four sandboxes")?;
        println!("ponte dev: setting up the demo (tenant '{}')…", crate::demo::TENANT);
        let made = crate::demo::set_up(&peers, &s).await.context("setting up the demo")?;
        let flags = if base == 50051 && opts.grpc.ip().is_loopback() {
            crate::demo::Flags::default()
        } else {
            crate::demo::Flags {
                gateway: format!(" --gateway-url {}", peers.gateway),
                catalog_sync: format!(" --catalog-sync-url {}", peers.catalog_sync),
            }
        };
        for line in crate::demo::lines(&made, &crate::demo::command_prefix(&opts.data_dir), &flags) {
            println!("{line}");
        }
    }
    println!("ponte dev: ready (Ctrl-C stops)");
    let background = shared.background.clone();
    tokio::spawn(async move {
        grpc::shutdown_signal().await;
        background.stop();
        let _ = stop.send(true);
    });
    let result = run_until_done(tasks, stopped(), Duration::from_secs(5)).await;
    guard.flush();
    result
}

/// The environment `ponte dev` runs with: the process's, plus a sealing key kept in the data
/// directory (made on first run) so sealed tokens survive restarts without any setup.
fn dev_env(env: Env, data_dir: &Path) -> anyhow::Result<Env> {
    if env.get("PONTE_SEALING_KEYS").is_some() {
        return dev_tokens(env, data_dir);
    }
    let path = data_dir.join("sealing.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(k) => k.trim().to_owned(),
        Err(_) => {
            let key = ponte_core::crypto::generate_key_entry("dev");
            std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            key
        }
    };
    dev_tokens(env.with("PONTE_SEALING_KEYS", &key), data_dir)
}

/// The dev token's file in the data directory, read by the CLI's commands.
pub const DEV_TOKEN_FILE: &str = "api-token";

/// Unless the API's tokens are configured (or checks disabled): a random token kept in
/// `<data_dir>/api-token` (so the CLI's commands present it) and a tokens file naming it.
fn dev_tokens(env: Env, data_dir: &Path) -> anyhow::Result<Env> {
    if env.get(ENV_TOKENS_FILE).is_some() || env.get(ENV_AUTH) == Some("disabled") {
        return Ok(env);
    }
    let token_path = data_dir.join(DEV_TOKEN_FILE);
    let token = match std::fs::read_to_string(&token_path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            let t = identity::generate_token();
            write_private(&token_path, &t)?;
            t
        }
    };
    let tokens_path = data_dir.join("api-tokens.yaml");
    let list = format!("- name: dev\n  token_sha256: {}\n  scope: service\n", identity::token_sha256(&token));
    write_private(&tokens_path, &list)?;
    let tokens_path = tokens_path.to_str().context("the data directory's path is not UTF-8")?;
    Ok(env.with(ENV_TOKENS_FILE, tokens_path).with(ENV_TOKEN, &token))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}
