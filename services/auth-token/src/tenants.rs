//! Tenant records: create, get, list, and each tenant's licence ("licença ativa").

use ponte_core::{
    TenantId,
    db::{Database, page},
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{ListTenantsResponse, Tenant, TenantLicense};

/// Checks the request field `field` as a tenant id: 1 to 63 of `a-z`, `0-9` and `-`, starting and
/// ending with a letter or digit (they appear in URLs, Redis keys and Kubernetes labels).
pub fn validate_tenant_id(field: &str, id: &str) -> Result<TenantId, ServiceError> {
    TenantId::field(field, id)
}

/// A tenant as stored.
#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: String,
    display_name: String,
    create_time: i64,
    update_time: i64,
    license_active: i64,
    license_reason: String,
    license_time: Option<i64>,
}

/// The columns a [`Row`] reads.
const COLUMNS: &str = "tenant_id, display_name, create_time, update_time, license_active, license_reason, license_time";

impl From<Row> for Tenant {
    fn from(r: Row) -> Self {
        Tenant {
            tenant_id: r.tenant_id,
            display_name: r.display_name,
            create_time: Some(to_timestamp(r.create_time)),
            update_time: Some(to_timestamp(r.update_time)),
            license: Some(TenantLicense {
                active: r.license_active != 0,
                reason: r.license_reason,
                change_time: r.license_time.map(to_timestamp),
            }),
        }
    }
}

pub async fn get(db: &Database, tenant: &TenantId) -> Result<Option<Tenant>, ServiceError> {
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants WHERE tenant_id = $1")))
            .bind(tenant.as_str())
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(Tenant::from))
}

/// The longest licence reason kept.
const MAX_REASON_CHARS: usize = 500;

/// Switches `tenant`'s licence; None when there is no such tenant. The gateway reads the switch
/// through `GetTenant` (cached briefly) and holds or releases the tenant's deliveries.
pub async fn set_license(
    db: &Database,
    tenant: &TenantId,
    active: bool,
    reason: &str,
) -> Result<Option<Tenant>, ServiceError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ServiceError::invalid("reason", format!("is longer than {MAX_REASON_CHARS} characters")));
    }
    let now = now_millis();
    let updated = sqlx::query(
        "UPDATE tenants SET license_active = $1, license_reason = $2, license_time = $3, update_time = $3 \
         WHERE tenant_id = $4",
    )
    .bind(i64::from(active))
    .bind(reason)
    .bind(now)
    .bind(tenant.as_str())
    .execute(db.pool())
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    tracing::info!(tenant_id = %tenant, active, "tenant licence switched");
    get(db, tenant).await
}

/// Creates a tenant; its display name defaults to its id.
pub async fn create(db: &Database, tenant: &TenantId, display_name: &str) -> Result<Tenant, ServiceError> {
    let tenant_id = tenant.as_str();
    let display_name = display_name.trim();
    if display_name.chars().count() > 200 {
        return Err(ServiceError::invalid("display_name", "is longer than 200 characters"));
    }
    let display_name = if display_name.is_empty() { tenant_id } else { display_name };
    let now = now_millis();
    let inserted =
        sqlx::query("INSERT INTO tenants (tenant_id, display_name, create_time, update_time) VALUES ($1, $2, $3, $3)")
            .bind(tenant_id)
            .bind(display_name)
            .bind(now)
            .execute(db.pool())
            .await;
    match inserted {
        Ok(_) => {}
        Err(e) if Database::is_unique_violation(&e) => {
            return Err(ServiceError::AlreadyExists(format!("tenant '{tenant_id}' already exists")));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenant_id, "tenant created");
    Ok(Tenant {
        tenant_id: tenant_id.to_owned(),
        display_name: display_name.to_owned(),
        create_time: Some(to_timestamp(now)),
        update_time: Some(to_timestamp(now)),
        license: Some(TenantLicense { active: true, reason: String::new(), change_time: None }),
    })
}

/// A page of tenants in id order.
pub async fn list(db: &Database, page_size: u32, page_token: &str) -> Result<ListTenantsResponse, ServiceError> {
    let after = page::decode(page_token)?;
    let size = page::size(page_size);
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE tenant_id > $1 ORDER BY tenant_id LIMIT $2"
    )))
    .bind(&after)
    .bind(size + 1)
    .fetch_all(db.pool())
    .await?;
    let mut tenants: Vec<Tenant> = rows.into_iter().map(Tenant::from).collect();
    let next_page_token = if tenants.len() as i64 > size {
        tenants.truncate(size as usize);
        tenants.last().map(|t| page::encode(&t.tenant_id)).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(ListTenantsResponse { tenants, next_page_token })
}

#[cfg(test)]
mod tests {
    use super::validate_tenant_id;

    #[test]
    fn tenant_ids_are_dns_label_like() {
        for ok in ["a", "loja-centro", "m123", &"x".repeat(63)] {
            assert!(validate_tenant_id("tenant_id", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Loja", "loja_centro", "a b", &"x".repeat(64), "ação"] {
            let err = validate_tenant_id("tenant_id", bad).unwrap_err().to_string();
            assert!(err.starts_with("tenant_id: "), "{bad}: {err}");
        }
    }
}
