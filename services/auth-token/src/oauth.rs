//! The OAuth 2.0 authorization-code connection: an unguessable single-use state, then the
//! code exchanged exactly once (Bling revokes a merchant's access when a code is used twice).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ponte_connectors::ConnectorError;
use ponte_core::{TenantId, db::Database, error::ServiceError, retry::RetryPolicy, time::now_millis};
use ponte_proto::v1::Provider;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{
    AuthToken,
    connections::{self, ConnectionRow, Field, provider_name},
    outside_failure,
};

/// How long a merchant has to come back from the provider's consent page.
pub const STATE_TTL: Duration = Duration::from_secs(600);

fn hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Creates and stores a state for `tenant`; returns it with its expiry (Unix ms).
pub async fn new_state(db: &Database, tenant: &TenantId, provider: Provider) -> Result<(String, i64), ServiceError> {
    let mut raw = [0_u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let state = URL_SAFE_NO_PAD.encode(raw);
    let now = now_millis();
    let expire = now + STATE_TTL.as_millis() as i64;
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, tenant_id, provider, expire_time, create_time) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(&state))
    .bind(tenant.as_str())
    .bind(provider_name(provider))
    .bind(expire)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok((state, expire))
}

/// Uses up a state: the tenant it was issued for, or why it cannot be used.
pub async fn consume_state(db: &Database, state: &str, provider: Provider) -> Result<TenantId, ServiceError> {
    let now = now_millis();
    let used: Option<String> = sqlx::query_scalar(
        "UPDATE oauth_states SET used_time = $1 WHERE state_hash = $2 AND provider = $3 \
         AND used_time IS NULL AND expire_time > $1 RETURNING tenant_id",
    )
    .bind(now)
    .bind(hash(state))
    .bind(provider_name(provider))
    .fetch_optional(db.pool())
    .await?;
    if let Some(tenant) = used {
        return Ok(TenantId::from_stored(tenant));
    }
    // When it was used, for a state ponte issued.
    let known: Option<Option<i64>> =
        sqlx::query_scalar("SELECT used_time FROM oauth_states WHERE state_hash = $1 AND provider = $2")
            .bind(hash(state))
            .bind(provider_name(provider))
            .fetch_optional(db.pool())
            .await?;
    Err(ServiceError::FailedPrecondition(match known {
        None => "the authorization state is unknown: start the connection again".into(),
        Some(Some(_)) => "the authorization state was already used: start the connection again".into(),
        Some(None) => "the authorization state expired (10 minutes): start the connection again".into(),
    }))
}

impl AuthToken {
    /// Completes a Bling connection from the callback's code and state.
    pub(crate) async fn complete_bling(
        &self,
        code: &str,
        state: &str,
        error: &str,
    ) -> Result<ConnectionRow, ServiceError> {
        let bling = self.bling()?;
        let state = ServiceError::require("state", state)?;
        let tenant = consume_state(&self.db, state, Provider::Bling).await?;
        if !error.is_empty() {
            let reason = if error == "access_denied" {
                "the merchant denied access in Bling".to_owned()
            } else {
                format!("Bling refused the authorization: {error}")
            };
            tracing::info!(tenant_id = %tenant, error, "Bling authorization not granted");
            return Err(ServiceError::PermissionDenied(reason));
        }
        let code = ServiceError::require("code", code)?;
        // Exactly once: a second exchange of the same code revokes the merchant's access, so no
        // failure of it is answered as one to retry.
        let tokens = bling.oauth.exchange_code(code).await.map_err(|e| match e {
            ConnectorError::InvalidGrant { message, .. } => ServiceError::FailedPrecondition(format!(
                "Bling refused the authorization code ({message}): start the connection again"
            )),
            other => ServiceError::FailedPrecondition(format!(
                "the code exchange with Bling failed ({other}); it is not retried: start the connection again"
            )),
        })?;
        // Reading the account is safe to retry.
        // The account is unknown until this answers: its budget is keyed by tenant meanwhile.
        let budget_key = format!("tenant:{tenant}");
        let account = RetryPolicy { max_attempts: 4, ..Default::default() }
            .run(|_| bling.api.dados_basicos(&budget_key, &tokens.access_token))
            .await
            .map_err(|e| outside_failure("reading the Bling account failed", e))?;
        let mut row = ConnectionRow::connected(&tenant, Provider::Bling, account.id);
        row.access_expire_time = now_millis() + tokens.expires_in.as_millis() as i64;
        row.seal(&self.sealer, Field::AccessToken, &tokens.access_token);
        if let Some(refresh) = &tokens.refresh_token {
            row.seal(&self.sealer, Field::RefreshToken, refresh);
        }
        let stored = connections::upsert(&self.db, &row).await?;
        tracing::info!(tenant_id = %tenant, account = %stored.external_account_id, "Bling connected");
        Ok(stored)
    }
}

