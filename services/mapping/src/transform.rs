//! The transform engine: how one product field's value becomes a target field's value, and how a
//! two-way mapping undoes it. Pure functions over JSON values (no storage, no gRPC), so every rule
//! is unit-tested here.
//!
//! A field mapping reads its Bling field (a dotted path into the product JSON; absent and `null`
//! are the same), applies its transforms in order and writes the target field; a value that ends
//! absent writes nothing. The reverse direction reads the target field, applies the inverse of each
//! transform in reverse order and writes the Bling field. The steps:
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

use std::{borrow::Cow, collections::BTreeMap, collections::HashMap, str::FromStr};

use ponte_core::error::ServiceError;
use ponte_proto::v1 as pb;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

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

fn too_long(s: &str) -> bool {
    s.chars().count() > MAX_TEXT_CHARS
}

/// Checks a dotted field path (`nome`, `estoque.minimo`): segments of ASCII letters, digits and
/// `_`. `flat` refuses dots (Bitrix24's product fields are one level).
pub fn check_path(field: &str, path: &str, flat: bool) -> Result<(), ServiceError> {
    if path.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if path.chars().count() > MAX_PATH_CHARS {
        return Err(ServiceError::invalid(field, format!("is longer than {MAX_PATH_CHARS} characters")));
    }
    if flat && path.contains('.') {
        return Err(ServiceError::invalid(field, format!("'{path}': Bitrix24 product fields are flat (no '.')")));
    }
    for segment in path.split('.') {
        if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ServiceError::invalid(
                field,
                format!("'{path}' is not a field path (letters, digits and '_', parts joined by '.')"),
            ));
        }
    }
    Ok(())
}

