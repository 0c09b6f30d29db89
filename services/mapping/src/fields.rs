//! Product field mappings, Bling ⇄ Bitrix24 and Bling → CPLUG: the fixed builtin set every tenant
//! has, the tenant's own mappings (stored with their transforms as JSON), the checks that keep
//! them coherent (one mapping per target field, one two-way mapping per Bling field, no
//! overlapping paths), and `TranslateProduct` over a per-tenant cache of compiled rules.
//!
//! The builtin set is the merchant-facing fixed mapping of the Bitrix24 app (`id → Bling ID`,
//! `nome → Nome`, `codigo → ID Externo`, `preco → Preço`, `situacao → Ativo` with A → Y, I → N),
//! in Bitrix24's `crm.product` field names: `NAME`, `XML_ID` ("External code"), `PRICE`, `ACTIVE`
//! (Y/N). "Bling ID" is a custom string property whose `PROPERTY_<n>` differs per portal, so the
//! builtin writes `PROPERTY_BLING_ID` (the property by its code, `BLING_ID`); whoever writes to
//! the portal swaps in the portal's `PROPERTY_<n>`. The builtins live in code, not in the table:
//! every tenant has them from its first call and none can delete them.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use ponte_core::{
    db::Database,
    error::ServiceError,
    structs::{from_struct, to_struct},
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{FieldMapping, MappingDirection, MappingTarget, TranslateDirection};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Row, any::AnyRow};

use crate::{
    audit::{self, Change},
    transform::{self, Rule, Transform, ValueMap},
};

const TABLE: &str = "field_mapping";

/// How long a tenant's compiled mappings are used before being read again. Writes through this
/// replica drop its copy at once; another replica's writes are seen within this time.
pub const RULES_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Bitrix24,
    Cplug,
}

impl Target {
    fn as_str(self) -> &'static str {
        match self {
            Self::Bitrix24 => "bitrix24",
            Self::Cplug => "cplug",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "bitrix24" => Some(Self::Bitrix24),
            "cplug" => Some(Self::Cplug),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Bitrix24 => "Bitrix24",
            Self::Cplug => "CPLUG",
        }
    }

    pub fn to_proto(self) -> MappingTarget {
        match self {
            Self::Bitrix24 => MappingTarget::Bitrix24,
            Self::Cplug => MappingTarget::Cplug,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    OneWay,
    TwoWay,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::OneWay => "one_way",
            Self::TwoWay => "two_way",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "one_way" => Some(Self::OneWay),
            "two_way" => Some(Self::TwoWay),
            _ => None,
        }
    }

    pub fn to_proto(self) -> MappingDirection {
        match self {
            Self::OneWay => MappingDirection::OneWay,
            Self::TwoWay => MappingDirection::TwoWay,
        }
    }
}

/// What a field mapping says, apart from who owns it and when it was made: the form stored,
/// audited and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub target: Target,
    pub bling_field: String,
    pub target_field: String,
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
}

impl Spec {
    /// Reads and checks a proto mapping; `at` names it (`mapping`).
    pub fn from_proto(at: &str, m: &FieldMapping) -> Result<Self, ServiceError> {
        if m.builtin {
            return Err(ServiceError::invalid(
                format!("{at}.builtin"),
                "only the fixed set is builtin; leave it false",
            ));
        }
        let target = match MappingTarget::try_from(m.target) {
            Ok(MappingTarget::Bitrix24) => Target::Bitrix24,
            Ok(MappingTarget::Cplug) => Target::Cplug,
            _ => {
                return Err(ServiceError::invalid(
                    format!("{at}.target"),
                    "must be MAPPING_TARGET_BITRIX24 or MAPPING_TARGET_CPLUG",
                ));
            }
        };
        let direction = match MappingDirection::try_from(m.direction) {
            Ok(MappingDirection::OneWay) => Direction::OneWay,
            Ok(MappingDirection::TwoWay) => Direction::TwoWay,
            _ => {
                return Err(ServiceError::invalid(
                    format!("{at}.direction"),
                    "must be MAPPING_DIRECTION_ONE_WAY or MAPPING_DIRECTION_TWO_WAY",
                ));
            }
        };
        let transforms = m
            .transforms
            .iter()
            .enumerate()
            .map(|(i, t)| Transform::from_proto(&format!("{at}.transforms[{i}]"), t))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = Self {
            target,
            bling_field: m.bling_field.trim().to_owned(),
            target_field: m.target_field.trim().to_owned(),
            direction,
            transforms,
        };
        spec.validate(at)?;
        Ok(spec)
    }

