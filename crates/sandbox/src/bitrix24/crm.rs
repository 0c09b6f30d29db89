//! The portal's CRM data and the `crm.*` methods over it: legacy products (`crm.product.*`,
//! with `XML_ID` and `PROPERTY_<n>` values), product properties, the product catalog, deals
//! (`crm.deal.*`, `ORIGINATOR_ID`/`ORIGIN_ID`, `UF_CRM_*` user fields) and their product rows.
//! Every number a `crm.*` method returns is a string, as Bitrix24's PHP core writes them.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, HashSet},
    str::FromStr,
};

use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::params::{get, id, text};

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

    fn bad(description: &str) -> Self {
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
    fn of(result: Value) -> Self {
        Self { result, total: None, next: None, events: vec![] }
    }

    fn with_event(mut self, event: &'static str, id: u64) -> Self {
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
    fn to_json(&self) -> Value {
        json!({"ID": self.id.to_string(), "IBLOCK_ID": CATALOG_ID.to_string(), "NAME": self.name, "ACTIVE": "Y",
               "SORT": "500", "CODE": self.code, "PROPERTY_TYPE": self.property_type,
               "MULTIPLE": if self.multiple { "Y" } else { "N" }, "USER_TYPE": null, "DEFAULT_VALUE": ""})
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Product {
    fields: Map<String, Value>,
    /// Property id → its values, each with the `valueId` Bitrix24 gave it.
    props: BTreeMap<u64, Vec<(u64, Value)>>,
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
    next_product: u64,
    next_deal: u64,
    next_row: u64,
    next_value: u64,
    next_property: u64,
    next_user_field: u64,
    products: BTreeMap<u64, Product>,
    properties: BTreeMap<u64, Property>,
    deals: BTreeMap<u64, Map<String, Value>>,
    rows: BTreeMap<u64, Vec<Map<String, Value>>>,
    user_fields: BTreeMap<u64, UserField>,
}

/// `crm.product` fields in the order Bitrix24 lists them.
const PRODUCT_FIELDS: [&str; 21] = [
    "ID",
    "CATALOG_ID",
    "PRICE",
    "CURRENCY_ID",
    "NAME",
    "CODE",
    "DESCRIPTION",
    "DESCRIPTION_TYPE",
    "ACTIVE",
    "SECTION_ID",
    "SORT",
    "VAT_ID",
    "VAT_INCLUDED",
    "MEASURE",
    "XML_ID",
    "PREVIEW_PICTURE",
    "DETAIL_PICTURE",
    "DATE_CREATE",
    "TIMESTAMP_X",
    "MODIFIED_BY",
    "CREATED_BY",
];
/// Set by the portal, never by a caller.
const PRODUCT_READ_ONLY: [&str; 5] = ["ID", "DATE_CREATE", "TIMESTAMP_X", "MODIFIED_BY", "CREATED_BY"];

/// `crm.deal` fields in the order Bitrix24 lists them.
const DEAL_FIELDS: [&str; 30] = [
    "ID",
    "TITLE",
    "TYPE_ID",
    "CATEGORY_ID",
    "STAGE_ID",
    "STAGE_SEMANTIC_ID",
    "IS_NEW",
    "PROBABILITY",
    "CURRENCY_ID",
    "OPPORTUNITY",
    "IS_MANUAL_OPPORTUNITY",
    "TAX_VALUE",
    "COMPANY_ID",
    "CONTACT_ID",
    "BEGINDATE",
    "CLOSEDATE",
    "OPENED",
    "CLOSED",
    "COMMENTS",
    "ASSIGNED_BY_ID",
    "CREATED_BY_ID",
    "MODIFY_BY_ID",
    "DATE_CREATE",
    "DATE_MODIFY",
    "SOURCE_ID",
    "SOURCE_DESCRIPTION",
    "ADDITIONAL_INFO",
    "LEAD_ID",
    "ORIGINATOR_ID",
    "ORIGIN_ID",
];
const DEAL_READ_ONLY: [&str; 7] =
    ["ID", "STAGE_SEMANTIC_ID", "IS_NEW", "CREATED_BY_ID", "MODIFY_BY_ID", "DATE_CREATE", "DATE_MODIFY"];

/// The default pipeline's stages; other pipelines prefix them with `C<n>:`.
pub const STAGES: [&str; 8] =
    ["NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE", "WON", "LOSE", "APOLOGY"];

/// Formats a time as Bitrix24 does: ISO 8601 with the portal's offset, no fraction.
pub fn stamp(now: DateTime<FixedOffset>) -> String {
    now.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// A decimal parameter (`59.9`, `"59.90"`); `None` when it is not a number.
fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            Decimal::from_str(&n.to_string()).or_else(|_| Decimal::from_scientific(&n.to_string())).ok()
        }
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

fn money(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// A stored `crm.*` value: numbers printed, booleans as `Y`/`N`, the rest as given.
fn stored(v: &Value) -> Value {
    match v {
        Value::Number(_) | Value::Bool(_) => text(v).map_or(Value::Null, Value::String),
        other => other.clone(),
    }
}

fn yes_no(v: &Value, field: &str) -> Result<Value, MethodError> {
    match text(v).as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("Y" | "TRUE" | "1") => Ok(json!("Y")),
        Some("N" | "FALSE" | "0" | "") => Ok(json!("N")),
        _ => Err(MethodError::bad(&format!("Field '{field}' must be Y or N."))),
    }
}

/// `fields` must be an object (or PHP's empty array).
fn fields_param(params: &Map<String, Value>) -> Result<Map<String, Value>, MethodError> {
    match get(params, "fields") {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::Array(a)) if a.is_empty() => Ok(Map::new()),
        None => Ok(Map::new()),
        Some(_) => Err(MethodError::bad("Parameter 'fields' must be array.")),
    }
}

fn id_param(params: &Map<String, Value>) -> Result<u64, MethodError> {
    get(params, "id").and_then(id).ok_or_else(|| MethodError::bad("ID is not defined or invalid."))
}

/// `PROPERTY_186` → `186`.
fn property_id(key: &str) -> Option<u64> {
    key.strip_prefix("PROPERTY_").and_then(|n| n.parse().ok())
}

/// The symbolic code Bitrix24 derives from a name (lower case, `_` for the rest, 100 chars).
fn symbolic_code(name: &str) -> String {
    let mut code: String =
        name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(100).collect();
    while code.contains("__") {
        code = code.replace("__", "_");
    }
    code.trim_matches('_').to_owned()
}

impl Crm {
    fn next(counter: &mut u64) -> u64 {
        *counter += 1;
        *counter
    }

    // ---- products -------------------------------------------------------------------------

    /// Applies `fields` to a product (new or existing), validating what Bitrix24 validates.
    fn write_product(
        &mut self,
        product: &mut Product,
        fields: &Map<String, Value>,
        now: DateTime<FixedOffset>,
    ) -> Result<(), MethodError> {
        for (key, value) in fields {
            let key = key.to_ascii_uppercase();
            if let Some(pid) = property_id(&key) {
                // Values of properties the catalog does not define are dropped, as Bitrix24 does.
                if let Some(prop) = self.properties.get(&pid).cloned() {
                    let values = self.write_property(product.props.remove(&pid).unwrap_or_default(), &prop, value);
                    if !values.is_empty() {
                        product.props.insert(pid, values);
                    }
                }
                continue;
            }
            if !PRODUCT_FIELDS.contains(&key.as_str()) || PRODUCT_READ_ONLY.contains(&key.as_str()) {
                continue;
            }
            let value = match key.as_str() {
                "PRICE" => match value {
                    Value::Null => Value::Null,
                    v => match decimal(v) {
                        Some(d) => json!(d.normalize().to_string()),
                        None => return Err(MethodError::bad("Field 'PRICE' must be a number.")),
                    },
                },
                "ACTIVE" | "VAT_INCLUDED" => yes_no(value, &key)?,
                _ => stored(value),
            };
            product.fields.insert(key, value);
        }
        if product.fields.get("NAME").and_then(Value::as_str).is_none_or(|n| n.trim().is_empty()) {
            return Err(MethodError::bad("Required fields: NAME"));
        }
        if product.fields.get("CODE").is_none_or(Value::is_null) {
            let code = symbolic_code(product.fields.get("NAME").and_then(Value::as_str).unwrap_or_default());
            product.fields.insert("CODE".into(), json!(code));
        }
        product.fields.insert("TIMESTAMP_X".into(), json!(stamp(now)));
        product.fields.insert("MODIFIED_BY".into(), json!("1"));
        Ok(())
    }

    /// A property write: `"x"`, `{"value":"x"}`, `{"valueId":7,"value":"x"}`, or a list of
    /// those; `{"value":{"remove":"Y"}}` (or an empty value) drops the value with that id.
    /// The written list replaces the property's values, keeping the ids it names.
    fn write_property(&mut self, old: Vec<(u64, Value)>, prop: &Property, written: &Value) -> Vec<(u64, Value)> {
        let items: Vec<Value> = match written {
            Value::Array(a) => a.clone(),
            Value::Object(m) if m.keys().all(|k| k.parse::<u64>().is_ok()) => m.values().cloned().collect(),
            other => vec![other.clone()],
        };
        let mut out = Vec::new();
        for item in items {
            let (value_id, value) = match &item {
                Value::Object(m) if m.contains_key("value") || m.contains_key("VALUE") => {
                    let v = m.get("value").or_else(|| m.get("VALUE")).cloned().unwrap_or(Value::Null);
                    (m.get("valueId").or_else(|| m.get("VALUE_ID")).and_then(id), v)
                }
                other => (None, other.clone()),
            };
            let removed = value.get("remove").and_then(text).is_some_and(|r| r == "Y");
            if removed || value.is_null() || value.as_str() == Some("") {
                continue;
            }
            let value_id = value_id
                .filter(|v| old.iter().any(|(o, _)| o == v))
                .unwrap_or_else(|| Self::next(&mut self.next_value));
            out.push((value_id, stored(&value)));
        }
        if !prop.multiple {
            out.truncate(1);
        }
        out
    }

    fn product_json(&self, p: &Product, select: &Select) -> Map<String, Value> {
        let mut out = Map::new();
        for f in PRODUCT_FIELDS {
            if select.wants(f) {
                out.insert(f.into(), p.fields.get(f).cloned().unwrap_or(Value::Null));
            }
        }
        for (pid, prop) in &self.properties {
            let key = format!("PROPERTY_{pid}");
            if !(select.all_properties || select.names.contains(&key)) {
                continue;
            }
            let values: Vec<Value> = p
                .props
                .get(pid)
                .map(|vs| vs.iter().map(|(vid, v)| json!({"valueId": vid.to_string(), "value": v})).collect())
                .unwrap_or_default();
            let v = match (prop.multiple, values.len()) {
                (_, 0) => Value::Null,
                (false, _) => values.into_iter().next().unwrap_or(Value::Null),
                (true, _) => Value::Array(values),
            };
            out.insert(key, v);
        }
        out
    }

    /// Adds a product; its id.
    pub fn add_product(&mut self, fields: &Map<String, Value>, now: DateTime<FixedOffset>) -> Result<u64, MethodError> {
        let mut p = Product::default();
        p.fields.insert("CATALOG_ID".into(), json!(CATALOG_ID.to_string()));
        p.fields.insert("CURRENCY_ID".into(), json!("BRL"));
        p.fields.insert("ACTIVE".into(), json!("Y"));
        p.fields.insert("DESCRIPTION_TYPE".into(), json!("text"));
        p.fields.insert("VAT_INCLUDED".into(), json!("N"));
        p.fields.insert("SORT".into(), json!("500"));
        p.fields.insert("CREATED_BY".into(), json!("1"));
        p.fields.insert("DATE_CREATE".into(), json!(stamp(now)));
        self.write_product(&mut p, fields, now)?;
        let id = Self::next(&mut self.next_product);
        p.fields.insert("ID".into(), json!(id.to_string()));
        self.products.insert(id, p);
        Ok(id)
    }

    fn update_product(&mut self, id: u64, fields: &Map<String, Value>, now: DateTime<FixedOffset>) -> Outcome {
        let mut p = self.products.get(&id).cloned().ok_or_else(MethodError::not_found)?;
        self.write_product(&mut p, fields, now)?;
        self.products.insert(id, p);
        Ok(Reply::of(json!(true)).with_event("ONCRMPRODUCTUPDATE", id))
    }

    /// Every product as `crm.product.get` shows it.
    pub fn products(&self) -> Vec<Map<String, Value>> {
        self.products.values().map(|p| self.product_json(p, &Select::everything())).collect()
    }

    pub fn product(&self, id: u64) -> Option<Map<String, Value>> {
        self.products.get(&id).map(|p| self.product_json(p, &Select::everything()))
    }

    pub fn define_property(&mut self, name: &str, code: &str, property_type: &str, multiple: bool) -> u64 {
        let id = Self::next(&mut self.next_property) + 100;
        self.properties.insert(
            id,
            Property {
                id,
                name: name.to_owned(),
                code: code.to_owned(),
                property_type: property_type.to_owned(),
                multiple,
            },
        );
        id
    }

    pub fn properties(&self) -> Vec<Property> {
        self.properties.values().cloned().collect()
    }

    // ---- deals ----------------------------------------------------------------------------

    fn write_deal(&self, deal: &mut Map<String, Value>, fields: &Map<String, Value>) -> Result<(), MethodError> {
        for (key, value) in fields {
            let key = key.to_ascii_uppercase();
            if key.starts_with("UF_CRM_") {
                // User fields exist only once created; others are ignored, as Bitrix24 does.
                if self.user_fields.values().any(|u| u.field_name == key) {
                    deal.insert(key, stored(value));
                }
                continue;
            }
            if key == "CONTACT_IDS" {
                let first = value.as_array().and_then(|a| a.first()).and_then(text);
                deal.insert("CONTACT_ID".into(), first.map_or(Value::Null, Value::String));
                continue;
            }
            if !DEAL_FIELDS.contains(&key.as_str()) || DEAL_READ_ONLY.contains(&key.as_str()) {
                continue;
            }
            let value = match key.as_str() {
                "OPPORTUNITY" | "TAX_VALUE" => match decimal(value) {
                    Some(d) => json!(money(d)),
                    None if value.is_null() => json!("0.00"),
                    None => return Err(MethodError::bad(&format!("Field '{key}' must be a number."))),
                },
                "IS_MANUAL_OPPORTUNITY" | "OPENED" | "CLOSED" => yes_no(value, &key)?,
                _ => stored(value),
            };
            deal.insert(key, value);
        }
        // The stage decides whether the deal is open, won or lost.
        let category = deal.get("CATEGORY_ID").and_then(text).unwrap_or_else(|| "0".into());
        let prefix = if category == "0" { String::new() } else { format!("C{category}:") };
        let stage = deal.get("STAGE_ID").and_then(text).unwrap_or_default();
        let stage = if stage.is_empty() { format!("{prefix}NEW") } else { stage };
        let bare = stage.rsplit(':').next().unwrap_or_default().to_owned();
        let semantic = match bare.as_str() {
            "WON" => "S",
            "LOSE" | "APOLOGY" => "F",
            _ => "P",
        };
        deal.insert("STAGE_ID".into(), json!(stage));
        deal.insert("STAGE_SEMANTIC_ID".into(), json!(semantic));
        deal.insert("CLOSED".into(), json!(if semantic == "P" { "N" } else { "Y" }));
        Ok(())
    }

    pub fn add_deal(&mut self, fields: &Map<String, Value>, now: DateTime<FixedOffset>) -> Result<u64, MethodError> {
        let id = self.next_deal + 1;
        let mut d = Map::new();
        for f in DEAL_FIELDS {
            d.insert(f.into(), Value::Null);
        }
        let today = now.format("%Y-%m-%dT00:00:00%:z").to_string();
        for (k, v) in [
            ("ID", json!(id.to_string())),
            ("TITLE", json!(format!("Deal #{id}"))),
            ("TYPE_ID", json!("SALE")),
            ("CATEGORY_ID", json!("0")),
            ("IS_NEW", json!("Y")),
            ("CURRENCY_ID", json!("BRL")),
            ("OPPORTUNITY", json!("0.00")),
            ("IS_MANUAL_OPPORTUNITY", json!("N")),
            ("TAX_VALUE", json!("0.00")),
            ("COMPANY_ID", json!("0")),
            ("BEGINDATE", json!(today)),
            ("CLOSEDATE", json!(today)),
            ("OPENED", json!("Y")),
            ("ASSIGNED_BY_ID", json!("1")),
            ("CREATED_BY_ID", json!("1")),
            ("MODIFY_BY_ID", json!("1")),
            ("DATE_CREATE", json!(stamp(now))),
            ("DATE_MODIFY", json!(stamp(now))),
        ] {
            d.insert(k.into(), v);
        }
        self.write_deal(&mut d, fields)?;
        self.next_deal = id;
        self.deals.insert(id, d);
        Ok(id)
    }

    fn update_deal(&mut self, id: u64, fields: &Map<String, Value>, now: DateTime<FixedOffset>) -> Outcome {
        let mut d = self.deals.get(&id).cloned().ok_or_else(MethodError::not_found)?;
        self.write_deal(&mut d, fields)?;
        d.insert("IS_NEW".into(), json!("N"));
        d.insert("DATE_MODIFY".into(), json!(stamp(now)));
        if d.get("IS_MANUAL_OPPORTUNITY").and_then(Value::as_str) != Some("Y") && self.rows.contains_key(&id) {
            // With automatic opportunity, the rows decide the amount, not the caller.
            if let Some(total) = rows_total(self.rows.get(&id)) {
                d.insert("OPPORTUNITY".into(), json!(money(total)));
            }
        }
        self.deals.insert(id, d);
        Ok(Reply::of(json!(true)).with_event("ONCRMDEALUPDATE", id))
    }

    pub fn deals(&self) -> Vec<Map<String, Value>> {
        self.deals.values().cloned().collect()
    }

    pub fn deal(&self, id: u64) -> Option<Map<String, Value>> {
        self.deals.get(&id).cloned()
    }

    pub fn deal_rows(&self, id: u64) -> Vec<Map<String, Value>> {
        self.rows.get(&id).cloned().unwrap_or_default()
    }

    fn set_rows(&mut self, params: &Map<String, Value>, now: DateTime<FixedOffset>) -> Outcome {
        let id = id_param(params)?;
        if !self.deals.contains_key(&id) {
            return Err(MethodError::not_found());
        }
        let given: Vec<Value> = match get(params, "rows") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Object(m)) => m.values().cloned().collect(),
            Some(_) => return Err(MethodError::bad("Parameter 'rows' must be array.")),
        };
        let mut rows = Vec::new();
        for (i, row) in given.iter().enumerate() {
            let Value::Object(r) = row else {
                return Err(MethodError::bad("Parameter 'rows' must be array."));
            };
            rows.push(self.row(id, i, r)?);
        }
        let Some(total) = rows_total(Some(&rows)) else {
            return Err(MethodError::new(
                StatusCode::BAD_REQUEST,
                "ERROR_CORE",
                "The rows add up to too large an amount<br>",
            ));
        };
        self.rows.insert(id, rows);
        let d = self.deals.get_mut(&id).ok_or_else(MethodError::not_found)?;
        if d.get("IS_MANUAL_OPPORTUNITY").and_then(Value::as_str) != Some("Y") {
            d.insert("OPPORTUNITY".into(), json!(money(total)));
        }
        d.insert("DATE_MODIFY".into(), json!(stamp(now)));
        Ok(Reply::of(json!(true)).with_event("ONCRMDEALUPDATE", id))
    }

    /// One product row, checked the way `crm.deal.productrows.set` checks it (`ERROR_CORE`
    /// with an HTML line break, as the PHP core joins its messages).
    fn row(&mut self, deal: u64, index: usize, r: &Map<String, Value>) -> Result<Map<String, Value>, MethodError> {
        let core = |msg: &str| MethodError::new(StatusCode::BAD_REQUEST, "ERROR_CORE", &format!("{msg}<br>"));
        let field = |name: &str| r.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let num = |name: &str, default: Decimal| -> Result<Decimal, MethodError> {
            match field(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => decimal(v).ok_or_else(|| core(&format!("Field {name} must be a number"))),
            }
        };
        let product_id = match field("PRODUCT_ID") {
            None | Some(Value::Null) => 0,
            Some(v) => text(v).and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(|| core("Invalid PRODUCT_ID"))?,
        };
        let price = num("PRICE", Decimal::ZERO)?;
        let quantity = num("QUANTITY", Decimal::ONE)?;
        if quantity <= Decimal::ZERO {
            return Err(core("Quantity must be greater than zero"));
        }
        let discount_type = match field("DISCOUNT_TYPE_ID").and_then(text) {
            None => None,
            Some(t) if t == "1" || t == "2" => Some(t),
            Some(_) => return Err(core("Invalid discount type")),
        };
        let rate = field("DISCOUNT_RATE").filter(|v| !v.is_null());
        let sum = field("DISCOUNT_SUM").filter(|v| !v.is_null());
        match discount_type.as_deref() {
            Some("2") if rate.is_none() => {
                return Err(core("Discount Rate is required if Percentage Discount Type is defined"));
            }
            Some("1") if sum.is_none() => {
                return Err(core("Discount Sum is required if Monetary Discount Type is defined"));
            }
            _ => {}
        }
        let discount_sum = num("DISCOUNT_SUM", Decimal::ZERO)?;
        let discount_rate = num("DISCOUNT_RATE", Decimal::ZERO)?;
        let name = field("PRODUCT_NAME")
            .and_then(text)
            .filter(|n| !n.is_empty())
            .or_else(|| self.products.get(&product_id).and_then(|p| p.fields.get("NAME")).and_then(text));
        let Some(name) = name else {
            return Err(core("Product name is required"));
        };
        let tax_rate = field("TAX_RATE").and_then(decimal);
        let netto = price.checked_add(discount_sum).ok_or_else(|| core("Price is too large"))?;
        let s = |d: Decimal| json!(d.normalize().to_string());
        let row_id = Self::next(&mut self.next_row);
        let mut out = Map::new();
        for (k, v) in [
            ("ID", json!(row_id.to_string())),
            ("OWNER_ID", json!(deal.to_string())),
            ("OWNER_TYPE", json!("D")),
            ("PRODUCT_ID", json!(product_id.to_string())),
            ("PRODUCT_NAME", json!(name)),
            ("ORIGINAL_PRODUCT_NAME", json!(name)),
            ("PRICE", s(price)),
            ("PRICE_ACCOUNT", s(price)),
            ("PRICE_EXCLUSIVE", s(price)),
            ("PRICE_NETTO", s(netto)),
            ("PRICE_BRUTTO", s(netto)),
            ("QUANTITY", s(quantity)),
            ("DISCOUNT_TYPE_ID", json!(discount_type.unwrap_or_else(|| "2".into()))),
            ("DISCOUNT_RATE", s(discount_rate)),
            ("DISCOUNT_SUM", s(discount_sum)),
            ("TAX_RATE", tax_rate.map_or(Value::Null, s)),
            ("TAX_INCLUDED", field("TAX_INCLUDED").map_or(Ok(json!("N")), |v| yes_no(v, "TAX_INCLUDED"))?),
            ("CUSTOMIZED", json!("Y")),
            ("MEASURE_CODE", field("MEASURE_CODE").map_or(json!("796"), stored)),
            ("MEASURE_NAME", field("MEASURE_NAME").map_or(json!("un"), stored)),
            ("SORT", field("SORT").map_or(json!(((index + 1) * 10).to_string()), stored)),
        ] {
            out.insert(k.into(), v);
        }
        Ok(out)
    }

    pub fn add_user_field(&mut self, fields: &Map<String, Value>) -> Result<u64, MethodError> {
        let name = fields.get("FIELD_NAME").and_then(text).unwrap_or_default().to_ascii_uppercase();
        if name.is_empty() {
            return Err(MethodError::new(StatusCode::BAD_REQUEST, "ERROR_CORE", "Field name is required<br>"));
        }
        let name = if name.starts_with("UF_CRM_") { name } else { format!("UF_CRM_{name}") };
        if self.user_fields.values().any(|u| u.field_name == name) {
            return Err(MethodError::new(
                StatusCode::BAD_REQUEST,
                "ERROR_CORE",
                &format!("A field with the name {name} already exists<br>"),
            ));
        }
        let user_type_id = fields.get("USER_TYPE_ID").and_then(text).unwrap_or_else(|| "string".into());
        let id = Self::next(&mut self.next_user_field) + 200;
        self.user_fields.insert(id, UserField { id, field_name: name.clone(), user_type_id });
        // Deals carry the new field from now on, empty until written.
        for d in self.deals.values_mut() {
            d.entry(name.clone()).or_insert(Value::Null);
        }
        Ok(id)
    }

    // ---- methods --------------------------------------------------------------------------

    /// Runs one `crm.*` method. `Err` carries Bitrix24's own status and error body.
    pub fn call(&mut self, method: &str, params: &Map<String, Value>, now: DateTime<FixedOffset>) -> Outcome {
        match method {
            "crm.product.add" => {
                let id = self.add_product(&fields_param(params)?, now)?;
                Ok(Reply::of(json!(id)).with_event("ONCRMPRODUCTADD", id))
            }
            "crm.product.update" => {
                let id = id_param(params)?;
                self.update_product(id, &fields_param(params)?, now)
            }
            "crm.product.get" => {
                let id = id_param(params)?;
                self.product(id).map(|p| Reply::of(Value::Object(p))).ok_or_else(MethodError::not_found)
            }
            "crm.product.delete" => {
                let id = id_param(params)?;
                self.products.remove(&id).ok_or_else(MethodError::not_found)?;
                Ok(Reply::of(json!(true)).with_event("ONCRMPRODUCTDELETE", id))
            }
            "crm.product.list" => {
                let select = Select::parse(params, &[])?;
                let wanted = property_equalities(params);
                let rows: Vec<Map<String, Value>> = self
                    .products
                    .values()
                    .filter(|p| wanted.iter().all(|(pid, values)| p.may_hold(*pid, values)))
                    .map(|p| self.product_json(p, &Select::everything()))
                    .collect();
                list(rows, params, |row| {
                    let mut out = Map::new();
                    for f in PRODUCT_FIELDS {
                        if select.wants(f) {
                            out.insert(f.into(), row.get(f).cloned().unwrap_or(Value::Null));
                        }
                    }
                    for (k, v) in row {
                        if property_id(k).is_some() && (select.all_properties || select.names.contains(k)) {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                    out
                })
            }
            "crm.product.fields" => {
                let mut m = Map::new();
                for f in PRODUCT_FIELDS {
                    let read_only = PRODUCT_READ_ONLY.contains(&f);
                    m.insert(
                        f.into(),
                        json!({"type": "string", "isRequired": f == "NAME", "isReadOnly": read_only, "title": f}),
                    );
                }
                for p in self.properties.values() {
                    m.insert(
                        format!("PROPERTY_{}", p.id),
                        json!({"type": "product_property", "isRequired": false, "isReadOnly": false,
                               "isMultiple": p.multiple, "title": p.name, "propertyType": p.property_type}),
                    );
                }
                Ok(Reply::of(Value::Object(m)))
            }
            "crm.product.property.add" => {
                let fields = fields_param(params)?;
                let name = fields.get("NAME").and_then(text).unwrap_or_default();
                if name.trim().is_empty() {
                    return Err(MethodError::bad("Required fields: NAME"));
                }
                let code = fields.get("CODE").and_then(text).unwrap_or_default();
                let kind = fields.get("PROPERTY_TYPE").and_then(text).unwrap_or_else(|| "S".into());
                let multiple = fields.get("MULTIPLE").and_then(text).is_some_and(|m| m == "Y");
                Ok(Reply::of(json!(self.define_property(&name, &code, &kind, multiple))))
            }
            "crm.product.property.get" => {
                let id = id_param(params)?;
                self.properties.get(&id).map(|p| Reply::of(p.to_json())).ok_or_else(MethodError::not_found)
            }
            "crm.product.property.list" => {
                let rows: Vec<Map<String, Value>> = self
                    .properties
                    .values()
                    .filter_map(|p| match p.to_json() {
                        Value::Object(m) => Some(m),
                        _ => None,
                    })
                    .collect();
                list(rows, params, Clone::clone)
            }
            "crm.catalog.list" => {
                let catalog = json!({"ID": CATALOG_ID.to_string(), "NAME": "Catálogo de produtos CRM",
                                     "ORIGINATOR_ID": null, "ORIGIN_ID": null, "XML_ID": "crm_external_products"});
                Ok(Reply { result: json!([catalog]), total: Some(1), next: None, events: vec![] })
            }
            "crm.deal.add" => {
                let id = self.add_deal(&fields_param(params)?, now)?;
                Ok(Reply::of(json!(id)).with_event("ONCRMDEALADD", id))
            }
            "crm.deal.update" => {
                let id = id_param(params)?;
                self.update_deal(id, &fields_param(params)?, now)
            }
            "crm.deal.get" => {
                let id = id_param(params)?;
                self.deal(id).map(|d| Reply::of(Value::Object(d))).ok_or_else(MethodError::not_found)
            }
            "crm.deal.delete" => {
                let id = id_param(params)?;
                self.deals.remove(&id).ok_or_else(MethodError::not_found)?;
                self.rows.remove(&id);
                Ok(Reply::of(json!(true)).with_event("ONCRMDEALDELETE", id))
            }
            "crm.deal.list" => {
                // Deals list every standard field and every user field unless told otherwise.
                let select = Select::parse(params, &["*", "UF_*"])?;
                let rows: Vec<Map<String, Value>> = self.deals.values().cloned().collect();
                list(rows, params, |row| {
                    row.iter()
                        .filter(|(k, _)| {
                            if k.starts_with("UF_") {
                                select.all_user_fields || select.names.contains(*k)
                            } else {
                                select.wants(k)
                            }
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
            }
            "crm.deal.productrows.set" => self.set_rows(params, now),
            "crm.deal.productrows.get" => {
                let id = id_param(params)?;
                if !self.deals.contains_key(&id) {
                    return Err(MethodError::not_found());
                }
                Ok(Reply::of(Value::Array(self.deal_rows(id).into_iter().map(Value::Object).collect())))
            }
            "crm.deal.userfield.add" => Ok(Reply::of(json!(self.add_user_field(&fields_param(params)?)?))),
            "crm.deal.userfield.list" => {
                let rows: Vec<Map<String, Value>> = self
                    .user_fields
                    .values()
                    .map(|u| {
                        let v = json!({"ID": u.id.to_string(), "ENTITY_ID": "CRM_DEAL", "FIELD_NAME": u.field_name,
                                       "USER_TYPE_ID": u.user_type_id, "MULTIPLE": "N", "MANDATORY": "N"});
                        v.as_object().cloned().unwrap_or_default()
                    })
                    .collect();
                list(rows, params, Clone::clone)
            }
            _ => Err(MethodError::new(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!")),
        }
    }

    /// Whether `method` is one this portal serves.
    pub fn knows(method: &str) -> bool {
        KNOWN.contains(&method)
    }
}

/// Every `crm.*` method [`Crm::call`] answers.
const KNOWN: [&str; 19] = [
    "crm.product.add",
    "crm.product.update",
    "crm.product.get",
    "crm.product.delete",
    "crm.product.list",
    "crm.product.fields",
    "crm.product.property.add",
    "crm.product.property.get",
    "crm.product.property.list",
    "crm.catalog.list",
    "crm.deal.add",
    "crm.deal.update",
    "crm.deal.get",
    "crm.deal.delete",
    "crm.deal.list",
    "crm.deal.productrows.set",
    "crm.deal.productrows.get",
    "crm.deal.userfield.add",
    "crm.deal.userfield.list",
];

/// The sum of price × quantity over the rows; `None` past what a decimal holds.
fn rows_total(rows: Option<&Vec<Map<String, Value>>>) -> Option<Decimal> {
    rows.into_iter().flatten().try_fold(Decimal::ZERO, |sum, r| {
        let n = |k: &str| r.get(k).and_then(decimal).unwrap_or(Decimal::ZERO);
        n("PRICE").checked_mul(n("QUANTITY")).and_then(|line| sum.checked_add(line))
    })
}

/// The fields a list asks for.
#[derive(Debug, Clone, Default)]
pub struct Select {
    standard: bool,
    all_properties: bool,
    all_user_fields: bool,
    names: Vec<String>,
}

impl Select {
    fn everything() -> Self {
        Self { standard: true, all_properties: true, all_user_fields: true, names: vec![] }
    }

    fn parse(params: &Map<String, Value>, default: &[&str]) -> Result<Self, MethodError> {
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

    fn wants(&self, field: &str) -> bool {
        // Bitrix24 answers the id with every row, whatever the select.
        field == "ID" || (self.standard && !field.starts_with("UF_")) || self.names.iter().any(|n| n == field)
    }
}

/// Filters, orders and pages `rows`, then shapes each with `project`.
fn list(
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
struct Condition {
    op: &'static str,
    field: String,
}

/// Filter operators, longest first so `>=` is not read as `>`.
const OPERATORS: [&str; 15] = ["!=%", "!%=", ">=", "<=", "!@", "=%", "%=", "!%", "!=", ">", "<", "@", "%", "=", "!"];

impl Condition {
    fn parse(key: &str) -> Self {
        for op in OPERATORS {
            if let Some(field) = key.strip_prefix(op) {
                return Self { op, field: field.to_ascii_uppercase() };
            }
        }
        Self { op: "=", field: key.to_ascii_uppercase() }
    }

    fn matches(&self, row: &Map<String, Value>, want: &Value) -> bool {
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
fn equality_key(s: &str) -> String {
    Decimal::from_str(s).map(|d| d.normalize().to_string()).unwrap_or_else(|_| s.to_owned())
}

/// The `=` and `@` conditions of a list's filter on product properties, as (property id, the
/// values one of which it must hold): a cheap first pass over the raw products, so a look-up
/// by property in a large catalog does not render every product. [`Condition::matches`] still
/// decides on what passes.
fn property_equalities(params: &Map<String, Value>) -> Vec<(u64, HashSet<String>)> {
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

impl Product {
    /// Whether property `pid` may equal one of `values` (keys of [`equality_key`]).
    fn may_hold(&self, pid: u64, values: &HashSet<String>) -> bool {
        self.props.get(&pid).is_some_and(|vs| {
            vs.iter().any(|(_, v)| values_of(Some(v)).iter().any(|h| values.contains(&equality_key(h))))
        })
    }
}

/// A field's values as text: one for a plain field, each value of a property.
fn values_of(v: Option<&Value>) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<FixedOffset> {
        FixedOffset::west_opt(3 * 3600).and_then(|o| o.with_ymd_and_hms(2026, 3, 2, 11, 5, 11).single()).unwrap()
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn filters_understand_the_documented_prefixes() {
        let row = params(json!({"ID": "12", "NAME": "Camiseta Azul", "XML_ID": "bling-1", "PRICE": "59.9"}));
        let m = |k: &str, v: Value| Condition::parse(k).matches(&row, &v);
        assert!(m("XML_ID", json!("bling-1")) && !m("XML_ID", json!("bling-10")));
        assert!(m(">ID", json!(11)) && !m(">ID", json!("12")) && m(">=ID", json!("12")));
        assert!(m("@ID", json!(["1", "12"])) && m("!@ID", json!(["1", "2"])));
        assert!(m("%NAME", json!("azul")) && m("=%NAME", json!("Cami%")) && !m("=%NAME", json!("Azul%")));
        assert!(m("!XML_ID", json!("x")) && m("PRICE", json!(59.90)));
        assert!(m("=DESCRIPTION", json!("")), "an empty value matches an unset field");
    }

    #[test]
    fn property_values_keep_their_ids_and_can_be_removed() {
        let mut crm = Crm::default();
        let pid = crm.define_property("Bling ID", "BLING_ID", "S", true);
        let key = format!("PROPERTY_{pid}");
        let id = crm.add_product(&params(json!({"NAME": "A", key.clone(): [{"valueId": 0, "value": "x"}]})), now());
        let id = id.unwrap();
        let first = crm.product(id).unwrap()[&key].clone();
        let vid = first[0]["valueId"].clone();
        crm.update_product(
            id,
            &params(json!({key.clone(): [{"valueId": vid, "value": "y"}, {"valueId": 0, "value": "z"}]})),
            now(),
        )
        .unwrap();
        let after = crm.product(id).unwrap()[&key].clone();
        assert_eq!(after[0], json!({"valueId": vid, "value": "y"}));
        assert_eq!(after[1]["value"], "z");
        crm.update_product(id, &params(json!({key.clone(): [{"valueId": vid, "value": {"remove": "Y"}}]})), now())
            .unwrap();
        assert_eq!(crm.product(id).unwrap()[&key], Value::Null);
    }

    #[test]
    fn rows_set_the_opportunity_in_decimals() {
        let mut crm = Crm::default();
        let deal = crm.add_deal(&Map::new(), now()).unwrap();
        let p = params(json!({"id": deal, "rows": [{"PRODUCT_NAME": "A", "PRICE": 59.9, "QUANTITY": 2},
                                                   {"PRODUCT_NAME": "B", "PRICE": "0.1", "QUANTITY": "3"}]}));
        crm.call("crm.deal.productrows.set", &p, now()).unwrap();
        assert_eq!(crm.deal(deal).unwrap()["OPPORTUNITY"], "120.10");
        let huge = params(json!({"id": deal, "rows": [{"PRODUCT_NAME": "A", "PRICE": 1e27, "QUANTITY": 1e27}]}));
        let e = crm.call("crm.deal.productrows.set", &huge, now()).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.description.as_str()),
            ("ERROR_CORE", "The rows add up to too large an amount<br>")
        );
        assert_eq!(crm.deal_rows(deal).len(), 2, "a refused set keeps the rows");
    }
}