/// Checks transforms' values; `field` names the list, e.g. `mapping.transforms`.
pub fn validate(field: &str, transforms: &[Transform]) -> Result<(), ServiceError> {
    if transforms.len() > MAX_TRANSFORMS {
        return Err(ServiceError::invalid(field, format!("has more than {MAX_TRANSFORMS} steps")));
    }
    for (i, t) in transforms.iter().enumerate() {
        let at = format!("{field}[{i}].{}", t.kind());
        match t {
            Transform::ValueMap(m) => {
                if m.values.is_empty() {
                    return Err(ServiceError::invalid(format!("{at}.values"), "must map at least one value"));
                }
                if m.values.len() > MAX_VALUE_MAP_ENTRIES {
                    return Err(ServiceError::invalid(
                        format!("{at}.values"),
                        format!("has more than {MAX_VALUE_MAP_ENTRIES} entries"),
                    ));
                }
                if let Some((k, _)) = m.values.iter().find(|(k, v)| too_long(k) || too_long(v)) {
                    return Err(ServiceError::invalid(
                        format!("{at}.values"),
                        format!("the entry for '{}' is longer than {MAX_TEXT_CHARS} characters", clip(k)),
                    ));
                }
            }
            Transform::DefaultValue(d) => {
                if d.value.trim().is_empty() {
                    return Err(ServiceError::invalid(format!("{at}.value"), "must not be blank"));
                }
                if too_long(&d.value) {
                    return Err(ServiceError::invalid(
                        format!("{at}.value"),
                        format!("is longer than {MAX_TEXT_CHARS} characters"),
                    ));
                }
            }
            Transform::NumberFormat(n) => {
                if n.decimals > MAX_DECIMALS {
                    return Err(ServiceError::invalid(
                        format!("{at}.decimals"),
                        format!("must be at most {MAX_DECIMALS}"),
                    ));
                }
                if n.decimal_separator != '.' && n.decimal_separator != ',' {
                    return Err(ServiceError::invalid(format!("{at}.decimal_separator"), r#"must be "." or ",""#));
                }
            }
            Transform::Truncate(t) => {
                if t.max_chars == 0 {
                    return Err(ServiceError::invalid(format!("{at}.max_chars"), "must be at least 1"));
                }
            }
            Transform::Concatenate(c) => {
                if c.source_fields.is_empty() {
                    return Err(ServiceError::invalid(format!("{at}.source_fields"), "must name at least one field"));
                }
                if c.source_fields.len() > MAX_TRANSFORMS {
                    return Err(ServiceError::invalid(
                        format!("{at}.source_fields"),
                        format!("names more than {MAX_TRANSFORMS} fields"),
                    ));
                }
                for (j, f) in c.source_fields.iter().enumerate() {
                    check_path(&format!("{at}.source_fields[{j}]"), f, false)?;
                }
                if c.separator.chars().count() > 20 {
                    return Err(ServiceError::invalid(format!("{at}.separator"), "is longer than 20 characters"));
                }
            }
            Transform::Constant(c) => {
                if too_long(&c.value) {
                    return Err(ServiceError::invalid(
                        format!("{at}.value"),
                        format!("is longer than {MAX_TEXT_CHARS} characters"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn clip(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= 40 { Cow::Borrowed(s) } else { Cow::Owned(s.chars().take(40).collect::<String>() + "…") }
}

/// Refuses a transform a two-way mapping could not undo, naming it and saying why.
pub fn check_invertible(field: &str, transforms: &[Transform]) -> Result<(), ServiceError> {
    const ONE_WAY: &str = "; make the mapping MAPPING_DIRECTION_ONE_WAY or drop this step";
    for (i, t) in transforms.iter().enumerate() {
        let at = format!("{field}[{i}].{}", t.kind());
        let why: Option<String> = match t {
            Transform::ValueMap(m) => value_map_collision(m),
            Transform::DefaultValue(_) => {
                Some("cannot be inverted: a filled-in default is indistinguishable from a real value".into())
            }
            Transform::Truncate(_) => Some("cannot be inverted: the cut-off text cannot be restored".into()),
            Transform::Concatenate(_) => {
                Some("cannot be inverted: joined text cannot be split back into its fields".into())
            }
            Transform::Constant(_) => Some("cannot be inverted: a constant says nothing about the source".into()),
            Transform::NumberFormat(_) => None,
        };
        if let Some(why) = why {
            return Err(ServiceError::invalid(at, format!("{why}, so a two-way mapping cannot use it{ONE_WAY}")));
        }
    }
    Ok(())
}

/// Why a value map is not one-to-one, if it is not.
fn value_map_collision(m: &ValueMap) -> Option<String> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (k, v) in &m.values {
        if let Some(other) = seen.insert(v, k) {
            return Some(format!(
                "cannot be inverted: it maps both '{}' and '{}' to '{}'",
                clip(other),
                clip(k),
                clip(v)
            ));
        }
    }
    if m.pass_unmapped
        && let Some((k, v)) = m.values.iter().find(|(_, v)| !m.values.contains_key(v.as_str()))
    {
        return Some(format!(
            "cannot be inverted: it maps '{}' to '{}', and an unmapped '{}' also passes through as '{}' \
             (map '{}' too, or turn off pass_unmapped)",
            clip(k),
            clip(v),
            clip(v),
            clip(v),
            clip(v)
        ));
    }
    None
}

/// A field path split once, so translating does not re-split it per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    segments: Vec<String>,
}

impl Path {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), segments: text.split('.').map(str::to_owned).collect() }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path; `null` counts as absent.
    pub fn get<'a>(&self, object: &'a Map<String, Value>) -> Option<&'a Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut at = object;
        for s in parents {
            at = at.get(s)?.as_object()?;
        }
        at.get(last).filter(|v| !v.is_null())
    }

    /// Writes `value` at this path, creating objects on the way; `false` when a non-object
    /// already sits where an object is needed.
    fn set(&self, object: &mut Map<String, Value>, value: Value) -> bool {
        let Some((last, parents)) = self.segments.split_last() else { return false };
        let mut at = object;
        for s in parents {
            let next = at.entry(s.clone()).or_insert_with(|| Value::Object(Map::new()));
            match next {
                Value::Object(m) => at = m,
                _ => return false,
            }
        }
        at.insert(last.clone(), value);
        true
    }
}

/// A mapping ready to translate with: paths split, inverse value maps built.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Names the mapping in error messages (its id).
    pub name: String,
    pub bling: Path,
    pub target: Path,
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    ValueMap { forward: HashMap<String, String>, reverse: HashMap<String, String>, pass_unmapped: bool },
    DefaultValue(String),
    NumberFormat { decimals: u32, separator: char },
    Truncate(usize),
    Concatenate { sources: Vec<Path>, separator: String },
    Constant(String),
}

impl Rule {
    pub fn new(name: &str, bling_field: &str, target_field: &str, transforms: &[Transform]) -> Self {
        let steps = transforms
            .iter()
            .map(|t| match t {
                Transform::ValueMap(m) => Step::ValueMap {
                    forward: m.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    reverse: m.values.iter().map(|(k, v)| (v.clone(), k.clone())).collect(),
                    pass_unmapped: m.pass_unmapped,
                },
                Transform::DefaultValue(d) => Step::DefaultValue(d.value.clone()),
                Transform::NumberFormat(n) => {
                    Step::NumberFormat { decimals: n.decimals.min(MAX_DECIMALS), separator: n.decimal_separator }
                }
                Transform::Truncate(t) => Step::Truncate(t.max_chars as usize),
                Transform::Concatenate(c) => Step::Concatenate {
                    sources: c.source_fields.iter().map(|f| Path::new(f)).collect(),
                    separator: c.separator.clone(),
                },
                Transform::Constant(c) => Step::Constant(c.value.clone()),
            })
            .collect();
        Self { name: name.to_owned(), bling: Path::new(bling_field), target: Path::new(target_field), steps }
    }
}

/// A source value a mapping cannot use; `field` is the path in the source product.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValueError {
    pub field: String,
    pub message: String,
}

impl ValueError {
    fn new(field: &Path, rule: &Rule, message: impl std::fmt::Display) -> Self {
        Self {
            field: field.as_str().to_owned(),
            message: format!("{message} (mapping {}: {} → {})", rule.name, rule.bling.as_str(), rule.target.as_str()),
        }
    }
}

/// Applies `rules` Bling → target to `source`, producing the target's fields.
pub fn forward(rules: &[Rule], source: &Map<String, Value>) -> Result<Map<String, Value>, ValueError> {
    let mut out = Map::new();
    for rule in rules {
        let mut value = rule.bling.get(source).cloned();
        for step in &rule.steps {
            value = forward_step(rule, step, value, source)?;
        }
        if let Some(v) = value
            && !rule.target.set(&mut out, v)
        {
            return Err(ValueError::new(&rule.bling, rule, "its target field overlaps another mapping's"));
        }
    }
    Ok(out)
}

/// Applies the inverse of `rules` target → Bling to `source` (a target product), producing Bling's
/// fields. Every rule must have passed [`check_invertible`].
pub fn inverse(rules: &[Rule], source: &Map<String, Value>) -> Result<Map<String, Value>, ValueError> {
    let mut out = Map::new();
    for rule in rules {
        let mut value = rule.target.get(source).cloned();
        for step in rule.steps.iter().rev() {
            value = inverse_step(rule, step, value)?;
        }
        if let Some(v) = value
            && !rule.bling.set(&mut out, v)
        {
            return Err(ValueError::new(&rule.target, rule, "its Bling field overlaps another mapping's"));
        }
    }
    Ok(out)
}

/// The text of a scalar (numbers as JSON writes them); `None` for a list or an object.
fn text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null => Some(Cow::Borrowed("")),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn scalar_text<'a>(field: &Path, rule: &Rule, v: &'a Value) -> Result<Cow<'a, str>, ValueError> {
    text(v).ok_or_else(|| ValueError::new(field, rule, "is a list or an object; transforms apply to single values"))
}