    /// Checks the fields and transforms, naming the first bad one under `at`.
    pub fn validate(&self, at: &str) -> Result<(), ServiceError> {
        transform::check_path(&format!("{at}.bling_field"), &self.bling_field, false)?;
        transform::check_path(&format!("{at}.target_field"), &self.target_field, self.target == Target::Bitrix24)?;
        transform::validate(&format!("{at}.transforms"), &self.transforms)?;
        if self.direction == Direction::TwoWay {
            if self.target == Target::Cplug {
                return Err(ServiceError::invalid(
                    format!("{at}.direction"),
                    "products flow from Bling to CPLUG only; use MAPPING_DIRECTION_ONE_WAY",
                ));
            }
            transform::check_invertible(&format!("{at}.transforms"), &self.transforms)?;
        }
        Ok(())
    }

    pub fn to_proto(&self, tenant_id: &str, mapping_id: &str, builtin: bool, create_time: Option<i64>) -> FieldMapping {
        FieldMapping {
            tenant_id: tenant_id.to_owned(),
            mapping_id: mapping_id.to_owned(),
            target: self.target.to_proto() as i32,
            bling_field: self.bling_field.clone(),
            target_field: self.target_field.clone(),
            transforms: self.transforms.iter().map(Transform::to_proto).collect(),
            direction: self.direction.to_proto() as i32,
            builtin,
            create_time: create_time.map(to_timestamp),
        }
    }

    fn rule(&self, name: &str) -> Rule {
        Rule::new(name, &self.bling_field, &self.target_field, &self.transforms)
    }
}

/// The fixed set, as (mapping id, spec).
pub fn builtins() -> Vec<(&'static str, Spec)> {
    let plain = |bling: &str, target: &str| Spec {
        target: Target::Bitrix24,
        bling_field: bling.to_owned(),
        target_field: target.to_owned(),
        direction: Direction::TwoWay,
        transforms: vec![],
    };
    let situacao = Spec {
        transforms: vec![Transform::ValueMap(ValueMap {
            values: [("A".to_owned(), "Y".to_owned()), ("I".to_owned(), "N".to_owned())].into(),
            pass_unmapped: false,
        })],
        ..plain("situacao", "ACTIVE")
    };
    vec![
        ("builtin-id", plain("id", "PROPERTY_BLING_ID")),
        ("builtin-nome", plain("nome", "NAME")),
        ("builtin-codigo", plain("codigo", "XML_ID")),
        ("builtin-preco", plain("preco", "PRICE")),
        ("builtin-situacao", situacao),
    ]
}

pub fn is_builtin(mapping_id: &str) -> bool {
    builtins().iter().any(|(id, _)| *id == mapping_id)
}

/// A stored mapping: its id, creation time and spec.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    create_time: i64,
    spec: Spec,
}

fn from_row(row: &AnyRow) -> Result<Stored, ServiceError> {
    let id: String = row.try_get("mapping_id")?;
    let bad = |what: &str| ServiceError::Internal(anyhow::anyhow!("field mapping {id} has an unreadable {what}"));
    let transforms: String = row.try_get("transforms")?;
    Ok(Stored {
        create_time: row.try_get("create_time")?,
        spec: Spec {
            target: Target::parse(&row.try_get::<String, _>("target")?).ok_or_else(|| bad("target"))?,
            bling_field: row.try_get("bling_field")?,
            target_field: row.try_get("target_field")?,
            direction: Direction::parse(&row.try_get::<String, _>("direction")?).ok_or_else(|| bad("direction"))?,
            transforms: serde_json::from_str(&transforms).map_err(|_| bad("transform list"))?,
        },
        id,
    })
}

