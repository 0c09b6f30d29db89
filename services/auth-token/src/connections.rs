//! Connection rows: a tenant's link to one provider, with its tokens and secrets sealed.

use ponte_core::{
    TenantId,
    crypto::Sealer,
    db::Database,
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{Connection, ConnectionState, Provider};

/// The provider's name as stored and as shown in messages.
pub fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Bling => "bling",
        Provider::Bitrix24 => "bitrix24",
        Provider::Envios360 => "envios360",
        Provider::Cplug => "cplug",
        Provider::Unspecified => "unspecified",
    }
}

/// The provider named by a request field, refusing UNSPECIFIED and unknown numbers.
pub fn provider_from(field: &str, raw: i32) -> Result<Provider, ServiceError> {
    match Provider::try_from(raw) {
        Ok(Provider::Unspecified) | Err(_) => Err(ServiceError::invalid(
            field,
            "must be PROVIDER_BLING, PROVIDER_BITRIX24, PROVIDER_ENVIOS360 or PROVIDER_CPLUG",
        )),
        Ok(p) => Ok(p),
    }
}

fn provider_from_name(name: &str) -> Provider {
    match name {
        "bling" => Provider::Bling,
        "bitrix24" => Provider::Bitrix24,
        "envios360" => Provider::Envios360,
        "cplug" => Provider::Cplug,
        _ => Provider::Unspecified,
    }
}

fn state_name(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::PendingAuthorization => "pending_authorization",
        ConnectionState::Connected => "connected",
        ConnectionState::NeedsReauthorization => "needs_reauthorization",
        ConnectionState::Revoked => "revoked",
        ConnectionState::Unspecified => "unspecified",
    }
}

fn state_from_name(s: &str) -> ConnectionState {
    match s {
        "pending_authorization" => ConnectionState::PendingAuthorization,
        "connected" => ConnectionState::Connected,
        "needs_reauthorization" => ConnectionState::NeedsReauthorization,
        "revoked" => ConnectionState::Revoked,
        _ => ConnectionState::Unspecified,
    }
}

/// Which sealed column a value belongs to; part of the associated data.
#[derive(Clone, Copy)]
pub enum Field {
    AccessToken,
    RefreshToken,
    Credentials,
    WebhookSecret,
}

impl Field {
    pub fn column(self) -> &'static str {
        match self {
            Field::AccessToken => "access_token",
            Field::RefreshToken => "refresh_token",
            Field::Credentials => "credentials",
            Field::WebhookSecret => "webhook_secret",
        }
    }

    pub const ALL: [Field; 4] = [Field::AccessToken, Field::RefreshToken, Field::Credentials, Field::WebhookSecret];
}

/// The associated data binding a sealed value to its row and column.
pub fn aad(tenant: &TenantId, provider: Provider, field: Field) -> String {
    format!("ponte/auth-token/{tenant}/{}/{}", provider_name(provider), field.column())
}

/// A connection as stored (secrets still sealed).
#[derive(Clone, Debug)]
pub struct ConnectionRow {
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub state: ConnectionState,
    pub external_account_id: String,
    pub access_token: String,
    pub access_expire_time: i64,
    pub refresh_token: String,
    pub credentials: String,
    pub webhook_secret: String,
    pub token_version: i64,
    pub reason: String,
    pub create_time: i64,
    pub update_time: i64,
}

const COLUMNS: &str = "tenant_id, provider, state, external_account_id, access_token, access_expire_time, \
    refresh_token, credentials, webhook_secret, token_version, reason, create_time, update_time";

/// A connection as read, its provider and state by their stored names.
#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    provider: String,
    state: String,
    external_account_id: String,
    access_token: String,
    access_expire_time: i64,
    refresh_token: String,
    credentials: String,
    webhook_secret: String,
    token_version: i64,
    reason: String,
    create_time: i64,
    update_time: i64,
}

impl From<Row> for ConnectionRow {
    fn from(r: Row) -> Self {
        ConnectionRow {
            tenant_id: TenantId::from_stored(r.tenant_id),
            provider: provider_from_name(&r.provider),
            state: state_from_name(&r.state),
            external_account_id: r.external_account_id,
            access_token: r.access_token,
            access_expire_time: r.access_expire_time,
            refresh_token: r.refresh_token,
            credentials: r.credentials,
            webhook_secret: r.webhook_secret,
            token_version: r.token_version,
            reason: r.reason,
            create_time: r.create_time,
            update_time: r.update_time,
        }
    }
}

impl ConnectionRow {
    /// A new connection of `tenant` to `provider`, connected, with nothing sealed in it yet.
    pub fn connected(tenant: &TenantId, provider: Provider, external_account_id: String) -> Self {
        let now = now_millis();
        Self {
            tenant_id: tenant.clone(),
            provider,
            state: ConnectionState::Connected,
            external_account_id,
            access_token: String::new(),
            access_expire_time: 0,
            refresh_token: String::new(),
            credentials: String::new(),
            webhook_secret: String::new(),
            token_version: 0,
            reason: String::new(),
            create_time: now,
            update_time: now,
        }
    }

