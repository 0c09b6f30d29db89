//! Conversions between JSON and `google.protobuf.Struct`, the form product fields travel in
//! between services.

use prost_types::{ListValue, Struct, Value as PValue, value::Kind};
use serde_json::{Map, Number, Value};

/// A JSON object as a `Struct` (non-objects become an empty struct).
pub fn to_struct(v: &Value) -> Struct {
    match v {
        Value::Object(m) => Struct { fields: m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect() },
        _ => Struct::default(),
    }
}

pub fn to_value(v: &Value) -> PValue {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(ListValue { values: a.iter().map(to_value).collect() }),
        Value::Object(_) => Kind::StructValue(to_struct(v)),
    };
    PValue { kind: Some(kind) }
}

/// A `Struct` as a JSON object. Whole numbers come back as integers (Bling ids do not fit a
/// float's exact range above 2^53, so ids should travel as strings).
pub fn from_struct(s: &Struct) -> Value {
    Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), from_value(v))).collect::<Map<_, _>>())
}

pub fn from_value(v: &PValue) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::Number(Number::from(*n as i64)),
        Some(Kind::NumberValue(n)) => Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_value).collect()),
        Some(Kind::StructValue(s)) => from_struct(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_struct() {
        let v = serde_json::json!({"id": "16059781281", "nome": "Camiseta", "preco": 59.9, "estoque": {"minimo": 2},
            "ativo": true, "tags": ["a", 1], "nada": null});
        assert_eq!(from_struct(&to_struct(&v)), v);
    }
}
