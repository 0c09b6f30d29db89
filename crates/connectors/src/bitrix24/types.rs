//! Bitrix24's JSON: `{"result", "total"?, "next"?, "time"}`, errors as `{"error","error_description"}`
//! (the code a string, empty, or a number), and batch maps that arrive as `[]` when empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::Value;

/// The success envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<T> {
    pub result: T,
    #[serde(default)]
    pub total: Option<u64>,
    /// The `start` of the next page, present while more pages exist.
    #[serde(default)]
    pub next: Option<u64>,
    #[serde(default)]
    pub time: Option<Value>,
}

/// The error envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    /// A string (`QUERY_LIMIT_EXCEEDED`, `expired_token`, `""`) or a number (catalog methods).
    #[serde(default)]
    pub error: Value,
    #[serde(default)]
    pub error_description: String,
}

impl ErrorBody {
    pub fn code(&self) -> String {
        match &self.error {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// A map that PHP serializes as `[]` when empty.
fn map_or_empty<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Array(a) if a.is_empty() => Ok(BTreeMap::new()),
        Value::Null => Ok(BTreeMap::new()),
        // A command list sent as an array comes back keyed by position.
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::from_value(v).map(|v| (i.to_string(), v)).map_err(serde::de::Error::custom))
            .collect(),
        other => serde_json::from_value(other).map_err(serde::de::Error::custom),
    }
}

/// `batch`'s inner result.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchResult {
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result_error: BTreeMap<String, ErrorBody>,
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result_total: BTreeMap<String, u64>,
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result_next: BTreeMap<String, u64>,
}

/// A `crm.product.*` product: upper-case keys, numbers as strings.
pub type CrmProduct = serde_json::Map<String, Value>;

/// A value Bitrix24 may send as a string or a number (ids, prices).
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
