//! auth-token: tenants and their connections to Bling, Bitrix24, 360Envios and CPLUG, and the
//! short-lived access tokens every other service calls those systems with. It alone owns
//! tenants and secrets: tokens and credentials are sealed at rest (AES-256-GCM) and leave the
//! service only as access tokens handed to ponte's own services.

mod api;
mod connections;
mod credentials;
mod install;
pub mod keys;
pub mod metrics;
mod oauth;
mod offboard;
mod tenants;
mod tokens;

use std::{sync::Arc, time::Duration};

use ponte_connectors::{
    ConnectorError, Outside,
    bitrix24::{Bitrix24AppConfig, Bitrix24Client, Bitrix24OAuth},
    bling::{BlingApi, BlingConfig, BlingOAuth},
    cplug::CplugClient,
};
use ponte_core::{
    config::{ConfigError, Env},
    crypto::Sealer,
    db::Database,
    error::ServiceError,
    idempotency::IdempotencyStore,
    lock::Locks,
    ratelimit::{Quota, RateLimiter},
    service::Deps,
};
use ponte_proto::{service_names, v1::auth_token_service_server::AuthTokenServiceServer};
use tonic::service::Routes;

pub use oauth::portal_domain;
pub use offboard::tenant_hash;
pub use tenants::validate_tenant_id;

ponte_core::service_spec! {
    /// The auth-token service as the binary runs it.
    pub static SPEC = { name: "auth-token", schema: "auth_token", grpc_services: &[service_names::AUTH_TOKEN], routes: routes };
}

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    metrics::register();
    let svc = AuthToken::from_deps(deps)?;
    let refresher = svc.clone();
    let ahead = deps.env.seconds_or("PONTE_TOKEN_REFRESH_AHEAD_SECONDS", 1800, 60)?;
    tokio::spawn(async move {
        // The first pass waits a period: a replica starting (or restarting) must not add a
        // burst of token calls on top of the running ones.
        let period = Duration::from_secs(60);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            refresher.refresh_expiring(ahead).await;
        }
    });
    Ok(Routes::new(AuthTokenServiceServer::new(svc)))
}

#[derive(Clone)]
pub(crate) struct Bling {
    pub oauth: BlingOAuth,
    pub api: BlingApi,
}

/// Where the providers without OAuth live.
#[derive(Clone, Debug)]
pub(crate) struct ProviderUrls {
    pub envios360: String,
    pub cplug: String,
}

/// The gRPC implementation.
#[derive(Clone)]
pub struct AuthToken {
    db: Database,
    sealer: Sealer,
    bling: Option<Bling>,
    bitrix24: Option<Bitrix24OAuth>,
    /// Portals' REST APIs (checking an app installation), within each portal's shared budget.
    bitrix24_api: Bitrix24Client,
    cplug: CplugClient,
    urls: ProviderUrls,
    limiter: Arc<dyn RateLimiter>,
    locks: Arc<dyn Locks>,
    idempotency: Arc<dyn IdempotencyStore>,
    /// The services erasing a deleted tenant's data, in the order they are asked.
    holders: offboard::Holders,
    token_quota: Quota,
    /// A token expiring sooner than this is renewed before it is handed out.
    handout_margin: Duration,
}

