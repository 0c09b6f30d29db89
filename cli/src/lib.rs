//! The `ponte` command: runs one service (`serve`), the whole mesh in one process (`dev`),
//! migrations (`migrate`), and the sandboxes of the outside systems (`sandbox`).

mod admin_cmd;
mod backfill_cmd;
pub mod config_check;
mod demo;
mod dlq_cmd;
mod history_cmd;
mod mapping_cmd;
mod output;
mod run;
mod sales_cmd;
mod sandbox_cmd;
mod shipping_cmd;
mod status_cmd;
mod tenants_delete;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use ponte_core::ConfigError;

pub use run::{SERVICES, spec};

/// The name of every metric a ponte process may export (each service's registered, whether
/// observed yet or not): what the alerting rules may name.
pub fn metric_names() -> Vec<String> {
    ponte_auth_token::metrics::register();
    ponte_gateway::register_metrics();
    ponte_core::retention::register_metrics();
    ponte_core::metrics::global().names()
}

#[derive(Parser, Debug)]
#[command(name = "ponte", version, about = "ponte: a gRPC integration mesh around Bling ERP")]
struct Cli {
    /// The API token presented to ponte's services (default: PONTE_API_TOKEN, then the
    /// `api-token` file `ponte dev` writes in its data directory).
    #[arg(long, global = true, env = "PONTE_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The processes `ponte serve` can run, one per Kubernetes Deployment.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceName {
    AuthToken,
    Mapping,
    CatalogSync,
    SalesIngest,
    ShippingStatus,
    Gateway,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one service, configured from the environment (DATABASE_URL, REDIS_URL, PONTE_*, OTEL_*).
    Serve {
        /// The service to run.
        service: ServiceName,
    },
    /// Runs every service and the gateway in one process: SQLite files under the data
    /// directory, in-memory idempotency, fixed local ports. No server to install.
    Dev {
        /// Where the SQLite files live.
        #[arg(long, default_value = ".ponte", env = "PONTE_DATA_DIR")]
        data_dir: PathBuf,
        /// The first gRPC port; the services take it and the next five.
        #[arg(long, default_value_t = 50051)]
        grpc_port: u16,
        /// The gateway's HTTP port.
        #[arg(long, default_value_t = 8080)]
        http_port: u16,
        /// The address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Also run the sandboxes of the outside systems and wire the mesh to them, so
        /// connecting a merchant works with nothing else installed.
        #[arg(long)]
        sandbox: bool,
        /// The first sandbox port (with --sandbox): Bling, Bitrix24, 360Envios, CPLUG in turn.
        #[arg(long, default_value_t = 9101)]
        bling_port: u16,
        /// With --sandbox: a demo merchant (tenant `demo`) connected to all four sandboxes, a
        /// small catalog in Bling synced to Bitrix24 and CPLUG, payments, store and shipping set
        /// up; then prints what to try. Safe to run again on the same data directory.
        #[arg(long, requires = "sandbox")]
        demo: bool,
    },
    /// Runs the fake of one outside system, standalone, for trying ponte or a client against it;
    /// with an action, acts on a running one as a person in that system's UI would.
    Sandbox {
        #[command(subcommand)]
        system: SandboxCommand,
    },
    /// Manages the keys that seal tokens and secrets at rest (PONTE_SEALING_KEYS).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Tenants, through a running auth-token.
    Tenants {
        #[command(subcommand)]
        command: admin_cmd::TenantsCommand,
    },
    /// A tenant's connections to Bling, Bitrix24, 360Envios and CPLUG, through a running auth-token.
    Connections {
        #[command(subcommand)]
        command: admin_cmd::ConnectionsCommand,
    },
    /// A tenant's mapping tables as YAML, through a running mapping service.
    Mapping {
        #[command(subcommand)]
        command: mapping_cmd::MappingCommand,
    },
    /// A tenant's point-of-sale sales: list, show, parked, replay, cancel, move.
    Sales {
        #[command(subcommand)]
        command: sales_cmd::SalesCommand,
    },
    /// The gateway's dead letters: list, show, replay.
    Dlq {
        #[command(subcommand)]
        command: dlq_cmd::DlqCommand,
    },
    /// Sets a tenant up for 360Envios: the situações of the shipping cycle and their map.
    Shipping {
        #[command(subcommand)]
        command: shipping_cmd::ShippingCommand,
    },
    /// A tenant's shipments to 360Envios: list, show.
    Shipments {
        #[command(subcommand)]
        command: shipping_cmd::ShipmentsCommand,
    },
    /// A tenant's sync status per flow (the merchant's "data sync" tab), through a running
    /// catalog-sync.
    /// Full copies of a tenant's Bling catalog (or orders): start, watch with progress, cancel.
    Backfill {
        #[command(subcommand)]
        command: backfill_cmd::BackfillCommand,
    },
    /// Prints a shell completion script, e.g. `ponte completions bash > /etc/bash_completion.d/ponte`.
    Completions { shell: clap_complete::Shell },
    /// One record's history: each event that touched it, what ponte did, when, the outcome and
    /// the trace.
    History(history_cmd::HistoryArgs),
    Status {
        #[arg(long)]
        tenant: String,
        /// catalog-sync's gRPC address (default: where `ponte dev` puts it).
        #[arg(long, env = "PONTE_CATALOG_SYNC_URL", default_value = "http://127.0.0.1:50053")]
        catalog_sync_url: String,
    },
    /// Lists every variable the service reads at start from this environment, and fails when one
    /// it reads without a default is unset (nothing is listened on or connected to).
    CheckConfig { service: ServiceName },
    /// Applies every service's migrations to DATABASE_URL (each in its own schema) and exits.
    Migrate {
        /// Only this service's migrations.
        #[arg(long)]
        service: Option<ServiceName>,
    },
}