    /// Seals `value` into `field`'s column, bound to this row and column.
    pub fn seal(&mut self, sealer: &Sealer, field: Field, value: &str) {
        let sealed = sealer.seal(value.as_bytes(), &aad(&self.tenant_id, self.provider, field));
        match field {
            Field::AccessToken => self.access_token = sealed,
            Field::RefreshToken => self.refresh_token = sealed,
            Field::Credentials => self.credentials = sealed,
            Field::WebhookSecret => self.webhook_secret = sealed,
        }
    }

    /// The public view: never a secret.
    pub fn to_proto(&self) -> Connection {
        Connection {
            tenant_id: self.tenant_id.to_string(),
            provider: self.provider as i32,
            state: self.state as i32,
            external_account_id: self.external_account_id.clone(),
            access_token_expire_time: (self.access_expire_time > 0).then(|| to_timestamp(self.access_expire_time)),
            reason: self.reason.clone(),
            create_time: Some(to_timestamp(self.create_time)),
            update_time: Some(to_timestamp(self.update_time)),
        }
    }

    /// One sealed column as stored ("" when unset).
    pub fn sealed(&self, field: Field) -> &str {
        match field {
            Field::AccessToken => &self.access_token,
            Field::RefreshToken => &self.refresh_token,
            Field::Credentials => &self.credentials,
            Field::WebhookSecret => &self.webhook_secret,
        }
    }

    pub fn open(&self, sealer: &Sealer, field: Field) -> Result<Option<String>, ServiceError> {
        let sealed = self.sealed(field);
        if sealed.is_empty() {
            return Ok(None);
        }
        sealer.open_string(sealed, &aad(&self.tenant_id, self.provider, field)).map(Some).map_err(|e| {
            ServiceError::Internal(anyhow::anyhow!(
                "{} of {}/{}: {e}",
                field.column(),
                self.tenant_id,
                provider_name(self.provider)
            ))
        })
    }
}

pub async fn load(db: &Database, tenant: &TenantId, provider: Provider) -> Result<Option<ConnectionRow>, ServiceError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 AND provider = $2"
    )))
    .bind(tenant.as_str())
    .bind(provider_name(provider))
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(ConnectionRow::from))
}

pub async fn require(db: &Database, tenant: &TenantId, provider: Provider) -> Result<ConnectionRow, ServiceError> {
    load(db, tenant, provider).await?.ok_or_else(|| {
        ServiceError::NotFound(format!("tenant '{tenant}' has no {} connection", provider_name(provider)))
    })
}

pub async fn list(db: &Database, tenant: &TenantId) -> Result<Vec<ConnectionRow>, ServiceError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 ORDER BY provider"
    )))
    .bind(tenant.as_str())
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(ConnectionRow::from).collect())
}

/// Every connection (for re-sealing under a new key and for the refresher).
pub async fn all(db: &Database) -> Result<Vec<ConnectionRow>, ServiceError> {
    let rows: Vec<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM connections ORDER BY tenant_id, provider")))
            .fetch_all(db.pool())
            .await?;
    Ok(rows.into_iter().map(ConnectionRow::from).collect())
}

/// Writes a whole connection (insert or replace), bumping its token version.
pub async fn upsert(db: &Database, c: &ConnectionRow) -> Result<ConnectionRow, ServiceError> {
    let now = now_millis();
    let result = sqlx::query(
        "INSERT INTO connections (tenant_id, provider, state, external_account_id, access_token, access_expire_time, \
         refresh_token, credentials, webhook_secret, token_version, reason, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $11) \
         ON CONFLICT (tenant_id, provider) DO UPDATE SET state = excluded.state, \
         external_account_id = excluded.external_account_id, access_token = excluded.access_token, \
         access_expire_time = excluded.access_expire_time, refresh_token = excluded.refresh_token, \
         credentials = excluded.credentials, webhook_secret = excluded.webhook_secret, \
         token_version = connections.token_version + 1, reason = excluded.reason, update_time = excluded.update_time",
    )
    .bind(c.tenant_id.as_str())
    .bind(provider_name(c.provider))
    .bind(state_name(c.state))
    .bind(&c.external_account_id)
    .bind(&c.access_token)
    .bind(c.access_expire_time)
    .bind(&c.refresh_token)
    .bind(&c.credentials)
    .bind(&c.webhook_secret)
    .bind(&c.reason)
    .bind(now)
    .execute(db.pool())
    .await;
    match result {
        Ok(_) => {}
        Err(e) if Database::is_unique_violation(&e) => {
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT tenant_id FROM connections WHERE provider = $1 AND external_account_id = $2",
            )
            .bind(provider_name(c.provider))
            .bind(&c.external_account_id)
            .fetch_optional(db.pool())
            .await?;
            let owner = owner.unwrap_or_default();
            return Err(ServiceError::AlreadyExists(format!(
                "{} account '{}' is already connected to tenant '{owner}'",
                provider_name(c.provider),
                c.external_account_id
            )));
        }
        Err(e) => return Err(e.into()),
    }
    require(db, &c.tenant_id, c.provider).await
}

