//! The CRM's data and what every method shares: the portal's products (with their property
//! values), properties, deals, product rows and deal user fields, the method errors and replies,
//! and how `crm.*` values are read and written (numbers as strings, `Y`/`N`, time stamps).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::bitrix24::params::{get, id, text};

/// Rows per page of every list method; fixed by Bitrix24.
pub const PAGE: usize = 50;

/// The product catalog `crm.catalog.list` names; product properties hang off it.
pub const CATALOG_ID: u64 = 24;

/// A method's refusal: the HTTP status and the `error` / `error_description` pair.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodError {
    pub status: StatusCode,
    /// A string code, or `""` where Bitrix24 sends only a description.
    pub code: String,
    pub description: String,
}

impl MethodError {
    pub fn new(status: StatusCode, code: &str, description: &str) -> Self {
        Self { status, code: code.to_owned(), description: description.to_owned() }
    }

    /// `{"error":"","error_description":"Not found"}`: how `crm.*` answers a missing id.
    pub fn not_found() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "", "Not found")
    }

    pub(super) fn bad(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "", description)
    }
}

/// What a method answered, and the events the change raises.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub result: Value,
    pub total: Option<u64>,
    pub next: Option<u64>,
    pub events: Vec<(&'static str, u64)>,
}

impl Reply {
    pub(super) fn of(result: Value) -> Self {
        Self { result, total: None, next: None, events: vec![] }
    }

    pub(super) fn with_event(mut self, event: &'static str, id: u64) -> Self {
        self.events.push((event, id));
        self
    }
}

pub type Outcome = Result<Reply, MethodError>;

/// A custom product property (`PROPERTY_<id>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub id: u64,
    pub name: String,
    pub code: String,
    pub property_type: String,
    pub multiple: bool,
}

impl Property {
    pub(super) fn to_json(&self) -> Value {
        json!({"ID": self.id.to_string(), "IBLOCK_ID": CATALOG_ID.to_string(), "NAME": self.name, "ACTIVE": "Y",
               "SORT": "500", "CODE": self.code, "PROPERTY_TYPE": self.property_type,
               "MULTIPLE": if self.multiple { "Y" } else { "N" }, "USER_TYPE": null, "DEFAULT_VALUE": ""})
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Product {
    pub(super) fields: Map<String, Value>,
    /// Property id → its values, each with the `valueId` Bitrix24 gave it.
    pub(super) props: BTreeMap<u64, Vec<(u64, Value)>>,
}

/// A deal user field (`UF_CRM_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct UserField {
    pub id: u64,
    pub field_name: String,
    pub user_type_id: String,
}

#[derive(Debug, Default)]
pub struct Crm {
    pub(super) next_product: u64,
    pub(super) next_deal: u64,
    pub(super) next_row: u64,
    pub(super) next_value: u64,
    pub(super) next_property: u64,
    pub(super) next_user_field: u64,
    pub(super) products: BTreeMap<u64, Product>,
    pub(super) properties: BTreeMap<u64, Property>,
    pub(super) deals: BTreeMap<u64, Map<String, Value>>,
    pub(super) rows: BTreeMap<u64, Vec<Map<String, Value>>>,
    pub(super) user_fields: BTreeMap<u64, UserField>,
}

/// Formats a time as Bitrix24 does: ISO 8601 with the portal's offset, no fraction.
pub fn stamp(now: DateTime<FixedOffset>) -> String {
    now.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

pub(super) fn money(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// A stored `crm.*` value: numbers printed, booleans as `Y`/`N`, the rest as given.
pub(super) fn stored(v: &Value) -> Value {
    match v {
        Value::Number(_) | Value::Bool(_) => text(v).map_or(Value::Null, Value::String),
        other => other.clone(),
    }
}

pub(super) fn yes_no(v: &Value, field: &str) -> Result<Value, MethodError> {
    match text(v).as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("Y" | "TRUE" | "1") => Ok(json!("Y")),
        Some("N" | "FALSE" | "0" | "") => Ok(json!("N")),
        _ => Err(MethodError::bad(&format!("Field '{field}' must be Y or N."))),
    }
}

/// `fields` must be an object (or PHP's empty array).
pub(super) fn fields_param(params: &Map<String, Value>) -> Result<Map<String, Value>, MethodError> {
    match get(params, "fields") {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::Array(a)) if a.is_empty() => Ok(Map::new()),
        None => Ok(Map::new()),
        Some(_) => Err(MethodError::bad("Parameter 'fields' must be array.")),
    }
}

pub(super) fn id_param(params: &Map<String, Value>) -> Result<u64, MethodError> {
    get(params, "id").and_then(id).ok_or_else(|| MethodError::bad("ID is not defined or invalid."))
}

/// `PROPERTY_186` → `186`.
pub(super) fn property_id(key: &str) -> Option<u64> {
    key.strip_prefix("PROPERTY_").and_then(|n| n.parse().ok())
}

/// The symbolic code Bitrix24 derives from a name (lower case, `_` for the rest, 100 chars).
pub(super) fn symbolic_code(name: &str) -> String {
    let mut code: String =
        name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(100).collect();
    while code.contains("__") {
        code = code.replace("__", "_");
    }
    code.trim_matches('_').to_owned()
}

impl Crm {
    pub(super) fn next(counter: &mut u64) -> u64 {
        *counter += 1;
        *counter
    }
}
