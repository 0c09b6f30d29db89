//! Access tokens as the other services get them: asked of auth-token, cached until shortly
//! before they expire, and reported back by version when the provider refuses one, so
//! auth-token renews it once however many callers saw the refusal.
//!
//! [`AccessTokens::with_token`] is the one place a call to an outside system is retried on a
//! refused token: every flow runs its calls through it.
//!
//! The cache is moka's: per-entry expiry from each token's own lifetime, and one auth-token
//! call for a burst of callers asking for the same token (its single-flight load), which a
//! hand-written map would have to rebuild.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use moka::future::Cache;
use ponte_proto::v1::{GetAccessTokenRequest, Provider, auth_token_service_client::AuthTokenServiceClient};
use secrecy::{ExposeSecret, SecretString};
use tonic::Code;

use crate::{
    error::{ServiceError, retry_after},
    grpc::TracedChannel,
    ids::TenantId,
    time::now_millis,
};

/// How long before expiry a cached token is no longer handed out.
const MARGIN: Duration = Duration::from_secs(120);
/// Tokens kept at most (a few per tenant).
const CAPACITY: u64 = 100_000;

/// What a caller needs to call a provider for a tenant.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// Empty for a Bitrix24 incoming webhook, whose secret is its URL.
    pub token: SecretString,
    /// The API base URL (a secret itself for Bitrix24 incoming webhooks).
    pub base_url: SecretString,
    /// The provider's account id: the key of its shared rate budget.
    pub account: String,
    /// Report this back through [`AccessTokens::refused`] when the provider refuses the token.
    pub version: i64,
    /// Unix ms; `None` when the token does not expire.
    pub expire_time: Option<i64>,
}

impl AccessToken {
    /// The bearer token.
    pub fn secret(&self) -> &str {
        self.token.expose_secret()
    }

    /// The API base URL.
    pub fn base_url(&self) -> &str {
        self.base_url.expose_secret()
    }
}

/// An error that can tell that the provider refused the access token it was called with.
pub trait TokenRefusal {
    fn token_refused(&self) -> bool;
}

/// How a missing connection's error starts.
const NOT_CONNECTED: &str = "not connected";

/// Expires each cached token [`MARGIN`] before the token itself does.
struct UntilExpiry;

impl moka::Expiry<(TenantId, i32), AccessToken> for UntilExpiry {
    fn expire_after_create(&self, _: &(TenantId, i32), token: &AccessToken, _: Instant) -> Option<Duration> {
        token.expire_time.map(|at| {
            let left = at - now_millis() - MARGIN.as_millis() as i64;
            Duration::from_millis(u64::try_from(left).unwrap_or(0))
        })
    }

    fn expire_after_update(
        &self,
        key: &(TenantId, i32),
        token: &AccessToken,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, token, at)
    }
}

/// A cache of access tokens in front of auth-token.
#[derive(Clone)]
pub struct AccessTokens {
    client: AuthTokenServiceClient<TracedChannel>,
    cache: Cache<(TenantId, i32), AccessToken>,
}

impl AccessTokens {
    pub fn new(channel: TracedChannel) -> Self {
        let cache = Cache::builder().max_capacity(CAPACITY).expire_after(UntilExpiry).build();
        Self { client: AuthTokenServiceClient::new(channel), cache }
    }

    /// A usable token for `tenant` at `provider`.
    pub async fn get(&self, tenant: &TenantId, provider: Provider) -> Result<AccessToken, ServiceError> {
        let key = (tenant.clone(), provider as i32);
        self.cache
            .try_get_with(key, self.fetch(tenant, provider, 0))
            .await
            .map_err(|shared: Arc<ServiceError>| shared.cloned())
    }

    /// As [`AccessTokens::get`], but `None` when the tenant has no connection to `provider` at
    /// all (a flow the merchant does not use), rather than an error.
    pub async fn get_if_connected(
        &self,
        tenant: &TenantId,
        provider: Provider,
    ) -> Result<Option<AccessToken>, ServiceError> {
        match self.get(tenant, provider).await {
            Ok(t) => Ok(Some(t)),
            Err(ServiceError::FailedPrecondition(m)) if m.starts_with(NOT_CONNECTED) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The provider refused `refused`: get a renewed token (auth-token renews it once).
    pub async fn refused(
        &self,
        tenant: &TenantId,
        provider: Provider,
        refused: &AccessToken,
    ) -> Result<AccessToken, ServiceError> {
        let token = self.fetch(tenant, provider, refused.version).await?;
        self.cache.insert((tenant.clone(), provider as i32), token.clone()).await;
        Ok(token)
    }

    /// Runs `call` with a token for `tenant` at `provider`. When the provider refuses the token
    /// (expired or revoked early), reports it and runs `call` once more with the renewed one.
    pub async fn with_token<T, E, F, Fut>(&self, tenant: &TenantId, provider: Provider, call: F) -> Result<T, E>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TokenRefusal + From<ServiceError>,
    {
        let token = self.get(tenant, provider).await?;
        self.retry_refused(tenant, provider, token, call).await
    }

    /// As [`AccessTokens::with_token`]; `None` when the tenant has not connected `provider`.
    pub async fn with_token_if_connected<T, E, F, Fut>(
        &self,
        tenant: &TenantId,
        provider: Provider,
        call: F,
    ) -> Result<Option<T>, E>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TokenRefusal + From<ServiceError>,
    {
        match self.get_if_connected(tenant, provider).await? {
            Some(token) => self.retry_refused(tenant, provider, token, call).await.map(Some),
            None => Ok(None),
        }
    }

    async fn retry_refused<T, E, F, Fut>(
        &self,
        tenant: &TenantId,
        provider: Provider,
        token: AccessToken,
        mut call: F,
    ) -> Result<T, E>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TokenRefusal + From<ServiceError>,
    {
        match call(token.clone()).await {
            Err(e) if e.token_refused() => {
                let renewed = self.refused(tenant, provider, &token).await?;
                call(renewed).await
            }
            other => other,
        }
    }

    async fn fetch(&self, tenant: &TenantId, provider: Provider, rejected: i64) -> Result<AccessToken, ServiceError> {
        let mut client = self.client.clone();
        let resp = client
            .get_access_token(GetAccessTokenRequest {
                tenant_id: tenant.to_string(),
                provider: provider as i32,
                rejected_token_version: rejected,
            })
            .await
            .map_err(|s| match s.code() {
                // The merchant must act (connect, re-authorize): the caller parks its work.
                Code::NotFound => ServiceError::FailedPrecondition(format!("{NOT_CONNECTED}: {}", s.message())),
                Code::FailedPrecondition => ServiceError::FailedPrecondition(s.message().to_owned()),
                Code::InvalidArgument => ServiceError::FailedPrecondition(s.message().to_owned()),
                _ => ServiceError::unavailable(
                    format!("auth-token: {}", s.message()),
                    retry_after(&s).or(Some(Duration::from_secs(1))),
                ),
            })?
            .into_inner();
        Ok(AccessToken {
            token: resp.access_token.into(),
            base_url: resp.base_url.into(),
            account: resp.external_account_id,
            version: resp.token_version,
            expire_time: resp.expire_time.as_ref().map(crate::time::from_timestamp),
        })
    }
}