/// A Bitrix24 portal's domain, e.g. "loja.bitrix24.com.br".
pub fn portal_domain(field: &str, raw: &str) -> Result<String, ServiceError> {
    let d = raw.trim().trim_start_matches("https://").trim_end_matches('/').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split(':').next().is_some_and(|host| {
            host.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        });
    if ok {
        Ok(d)
    } else {
        Err(ServiceError::invalid(field, format!("{} is not a portal domain", ponte_core::error::quote(raw))))
    }
}

impl AuthToken {
    /// Completes a Bitrix24 app connection: the code lives 30 s and is exchanged once.
    pub(crate) async fn complete_bitrix24(
        &self,
        req: &ponte_proto::v1::CompleteAuthorizationRequest,
    ) -> Result<ConnectionRow, ServiceError> {
        let app = self.bitrix24()?;
        let state = ServiceError::require("state", &req.state)?;
        let tenant = consume_state(&self.db, state, Provider::Bitrix24).await?;
        if !req.error.is_empty() {
            return Err(ServiceError::PermissionDenied(format!("Bitrix24 refused the authorization: {}", req.error)));
        }
        let code = ServiceError::require("code", &req.code)?;
        let tokens = app.exchange_code(code).await.map_err(|e| {
            ServiceError::FailedPrecondition(format!(
                "the code exchange with Bitrix24 failed ({e}); it is not retried: start the connection again"
            ))
        })?;
        let portal = if tokens.domain.is_empty() || tokens.domain == "oauth.bitrix.info" {
            portal_domain("bitrix24_domain", &req.bitrix24_domain)?
        } else {
            portal_domain("bitrix24_domain", &tokens.domain)?
        };
        let creds = serde_json::json!({"client_endpoint": tokens.client_endpoint, "member_id": tokens.member_id});
        let mut row = ConnectionRow::connected(&tenant, Provider::Bitrix24, portal);
        row.access_expire_time = now_millis() + tokens.lifetime().as_millis() as i64;
        row.seal(&self.sealer, Field::AccessToken, &tokens.access_token);
        row.seal(&self.sealer, Field::RefreshToken, &tokens.refresh_token);
        row.seal(&self.sealer, Field::Credentials, &creds.to_string());
        if !req.bitrix24_application_token.is_empty() {
            row.seal(&self.sealer, Field::WebhookSecret, &req.bitrix24_application_token);
        }
        let stored = connections::upsert(&self.db, &row).await?;
        tracing::info!(tenant_id = %tenant, portal = %stored.external_account_id, "Bitrix24 connected");
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::portal_domain;

    #[test]
    fn a_portal_domain_is_read_and_a_bad_one_quoted_short() {
        assert_eq!(portal_domain("domain", " https://Loja.Bitrix24.com.br/ ").unwrap(), "loja.bitrix24.com.br");
        let long = format!("{}..x", "a".repeat(20_000));
        let e = portal_domain("domain", &long).unwrap_err().to_string();
        assert!(e.starts_with("domain: 'aaaa"), "{e}");
        assert!(e.len() < 120, "{} chars", e.len());
    }
}
