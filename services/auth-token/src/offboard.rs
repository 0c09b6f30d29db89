//! Tenant offboarding: a merchant who leaves is disconnected from every outside system (its
//! tokens revoked where the provider allows it), then erased from every service, auth-token's
//! own rows last, leaving an audit record that names the tenant only by a hash of its id.
//!
//! Each step can be repeated: a rerun after a partial failure (a service or Bling down) starts
//! again from the revocation, finds nothing left where it already erased, and finishes the job.
//! The tenant's own record goes last, so until everything is erased the tenant exists and the
//! rerun is possible.

use std::collections::BTreeMap;

use ponte_core::{
    TenantId,
    erasure::{ErasePlan, erase_rows},
    error::ServiceError,
    grpc::TracedChannel,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{
    ConnectionState, EraseTenantDataRequest, ErasedTable, Provider, TenantDeletion,
    tenant_data_service_client::TenantDataServiceClient,
};
use sha2::{Digest, Sha256};

use crate::{
    AuthToken,
    connections::{self, Field, provider_name},
    outside_failure, tenants,
    tenants::validate_tenant_id,
};

/// auth-token's own tables: the tenant's record after the rows that refer to it.
static OWN: ErasePlan = ErasePlan { children: &[], last: &["tenants"], claims: None };

/// The longest `requested_by` kept.
const MAX_BY: usize = 200;

/// The tenant as the audit record names it: lowercase hex SHA-256 of its id.
pub fn tenant_hash(tenant: &TenantId) -> String {
    hex::encode(Sha256::digest(tenant.as_str().as_bytes()))
}

/// A deletion as stored.
#[derive(sqlx::FromRow)]
struct Row {
    deletion_id: String,
    tenant_hash: String,
    requested_by: String,
    start_time: i64,
    finish_time: Option<i64>,
    erased_json: String,
    redis_keys: i64,
    revoked: String,
}

impl Row {
    fn erased(&self) -> BTreeMap<String, i64> {
        serde_json::from_str(&self.erased_json).unwrap_or_default()
    }

    fn add(&mut self, tables: &[ErasedTable], redis_keys: i64) {
        let mut erased = self.erased();
        for t in tables {
            *erased.entry(t.table.clone()).or_default() += t.rows;
        }
        self.erased_json = serde_json::to_string(&erased).unwrap_or_else(|_| "{}".into());
        self.redis_keys += redis_keys;
    }

    fn to_proto(&self) -> TenantDeletion {
        TenantDeletion {
            tenant_hash: self.tenant_hash.clone(),
            requested_by: self.requested_by.clone(),
            start_time: Some(to_timestamp(self.start_time)),
            finish_time: self.finish_time.map(to_timestamp),
            tables: self.erased().into_iter().map(|(table, rows)| ErasedTable { table, rows }).collect(),
            redis_keys: self.redis_keys,
            revoked: self.revoked.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        }
    }
}

const COLUMNS: &str =
    "deletion_id, tenant_hash, requested_by, start_time, finish_time, erased_json, redis_keys, revoked";

/// The services that hold tenant data besides auth-token, with their channels.
pub(crate) type Holders = Vec<(&'static str, TracedChannel)>;

impl AuthToken {
    /// `DeleteTenant`.
    pub(crate) async fn delete_tenant(&self, raw: &str, by: &str) -> Result<TenantDeletion, ServiceError> {
        let tenant = validate_tenant_id("tenant_id", raw)?;
        let by = ServiceError::require("requested_by", by.trim())?;
        if by.chars().count() > MAX_BY {
            return Err(ServiceError::invalid("requested_by", format!("is longer than {MAX_BY} characters")));
        }
        let hash = tenant_hash(&tenant);
        if tenants::get(&self.db, &tenant).await?.is_none() {
            // Already deleted, or never there. A rerun after success sweeps the services again
            // (work in flight when they erased the tenant may have written since) and answers
            // the record.
            let Some(mut row) = self.latest_deletion(&hash).await? else {
                return Err(ServiceError::NotFound(format!("tenant '{tenant}' does not exist")));
            };
            self.erase_in_holders(&tenant, &mut row).await?;
            return Ok(row.to_proto());
        }
        let mut row = match self.unfinished_deletion(&hash).await? {
            Some(row) => row,
            None => self.start_deletion(&hash, by).await?,
        };
        tracing::info!(tenant_id = %tenant, deletion_id = %row.deletion_id, "deleting a tenant");

        let revoked = self.disconnect(&tenant).await?;
        for provider in revoked {
            if !row.revoked.split(',').any(|p| p == provider) {
                row.revoked =
                    if row.revoked.is_empty() { provider.into() } else { format!("{},{provider}", row.revoked) };
            }
        }
        self.save(&row).await?;

        self.erase_in_holders(&tenant, &mut row).await?;

        // auth-token's own rows and the record's completion, together.
        let mut tx = self.db.pool().begin().await?;
        let (tables, _) = erase_rows(&mut tx, &self.db, &tenant, &OWN).await?;
        let keys = self
            .idempotency
            .erase_tenant(tenant.as_str(), &[])
            .await
            .map_err(|e| ServiceError::unavailable(format!("erasing the tenant's keys: {e}"), None))?;
        row.add(&tables, keys as i64);
        row.finish_time = Some(now_millis());
        sqlx::query(
            "UPDATE tenant_deletions SET finish_time = $1, erased_json = $2, redis_keys = $3, revoked = $4 \
             WHERE deletion_id = $5",
        )
        .bind(row.finish_time)
        .bind(&row.erased_json)
        .bind(row.redis_keys)
        .bind(&row.revoked)
        .bind(&row.deletion_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(deletion_id = %row.deletion_id, "tenant deleted");
        Ok(row.to_proto())
    }

    /// Revokes the tenant's tokens at the providers that allow it (Bling), then forgets every
    /// connection's secrets so nothing is refreshed or handed out while the tenant is erased.
    /// Answers the providers whose tokens were revoked.
    async fn disconnect(&self, tenant: &TenantId) -> Result<Vec<&'static str>, ServiceError> {
        let mut revoked = Vec::new();
        for row in connections::list(&self.db, tenant).await? {
            if row.provider == Provider::Bling
                && let Some(bling) = self.bling.as_ref()
            {
                // The refresh token ends the grant (its access tokens with it); an access token
                // alone is revoked when there is no refresh token.
                let refresh = row.open(&self.sealer, Field::RefreshToken)?.filter(|t| !t.is_empty());
                let access = row.open(&self.sealer, Field::AccessToken)?.filter(|t| !t.is_empty());
                let token = refresh.map(|t| (t, "refresh_token")).or(access.map(|t| (t, "access_token")));
                if let Some((token, hint)) = token {
                    bling
                        .oauth
                        .revoke(&token, hint)
                        .await
                        .map_err(|e| outside_failure("revoking the bling token", e))?;
                    revoked.push(provider_name(Provider::Bling));
                }
            }
            // Bitrix24, 360Envios and CPLUG offer no revocation to an app: their secrets are
            // forgotten here and erased with the rows.
            connections::set_state(
                &self.db,
                tenant,
                row.provider,
                ConnectionState::Revoked,
                "the tenant is being deleted",
                true,
            )
            .await?;
        }
        Ok(revoked)
    }

    /// Has every service holding tenant data erase the tenant, adding their counts to the record.
    async fn erase_in_holders(&self, tenant: &TenantId, row: &mut Row) -> Result<(), ServiceError> {
        for (name, channel) in &self.holders {
            let mut client = TenantDataServiceClient::new(channel.clone());
            let answer = client
                .erase_tenant_data(EraseTenantDataRequest { tenant_id: tenant.as_str().into() })
                .await
                .map_err(|s| {
                    ServiceError::unavailable(
                        format!(
                            "{name} did not erase the tenant ({:?}: {}); run the deletion again",
                            s.code(),
                            s.message()
                        ),
                        None,
                    )
                })?
                .into_inner();
            row.add(&answer.tables, answer.redis_keys);
            self.save(row).await?;
        }
        Ok(())
    }

    async fn start_deletion(&self, hash: &str, by: &str) -> Result<Row, ServiceError> {
        let row = Row {
            deletion_id: uuid::Uuid::new_v4().to_string(),
            tenant_hash: hash.to_owned(),
            requested_by: by.to_owned(),
            start_time: now_millis(),
            finish_time: None,
            erased_json: "{}".into(),
            redis_keys: 0,
            revoked: String::new(),
        };
        sqlx::query(
            "INSERT INTO tenant_deletions (deletion_id, tenant_hash, requested_by, start_time, erased_json, redis_keys, \
             revoked) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.deletion_id)
        .bind(&row.tenant_hash)
        .bind(&row.requested_by)
        .bind(row.start_time)
        .bind(&row.erased_json)
        .bind(row.redis_keys)
        .bind(&row.revoked)
        .execute(self.db.pool())
        .await?;
        Ok(row)
    }

    async fn save(&self, row: &Row) -> Result<(), ServiceError> {
        sqlx::query(
            "UPDATE tenant_deletions SET erased_json = $1, redis_keys = $2, revoked = $3 WHERE deletion_id = $4",
        )
        .bind(&row.erased_json)
        .bind(row.redis_keys)
        .bind(&row.revoked)
        .bind(&row.deletion_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn unfinished_deletion(&self, hash: &str) -> Result<Option<Row>, ServiceError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tenant_deletions WHERE tenant_hash = $1 AND finish_time IS NULL \
             ORDER BY start_time DESC LIMIT 1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(hash).fetch_optional(self.db.pool()).await?)
    }

    async fn latest_deletion(&self, hash: &str) -> Result<Option<Row>, ServiceError> {
        let sql =
            format!("SELECT {COLUMNS} FROM tenant_deletions WHERE tenant_hash = $1 ORDER BY start_time DESC LIMIT 1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(hash).fetch_optional(self.db.pool()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_names_the_tenant_by_a_hash_and_sums_every_attempt() {
        let tenant = TenantId::parse("loja-centro").unwrap();
        let hash = tenant_hash(&tenant);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("loja"));
        let mut row = Row {
            deletion_id: "d".into(),
            tenant_hash: hash,
            requested_by: "ops".into(),
            start_time: 0,
            finish_time: None,
            erased_json: "{}".into(),
            redis_keys: 0,
            revoked: String::new(),
        };
        row.add(&[ErasedTable { table: "mapping.links".into(), rows: 3 }], 2);
        row.add(&[ErasedTable { table: "mapping.links".into(), rows: 1 }], 1);
        let p = row.to_proto();
        assert_eq!(p.tables, vec![ErasedTable { table: "mapping.links".into(), rows: 4 }]);
        assert_eq!(p.redis_keys, 3);
        assert!(p.finish_time.is_none());
    }
}