impl AuthToken {
    /// Builds the service from shared dependencies and `PONTE_SEALING_KEYS`, `PONTE_BLING_*`,
    /// `PONTE_BITRIX24_*`,
    /// `PONTE_ENVIOS360_API_URL`, `PONTE_CPLUG_API_URL`.
    pub fn from_deps(deps: &Deps) -> Result<Self, ConfigError> {
        let env: &Env = &deps.env;
        let http = ponte_connectors::http::client();
        let bling = BlingConfig::from_env(env)?.map(|cfg| Bling {
            api: BlingApi::new(http.clone(), &cfg.api_url, deps.limiter.clone(), Quota::bling()),
            oauth: BlingOAuth::new(http.clone(), cfg),
        });
        let outside = Outside::from_env(env, deps.limiter.clone())?;
        let urls = ProviderUrls { envios360: outside.envios360_url, cplug: outside.cplug_url };
        Ok(Self {
            db: deps.db.clone(),
            sealer: Sealer::from_env(env)?,
            bling,
            bitrix24: Bitrix24AppConfig::from_env(env)?.map(|cfg| Bitrix24OAuth::new(http.clone(), cfg)),
            bitrix24_api: Bitrix24Client::new(http.clone(), deps.limiter.clone(), Quota::bitrix24()),
            cplug: CplugClient::new(http.clone(), &urls.cplug),
            urls,
            limiter: deps.limiter.clone(),
            locks: deps.locks.clone(),
            idempotency: deps.idempotency.clone(),
            holders: vec![
                ("mapping", deps.mapping_channel()?),
                ("catalog-sync", deps.catalog_sync_channel()?),
                ("sales-ingest", deps.sales_ingest_channel()?),
                ("shipping-status", deps.shipping_status_channel()?),
                ("gateway", deps.gateway_channel()?),
            ],
            // Bling blocks an IP for an hour after 20 token calls in 60 s: stay at 15 in any minute.
            token_quota: Quota { interval: Duration::from_secs(5), burst: 3, daily: None },
            handout_margin: env.seconds_or("PONTE_TOKEN_REFRESH_MARGIN_SECONDS", 300, 0)?,
        })
    }

    pub(crate) fn bitrix24(&self) -> Result<&Bitrix24OAuth, ServiceError> {
        self.bitrix24.as_ref().ok_or_else(|| {
            ServiceError::FailedPrecondition(
                "no Bitrix24 app is configured (set PONTE_BITRIX24_CLIENT_ID and PONTE_BITRIX24_CLIENT_SECRET)".into(),
            )
        })
    }

    pub(crate) fn bling(&self) -> Result<&Bling, ServiceError> {
        self.bling.as_ref().ok_or_else(|| {
            ServiceError::FailedPrecondition(
                "no Bling app is configured (set PONTE_BLING_CLIENT_ID and PONTE_BLING_CLIENT_SECRET)".into(),
            )
        })
    }
}

/// A failed call to a provider as auth-token answers it: ponte's one conversion
/// (`From<ConnectorError>`), its message led by what auth-token was doing.
pub(crate) fn outside_failure(doing: &str, e: ConnectorError) -> ServiceError {
    match ServiceError::from(e) {
        ServiceError::Unavailable { message, retry_after } => {
            ServiceError::unavailable(format!("{doing}: {message}"), retry_after)
        }
        ServiceError::FailedPrecondition(m) => ServiceError::FailedPrecondition(format!("{doing}: {m}")),
        ServiceError::NotFound(m) => ServiceError::NotFound(format!("{doing}: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ponte_connectors::ConnectorError;
    use ponte_core::error::ServiceError;

    use super::outside_failure;

    #[test]
    fn an_outside_failure_says_what_was_being_done_and_keeps_its_class() {
        let limited = ConnectorError::RateLimited {
            system: "Bling",
            message: "too many requests".into(),
            retry_after: Some(Duration::from_millis(700)),
        };
        match outside_failure("renewing the bling token", limited) {
            ServiceError::Unavailable { message, retry_after } => {
                assert!(message.starts_with("renewing the bling token: Bling rate limit"), "{message}");
                assert_eq!(retry_after, Some(Duration::from_millis(700)));
            }
            other => panic!("{other:?}"),
        }
        // A refusal retrying cannot help is not answered as one to retry.
        let rejected =
            ConnectorError::Rejected { system: "CPLUG", status: 400, message: "invalid_client".into(), fields: vec![] };
        match outside_failure("renewing the cplug token", rejected) {
            ServiceError::FailedPrecondition(m) => {
                assert!(m.starts_with("renewing the cplug token: CPLUG refused"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}
