//! Reading what callers send the same way in every sandbox: the bearer token of a request and
//! amounts given as JSON numbers (or, where a system takes them, numeric strings).

use std::str::FromStr;

use axum::http::{HeaderMap, header};
use rust_decimal::Decimal;
use serde_json::Value;

/// The token of `Authorization: Bearer <token>` (either case of `Bearer`), trimmed; empty when
/// there is none.
pub fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned()
}

/// A JSON number as an exact decimal (`59.9`, `1e3`); `None` for anything else.
pub fn number(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s)).ok()
        }
        _ => None,
    }
}

/// A JSON number or a numeric string (`59.9`, `"59.90"`) as an exact decimal.
pub fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        other => number(other),
    }
}

/// A decimal as the JSON number a system writes (`119.8`).
pub fn to_number(d: Decimal) -> Value {
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(Value::Null)
}