fn blank(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    }
}

fn forward_step(
    rule: &Rule,
    step: &Step,
    value: Option<Value>,
    source: &Map<String, Value>,
) -> Result<Option<Value>, ValueError> {
    let field = &rule.bling;
    Ok(match step {
        Step::ValueMap { forward, pass_unmapped, .. } => match value {
            None => None,
            Some(v) => {
                let key = scalar_text(field, rule, &v)?;
                match forward.get(key.as_ref()) {
                    Some(mapped) => Some(Value::String(mapped.clone())),
                    None if *pass_unmapped => Some(v),
                    None => {
                        return Err(ValueError::new(
                            field,
                            rule,
                            format!("'{}' has no entry in the value map", clip(&key)),
                        ));
                    }
                }
            }
        },
        Step::DefaultValue(d) => {
            if blank(&value) {
                Some(Value::String(d.clone()))
            } else {
                value
            }
        }
        Step::NumberFormat { decimals, separator } => match &value {
            None => None,
            Some(v) => to_decimal(v)
                .map_err(|m| ValueError::new(field, rule, m))?
                .map(|d| Value::String(format_decimal(d, *decimals, *separator))),
        },
        Step::Truncate(max) => match &value {
            None => None,
            Some(v) => Some(Value::String(scalar_text(field, rule, v)?.chars().take(*max).collect())),
        },
        Step::Concatenate { sources, separator } => {
            let mut parts: Vec<Cow<'_, str>> = Vec::with_capacity(sources.len() + 1);
            if let Some(v) = &value {
                parts.push(scalar_text(field, rule, v)?);
            }
            for p in sources {
                if let Some(v) = p.get(source) {
                    parts.push(scalar_text(p, rule, v)?);
                }
            }
            parts.retain(|p| !p.trim().is_empty());
            if parts.is_empty() { None } else { Some(Value::String(parts.join(separator))) }
        }
        Step::Constant(c) => Some(Value::String(c.clone())),
    })
}

