//! Access tokens for the other services, and their refresh: ahead of expiry (a background
//! task) and on demand, one refresh at a time per connection across every replica.
//!
//! A refresh holds the connection's lease, re-reads the row (another replica may have just
//! refreshed), spends one slot of the token-endpoint budget, calls Bling, and commits the new
//! refresh token before anyone is handed the new access token. A refresh token is never sent
//! twice: Bling rotates it, and a second use of the old one logs the merchant out.

use std::time::Duration;

use ponte_connectors::{ConnectorError, cplug::CplugCredentials};
use ponte_core::{
    TenantId,
    error::ServiceError,
    ratelimit::{self, Priority},
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{ConnectionState, GetAccessTokenResponse, Provider};

use crate::{
    AuthToken,
    connections::{self, ConnectionRow, Field, aad, provider_name},
    outside_failure,
};

/// The longest a caller waits for another replica's refresh.
const WAIT_FOR_PEER: Duration = Duration::from_secs(15);
const LEASE: Duration = Duration::from_secs(30);

fn check_usable(c: &ConnectionRow) -> Result<(), ServiceError> {
    let name = provider_name(c.provider);
    match c.state {
        ConnectionState::Connected => Ok(()),
        ConnectionState::NeedsReauthorization => Err(ServiceError::FailedPrecondition(format!(
            "the {name} connection of tenant '{}' needs the merchant to authorize again: {}",
            c.tenant_id, c.reason
        ))),
        ConnectionState::Revoked => Err(ServiceError::FailedPrecondition(format!(
            "the {name} connection of tenant '{}' was revoked",
            c.tenant_id
        ))),
        _ => Err(ServiceError::FailedPrecondition(format!(
            "the {name} connection of tenant '{}' is not completed yet",
            c.tenant_id
        ))),
    }
}

impl AuthToken {
    pub(crate) async fn access_token(
        &self,
        tenant: &TenantId,
        provider: Provider,
        rejected_version: i64,
    ) -> Result<GetAccessTokenResponse, ServiceError> {
        let row = connections::require(&self.db, tenant, provider).await?;
        check_usable(&row)?;
        match provider {
            Provider::Bling => {
                let stale = row.access_expire_time <= now_millis() + self.handout_margin.as_millis() as i64;
                let rejected = rejected_version != 0 && rejected_version == row.token_version;
                let row = if stale || rejected { self.renew(row, rejected).await? } else { row };
                let token = row.open(&self.sealer, Field::AccessToken)?.ok_or_else(|| {
                    ServiceError::FailedPrecondition(format!("the Bling connection of tenant '{tenant}' has no token"))
                })?;
                Ok(GetAccessTokenResponse {
                    access_token: token,
                    expire_time: Some(to_timestamp(row.access_expire_time)),
                    base_url: self.bling()?.oauth.config().api_url.clone(),
                    external_account_id: row.external_account_id,
                    token_version: row.token_version,
                })
            }
            Provider::Envios360 => {
                let creds = self.credentials(&row)?;
                Ok(GetAccessTokenResponse {
                    access_token: creds["api_token"].as_str().unwrap_or_default().to_owned(),
                    expire_time: None,
                    base_url: self.urls.envios360.clone(),
                    external_account_id: row.external_account_id,
                    token_version: row.token_version,
                })
            }
            Provider::Bitrix24 => {
                let creds = self.credentials(&row)?;
                if let Some(webhook) = creds["webhook_url"].as_str() {
                    return Ok(GetAccessTokenResponse {
                        access_token: String::new(),
                        expire_time: None,
                        base_url: webhook.to_owned(),
                        external_account_id: row.external_account_id,
                        token_version: row.token_version,
                    });
                }
                // Bitrix24 asks apps to refresh only once a token is refused or expired, never
                // on a timer.
                let expired = row.access_expire_time <= now_millis();
                let rejected = rejected_version != 0 && rejected_version == row.token_version;
                let row = if expired || rejected { self.renew(row, true).await? } else { row };
                let creds = self.credentials(&row)?;
                Ok(GetAccessTokenResponse {
                    access_token: row.open(&self.sealer, Field::AccessToken)?.unwrap_or_default(),
                    expire_time: Some(to_timestamp(row.access_expire_time)),
                    base_url: creds["client_endpoint"].as_str().unwrap_or_default().to_owned(),
                    external_account_id: row.external_account_id,
                    token_version: row.token_version,
                })
            }
            Provider::Cplug => {
                let stale = row.access_expire_time <= now_millis() + self.handout_margin.as_millis() as i64;
                let rejected = rejected_version != 0 && rejected_version == row.token_version;
                let row = if stale || rejected { self.renew(row, rejected).await? } else { row };
                let token = row.open(&self.sealer, Field::AccessToken)?.unwrap_or_default();
                Ok(GetAccessTokenResponse {
                    access_token: token,
                    expire_time: Some(to_timestamp(row.access_expire_time)),
                    base_url: self.urls.cplug.clone(),
                    external_account_id: row.external_account_id,
                    token_version: row.token_version,
                })
            }
            Provider::Unspecified => Err(ServiceError::invalid("provider", "is required")),
        }
    }

    pub(crate) fn credentials(&self, row: &ConnectionRow) -> Result<serde_json::Value, ServiceError> {
        let raw = row.open(&self.sealer, Field::Credentials)?.unwrap_or_else(|| "{}".into());
        serde_json::from_str(&raw).map_err(|e| ServiceError::Internal(anyhow::anyhow!("stored credentials: {e}")))
    }

    /// Gets a new access token for a connection unless another replica already did; returns
    /// the row to use.
    pub(crate) async fn renew(&self, seen: ConnectionRow, forced: bool) -> Result<ConnectionRow, ServiceError> {
        let key = format!("auth-token:refresh:{}:{}", seen.tenant_id, provider_name(seen.provider));
        let deadline = tokio::time::Instant::now() + WAIT_FOR_PEER;
        loop {
            let lease = self
                .locks
                .try_acquire(&key, LEASE)
                .await
                .map_err(|e| ServiceError::unavailable(e.to_string(), Some(Duration::from_secs(1))))?;
            let current = connections::require(&self.db, &seen.tenant_id, seen.provider).await?;
            if current.token_version != seen.token_version {
                // Someone refreshed (or reconnected) while we looked: use theirs.
                if let Some(lease) = lease {
                    let _ = self.locks.release(lease).await;
                }
                check_usable(&current)?;
                return Ok(current);
            }
            let Some(lease) = lease else {
                if tokio::time::Instant::now() >= deadline {
                    return Err(ServiceError::unavailable(
                        "another replica is refreshing this connection's token",
                        Some(Duration::from_secs(1)),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let result = self.refresh_locked(current, forced).await;
            let _ = self.locks.release(lease).await;
            return result;
        }
    }

    /// The provider refused to renew the connection's grant: it is marked for the merchant to
    /// connect again, and the caller is answered FAILED_PRECONDITION with `reason`.
    async fn refused(&self, tenant: &TenantId, provider: Provider, reason: String) -> ServiceError {
        crate::metrics::refreshed(provider_name(provider), "refused");
        let marked =
            connections::set_state(&self.db, tenant, provider, ConnectionState::NeedsReauthorization, &reason, false)
                .await;
        match marked {
            Ok(()) => ServiceError::FailedPrecondition(reason),
            Err(e) => e,
        }
    }

    async fn refresh_locked(&self, current: ConnectionRow, forced: bool) -> Result<ConnectionRow, ServiceError> {
        let tenant = current.tenant_id.clone();
        let provider = current.provider;
        let name = provider_name(provider);
        let still_stale = current.access_expire_time <= now_millis() + self.handout_margin.as_millis() as i64;
        if !still_stale && !forced {
            return Ok(current);
        }
        let fresh = match provider {
            Provider::Bling => {
                let bling = self.bling()?;
                let Some(refresh_token) = current.open(&self.sealer, Field::RefreshToken)? else {
                    let reason = "Bling gave no refresh token; the merchant must connect again";
                    return Err(self.refused(&tenant, provider, reason.to_owned()).await);
                };
                // Bling blocks an IP for an hour after 20 token calls a minute: every replica
                // shares one budget.
                ratelimit::acquire(
                    &*self.limiter,
                    "bling:token-endpoint",
                    self.token_quota,
                    Priority::Live,
                    Duration::from_secs(10),
                )
                .await
                .map_err(|e| {
                    ServiceError::unavailable(format!("Bling token budget: {e}"), Some(Duration::from_secs(5)))
                })?;
                bling.oauth.refresh(&refresh_token).await.map(|t| (t.access_token, t.refresh_token, t.expires_in))
            }
            Provider::Bitrix24 => {
                let app = self.bitrix24()?;
                let Some(refresh_token) = current.open(&self.sealer, Field::RefreshToken)? else {
                    crate::metrics::refreshed(name, "refused");
                    return Err(ServiceError::FailedPrecondition(
                        "the Bitrix24 connection has no refresh token".into(),
                    ));
                };
                app.refresh(&refresh_token).await.map(|t| {
                    let lifetime = t.lifetime();
                    (t.access_token, Some(t.refresh_token), lifetime)
                })
            }
            Provider::Cplug => {
                let creds = self.credentials(&current)?;
                let field = |k: &str| creds[k].as_str().unwrap_or_default().to_owned();
                let creds = CplugCredentials {
                    client_id: field("client_id"),
                    client_secret: field("client_secret"),
                    username: field("username"),
                    password: field("password"),
                };
                self.cplug.token(&creds).await.map(|t| (t.access_token, None, t.expires_in))
            }
            other => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "{} connections have no expiring token",
                    provider_name(other)
                )));
            }
        };
        match fresh {
            Ok((access_token, refresh_token, expires_in)) => {
                let access = self.sealer.seal(access_token.as_bytes(), &aad(&tenant, provider, Field::AccessToken));
                let refresh = match &refresh_token {
                    Some(r) => self.sealer.seal(r.as_bytes(), &aad(&tenant, provider, Field::RefreshToken)),
                    None => current.refresh_token.clone(),
                };
                let expire = now_millis() + expires_in.as_millis() as i64;
                let swapped =
                    connections::swap_tokens(&self.db, &current, current.token_version, &access, expire, &refresh)
                        .await?;
                if !swapped {
                    tracing::warn!(
                        tenant_id = %tenant,
                        provider = name,
                        "connection changed during a token refresh; keeping the stored one"
                    );
                }
                tracing::info!(tenant_id = %tenant, provider = name, "access token renewed");
                crate::metrics::refreshed(name, "renewed");
                let row = connections::require(&self.db, &tenant, provider).await?;
                check_usable(&row)?;
                Ok(row)
            }
            Err(ConnectorError::InvalidGrant { message, .. }) => {
                tracing::warn!(tenant_id = %tenant, provider = name, "grant refused; connection needs reauthorization");
                Err(self.refused(&tenant, provider, format!("{message}; the merchant must connect again")).await)
            }
            Err(other) => {
                crate::metrics::refreshed(name, "failed");
                Err(outside_failure(&format!("renewing the {name} token"), other))
            }
        }
    }

    /// Refreshes every connected Bling token that expires within `ahead`. Run periodically.
    pub async fn refresh_expiring(&self, ahead: Duration) -> usize {
        let Ok(rows) = connections::all(&self.db).await else { return 0 };
        let limit = now_millis() + ahead.as_millis() as i64;
        let mut refreshed = 0;
        for row in rows {
            if row.provider != Provider::Bling
                || row.state != ConnectionState::Connected
                || row.access_expire_time > limit
            {
                continue;
            }
            let tenant = row.tenant_id.clone();
            match self.renew(row, true).await {
                Ok(_) => refreshed += 1,
                Err(e) => tracing::warn!(tenant_id = %tenant, error = %e, "refresh ahead of expiry failed"),
            }
        }
        refreshed
    }
}
