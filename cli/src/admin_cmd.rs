//! Operator commands that talk to a running auth-token over gRPC: tenants and connections.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use ponte_core::grpc::TracedChannel as Channel;
use ponte_proto::v1::{
    Bitrix24WebhookCredentials, CplugCredentials, CreateTenantRequest, Envios360Credentials, ListConnectionsRequest,
    ListTenantsRequest, Provider, SetApiCredentialsRequest, SetTenantLicenseRequest, StartAuthorizationRequest, Tenant,
    auth_token_service_client::AuthTokenServiceClient, set_api_credentials_request::Credentials,
};
use serde_json::{Value, json};

use crate::output::Output;

/// Where auth-token is.
#[derive(Args, Debug)]
pub struct AuthTokenAddr {
    /// auth-token's gRPC address (default: where `ponte dev` puts it).
    #[arg(long, env = "PONTE_AUTH_TOKEN_URL", default_value = "http://127.0.0.1:50051")]
    pub auth_token_url: String,
}

#[derive(Subcommand, Debug)]
pub enum TenantsCommand {
    /// Creates a tenant.
    Create {
        /// Lowercase letters, digits and '-'.
        tenant_id: String,
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
    /// Lists every tenant: id, name and licence (tab-separated), or JSON with --output json.
    List {
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
    /// Turns a tenant's licence ("licença ativa") off or on. While it is off the gateway stores
    /// the tenant's webhooks and holds them; turned on, they are delivered in order.
    License {
        #[arg(long)]
        tenant: String,
        /// false suspends the tenant, true reactivates it.
        #[arg(long, action = clap::ArgAction::Set)]
        active: bool,
        /// Why, kept with the licence for the operators who read it later.
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
    /// Offboards a tenant: revokes its tokens where the provider allows it and erases its data
    /// in every service, leaving an audit record. Asks to type the tenant id unless --yes.
    Delete {
        #[arg(long)]
        tenant: String,
        /// Who asks for the deletion, for the audit record (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Skip the confirmation (required when there is no terminal).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum OAuthProvider {
    Bling,
    Bitrix24,
}

#[derive(Subcommand, Debug)]
pub enum ConnectionsCommand {
    /// Lists a tenant's connections (never their secrets), or JSON with --output json.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
    /// Prints the URL a merchant opens to connect Bling or a Bitrix24 app.
    Connect {
        provider: OAuthProvider,
        #[arg(long)]
        tenant: String,
        /// Bitrix24 only: the portal, e.g. loja.bitrix24.com.br.
        #[arg(long, default_value = "")]
        portal: String,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
    /// Stores 360Envios credentials (read from PONTE_ENVIOS360_API_TOKEN and
    /// PONTE_ENVIOS360_WEBHOOK_SECRET, never from the command line).
    Envios360 {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
    /// Stores CPLUG credentials and the sale webhooks' secret (read from PONTE_CPLUG_CLIENT_ID,
    /// PONTE_CPLUG_CLIENT_SECRET, PONTE_CPLUG_USERNAME, PONTE_CPLUG_PASSWORD and
    /// PONTE_CPLUG_WEBHOOK_SECRET, never from the command line).
    Cplug {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
    /// Stores a Bitrix24 incoming-webhook connection (PONTE_BITRIX24_WEBHOOK_URL and
    /// PONTE_BITRIX24_APPLICATION_TOKEN).
    Bitrix24Webhook {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        addr: AuthTokenAddr,
    },
}

async fn client(addr: &AuthTokenAddr) -> anyhow::Result<AuthTokenServiceClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(addr.auth_token_url.clone())
        .with_context(|| format!("--auth-token-url '{}' is not a URL", addr.auth_token_url))?
        .connect()
        .await
        .with_context(|| format!("cannot reach auth-token at {}", addr.auth_token_url))?;
    let channel = crate::with_token(channel)?;
    Ok(AuthTokenServiceClient::new(channel))
}

fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", e.code(), e.message())
}

/// A tenant's licence as the tables show it: "active", or "inactive" with the reason.
fn license_text(t: &Tenant) -> String {
    match &t.license {
        Some(l) if !l.active && l.reason.is_empty() => "inactive".to_owned(),
        Some(l) if !l.active => format!("inactive: {}", l.reason),
        _ => "active".to_owned(),
    }
}

/// A tenant as `--output json` shows it.
fn tenant_json(t: &Tenant) -> Value {
    let license = t.license.clone().unwrap_or_default();
    json!({
        "tenant_id": t.tenant_id,
        "display_name": t.display_name,
        "license_active": t.license.as_ref().is_none_or(|l| l.active),
        "license_reason": license.reason,
    })
}

fn secret_env(var: &str) -> anyhow::Result<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ponte_core::ConfigError::new(var, "is not set").into())
}

pub async fn tenants(cmd: TenantsCommand) -> anyhow::Result<()> {
    match cmd {
        TenantsCommand::Create { tenant_id, name, addr } => {
            let t = client(&addr)
                .await?
                .create_tenant(CreateTenantRequest { tenant_id, display_name: name })
                .await
                .map_err(status)?
                .into_inner()
                .tenant
                .unwrap_or_default();
            println!("created tenant {} ({})", t.tenant_id, t.display_name);
        }
        TenantsCommand::License { tenant, active, reason, output, addr } => {
            let t = client(&addr)
                .await?
                .set_tenant_license(SetTenantLicenseRequest { tenant_id: tenant, active, reason })
                .await
                .map_err(status)?
                .into_inner()
                .tenant
                .unwrap_or_default();
            match output {
                Output::Table => println!("tenant {}: licence {}", t.tenant_id, license_text(&t)),
                Output::Json => println!("{}", serde_json::to_string_pretty(&tenant_json(&t))?),
            }
        }
        TenantsCommand::Delete { tenant, by, yes, addr } => {
            crate::tenants_delete::delete(tenant, by, yes, addr.auth_token_url).await?
        }
        TenantsCommand::List { output, addr } => {
            let mut c = client(&addr).await?;
            let mut token = String::new();
            let mut all = Vec::new();
            loop {
                let page = c
                    .list_tenants(ListTenantsRequest { page_size: 500, page_token: token })
                    .await
                    .map_err(status)?
                    .into_inner();
                for t in page.tenants {
                    match output {
                        Output::Table => println!("{}\t{}\t{}", t.tenant_id, t.display_name, license_text(&t)),
                        Output::Json => all.push(tenant_json(&t)),
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&Value::Array(all))?);
            }
        }
    }
    Ok(())
}

pub async fn connections(cmd: ConnectionsCommand) -> anyhow::Result<()> {
    match cmd {
        ConnectionsCommand::List { tenant, output, addr } => {
            let list = client(&addr)
                .await?
                .list_connections(ListConnectionsRequest { tenant_id: tenant })
                .await
                .map_err(status)?
                .into_inner();
            if output == Output::Json {
                let all: Vec<Value> = list
                    .connections
                    .iter()
                    .map(|c| {
                        json!({
                            "provider": format!("{:?}", c.provider()).to_lowercase(),
                            "state": format!("{:?}", c.state()).to_lowercase(),
                            "external_account_id": c.external_account_id,
                            "reason": c.reason,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(());
            }
            for c in list.connections {
                println!("{:?}\t{:?}\t{}\t{}", c.provider(), c.state(), c.external_account_id, c.reason);
            }
        }
        ConnectionsCommand::Connect { provider, tenant, portal, addr } => {
            let provider = match provider {
                OAuthProvider::Bling => Provider::Bling,
                OAuthProvider::Bitrix24 => Provider::Bitrix24,
            };
            let r = client(&addr)
                .await?
                .start_authorization(StartAuthorizationRequest {
                    tenant_id: tenant,
                    provider: provider as i32,
                    bitrix24_domain: portal,
                })
                .await
                .map_err(status)?
                .into_inner();
            println!("{}", r.authorize_url);
            eprintln!("open this URL within 10 minutes to connect");
        }
        ConnectionsCommand::Envios360 { tenant, addr } => {
            let creds = Credentials::Envios360(Envios360Credentials {
                api_token: secret_env("PONTE_ENVIOS360_API_TOKEN")?,
                webhook_secret: secret_env("PONTE_ENVIOS360_WEBHOOK_SECRET")?,
            });
            store(&addr, tenant, creds).await?;
        }
        ConnectionsCommand::Cplug { tenant, addr } => {
            let creds = Credentials::Cplug(CplugCredentials {
                client_id: secret_env("PONTE_CPLUG_CLIENT_ID")?,
                client_secret: secret_env("PONTE_CPLUG_CLIENT_SECRET")?,
                username: secret_env("PONTE_CPLUG_USERNAME")?,
                password: secret_env("PONTE_CPLUG_PASSWORD")?,
                webhook_secret: secret_env("PONTE_CPLUG_WEBHOOK_SECRET")?,
            });
            store(&addr, tenant, creds).await?;
        }
        ConnectionsCommand::Bitrix24Webhook { tenant, addr } => {
            let creds = Credentials::Bitrix24Webhook(Bitrix24WebhookCredentials {
                webhook_url: secret_env("PONTE_BITRIX24_WEBHOOK_URL")?,
                application_token: secret_env("PONTE_BITRIX24_APPLICATION_TOKEN")?,
            });
            store(&addr, tenant, creds).await?;
        }
    }
    Ok(())
}

async fn store(addr: &AuthTokenAddr, tenant: String, creds: Credentials) -> anyhow::Result<()> {
    let c = client(addr)
        .await?
        .set_api_credentials(SetApiCredentialsRequest { tenant_id: tenant, credentials: Some(creds) })
        .await
        .map_err(status)?
        .into_inner()
        .connection
        .unwrap_or_default();
    println!("{:?} connection of {} is {:?}", c.provider(), c.tenant_id, c.state());
    Ok(())
}
