//! The OAuth 2.0 authorization-code connection: an unguessable single-use state, then the
//! code exchanged exactly once (Bling revokes a merchant's access when a code is used twice).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ponte_connectors::ConnectorError;
use ponte_core::{db::Database, error::ServiceError, retry::RetryPolicy, time::now_millis};
use ponte_proto::v1::{ConnectionState, Provider};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{
    AuthToken,
    connections::{self, ConnectionRow, Field, aad, provider_name},
};

/// How long a merchant has to come back from the provider's consent page.
pub const STATE_TTL: Duration = Duration::from_secs(600);

fn hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Creates and stores a state for `tenant_id`; returns it with its expiry (Unix ms).
pub async fn new_state(db: &Database, tenant_id: &str, provider: Provider) -> Result<(String, i64), ServiceError> {
    let mut raw = [0_u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let state = URL_SAFE_NO_PAD.encode(raw);
    let now = now_millis();
    let expire = now + STATE_TTL.as_millis() as i64;
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, tenant_id, provider, expire_time, create_time) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(&state))
    .bind(tenant_id)
    .bind(provider_name(provider))
    .bind(expire)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok((state, expire))
}

/// Uses up a state: the tenant it was issued for, or why it cannot be used.
pub async fn consume_state(db: &Database, state: &str, provider: Provider) -> Result<String, ServiceError> {
    let now = now_millis();
    let used = sqlx::query(
        "UPDATE oauth_states SET used_time = $1 WHERE state_hash = $2 AND provider = $3 \
         AND used_time IS NULL AND expire_time > $1 RETURNING tenant_id",
    )
    .bind(now)
    .bind(hash(state))
    .bind(provider_name(provider))
    .fetch_optional(db.pool())
    .await?;
    if let Some(row) = used {
        return Ok(row.try_get(0)?);
    }
    let known = sqlx::query("SELECT used_time, expire_time FROM oauth_states WHERE state_hash = $1 AND provider = $2")
        .bind(hash(state))
        .bind(provider_name(provider))
        .fetch_optional(db.pool())
        .await?;
    Err(ServiceError::FailedPrecondition(match known {
        None => "the authorization state is unknown: start the connection again".into(),
        Some(row) if row.try_get::<Option<i64>, _>(0)?.is_some() => {
            "the authorization state was already used: start the connection again".into()
        }
        Some(_) => "the authorization state expired (10 minutes): start the connection again".into(),
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
        let tenant_id = consume_state(&self.db, state, Provider::Bling).await?;
        if !error.is_empty() {
            let reason = if error == "access_denied" {
                "the merchant denied access in Bling".to_owned()
            } else {
                format!("Bling refused the authorization: {error}")
            };
            tracing::info!(tenant_id, error, "Bling authorization not granted");
            return Err(ServiceError::PermissionDenied(reason));
        }
        let code = ServiceError::require("code", code)?;
        // Exactly once: a second exchange of the same code revokes the merchant's access.
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
        let budget_key = format!("tenant:{tenant_id}");
        let account = RetryPolicy { max_attempts: 4, ..Default::default() }
            .run(|_| bling.api.dados_basicos(&budget_key, &tokens.access_token))
            .await
            .map_err(|e| ServiceError::unavailable(format!("reading the Bling account failed: {e}"), None))?;
        let now = now_millis();
        let row = ConnectionRow {
            tenant_id: tenant_id.clone(),
            provider: Provider::Bling,
            state: ConnectionState::Connected,
            external_account_id: account.id,
            access_token: self
                .sealer
                .seal(tokens.access_token.as_bytes(), &aad(&tenant_id, Provider::Bling, Field::AccessToken)),
            access_expire_time: now + tokens.expires_in.as_millis() as i64,
            refresh_token: tokens
                .refresh_token
                .map(|r| self.sealer.seal(r.as_bytes(), &aad(&tenant_id, Provider::Bling, Field::RefreshToken)))
                .unwrap_or_default(),
            credentials: String::new(),
            webhook_secret: String::new(),
            token_version: 0,
            reason: String::new(),
            create_time: now,
            update_time: now,
        };
        let stored = connections::upsert(&self.db, &row).await?;
        tracing::info!(tenant_id, account = %stored.external_account_id, "Bling connected");
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
    if ok { Ok(d) } else { Err(ServiceError::invalid(field, format!("'{raw}' is not a portal domain"))) }
}

impl AuthToken {
    /// Completes a Bitrix24 app connection: the code lives 30 s and is exchanged once.
    pub(crate) async fn complete_bitrix24(
        &self,
        req: &ponte_proto::v1::CompleteAuthorizationRequest,
    ) -> Result<ConnectionRow, ServiceError> {
        let app = self.bitrix24()?;
        let state = ServiceError::require("state", &req.state)?;
        let tenant_id = consume_state(&self.db, state, Provider::Bitrix24).await?;
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
        let now = now_millis();
        let seal = |v: &str, f: Field| self.sealer.seal(v.as_bytes(), &aad(&tenant_id, Provider::Bitrix24, f));
        let row = ConnectionRow {
            tenant_id: tenant_id.clone(),
            provider: Provider::Bitrix24,
            state: ConnectionState::Connected,
            external_account_id: portal,
            access_token: seal(&tokens.access_token, Field::AccessToken),
            access_expire_time: now + tokens.lifetime().as_millis() as i64,
            refresh_token: seal(&tokens.refresh_token, Field::RefreshToken),
            credentials: seal(&creds.to_string(), Field::Credentials),
            webhook_secret: if req.bitrix24_application_token.is_empty() {
                String::new()
            } else {
                seal(&req.bitrix24_application_token, Field::WebhookSecret)
            },
            token_version: 0,
            reason: String::new(),
            create_time: now,
            update_time: now,
        };
        let stored = connections::upsert(&self.db, &row).await?;
        tracing::info!(tenant_id, portal = %stored.external_account_id, "Bitrix24 connected");
        Ok(stored)
    }
}
