//! Tenant records: create, get, list.

use ponte_core::{
    db::{Database, page},
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{ListTenantsResponse, Tenant};
use sqlx::{Row, any::AnyRow};

/// Tenant ids: 1 to 63 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit
/// (they appear in URLs, Redis keys and Kubernetes labels).
pub fn validate_tenant_id(field: &str, id: &str) -> Result<(), ServiceError> {
    let ok_len = (1..=63).contains(&id.len());
    let ok_chars = id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !id.starts_with('-') && !id.ends_with('-');
    if id.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if !(ok_len && ok_chars && ok_ends) {
        return Err(ServiceError::invalid(
            field,
            format!("'{id}' must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"),
        ));
    }
    Ok(())
}

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        tenant_id: row.try_get("tenant_id")?,
        display_name: row.try_get("display_name")?,
        create_time: Some(to_timestamp(row.try_get("create_time")?)),
        update_time: Some(to_timestamp(row.try_get("update_time")?)),
    })
}

pub async fn get(db: &Database, tenant_id: &str) -> Result<Option<Tenant>, ServiceError> {
    let row = sqlx::query("SELECT tenant_id, display_name, create_time, update_time FROM tenants WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(tenant_from_row).transpose()?)
}

/// Creates a tenant; its display name defaults to its id.
pub async fn create(db: &Database, tenant_id: &str, display_name: &str) -> Result<Tenant, ServiceError> {
    validate_tenant_id("tenant_id", tenant_id)?;
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
    })
}

/// A page of tenants in id order.
pub async fn list(db: &Database, page_size: u32, page_token: &str) -> Result<ListTenantsResponse, ServiceError> {
    let after = page::decode(page_token)?;
    let size = page::size(page_size);
    let rows = sqlx::query(
        "SELECT tenant_id, display_name, create_time, update_time FROM tenants \
         WHERE tenant_id > $1 ORDER BY tenant_id LIMIT $2",
    )
    .bind(&after)
    .bind(size + 1)
    .fetch_all(db.pool())
    .await?;
    let mut tenants = rows.iter().map(tenant_from_row).collect::<Result<Vec<_>, _>>()?;
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