fn inverse_step(rule: &Rule, step: &Step, value: Option<Value>) -> Result<Option<Value>, ValueError> {
    let field = &rule.target;
    Ok(match step {
        Step::ValueMap { reverse, pass_unmapped, .. } => match value {
            None => None,
            Some(v) => {
                let key = scalar_text(field, rule, &v)?;
                match reverse.get(key.as_ref()) {
                    Some(original) => Some(Value::String(original.clone())),
                    None if *pass_unmapped => Some(v),
                    None => {
                        return Err(ValueError::new(
                            field,
                            rule,
                            format!("'{}' is not a value the value map produces", clip(&key)),
                        ));
                    }
                }
            }
        },
        Step::NumberFormat { separator, .. } => match value {
            None => None,
            Some(Value::Number(n)) => Some(Value::Number(n)),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.is_empty() {
                    None
                } else {
                    let normal: Cow<'_, str> =
                        if *separator == '.' { Cow::Borrowed(s) } else { Cow::Owned(s.replace(*separator, ".")) };
                    let d = parse_decimal(&normal).ok_or_else(|| {
                        ValueError::new(
                            field,
                            rule,
                            format!("'{}' is not a number written with '{separator}'", clip(s)),
                        )
                    })?;
                    Some(decimal_to_json(d))
                }
            }
            Some(other) => {
                return Err(ValueError::new(field, rule, format!("{other} is not a number")));
            }
        },
        // Refused for two-way mappings when written; left as they are should one slip through.
        Step::DefaultValue(_) | Step::Truncate(_) | Step::Concatenate { .. } | Step::Constant(_) => value,
    })
}

/// A decimal from its text, plain (`59.90`) or scientific (`1e21`, as JSON may write floats).
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty() || s.starts_with('+') || s.contains(char::is_whitespace) {
        return None;
    }
    Decimal::from_str(s).ok().or_else(|| Decimal::from_scientific(s).ok())
}

/// A number read from JSON by its decimal text, so no `f64` arithmetic touches it; blank text is
/// absent.
fn to_decimal(v: &Value) -> Result<Option<Decimal>, String> {
    match v {
        Value::Number(n) => {
            parse_decimal(&n.to_string()).map(Some).ok_or_else(|| format!("{n} is out of the decimal range"))
        }
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => parse_decimal(s).map(Some).ok_or_else(|| format!("'{}' is not a number", clip(s))),
        Value::Null => Ok(None),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(format!("{v} is not a number")),
    }
}

