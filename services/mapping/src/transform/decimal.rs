//! Numbers as `number_format` reads and writes them: decimal text in, decimal arithmetic, JSON
//! numbers out; never `f64` arithmetic.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Number, Value};

use super::check::clip;

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
pub(super) fn to_decimal(v: &Value) -> Result<Option<Decimal>, String> {
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
