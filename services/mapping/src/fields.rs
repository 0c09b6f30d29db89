//! Product field mappings, Bling ⇄ Bitrix24 and Bling → CPLUG: what a mapping says and the fixed
//! builtin set ([`spec`]), the tenant's own mappings in their table ([`table`]), and
//! `TranslateProduct` over a per-tenant cache of compiled rules ([`rules`]). Every write drops the
//! writing replica's cached rules of the tenant once it is committed.

mod rules;
mod spec;
mod table;
#[cfg(test)]
mod tests;

use ponte_core::{TenantId, db::Database, error::ServiceError};
use ponte_proto::v1::FieldMapping;

pub use rules::{RULES_TTL, RuleCache, translate};
pub use spec::{Direction, Spec, Target, builtins, check_conflicts, is_builtin};

pub async fn create(
    db: &Database,
    rules: &RuleCache,
    tenant: &TenantId,
    spec: Spec,
    actor: &str,
) -> Result<FieldMapping, ServiceError> {
    let created = table::create(db, tenant, spec, actor).await?;
    rules.forget(tenant).await;
    Ok(created)
}

pub async fn list(db: &Database, tenant: &TenantId, target: Option<Target>) -> Result<Vec<FieldMapping>, ServiceError> {
    table::list(db, tenant, target).await
}

pub async fn delete(
    db: &Database,
    rules: &RuleCache,
    tenant: &TenantId,
    mapping_id: &str,
    actor: &str,
) -> Result<(), ServiceError> {
    table::delete(db, tenant, mapping_id, actor).await?;
    rules.forget(tenant).await;
    Ok(())
}