/// Stores refreshed tokens only if nobody changed the connection since `expected_version`
/// was read. `false` when another refresh won.
pub async fn swap_tokens(
    db: &Database,
    c: &ConnectionRow,
    expected_version: i64,
    access_token: &str,
    access_expire_time: i64,
    refresh_token: &str,
) -> Result<bool, ServiceError> {
    let done = sqlx::query(
        "UPDATE connections SET access_token = $1, access_expire_time = $2, refresh_token = $3, \
         token_version = token_version + 1, state = $4, reason = '', update_time = $5 \
         WHERE tenant_id = $6 AND provider = $7 AND token_version = $8",
    )
    .bind(access_token)
    .bind(access_expire_time)
    .bind(refresh_token)
    .bind(state_name(ConnectionState::Connected))
    .bind(now_millis())
    .bind(c.tenant_id.as_str())
    .bind(provider_name(c.provider))
    .bind(expected_version)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a connection as unusable until the merchant acts, keeping why.
pub async fn set_state(
    db: &Database,
    tenant: &TenantId,
    provider: Provider,
    state: ConnectionState,
    reason: &str,
    clear_secrets: bool,
) -> Result<(), ServiceError> {
    let sql = if clear_secrets {
        "UPDATE connections SET state = $1, reason = $2, update_time = $3, access_token = '', refresh_token = '', \
         credentials = '', webhook_secret = '', access_expire_time = 0, token_version = token_version + 1 \
         WHERE tenant_id = $4 AND provider = $5"
    } else {
        "UPDATE connections SET state = $1, reason = $2, update_time = $3, token_version = token_version + 1 \
         WHERE tenant_id = $4 AND provider = $5"
    };
    sqlx::query(sql)
        .bind(state_name(state))
        .bind(reason)
        .bind(now_millis())
        .bind(tenant.as_str())
        .bind(provider_name(provider))
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Replaces one sealed column's value (re-sealing under a new key), if neither the row's
/// tokens nor that column changed since `c` was read (a webhook secret changes without a new
/// token version).
pub async fn reseal_column(db: &Database, c: &ConnectionRow, field: Field, sealed: &str) -> Result<bool, ServiceError> {
    let column = field.column();
    let sql = format!(
        "UPDATE connections SET {column} = $1 \
         WHERE tenant_id = $2 AND provider = $3 AND token_version = $4 AND {column} = $5"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(sealed)
        .bind(c.tenant_id.as_str())
        .bind(provider_name(c.provider))
        .bind(c.token_version)
        .bind(c.sealed(field))
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a new webhook secret (sealed) on a connection. The token version stays: a refresh
/// running meanwhile must still be able to store the tokens it got.
pub async fn set_webhook_secret(db: &Database, c: &ConnectionRow, sealed: &str) -> Result<(), ServiceError> {
    sqlx::query("UPDATE connections SET webhook_secret = $1, update_time = $2 WHERE tenant_id = $3 AND provider = $4")
        .bind(sealed)
        .bind(now_millis())
        .bind(c.tenant_id.as_str())
        .bind(provider_name(c.provider))
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The tenant connected to an outside account.
pub async fn resolve(db: &Database, provider: Provider, account: &str) -> Result<Option<TenantId>, ServiceError> {
    let tenant: Option<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM connections WHERE provider = $1 AND external_account_id = $2 AND state <> $3",
    )
    .bind(provider_name(provider))
    .bind(account)
    .bind(state_name(ConnectionState::Revoked))
    .fetch_optional(db.pool())
    .await?;
    Ok(tenant.map(TenantId::from_stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_in_its_own_row_and_column() {
        let sealer = Sealer::ephemeral();
        let loja = TenantId::parse("loja").unwrap();
        let mut row = ConnectionRow::connected(&loja, Provider::Cplug, String::new());
        row.seal(&sealer, Field::Credentials, r#"{"password":"s3cret"}"#);
        row.seal(&sealer, Field::WebhookSecret, "hook-secret-0123456789");
        assert_eq!(row.state, ConnectionState::Connected);
        assert_eq!(row.open(&sealer, Field::Credentials).unwrap().as_deref(), Some(r#"{"password":"s3cret"}"#));
        assert_eq!(row.open(&sealer, Field::WebhookSecret).unwrap().as_deref(), Some("hook-secret-0123456789"));
        assert_eq!(row.open(&sealer, Field::AccessToken).unwrap(), None);
        assert!(!row.credentials.contains("s3cret"));
        // Moved to another column or tenant, the value no longer opens.
        let mut moved = row.clone();
        moved.access_token = row.credentials.clone();
        assert!(moved.open(&sealer, Field::AccessToken).is_err());
        let other = ConnectionRow { tenant_id: TenantId::parse("outra").unwrap(), ..row };
        assert!(other.open(&sealer, Field::Credentials).is_err());
    }
}
