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
}