const COLUMNS: &str = "mapping_id, target, bling_field, target_field, direction, transforms, create_time";

async fn stored(db: &Database, tenant_id: &str) -> Result<Vec<Stored>, ServiceError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM field_mappings WHERE tenant_id = $1 ORDER BY target, target_field"
    )))
    .bind(tenant_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

fn as_json(spec: &Spec) -> Value {
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

/// Whether one dotted path is the other or lies inside it (`estoque` and `estoque.minimo`).
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |long: &str, short: &str| {
        long.len() > short.len() && long.starts_with(short) && long.as_bytes()[short.len()] == b'.'
    };
    a == b || inside(a, b) || inside(b, a)
}

/// Refuses `spec` when it would write a field another mapping writes, or read back into a Bling
/// field another two-way mapping fills.
pub(crate) fn check_conflicts(tenant_id: &str, spec: &Spec, existing: &[(String, Spec)]) -> Result<(), ServiceError> {
    for (id, other) in existing.iter().filter(|(_, o)| o.target == spec.target) {
        let target = spec.target.label();
        if other.target_field == spec.target_field {
            return Err(ServiceError::AlreadyExists(format!(
                "{target} field '{}' of tenant '{tenant_id}' is already mapped (from '{}', mapping {id})",
                spec.target_field, other.bling_field
            )));
        }
        if overlaps(&other.target_field, &spec.target_field) {
            return Err(ServiceError::invalid(
                "mapping.target_field",
                format!("'{}' overlaps '{}' (mapping {id})", spec.target_field, other.target_field),
            ));
        }
        if spec.direction == Direction::TwoWay && other.direction == Direction::TwoWay {
            if other.bling_field == spec.bling_field {
                return Err(ServiceError::AlreadyExists(format!(
                    "Bling field '{}' of tenant '{tenant_id}' already has a two-way {target} mapping (to '{}', mapping {id})",
                    spec.bling_field, other.target_field
                )));
            }
            if overlaps(&other.bling_field, &spec.bling_field) {
                return Err(ServiceError::invalid(
                    "mapping.bling_field",
                    format!(
                        "'{}' overlaps '{}', which the two-way mapping {id} writes back",
                        spec.bling_field, other.bling_field
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn all_of(tenant_rows: Vec<Stored>) -> Vec<(String, Spec)> {
    builtins()
        .into_iter()
        .map(|(id, s)| (id.to_owned(), s))
        .chain(tenant_rows.into_iter().map(|s| (s.id, s.spec)))
        .collect()
}

pub async fn create(
    db: &Database,
    rules: &RuleCache,
    tenant_id: &str,
    spec: Spec,
    actor: &str,
) -> Result<FieldMapping, ServiceError> {
    let mut tx = db.pool().begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM field_mappings WHERE tenant_id = $1")))
        .bind(tenant_id)
        .fetch_all(&mut *tx)
        .await?;
    let existing = all_of(rows.iter().map(from_row).collect::<Result<_, _>>()?);
    check_conflicts(tenant_id, &spec, &existing)?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_millis();
    let transforms = serde_json::to_string(&spec.transforms).map_err(|e| ServiceError::Internal(e.into()))?;
    let inserted = sqlx::query(
        "INSERT INTO field_mappings \
         (tenant_id, mapping_id, target, bling_field, target_field, direction, transforms, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant_id)
    .bind(&id)
    .bind(spec.target.as_str())
    .bind(&spec.bling_field)
    .bind(&spec.target_field)
    .bind(spec.direction.as_str())
    .bind(&transforms)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        // Another create won a race the check above could not see.
        Err(e) if Database::is_unique_violation(&e) => {
            return Err(ServiceError::AlreadyExists(format!(
                "{} field '{}' of tenant '{tenant_id}' (or Bling field '{}' two-way) is already mapped",
                spec.target.label(),
                spec.target_field,
                spec.bling_field
            )));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        &mut tx,
        Change {
            tenant_id,
            table: TABLE,
            key: &id,
            action: "create",
            actor,
            previous: None,
            new: Some(as_json(&spec)),
        },
    )
    .await?;
    tx.commit().await?;
    rules.forget(tenant_id);
    Ok(spec.to_proto(tenant_id, &id, false, Some(now)))
}

/// The builtins first, then the tenant's own mappings; only `target` when one is given.
pub async fn list(db: &Database, tenant_id: &str, target: Option<Target>) -> Result<Vec<FieldMapping>, ServiceError> {
    let mut out: Vec<FieldMapping> = builtins()
        .into_iter()
        .filter(|(_, s)| target.is_none_or(|t| t == s.target))
        .map(|(id, s)| s.to_proto(tenant_id, id, true, None))
        .collect();
    out.extend(
        stored(db, tenant_id)
            .await?
            .into_iter()
            .filter(|s| target.is_none_or(|t| t == s.spec.target))
            .map(|s| s.spec.to_proto(tenant_id, &s.id, false, Some(s.create_time))),
    );
    Ok(out)
}

pub async fn delete(
    db: &Database,
    rules: &RuleCache,
    tenant_id: &str,
    mapping_id: &str,
    actor: &str,
) -> Result<(), ServiceError> {
    if is_builtin(mapping_id) {
        return Err(ServiceError::invalid(
            "mapping_id",
            format!("'{mapping_id}' is part of the fixed Bitrix24 set and cannot be deleted"),
        ));
    }
    let mut tx = db.pool().begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM field_mappings WHERE tenant_id = $1 AND mapping_id = $2"
    )))
    .bind(tenant_id)
    .bind(mapping_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(previous) = row.as_ref().map(from_row).transpose()? else {
        return Err(ServiceError::NotFound(format!(
            "field mapping '{mapping_id}' of tenant '{tenant_id}' does not exist"
        )));
    };
    sqlx::query("DELETE FROM field_mappings WHERE tenant_id = $1 AND mapping_id = $2")
        .bind(tenant_id)
        .bind(mapping_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Change {
            tenant_id,
            table: TABLE,
            key: mapping_id,
            action: "delete",
            actor,
            previous: Some(as_json(&previous.spec)),
            new: None,
        },
    )
    .await?;
    tx.commit().await?;
    rules.forget(tenant_id);
    Ok(())
}

/// A tenant's mappings compiled for each translate direction.
#[derive(Debug, Default)]
pub struct TenantRules {
    to_bitrix24: Vec<Rule>,
    from_bitrix24: Vec<Rule>,
    to_cplug: Vec<Rule>,
}

impl TenantRules {
    fn compile(mappings: &[(String, Spec)]) -> Self {
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

/// A tenant's compiled mappings and when they were read.
type Cached = (Instant, Arc<TenantRules>);

/// Compiled mappings per tenant, so a translation does not read the database.
#[derive(Clone, Default)]
pub struct RuleCache {
    entries: Arc<Mutex<HashMap<String, Cached>>>,
    /// Bumped by every write, so a read that raced a write does not cache what it read.
    generation: Arc<AtomicU64>,
}

impl RuleCache {
    pub fn forget(&self, tenant_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.lock().remove(tenant_id);
    }

    async fn get(&self, db: &Database, tenant_id: &str) -> Result<Arc<TenantRules>, ServiceError> {
        if let Some((at, rules)) = self.entries.lock().get(tenant_id)
            && at.elapsed() < RULES_TTL
        {
            return Ok(rules.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let rules = Arc::new(TenantRules::compile(&all_of(stored(db, tenant_id).await?)));
        let mut entries = self.entries.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.insert(tenant_id.to_owned(), (Instant::now(), rules.clone()));
        }
        Ok(rules)
    }
}

/// Applies the tenant's mappings to a product's fields in `direction`.
pub async fn translate(
    db: &Database,
    cache: &RuleCache,
    tenant_id: &str,
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
    let rules = cache.get(db, tenant_id).await?;
    let out = match direction {
        TranslateDirection::BlingToBitrix24 => transform::forward(&rules.to_bitrix24, &source),
        TranslateDirection::Bitrix24ToBling => transform::inverse(&rules.from_bitrix24, &source),
        _ => transform::forward(&rules.to_cplug, &source),
    }
    .map_err(|e| ServiceError::invalid(format!("fields.{}", e.field), e.message))?;
    Ok(to_struct(&Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_builtins_translate_the_fixed_bitrix24_set_both_ways() {
        let rules = TenantRules::compile(&all_of(vec![]));
        let product = json!({"id": 16059781281_i64, "nome": "Camiseta azul M", "codigo": "CAM-AZ-M", "preco": 59.9,
                             "situacao": "A", "formato": "S"});
        let Value::Object(p) = product else { unreachable!() };
        let b24 = transform::forward(&rules.to_bitrix24, &p).unwrap();
        assert_eq!(
            Value::Object(b24.clone()),
            json!({"PROPERTY_BLING_ID": 16059781281_i64, "NAME": "Camiseta azul M", "XML_ID": "CAM-AZ-M",
                   "PRICE": 59.9, "ACTIVE": "Y"})
        );
        let back = transform::inverse(&rules.from_bitrix24, &b24).unwrap();
        let mut expected = p.clone();
        expected.remove("formato");
        assert_eq!(back, expected);
        assert!(rules.to_cplug.is_empty());
        for (_, spec) in builtins() {
            spec.validate("mapping").unwrap();
        }
    }

    #[test]
    fn conflicts_name_what_is_already_mapped() {
        let existing = all_of(vec![]);
        let spec = |bling: &str, target: &str, direction| Spec {
            target: Target::Bitrix24,
            bling_field: bling.into(),
            target_field: target.into(),
            direction,
            transforms: vec![],
        };
        let dup = check_conflicts("t", &spec("marca", "NAME", Direction::OneWay), &existing).unwrap_err();
        assert!(matches!(&dup, ServiceError::AlreadyExists(m) if m.contains("'NAME'") && m.contains("builtin-nome")));
        let two = check_conflicts("t", &spec("nome", "PROPERTY_7", Direction::TwoWay), &existing).unwrap_err();
        assert!(matches!(&two, ServiceError::AlreadyExists(m) if m.contains("Bling field 'nome'")), "{two}");
        // One way, the same Bling field may feed several targets.
        check_conflicts("t", &spec("nome", "PROPERTY_7", Direction::OneWay), &existing).unwrap();
        let nested = [("m1".to_owned(), Spec { target: Target::Cplug, ..spec("estoque", "stock", Direction::OneWay) })];
        let over = Spec { target: Target::Cplug, ..spec("estoque.minimo", "stock.min", Direction::OneWay) };
        assert_eq!(
            check_conflicts("t", &over, &nested).unwrap_err().to_string(),
            "mapping.target_field: 'stock.min' overlaps 'stock' (mapping m1)"
        );
        assert!(overlaps("a.b", "a") && overlaps("a", "a") && !overlaps("ab", "a") && !overlaps("a.b", "a.c"));
    }

    #[test]
    fn two_way_cplug_mappings_and_builtin_flags_are_refused() {
        let mut m = FieldMapping {
            target: MappingTarget::Cplug as i32,
            bling_field: "nome".into(),
            target_field: "name".into(),
            direction: MappingDirection::TwoWay as i32,
            ..Default::default()
        };
        assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.direction: "));
        m.direction = MappingDirection::OneWay as i32;
        assert!(Spec::from_proto("mapping", &m).is_ok());
        m.builtin = true;
        assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.builtin: "));
        m.builtin = false;
        m.direction = 0;
        assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.direction: "));
        m.direction = MappingDirection::OneWay as i32;
        m.target = MappingTarget::Bitrix24 as i32;
        m.target_field = "a.b".into();
        assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.target_field: "));
    }
}
