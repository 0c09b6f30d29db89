//! `TranslateProduct`: a tenant's mappings compiled into rules for each direction, kept per
//! tenant so a translation does not read the database.
//!
//! The cache is moka's. Its compute calls hold a lock per key, so a tenant's rules are read by one
//! caller at a time and a write's [`RuleCache::forget`] waits for a read in flight: rules read
//! before a write are never kept after it (a plain `invalidate` would let such a read land).

use std::{sync::Arc, time::Duration};

use moka::{future::Cache, ops::compute::Op};
use ponte_core::{
    TenantId,
    db::Database,
    error::ServiceError,
    structs::{from_struct, to_struct},
};
use ponte_proto::v1::TranslateDirection;
use serde_json::Value;

use super::{
    spec::{Direction, Spec, Target},
    table::{all_of, stored},
};
use crate::transform::{self, Rule};

/// How long a tenant's compiled mappings are used before being read again. Writes through this
/// replica drop its copy at once; another replica's writes are seen within this time.
pub const RULES_TTL: Duration = Duration::from_secs(5);

/// Tenants whose rules are kept at most.
const CAPACITY: u64 = 100_000;

/// A tenant's mappings compiled for each translate direction.
#[derive(Debug, Default)]
pub(super) struct TenantRules {
    pub(super) to_bitrix24: Vec<Rule>,
    pub(super) from_bitrix24: Vec<Rule>,
    pub(super) to_cplug: Vec<Rule>,
}

impl TenantRules {
    pub(super) fn compile(mappings: &[(String, Spec)]) -> Self {
        let mut r = Self::default();
        for (id, spec) in mappings {
            match spec.target {
                Target::Bitrix24 => {
                    r.to_bitrix24.push(spec.rule(id));
                    if spec.direction == Direction::TwoWay {
                        r.from_bitrix24.push(spec.rule(id));
                    }
                }
                Target::Cplug => r.to_cplug.push(spec.rule(id)),
            }
        }
        r
    }
}

/// Compiled mappings per tenant.
#[derive(Clone)]
pub struct RuleCache {
    rules: Cache<TenantId, Arc<TenantRules>>,
}

impl Default for RuleCache {
    fn default() -> Self {
        Self { rules: Cache::builder().max_capacity(CAPACITY).time_to_live(RULES_TTL).build() }
    }
}

impl RuleCache {
    /// Drops the tenant's rules after a write, once any read of them in flight is done.
    pub async fn forget(&self, tenant: &TenantId) {
        self.rules.entry_by_ref(tenant).and_compute_with(|_| async { Op::Remove }).await;
    }

    async fn get(&self, db: &Database, tenant: &TenantId) -> Result<Arc<TenantRules>, ServiceError> {
        if let Some(rules) = self.rules.get(tenant).await {
            return Ok(rules);
        }
        let computed = self
            .rules
            .entry_by_ref(tenant)
            .and_try_compute_with(|kept| async move {
                // A caller ahead of this one read them meanwhile.
                if kept.is_some() {
                    return Ok(Op::Nop);
                }
                let rules = TenantRules::compile(&all_of(stored(db, tenant).await?));
                Ok::<_, ServiceError>(Op::Put(Arc::new(rules)))
            })
            .await?;
        computed.into_entry().map(|e| e.into_value()).ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("the rules of tenant '{tenant}' were neither kept nor read"))
        })
    }
}

/// Applies the tenant's mappings to a product's fields in `direction`.
pub async fn translate(
    db: &Database,
    cache: &RuleCache,
    tenant: &TenantId,
    direction: i32,
    fields: Option<&prost_types::Struct>,
) -> Result<prost_types::Struct, ServiceError> {
    let direction = match TranslateDirection::try_from(direction) {
        Ok(
            d @ (TranslateDirection::BlingToBitrix24
            | TranslateDirection::Bitrix24ToBling
            | TranslateDirection::BlingToCplug),
        ) => d,
        _ => {
            return Err(ServiceError::invalid(
                "direction",
                "must be TRANSLATE_DIRECTION_BLING_TO_BITRIX24, _BITRIX24_TO_BLING or _BLING_TO_CPLUG",
            ));
        }
    };
    let fields = fields.ok_or_else(|| ServiceError::invalid("fields", "is required"))?;
    let source = match from_struct(fields) {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let rules = cache.get(db, tenant).await?;
    let out = match direction {
        TranslateDirection::BlingToBitrix24 => transform::forward(&rules.to_bitrix24, &source),
        TranslateDirection::Bitrix24ToBling => transform::inverse(&rules.from_bitrix24, &source),
        _ => transform::forward(&rules.to_cplug, &source),
    }
    .map_err(|e| ServiceError::invalid(format!("fields.{}", e.field), e.message))?;
    Ok(to_struct(&Value::Object(out)))
}
