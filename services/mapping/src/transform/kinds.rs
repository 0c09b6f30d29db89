//! What a transform step says: its kinds, their limits, and their proto and JSON forms. The kinds:
//!
//! - `value_map`: replaces a value through a table (numbers and booleans are looked up by their
//!   text). Invertible when one-to-one, and, with `pass_unmapped`, when every value it produces is
//!   also one of its keys (otherwise a passed-through value and a mapped one could collide).
//! - `default_value`: a value for an absent or blank field. Not invertible.
//! - `number_format`: a fixed number of decimals (rounded half away from zero, as prices are) and a
//!   decimal separator, computed in decimal arithmetic, never `f64`. Its inverse parses the text back
//!   into a JSON number: exact for numbers with at most `decimals` decimal places.
//! - `truncate`: at most `max_chars` characters. Not invertible.
//! - `concatenate`: the value, then each of `source_fields` (read from the same source product),
//!   skipping blank ones, joined by `separator`. Not invertible.
//! - `constant`: a fixed value whatever the source holds. Not invertible.

use std::collections::BTreeMap;

use ponte_core::error::ServiceError;
use ponte_proto::v1 as pb;
use serde::{Deserialize, Serialize};

/// At most this many decimals in a `number_format` (Bling keeps up to 10 on prices and quantities).
pub const MAX_DECIMALS: u32 = 10;
/// At most this many steps in one mapping.
pub const MAX_TRANSFORMS: usize = 16;
/// At most this many entries in one value map.
pub const MAX_VALUE_MAP_ENTRIES: usize = 1000;
/// The longest value, default, constant or separator text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;
/// The longest field path accepted, in characters.
pub const MAX_PATH_CHARS: usize = 200;

/// One step applied to a field's value; serialized as `{"<kind>": {...}}` (the proto oneof names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    ValueMap(ValueMap),
    DefaultValue(Text),
    NumberFormat(NumberFormat),
    Truncate(Truncate),
    Concatenate(Concatenate),
    Constant(Text),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueMap {
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub pass_unmapped: bool,
}

/// The payload of `default_value` and `constant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberFormat {
    pub decimals: u32,
    #[serde(default = "dot")]
    pub decimal_separator: char,
}

fn dot() -> char {
    '.'
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Truncate {
    pub max_chars: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concatenate {
    pub source_fields: Vec<String>,
    #[serde(default)]
    pub separator: String,
}

impl Transform {
    /// The proto oneof name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ValueMap(_) => "value_map",
            Self::DefaultValue(_) => "default_value",
            Self::NumberFormat(_) => "number_format",
            Self::Truncate(_) => "truncate",
            Self::Concatenate(_) => "concatenate",
            Self::Constant(_) => "constant",
        }
    }

    /// Reads a proto transform (shape only; [`validate`] checks the values). `field` names it,
    /// e.g. `mapping.transforms[1]`.
    pub fn from_proto(field: &str, t: &pb::Transform) -> Result<Self, ServiceError> {
        use pb::transform::Kind;
        Ok(match &t.kind {
            None => {
                return Err(ServiceError::invalid(
                    field,
                    "must set one of value_map, default_value, number_format, truncate, concatenate, constant",
                ));
            }
            Some(Kind::ValueMap(m)) => Self::ValueMap(ValueMap {
                values: m.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                pass_unmapped: m.pass_unmapped,
            }),
            Some(Kind::DefaultValue(d)) => Self::DefaultValue(Text { value: d.value.clone() }),
            Some(Kind::NumberFormat(n)) => Self::NumberFormat(NumberFormat {
                decimals: n.decimals,
                decimal_separator: match n.decimal_separator.as_str() {
                    "" | "." => '.',
                    "," => ',',
                    _ => {
                        return Err(ServiceError::invalid(
                            format!("{field}.number_format.decimal_separator"),
                            r#"must be "." or ",""#,
                        ));
                    }
                },
            }),
            Some(Kind::Truncate(t)) => Self::Truncate(Truncate { max_chars: t.max_chars }),
            Some(Kind::Concatenate(c)) => Self::Concatenate(Concatenate {
                source_fields: c.source_fields.clone(),
                separator: c.separator.clone(),
            }),
            Some(Kind::Constant(c)) => Self::Constant(Text { value: c.value.clone() }),
        })
    }

    pub fn to_proto(&self) -> pb::Transform {
        use pb::transform::Kind;
        let kind = match self {
            Self::ValueMap(m) => Kind::ValueMap(pb::ValueMapTransform {
                values: m.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                pass_unmapped: m.pass_unmapped,
            }),
            Self::DefaultValue(d) => Kind::DefaultValue(pb::DefaultTransform { value: d.value.clone() }),
            Self::NumberFormat(n) => Kind::NumberFormat(pb::NumberFormatTransform {
                decimals: n.decimals,
                decimal_separator: n.decimal_separator.to_string(),
            }),
            Self::Truncate(t) => Kind::Truncate(pb::TruncateTransform { max_chars: t.max_chars }),
            Self::Concatenate(c) => Kind::Concatenate(pb::ConcatenateTransform {
                source_fields: c.source_fields.clone(),
                separator: c.separator.clone(),
            }),
            Self::Constant(c) => Kind::Constant(pb::ConstantTransform { value: c.value.clone() }),
        };
        pb::Transform { kind: Some(kind) }
    }
}
