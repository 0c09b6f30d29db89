//! `crm.product.*` over the portal's products: fields in Bitrix24's order, `XML_ID`, the
//! symbolic `CODE` derived from the name, `PROPERTY_<n>` values that keep their `valueId`, and
//! product properties.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value, json};

use super::{
    list::{Select, equality_key, values_of},
    model::{
        CATALOG_ID, Crm, MethodError, Outcome, Product, Property, Reply, property_id, stamp, stored, symbolic_code,
        yes_no,
    },
};
use crate::bitrix24::params::{id, text};
use crate::common::values::decimal;

/// `crm.product` fields in the order Bitrix24 lists them.
pub(super) const PRODUCT_FIELDS: [&str; 21] = [
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
pub(super) const PRODUCT_READ_ONLY: [&str; 5] = ["ID", "DATE_CREATE", "TIMESTAMP_X", "MODIFIED_BY", "CREATED_BY"];

impl Crm {
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

    pub(super) fn product_json(&self, p: &Product, select: &Select) -> Map<String, Value> {
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

    pub(super) fn update_product(
        &mut self,
        id: u64,
        fields: &Map<String, Value>,
        now: DateTime<FixedOffset>,
    ) -> Outcome {
        let mut p = self.products.get(&id).cloned().ok_or_else(MethodError::not_found)?;
        self.write_product(&mut p, fields, now)?;
        self.products.insert(id, p);
        Ok(Reply::of(json!(true)).with_event("ONCRMPRODUCTUPDATE", id))
    }

    /// Every product as `crm.product.get` shows it.
    /// Product, deal and row ids from now on start after `first` (a portal that must not
    /// hand out the ids an earlier one did).
    pub fn start_ids_at(&mut self, first: u64) {
        for next in [&mut self.next_product, &mut self.next_deal, &mut self.next_row] {
            *next = (*next).max(first);
        }
    }

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
}

impl Product {
    /// Whether property `pid` may equal one of `values` (keys of [`equality_key`]).
    pub(super) fn may_hold(&self, pid: u64, values: &HashSet<String>) -> bool {
        self.props.get(&pid).is_some_and(|vs| {
            vs.iter().any(|(_, v)| values_of(Some(v)).iter().any(|h| values.contains(&equality_key(h))))
        })
    }
}
