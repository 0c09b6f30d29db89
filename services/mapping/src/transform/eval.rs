//! Evaluation: a mapping compiled into a [`Rule`] (paths split, inverse value maps built) and
//! applied to a product's fields, Bling → target ([`forward`]) or back ([`inverse`]).

use std::{borrow::Cow, collections::HashMap};

use serde_json::{Map, Value};

use super::{
    check::clip,
    decimal::{decimal_to_json, format_decimal, parse_decimal, to_decimal},
    kinds::{MAX_DECIMALS, Transform},
};

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
    pub(super) fn set(&self, object: &mut Map<String, Value>, value: Value) -> bool {
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
