//! The `crm.*` methods the portal answers, each dispatched to the data it reads or writes, and
//! the events a change raises.

use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value, json};

use super::{
    list::{Select, list, property_equalities},
    model::{CATALOG_ID, Crm, MethodError, Outcome, Reply, fields_param, id_param, property_id},
    products::{PRODUCT_FIELDS, PRODUCT_READ_ONLY},
};
use crate::bitrix24::params::text;

impl Crm {
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