#[derive(Subcommand, Debug)]
enum SandboxCommand {
    /// Bling v3: OAuth, the account limits, products, orders, stock (under /Api/v3).
    #[command(args_conflicts_with_subcommands = true)]
    Bling {
        #[command(subcommand)]
        action: Option<sandbox_cmd::BlingAction>,
        #[arg(long, default_value_t = 9101)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// Where the authorize endpoint sends the merchant back (the gateway's callback).
        #[arg(long, default_value = "http://127.0.0.1:8080/oauth/bling/callback")]
        redirect_uri: String,
    },
    /// Bitrix24: a portal with an incoming webhook and an OAuth app.
    #[command(args_conflicts_with_subcommands = true)]
    Bitrix24 {
        #[command(subcommand)]
        action: Option<sandbox_cmd::Bitrix24Action>,
        #[arg(long, default_value_t = 9102)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
    },
    /// 360Envios: products, orders and the shipping life cycle.
    #[command(args_conflicts_with_subcommands = true)]
    Envios360 {
        #[command(subcommand)]
        action: Option<sandbox_cmd::Envios360Action>,
        #[arg(long, default_value_t = 9103)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
    },
    /// CPLUG: the point of sale's token and product API, and its till.
    #[command(args_conflicts_with_subcommands = true)]
    Cplug {
        #[command(subcommand)]
        action: Option<sandbox_cmd::CplugAction>,
        #[arg(long, default_value_t = 9104)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Prints a new random key entry (`id=base64`) to put first in PONTE_SEALING_KEYS.
    Generate {
        /// The key's id, e.g. the month it was made.
        #[arg(long)]
        id: String,
    },
    /// Re-seals every stored secret under the active (first) key of PONTE_SEALING_KEYS, reading
    /// the auth-token tables at DATABASE_URL. Older keys can be removed afterwards.
    Rotate,
}

/// `--token` / `PONTE_API_TOKEN`, as given on the command line.
static TOKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The token the CLI presents: `--token`, `PONTE_API_TOKEN`, or `$PONTE_DATA_DIR/api-token`
/// (`.ponte/api-token`, written by `ponte dev`).
pub fn api_token() -> anyhow::Result<ponte_core::identity::BearerToken> {
    use ponte_core::identity::BearerToken;
    if let Some(t) = TOKEN.get().cloned().flatten().filter(|t| !t.trim().is_empty()) {
        return Ok(BearerToken::new("--token", &t)?);
    }
    let dir = std::env::var("PONTE_DATA_DIR").unwrap_or_else(|_| ".ponte".into());
    let path = std::path::Path::new(&dir).join(run::DEV_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(BearerToken::new(&path.display().to_string(), &t)?),
        Err(_) => Ok(BearerToken::none()),
    }
}

/// `channel` presenting the CLI's API token ([`api_token`]) and trace context.
pub fn with_token(channel: tonic::transport::Channel) -> anyhow::Result<ponte_core::grpc::TracedChannel> {
    Ok(tonic::service::interceptor::InterceptedService::new(channel, ponte_core::grpc::MeshInterceptor(api_token()?)))
}

/// Parses the command line, runs the command, and maps failures to an exit code with one
/// line on stderr: 2 for configuration errors (naming the variable), 1 otherwise.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = TOKEN.set(cli.token.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ponte: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { service } => run::serve(service).await,
            Command::Dev { data_dir, grpc_port, http_port, host, sandbox, bling_port, demo } => {
                run::dev(run::DevOptions {
                    data_dir,
                    grpc: SocketAddr::new(host, grpc_port),
                    http: SocketAddr::new(host, http_port),
                    bling_sandbox: sandbox.then(|| SocketAddr::new(host, bling_port)),
                    demo,
                })
                .await
            }
            Command::Migrate { service } => run::migrate(service).await,
            Command::CheckConfig { service } => config_check::check(service).await,
            Command::Sandbox { system: SandboxCommand::Bling { action: Some(action), .. } } => {
                sandbox_cmd::bling(action).await
            }
            Command::Sandbox { system: SandboxCommand::Bitrix24 { action: Some(action), .. } } => {
                sandbox_cmd::bitrix24(action).await
            }
            Command::Sandbox { system: SandboxCommand::Envios360 { action: Some(action), .. } } => {
                sandbox_cmd::envios360(action).await
            }
            Command::Sandbox { system: SandboxCommand::Cplug { action: Some(action), .. } } => {
                sandbox_cmd::cplug(action).await
            }
            Command::Sandbox { system: SandboxCommand::Bling { action: None, port, host, redirect_uri } } => {
                run::sandbox_bling(SocketAddr::new(host, port), redirect_uri).await
            }
            Command::Sandbox { system: SandboxCommand::Bitrix24 { action: None, port, host } } => {
                run::sandbox_other(run::Other::Bitrix24, SocketAddr::new(host, port)).await
            }
            Command::Sandbox { system: SandboxCommand::Envios360 { action: None, port, host } } => {
                run::sandbox_other(run::Other::Envios360, SocketAddr::new(host, port)).await
            }
            Command::Sandbox { system: SandboxCommand::Cplug { action: None, port, host } } => {
                run::sandbox_other(run::Other::Cplug, SocketAddr::new(host, port)).await
            }
            Command::Tenants { command } => admin_cmd::tenants(command).await,
            Command::Connections { command } => admin_cmd::connections(command).await,
            Command::Mapping { command } => mapping_cmd::mapping(command).await,
            Command::Dlq { command } => dlq_cmd::dlq(command).await,
            Command::Shipping { command } => shipping_cmd::shipping(command).await,
            Command::Shipments { command } => shipping_cmd::shipments(command).await,
            Command::Sales { command } => sales_cmd::sales(command).await,
            Command::Backfill { command } => backfill_cmd::backfill(command).await,
            Command::Completions { shell } => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(shell, &mut cmd, "ponte", &mut std::io::stdout());
                Ok(())
            }
            Command::History(args) => history_cmd::history(args).await,
            Command::Status { tenant, catalog_sync_url } => status_cmd::status(tenant, catalog_sync_url).await,
            Command::Keys { command: KeysCommand::Generate { id } } => {
                println!("{}", ponte_core::crypto::generate_key_entry(&id));
                Ok(())
            }
            Command::Keys { command: KeysCommand::Rotate } => run::rotate_keys().await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<ConfigError>() {
            Some(config) => {
                eprintln!("ponte: configuration error: {config}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("ponte: error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
