//! The checks a mapping's transforms pass when written: field paths, each step's values, and
//! whether a two-way mapping can undo every step.

use std::{borrow::Cow, collections::HashMap};

use ponte_core::error::ServiceError;

use super::kinds::{
    MAX_DECIMALS, MAX_PATH_CHARS, MAX_TEXT_CHARS, MAX_TRANSFORMS, MAX_VALUE_MAP_ENTRIES, Transform, ValueMap,
};

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

pub(super) fn clip(s: &str) -> Cow<'_, str> {
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
