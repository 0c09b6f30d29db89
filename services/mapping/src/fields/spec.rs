//! What a field mapping says (its target, fields, direction and transforms), the fixed builtin
//! set every tenant has, and the checks that keep a tenant's mappings coherent: one mapping per
//! target field, one two-way mapping per Bling field, no overlapping paths.

use ponte_core::{error::ServiceError, time::to_timestamp};
use ponte_proto::v1::{FieldMapping, MappingDirection, MappingTarget};
use serde::{Deserialize, Serialize};

use crate::transform::{self, Rule, Transform, ValueMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Bitrix24,
    Cplug,
}

impl Target {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Bitrix24 => "bitrix24",
            Self::Cplug => "cplug",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "bitrix24" => Some(Self::Bitrix24),
            "cplug" => Some(Self::Cplug),
            _ => None,
        }
    }

    /// The system, as messages name it.
    pub fn label(self) -> &'static str {
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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::OneWay => "one_way",
            Self::TwoWay => "two_way",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
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

    pub(super) fn rule(&self, name: &str) -> Rule {
        Rule::new(name, &self.bling_field, &self.target_field, &self.transforms)
    }
}

/// The fixed set, as (mapping id, spec).
///
/// The builtin set is the merchant-facing fixed mapping of the Bitrix24 app (`id → Bling ID`,
/// `nome → Nome`, `codigo → ID Externo`, `preco → Preço`, `situacao → Ativo` with A → Y, I → N),
/// in Bitrix24's `crm.product` field names: `NAME`, `XML_ID` ("External code"), `PRICE`, `ACTIVE`
/// (Y/N). "Bling ID" is a custom string property whose `PROPERTY_<n>` differs per portal, so the
/// builtin writes `PROPERTY_BLING_ID` (the property by its code, `BLING_ID`); whoever writes to
/// the portal swaps in the portal's `PROPERTY_<n>`. The builtins live in code, not in the table:
/// every tenant has them from its first call and none can delete them.
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

/// Whether one dotted path is the other or lies inside it (`estoque` and `estoque.minimo`).
pub(super) fn overlaps(a: &str, b: &str) -> bool {
    let inside = |long: &str, short: &str| {
        long.len() > short.len() && long.starts_with(short) && long.as_bytes()[short.len()] == b'.'
    };
    a == b || inside(a, b) || inside(b, a)
}

/// Refuses `spec` when it would write a field another mapping writes, or read back into a Bling
/// field another two-way mapping fills; `tenant_id` is how messages name the tenant.
pub fn check_conflicts(tenant_id: &str, spec: &Spec, existing: &[(String, Spec)]) -> Result<(), ServiceError> {
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
