//! Lists as `crm.*.list` methods serve them: `select` (with `*`, `UF_*` and `PROPERTY_*`),
//! `filter` with Bitrix24's operator prefixes (`>=`, `%`, `!@`, …) and SQL `LIKE`, `order`, and
//! 50-row pages with `next` and `total`.

use std::{cmp::Ordering, collections::HashSet, str::FromStr};

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::model::{MethodError, Outcome, PAGE, Reply, property_id};
use crate::bitrix24::params::{get, text};

/// The fields a list asks for.
#[derive(Debug, Clone, Default)]
pub struct Select {
    pub(super) standard: bool,
    pub(super) all_properties: bool,
    pub(super) all_user_fields: bool,
    pub(super) names: Vec<String>,
}

impl Select {
    pub(super) fn everything() -> Self {
        Self { standard: true, all_properties: true, all_user_fields: true, names: vec![] }
    }

    pub(super) fn parse(params: &Map<String, Value>, default: &[&str]) -> Result<Self, MethodError> {
        let names: Vec<String> = match get(params, "select") {
            None | Some(Value::Null) => default.iter().map(|s| (*s).to_owned()).collect(),
            Some(Value::Array(a)) => a.iter().filter_map(text).map(|s| s.to_ascii_uppercase()).collect(),
            Some(Value::Object(m)) => m.values().filter_map(text).map(|s| s.to_ascii_uppercase()).collect(),
            Some(_) => return Err(MethodError::bad("Parameter 'select' must be array.")),
        };
        let names = if names.is_empty() { vec!["*".to_owned()] } else { names };
        Ok(Self {
            standard: names.iter().any(|n| n == "*"),
            all_properties: names.iter().any(|n| n == "PROPERTY_*"),
            all_user_fields: names.iter().any(|n| n == "UF_*"),
            names,
        })
    }

    pub(super) fn wants(&self, field: &str) -> bool {
        // Bitrix24 answers the id with every row, whatever the select.
        field == "ID" || (self.standard && !field.starts_with("UF_")) || self.names.iter().any(|n| n == field)
    }
}

/// Filters, orders and pages `rows`, then shapes each with `project`.
pub(super) fn list(
    mut rows: Vec<Map<String, Value>>,
    params: &Map<String, Value>,
    project: impl Fn(&Map<String, Value>) -> Map<String, Value>,
) -> Outcome {
    let filter = match get(params, "filter") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Array(a)) if a.is_empty() => Map::new(),
        Some(_) => return Err(MethodError::bad("Parameter 'filter' must be array.")),
    };
    let order: Vec<(String, bool)> = match get(params, "order") {
        None | Some(Value::Null) => vec![("ID".into(), true)],
        Some(Value::Array(a)) if a.is_empty() => vec![("ID".into(), true)],
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), !text(v).is_some_and(|d| d.eq_ignore_ascii_case("DESC"))))
            .collect(),
        Some(_) => return Err(MethodError::bad("Parameter 'order' must be array.")),
    };
    rows.retain(|row| filter.iter().all(|(k, want)| Condition::parse(k).matches(row, want)));
    rows.sort_by(|a, b| {
        order
            .iter()
            .map(|(field, asc)| {
                let o = compare(a.get(field), b.get(field));
                if *asc { o } else { o.reverse() }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    let start = get(params, "start").and_then(text).and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
    if start == -1 {
        // No COUNT: up to a page, `total` 0 and no `next`.
        let page = rows.iter().take(PAGE).map(|r| Value::Object(project(r))).collect();
        return Ok(Reply { result: Value::Array(page), total: Some(0), next: None, events: vec![] });
    }
    let start = usize::try_from(start.max(0)).unwrap_or(0);
    let total = rows.len();
    let page = rows.iter().skip(start).take(PAGE).map(|r| Value::Object(project(r))).collect();
    let next = (start.saturating_add(PAGE) < total).then_some((start + PAGE) as u64);
    Ok(Reply { result: Value::Array(page), total: Some(total as u64), next, events: vec![] })
}

/// Orders two field values: numerically when both are numbers, nulls first.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.and_then(text);
    let b = b.and_then(text);
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => match (Decimal::from_str(&a), Decimal::from_str(&b)) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(&b),
        },
    }
}