/// `d` with exactly `decimals` places (half away from zero) and `separator`.
pub fn format_decimal(d: Decimal, decimals: u32, separator: char) -> String {
    let mut r = d.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(decimals);
    if r.is_zero() {
        r.set_sign_positive(true);
    }
    let s = r.to_string();
    if separator == '.' { s } else { s.replace('.', &separator.to_string()) }
}

/// A decimal as a JSON number: an integer when whole, else the double nearest its decimal text.
pub fn decimal_to_json(d: Decimal) -> Value {
    let d = d.normalize();
    if d.scale() == 0
        && let Ok(i) = i64::try_from(d)
    {
        return Value::Number(Number::from(i));
    }
    d.to_string().parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn vmap(pairs: &[(&str, &str)], pass_unmapped: bool) -> Transform {
        Transform::ValueMap(ValueMap {
            values: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            pass_unmapped,
        })
    }

    fn numfmt(decimals: u32, sep: char) -> Transform {
        Transform::NumberFormat(NumberFormat { decimals, decimal_separator: sep })
    }

    fn one(rule: Rule, source: Value) -> Result<Map<String, Value>, ValueError> {
        forward(&[rule], &obj(source))
    }

    #[test]
    fn value_map_replaces_and_refuses_or_passes_unmapped_values() {
        let r = Rule::new("m", "situacao", "ACTIVE", &[vmap(&[("A", "Y"), ("I", "N")], false)]);
        assert_eq!(one(r.clone(), json!({"situacao": "A"})).unwrap(), obj(json!({"ACTIVE": "Y"})));
        assert_eq!(one(r.clone(), json!({"situacao": "I"})).unwrap(), obj(json!({"ACTIVE": "N"})));
        let err = one(r.clone(), json!({"situacao": "E"})).unwrap_err();
        assert_eq!(err.field, "situacao");
        assert!(err.message.contains("'E' has no entry"), "{}", err.message);
        assert_eq!(
            inverse(std::slice::from_ref(&r), &obj(json!({"ACTIVE": "N"}))).unwrap(),
            obj(json!({"situacao": "I"}))
        );
        assert!(inverse(&[r], &obj(json!({"ACTIVE": "maybe"}))).is_err());

        let pass = Rule::new("m", "tipo", "TYPE", &[vmap(&[("P", "product")], true)]);
        assert_eq!(one(pass.clone(), json!({"tipo": "S"})).unwrap(), obj(json!({"TYPE": "S"})));
        // Numbers are looked up by their text.
        let n = Rule::new("m", "un", "U", &[vmap(&[("1", "one")], false)]);
        assert_eq!(one(n, json!({"un": 1})).unwrap(), obj(json!({"U": "one"})));
    }

    #[test]
    fn absent_and_null_fields_write_nothing_unless_a_step_supplies_a_value() {
        let plain = Rule::new("m", "nome", "NAME", &[]);
        assert!(one(plain.clone(), json!({})).unwrap().is_empty());
        assert!(one(plain, json!({"nome": null})).unwrap().is_empty());
        let dflt = Rule::new("m", "unidade", "MEASURE", &[Transform::DefaultValue(Text { value: "UN".into() })]);
        assert_eq!(one(dflt.clone(), json!({})).unwrap(), obj(json!({"MEASURE": "UN"})));
        assert_eq!(one(dflt.clone(), json!({"unidade": "  "})).unwrap(), obj(json!({"MEASURE": "UN"})));
        assert_eq!(one(dflt, json!({"unidade": "CX"})).unwrap(), obj(json!({"MEASURE": "CX"})));
        let constant = Rule::new("m", "x", "CURRENCY_ID", &[Transform::Constant(Text { value: "BRL".into() })]);
        assert_eq!(one(constant, json!({"x": "USD"})).unwrap(), obj(json!({"CURRENCY_ID": "BRL"})));
    }

    #[test]
    fn number_format_rounds_half_away_from_zero_in_decimal_arithmetic() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(format_decimal(d("59.9"), 2, '.'), "59.90");
        assert_eq!(format_decimal(d("59.9"), 2, ','), "59,90");
        assert_eq!(format_decimal(d("0.125"), 2, '.'), "0.13");
        assert_eq!(format_decimal(d("-0.125"), 2, '.'), "-0.13");
        assert_eq!(format_decimal(d("-0.001"), 2, '.'), "0.00");
        assert_eq!(format_decimal(d("1234"), 0, ','), "1234");
        assert_eq!(format_decimal(d("2.5"), 0, '.'), "3");
        // The extremes format without overflowing; what Decimal cannot hold is refused, not wrapped.
        assert!(format_decimal(Decimal::MAX, MAX_DECIMALS, ',').starts_with("79228162514264337593543950335"));
        assert_eq!(parse_decimal("1e40"), None);
        assert_eq!(parse_decimal("123456789012345678901234567890123"), None);
        // 0.1 + 0.2 in f64 is 0.30000000000000004; the text is what gets rounded.
        let r = Rule::new("m", "preco", "PRICE", &[numfmt(2, ',')]);
        assert_eq!(one(r.clone(), json!({"preco": 0.1 + 0.2})).unwrap(), obj(json!({"PRICE": "0,30"})));
        assert_eq!(one(r.clone(), json!({"preco": "12.345"})).unwrap(), obj(json!({"PRICE": "12,35"})));
        assert_eq!(one(r.clone(), json!({"preco": 1e21})).unwrap(), obj(json!({"PRICE": "1000000000000000000000,00"})));
        assert!(one(r.clone(), json!({"preco": ""})).unwrap().is_empty());
        let err = one(r.clone(), json!({"preco": "abc"})).unwrap_err();
        assert!(err.message.contains("'abc' is not a number"), "{}", err.message);
        assert!(one(r.clone(), json!({"preco": true})).is_err());
        // Back: the text parses into a JSON number, whole numbers as integers.
        assert_eq!(
            inverse(std::slice::from_ref(&r), &obj(json!({"PRICE": "59,90"}))).unwrap(),
            obj(json!({"preco": 59.9}))
        );
        assert_eq!(
            inverse(std::slice::from_ref(&r), &obj(json!({"PRICE": "60,00"}))).unwrap(),
            obj(json!({"preco": 60}))
        );
        assert!(inverse(&[r], &obj(json!({"PRICE": "sessenta"}))).is_err());
    }

    #[test]
    fn truncate_counts_characters_not_bytes() {
        let r = Rule::new("m", "nome", "NAME", &[Transform::Truncate(Truncate { max_chars: 4 })]);
        assert_eq!(one(r.clone(), json!({"nome": "Açaí gelado"})).unwrap(), obj(json!({"NAME": "Açaí"})));
        assert_eq!(one(r.clone(), json!({"nome": "Pé"})).unwrap(), obj(json!({"NAME": "Pé"})));
        assert_eq!(one(r.clone(), json!({"nome": 1234567})).unwrap(), obj(json!({"NAME": "1234"})));
        assert!(one(r, json!({"nome": ["a"]})).unwrap_err().message.contains("list or an object"));
    }

    #[test]
    fn concatenate_joins_the_value_and_its_source_fields_skipping_blanks() {
        let r = Rule::new(
            "m",
            "nome",
            "NAME",
            &[Transform::Concatenate(Concatenate {
                source_fields: vec!["marca".into(), "dimensoes.cor".into(), "nada".into()],
                separator: " - ".into(),
            })],
        );
        let src = json!({"nome": "Camiseta", "marca": "Hering", "dimensoes": {"cor": "azul"}, "nada": ""});
        assert_eq!(one(r.clone(), src).unwrap(), obj(json!({"NAME": "Camiseta - Hering - azul"})));
        assert_eq!(one(r.clone(), json!({"marca": "Hering"})).unwrap(), obj(json!({"NAME": "Hering"})));
        assert!(one(r, json!({})).unwrap().is_empty());
    }

    #[test]
    fn dotted_paths_read_and_write_nested_objects() {
        let r = Rule::new("m", "estoque.minimo", "stock.min", &[]);
        assert_eq!(one(r.clone(), json!({"estoque": {"minimo": 3}})).unwrap(), obj(json!({"stock": {"min": 3}})));
        assert!(one(r.clone(), json!({"estoque": 3})).unwrap().is_empty());
        let clash = [Rule::new("a", "a", "x", &[]), Rule::new("b", "b", "x.y", &[])];
        assert!(forward(&clash, &obj(json!({"a": 1, "b": 2}))).is_err());
    }

    #[test]
    fn validation_names_the_step_and_field() {
        let bad = |t: Transform| validate("mapping.transforms", &[vmap(&[("A", "Y")], false), t]).unwrap_err();
        assert_eq!(
            bad(numfmt(2, ';')).to_string(),
            r#"mapping.transforms[1].number_format.decimal_separator: must be "." or ",""#
        );
        assert_eq!(
            bad(numfmt(11, '.')).to_string(),
            "mapping.transforms[1].number_format.decimals: must be at most 10"
        );
        assert_eq!(
            bad(Transform::Truncate(Truncate { max_chars: 0 })).to_string(),
            "mapping.transforms[1].truncate.max_chars: must be at least 1"
        );
        let concat = Transform::Concatenate(Concatenate {
            source_fields: vec!["ok".into(), "no way".into()],
            separator: " ".into(),
        });
        assert!(bad(concat).to_string().starts_with("mapping.transforms[1].concatenate.source_fields[1]: "));
        assert_eq!(
            bad(Transform::ValueMap(ValueMap { values: BTreeMap::new(), pass_unmapped: false })).to_string(),
            "mapping.transforms[1].value_map.values: must map at least one value"
        );
        let proto_sep = pb::Transform {
            kind: Some(pb::transform::Kind::NumberFormat(pb::NumberFormatTransform {
                decimals: 2,
                decimal_separator: ";".into(),
            })),
        };
        assert_eq!(
            Transform::from_proto("mapping.transforms[1]", &proto_sep).unwrap_err().to_string(),
            r#"mapping.transforms[1].number_format.decimal_separator: must be "." or ",""#
        );
        assert!(Transform::from_proto("t[0]", &pb::Transform { kind: None }).is_err());
        assert!(check_path("f", "estoque.minimo", false).is_ok());
        assert!(check_path("f", "estoque..minimo", false).is_err());
        assert!(check_path("f", "PROPERTY_104", true).is_ok());
        assert!(check_path("f", "a.b", true).is_err());
    }

    #[test]
    fn only_invertible_steps_pass_the_two_way_check() {
        let ok = [vmap(&[("A", "Y"), ("I", "N")], false), numfmt(2, ',')];
        assert!(check_invertible("mapping.transforms", &ok).is_ok());
        let cases = [
            (Transform::Truncate(Truncate { max_chars: 3 }), "mapping.transforms[1].truncate: "),
            (
                Transform::Concatenate(Concatenate { source_fields: vec!["a".into()], separator: String::new() }),
                "mapping.transforms[1].concatenate: ",
            ),
            (Transform::Constant(Text { value: "x".into() }), "mapping.transforms[1].constant: "),
            (Transform::DefaultValue(Text { value: "x".into() }), "mapping.transforms[1].default_value: "),
            (vmap(&[("A", "Y"), ("B", "Y")], false), "mapping.transforms[1].value_map: "),
            (vmap(&[("A", "Y")], true), "mapping.transforms[1].value_map: "),
        ];
        for (t, prefix) in cases {
            let e = check_invertible("mapping.transforms", &[numfmt(2, '.'), t]).unwrap_err().to_string();
            assert!(e.starts_with(prefix) && e.contains("cannot be inverted"), "{e}");
        }
        // A permutation passes even with pass_unmapped: nothing it produces can also pass through.
        assert!(check_invertible("t", &[vmap(&[("A", "B"), ("B", "A")], true)]).is_ok());
    }

    #[test]
    fn transforms_serialize_as_their_oneof_names() {
        let t = vec![vmap(&[("A", "Y")], false), numfmt(2, ','), Transform::Constant(Text { value: "BRL".into() })];
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(
            j,
            json!([{"value_map": {"values": {"A": "Y"}, "pass_unmapped": false}},
                   {"number_format": {"decimals": 2, "decimal_separator": ","}},
                   {"constant": {"value": "BRL"}}])
        );
        assert_eq!(serde_json::from_value::<Vec<Transform>>(j).unwrap(), t);
        for t in &t {
            assert_eq!(&Transform::from_proto("t", &t.to_proto()).unwrap(), t);
        }
    }

    /// One generated invertible mapping and a value its source field may hold.
    #[derive(Debug, Clone)]
    struct Case {
        transforms: Vec<Transform>,
        value: Option<Value>,
    }

    fn money() -> impl Strategy<Value = (u32, Value)> {
        (0u32..=4, any::<i64>()).prop_map(|(decimals, units)| {
            // Any number with at most `decimals` places (within Decimal's range).
            let d = Decimal::new(units % 10_i64.pow(15), decimals);
            (decimals, decimal_to_json(d))
        })
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            ".{0,12}".prop_map(Value::String),
            any::<i64>().prop_map(|i| json!(i)),
            any::<bool>().prop_map(Value::Bool),
            prop::collection::vec(any::<u8>(), 0..3).prop_map(|v| json!(v)),
        ]
    }

    fn case() -> impl Strategy<Value = Case> {
        let plain = prop::option::of(scalar()).prop_map(|value| Case { transforms: vec![], value });
        let number = (money(), any::<bool>(), any::<bool>()).prop_map(|((decimals, v), comma, present)| Case {
            transforms: vec![numfmt(decimals, if comma { ',' } else { '.' })],
            value: present.then_some(v),
        });
        // One-to-one: distinct keys (a set) onto distinct values (the same set shuffled, or fresh).
        let one_to_one = (prop::collection::btree_set("[A-Za-z0-9 ]{1,6}", 1..6), any::<u64>(), any::<bool>())
            .prop_flat_map(|(keys, seed, permute)| {
                let keys: Vec<String> = keys.into_iter().collect();
                let n = keys.len();
                (Just(keys), Just(seed), Just(permute), 0..n, any::<bool>())
            })
            .prop_map(|(keys, seed, permute, pick, present)| {
                let n = keys.len();
                let rot = (seed as usize) % n;
                let values: Vec<String> = if permute {
                    (0..n).map(|i| keys[(i + rot) % n].clone()).collect()
                } else {
                    (0..n).map(|i| format!("v{i}-{}", seed % 97)).collect()
                };
                let map: BTreeMap<String, String> = keys.iter().cloned().zip(values).collect();
                Case {
                    transforms: vec![Transform::ValueMap(ValueMap { values: map, pass_unmapped: permute })],
                    value: present.then(|| Value::String(keys[pick].clone())),
                }
            });
        prop_oneof![plain, number, one_to_one]
    }

    const BLING_FIELDS: [&str; 8] =
        ["id", "nome", "codigo", "preco", "situacao", "estoque.minimo", "estoque.maximo", "dimensoes.largura"];

    proptest! {
        /// Bling → target → Bling gives back exactly the fields the two-way mappings cover.
        #[test]
        fn invertible_mappings_round_trip(cases in prop::collection::vec(case(), 1..=BLING_FIELDS.len()),
                                          extra in ".{0,8}") {
            let mut rules = Vec::new();
            let mut product = Map::new();
            for (i, c) in cases.iter().enumerate() {
                validate("t", &c.transforms).unwrap();
                check_invertible("t", &c.transforms).unwrap();
                let target = format!("PROPERTY_{}", 100 + i);
                let rule = Rule::new(&format!("m{i}"), BLING_FIELDS[i], &target, &c.transforms);
                if let Some(v) = &c.value {
                    prop_assert!(rule.bling.set(&mut product, v.clone()));
                }
                rules.push(rule);
            }
            let there = forward(&rules, &product).unwrap();
            let mut with_noise = there.clone();
            with_noise.insert("UNMAPPED".into(), Value::String(extra));
            let back = inverse(&rules, &with_noise).unwrap();
            prop_assert_eq!(back, product);
        }
    }
}
