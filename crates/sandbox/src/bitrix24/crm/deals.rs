//! `crm.deal.*` over the portal's deals: fields in Bitrix24's order, stages, `ORIGINATOR_ID` /
//! `ORIGIN_ID`, `UF_CRM_*` user fields, and product rows whose total sets the deal's
//! `OPPORTUNITY`.

use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::model::{Crm, MethodError, Outcome, Reply, UserField, id_param, money, stamp, stored, yes_no};
use crate::bitrix24::params::{get, text};
use crate::common::values::decimal;

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

impl Crm {
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

    pub(super) fn update_deal(&mut self, id: u64, fields: &Map<String, Value>, now: DateTime<FixedOffset>) -> Outcome {
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

    pub(super) fn set_rows(&mut self, params: &Map<String, Value>, now: DateTime<FixedOffset>) -> Outcome {
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
}

/// The sum of price × quantity over the rows; `None` past what a decimal holds.
fn rows_total(rows: Option<&Vec<Map<String, Value>>>) -> Option<Decimal> {
    rows.into_iter().flatten().try_fold(Decimal::ZERO, |sum, r| {
        let n = |k: &str| r.get(k).and_then(decimal).unwrap_or(Decimal::ZERO);
        n("PRICE").checked_mul(n("QUANTITY")).and_then(|line| sum.checked_add(line))
    })
}