/// One filter key: its operator prefix and the field it applies to.
pub(super) struct Condition {
    op: &'static str,
    field: String,
}

/// Filter operators, longest first so `>=` is not read as `>`.
const OPERATORS: [&str; 15] = ["!=%", "!%=", ">=", "<=", "!@", "=%", "%=", "!%", "!=", ">", "<", "@", "%", "=", "!"];

impl Condition {
    pub(super) fn parse(key: &str) -> Self {
        for op in OPERATORS {
            if let Some(field) = key.strip_prefix(op) {
                return Self { op, field: field.to_ascii_uppercase() };
            }
        }
        Self { op: "=", field: key.to_ascii_uppercase() }
    }

    pub(super) fn matches(&self, row: &Map<String, Value>, want: &Value) -> bool {
        let have = values_of(row.get(&self.field));
        let wants: Vec<String> = match want {
            Value::Array(a) => a.iter().filter_map(text).collect(),
            Value::Object(m) => m.values().filter_map(text).collect(),
            other => text(other).into_iter().collect(),
        };
        let any = |f: &dyn Fn(&str, &str) -> bool| have.iter().any(|h| wants.iter().any(|w| f(h, w)));
        let equal = |h: &str, w: &str| match (Decimal::from_str(h), Decimal::from_str(w)) {
            (Ok(a), Ok(b)) => a == b,
            _ => h == w,
        };
        // `=""` asks for an empty field.
        let empty_wanted = wants.len() == 1 && wants[0].is_empty();
        match self.op {
            "=" | "@" if empty_wanted => have.iter().all(|h| h.is_empty()),
            "!=" | "!" if empty_wanted => have.iter().any(|h| !h.is_empty()),
            "=" | "@" => any(&equal),
            "!=" | "!" | "!@" => !any(&equal),
            "%" => any(&|h, w| h.to_lowercase().contains(&w.to_lowercase())),
            "!%" => !any(&|h, w| h.to_lowercase().contains(&w.to_lowercase())),
            "=%" | "%=" => any(&like),
            "!=%" | "!%=" => !any(&like),
            ">" | "<" | ">=" | "<=" => any(&|h, w| {
                let o = compare(Some(&json!(h)), Some(&json!(w)));
                match self.op {
                    ">" => o == Ordering::Greater,
                    "<" => o == Ordering::Less,
                    ">=" => o != Ordering::Less,
                    _ => o != Ordering::Greater,
                }
            }),
            _ => false,
        }
    }
}

/// A value as equality compares it: numbers by their value (`007` is `7`), the rest as text.
pub(super) fn equality_key(s: &str) -> String {
    Decimal::from_str(s).map(|d| d.normalize().to_string()).unwrap_or_else(|_| s.to_owned())
}

/// The `=` and `@` conditions of a list's filter on product properties, as (property id, the
/// values one of which it must hold): a cheap first pass over the raw products, so a look-up
/// by property in a large catalog does not render every product. [`Condition::matches`] still
/// decides on what passes.
pub(super) fn property_equalities(params: &Map<String, Value>) -> Vec<(u64, HashSet<String>)> {
    let Some(Value::Object(filter)) = get(params, "filter") else { return Vec::new() };
    filter
        .iter()
        .filter_map(|(key, want)| {
            let c = Condition::parse(key);
            if c.op != "=" && c.op != "@" {
                return None;
            }
            let pid = property_id(&c.field)?;
            let wants: Vec<String> = match want {
                Value::Array(a) => a.iter().filter_map(text).collect(),
                Value::Object(m) => m.values().filter_map(text).collect(),
                other => text(other).into_iter().collect(),
            };
            let wants: HashSet<String> = wants.iter().map(|w| equality_key(w)).collect();
            // `=""` asks for an empty property: not a look-up by value.
            (!wants.is_empty() && !wants.contains("")).then_some((pid, wants))
        })
        .collect()
}

/// A field's values as text: one for a plain field, each value of a property.
pub(super) fn values_of(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().flat_map(|x| values_of(Some(x))).collect(),
        Some(Value::Object(m)) => values_of(m.get("value")),
        Some(other) => text(other).into_iter().collect(),
    }
}

/// SQL `LIKE` with `%` and `_`, case-insensitive as MySQL compares.
fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    go(&t, &p)
}
