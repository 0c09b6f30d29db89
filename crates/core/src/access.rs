//! Access tokens as the other services get them: asked of auth-token, cached until shortly
//! before they expire, and reported back by version when the provider refuses one, so
//! auth-token renews it once however many callers saw the refusal.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use ponte_proto::v1::{GetAccessTokenRequest, Provider, auth_token_service_client::AuthTokenServiceClient};
use tonic::Code;

use crate::{
    error::{ServiceError, retry_after},
    grpc::TracedChannel,
};

/// How long before expiry a cached token is no longer handed out.
const MARGIN: Duration = Duration::from_secs(120);

/// What a caller needs to call a provider for a tenant.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    /// The API base URL (a secret itself for Bitrix24 incoming webhooks).
    pub base_url: String,
    /// The provider's account id: the key of its shared rate budget.
    pub account: String,
    /// Report this back through [`AccessTokens::refused`] when the provider refuses the token.
    pub version: i64,
    /// Unix ms; `None` when the token does not expire.
    pub expire_time: Option<i64>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("account", &self.account)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How a missing connection's error starts.
const NOT_CONNECTED: &str = "not connected";

/// A cache of access tokens in front of auth-token.
#[derive(Clone)]
pub struct AccessTokens {
    client: AuthTokenServiceClient<TracedChannel>,
    cache: Arc<Mutex<HashMap<(String, i32), AccessToken>>>,
}

impl AccessTokens {
    pub fn new(channel: TracedChannel) -> Self {
        Self { client: AuthTokenServiceClient::new(channel), cache: Arc::default() }
    }

    /// A usable token for `tenant_id` at `provider`.
    pub async fn get(&self, tenant_id: &str, provider: Provider) -> Result<AccessToken, ServiceError> {
        let key = (tenant_id.to_owned(), provider as i32);
        if let Some(t) = self.cache.lock().get(&key)
            && t.expire_time.is_none_or(|e| e > now_ms() + MARGIN.as_millis() as i64)
        {
            return Ok(t.clone());
        }
        self.fetch(tenant_id, provider, 0).await
    }

    /// As [`AccessTokens::get`], but `None` when the tenant has no connection to `provider` at
    /// all (a flow the merchant does not use), rather than an error.
    pub async fn get_if_connected(
        &self,
        tenant_id: &str,
        provider: Provider,
    ) -> Result<Option<AccessToken>, ServiceError> {
        match self.get(tenant_id, provider).await {
            Ok(t) => Ok(Some(t)),
            Err(ServiceError::FailedPrecondition(m)) if m.starts_with(NOT_CONNECTED) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The provider refused `refused`: get a renewed token (auth-token renews it once).
    pub async fn refused(
        &self,
        tenant_id: &str,
        provider: Provider,
        refused: &AccessToken,
    ) -> Result<AccessToken, ServiceError> {
        self.fetch(tenant_id, provider, refused.version).await
    }

    async fn fetch(&self, tenant_id: &str, provider: Provider, rejected: i64) -> Result<AccessToken, ServiceError> {
        let mut client = self.client.clone();
        let resp = client
            .get_access_token(GetAccessTokenRequest {
                tenant_id: tenant_id.to_owned(),
                provider: provider as i32,
                rejected_token_version: rejected,
            })
            .await
            .map_err(|s| match s.code() {
                // The merchant must act (connect, re-authorize): the caller parks its work.
                Code::NotFound => ServiceError::FailedPrecondition(format!("{NOT_CONNECTED}: {}", s.message())),
                Code::FailedPrecondition => ServiceError::FailedPrecondition(s.message().to_owned()),
                Code::InvalidArgument => ServiceError::invalid("tenant_id", s.message()),
                _ => ServiceError::unavailable(
                    format!("auth-token: {}", s.message()),
                    retry_after(&s).or(Some(Duration::from_secs(1))),
                ),
            })?
            .into_inner();
        let token = AccessToken {
            token: resp.access_token,
            base_url: resp.base_url,
            account: resp.external_account_id,
            version: resp.token_version,
            expire_time: resp.expire_time.as_ref().map(crate::time::from_timestamp),
        };
        self.cache.lock().insert((tenant_id.to_owned(), provider as i32), token.clone());
        Ok(token)
    }
}
