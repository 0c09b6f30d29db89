//! Money and quantities on the wire: vendors send decimals as JSON numbers; ponte keeps them
//! as `rust_decimal::Decimal`, read from the number's own text so no binary-float error creeps in.

use std::str::FromStr;

use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serializer, de::Error};
use serde_json::Value;

fn parse(v: Value) -> Result<Decimal, String> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s)).map_err(|e| format!("{s}: {e}"))
        }
        Value::String(s) => Decimal::from_str(s.trim()).map_err(|e| format!("'{s}': {e}")),
        other => Err(format!("expected a number, got {other}")),
    }
}

/// `#[serde(with = "crate::json::decimal")]`.
pub mod decimal {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.to_f64().unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        parse(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// `#[serde(default, with = "crate::json::decimal_opt")]`.
pub mod decimal_opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.to_f64().unwrap_or_default()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => parse(v).map(Some).map_err(D::Error::custom),
        }
    }
}

/// `#[serde(with = "crate::json::decimal_text")]`: a decimal written as its text, as
/// Bitrix24's `crm.*` methods send numbers (`"59.90"`); read from text or a number.
pub mod decimal_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        parse(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// `#[serde(default, with = "crate::json::decimal_text_opt")]`: as [`decimal_text`]; `null`
/// and empty text read as `None`.
pub mod decimal_text_opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(d),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            v => parse(v).map(Some).map_err(D::Error::custom),
        }
    }
}

/// `#[serde(with = "crate::json::bling_id")]`: a Bling id, a positive number (or its text).
pub mod bling_id {
    use ponte_core::BlingId;

    use super::*;

    pub(super) fn read(v: Value) -> Result<Option<BlingId>, String> {
        let n = match &v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            Value::Null => return Ok(None),
            _ => None,
        };
        match n {
            Some(n) if n > 0 => Ok(BlingId::new(n)),
            Some(_) => Ok(None),
            None => Err(format!("{v} is not a Bling id")),
        }
    }

    pub fn serialize<S: Serializer>(id: &BlingId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(id.get())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BlingId, D::Error> {
        let v = Value::deserialize(d)?;
        let text = v.to_string();
        read(v)
            .and_then(|id| id.ok_or_else(|| format!("{text} is not a Bling id (a whole number greater than 0)")))
            .map_err(D::Error::custom)
    }
}

/// `#[serde(default, with = "crate::json::bling_id_opt")]`: an optional Bling id; `null` and
/// `0` (how Bling says "none" in some answers) read as `None`.
pub mod bling_id_opt {
    use ponte_core::BlingId;

    use super::*;

    pub fn serialize<S: Serializer>(id: &Option<BlingId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_i64(id.get()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BlingId>, D::Error> {
        bling_id::read(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Whether two values read as text say the same: the same text, or the same number however
/// it is written (`"59.90"` and `59.9`), compared as decimals, never as floats.
pub fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a == b || matches!((Decimal::from_str(a), Decimal::from_str(b)), (Ok(x), Ok(y)) if x == y)
}

/// A scalar as text (a number as written, a boolean as `true`/`false`); `None` for the rest.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct P {
        #[serde(with = "decimal")]
        preco: Decimal,
        #[serde(default, with = "decimal_opt")]
        custo: Option<Decimal>,
    }

    #[test]
    fn numbers_keep_their_decimal_text() {
        let p: P = serde_json::from_str(r#"{"preco": 0.1, "custo": "1500.75"}"#).unwrap();
        assert_eq!(p.preco, Decimal::new(1, 1));
        assert_eq!(p.custo, Some(Decimal::new(150075, 2)));
        let three: P = serde_json::from_str(r#"{"preco": 59.90}"#).unwrap();
        assert_eq!(three.preco * Decimal::from(3), Decimal::new(17970, 2));
        assert_eq!(serde_json::to_string(&three).unwrap(), r#"{"preco":59.9,"custo":null}"#);
        assert!(serde_json::from_str::<P>(r#"{"preco": true}"#).is_err());
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Row {
        #[serde(with = "decimal_text")]
        price: Decimal,
        #[serde(default, with = "decimal_text_opt")]
        total: Option<Decimal>,
        #[serde(with = "bling_id")]
        id: ponte_core::BlingId,
        #[serde(default, with = "bling_id_opt")]
        parent: Option<ponte_core::BlingId>,
    }

    #[test]
    fn text_numbers_and_bling_ids_read_either_way() {
        let r: Row =
            serde_json::from_str(r#"{"price": "59.90", "total": "", "id": "16059781281", "parent": 0}"#).unwrap();
        assert_eq!((r.price, r.total, r.id.get(), r.parent), (Decimal::new(5990, 2), None, 16_059_781_281, None));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"price":"59.90","total":null,"id":16059781281,"parent":null}"#
        );
        let r: Row = serde_json::from_str(r#"{"price": 10.5, "total": 3, "id": 7, "parent": 6}"#).unwrap();
        assert_eq!((r.total, r.parent.map(|p| p.get())), (Some(Decimal::from(3)), Some(6)));
        for bad in [r#"{"price": 1, "id": 0}"#, r#"{"price": 1, "id": "x"}"#, r#"{"price": 1, "id": 1, "parent": "x"}"#]
        {
            assert!(serde_json::from_str::<Row>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_compare_as_decimals() {
        assert!(same_text("59.90", "59.9") && same_text(" 2 ", "2.000") && same_text("Camiseta", "Camiseta"));
        assert!(!same_text("0.1", "0.10000000000000001") && !same_text("60", "59.99"));
        assert_eq!(scalar_text(&serde_json::json!(59.9)).as_deref(), Some("59.9"));
        assert_eq!(scalar_text(&serde_json::json!({"a": 1})), None);
    }
}
