//! What the hub holds for each merchant (products waiting for approval, orders and their
//! status) and the rules it applies: body validation with per-field messages, one record per
//! `external_id`, edits refused from `in_transit` on, and statuses that only move forward.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::common::values::number;

/// The most images a product may carry (ponte's extension of the contract).
pub const MAX_IMAGES: usize = 10;
/// The longest image URL the hub takes.
const MAX_URL: usize = 2048;

/// The order statuses in the order they happen; `cancelled` sits apart.
pub const STATUSES: [&str; 5] = ["received", "in_packing_list", "awaiting_shipment", "in_transit", "delivered"];
pub const CANCELLED: &str = "cancelled";

/// One `{"field","message"}` of a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: &str) -> Self {
        Self { field: field.to_owned(), message: message.to_owned() }
    }
}

/// Why a status change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    UnknownStatus(String),
    NotForward { from: String, to: String },
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownStatus(s) => write!(f, "unknown status '{s}'"),
            Self::NotForward { from, to } => write!(f, "an order {from} cannot move to {to}"),
        }
    }
}

/// Where a status sits in the life cycle; `None` for `cancelled` and unknown ones.
pub fn rank(status: &str) -> Option<usize> {
    STATUSES.iter().position(|s| *s == status)
}

/// Whether `from → to` is allowed: forward only, `cancelled` only before `in_transit`.
pub fn allowed(from: &str, to: &str) -> Result<(), Transition> {
    let transit = rank("in_transit").unwrap_or(3);
    let ok = match (rank(from), to) {
        (Some(f), CANCELLED) => f < transit,
        (Some(f), next) => match rank(next) {
            Some(n) => n > f,
            None => return Err(Transition::UnknownStatus(next.to_owned())),
        },
        (None, _) => false,
    };
    if ok { Ok(()) } else { Err(Transition::NotForward { from: from.to_owned(), to: to.to_owned() }) }
}

/// The hub's data for one merchant (one API token).
#[derive(Debug, Clone, Default)]
pub struct Merchant {
    pub token: String,
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
    /// By id (`pr_…`).
    pub products: BTreeMap<String, Value>,
    /// By id (`o_…`).
    pub orders: BTreeMap<String, Value>,
}

impl Merchant {
    pub fn product_by_external(&self, external_id: &str) -> Option<&Value> {
        self.products.values().find(|p| p["external_id"] == external_id)
    }

    pub fn order_by_external(&self, external_id: &str) -> Option<&Value> {
        self.orders.values().find(|o| o["external_id"] == external_id)
    }
}

/// A text field given as a string, or as an integer (Bling ids often are).
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

struct Check<'a> {
    body: &'a Value,
    errors: Vec<FieldError>,
}

impl<'a> Check<'a> {
    fn at(&self, path: &str) -> &'a Value {
        path.split('.').fold(self.body, |v, k| match k.parse::<usize>() {
            Ok(i) if v.is_array() => &v[i],
            _ => &v[k],
        })
    }

    fn text(&mut self, path: &str, required: bool) -> Option<String> {
        let v = self.at(path);
        match v {
            Value::Null if !required => None,
            Value::Null => {
                self.errors.push(FieldError::new(path, "is required"));
                None
            }
            Value::String(s) if s.trim().is_empty() && required => {
                self.errors.push(FieldError::new(path, "is required"));
                None
            }
            Value::String(s) => Some(s.clone()),
            _ => {
                self.errors.push(FieldError::new(path, "must be a string"));
                None
            }
        }
    }

    fn id(&mut self, path: &str) -> Option<String> {
        let v = self.at(path);
        let out = id_text(v);
        if out.is_none() {
            let msg = if v.is_null() || v.as_str().is_some() { "is required" } else { "must be a string" };
            self.errors.push(FieldError::new(path, msg));
        }
        out
    }

    /// A JSON number at least zero (`positive`: above zero).
    fn amount(&mut self, path: &str, required: bool, positive: bool) -> Option<Decimal> {
        let v = self.at(path);
        if v.is_null() {
            if required {
                self.errors.push(FieldError::new(path, "is required"));
            }
            return None;
        }
        match number(v) {
            Some(d) if positive && d <= Decimal::ZERO => {
                self.errors.push(FieldError::new(path, "must be greater than 0"));
                None
            }
            Some(d) if d < Decimal::ZERO => {
                self.errors.push(FieldError::new(path, "must be greater than or equal to 0"));
                None
            }
            Some(d) => Some(d),
            None => {
                self.errors.push(FieldError::new(path, "must be a number"));
                None
            }
        }
    }
}

impl Check<'_> {
    /// `images`: at most [`MAX_IMAGES`] `{"url"}` objects, each an absolute http or https URL.
    /// The images to store (only their `url`); errors name `images[3].url`.
    fn images(&mut self) -> Vec<Value> {
        let list = match self.at("images") {
            Value::Null => return Vec::new(),
            Value::Array(list) => list,
            _ => {
                self.errors.push(FieldError::new("images", "must be a list of {\"url\"} objects"));
                return Vec::new();
            }
        };
        if list.len() > MAX_IMAGES {
            self.errors.push(FieldError::new("images", &format!("must have at most {MAX_IMAGES} images")));
            return Vec::new();
        }
        let mut images = Vec::new();
        for (i, image) in list.iter().enumerate() {
            let at = format!("images[{i}].url");
            let problem = match image.get("url") {
                _ if !image.is_object() => Some((format!("images[{i}]"), "must be an object with a url")),
                None | Some(Value::Null) => Some((at, "is required")),
                Some(Value::String(u)) if u.len() > MAX_URL => Some((at, "must be at most 2048 characters")),
                Some(Value::String(u)) if is_web_url(u) => {
                    images.push(json!({"url": u}));
                    None
                }
                Some(_) => Some((at, "must be an http or https URL")),
            };
            if let Some((field, message)) = problem {
                self.errors.push(FieldError::new(&field, message));
            }
        }
        images
    }
}

/// An absolute `http://` or `https://` URL with a host.
fn is_web_url(u: &str) -> bool {
    url::Url::parse(u)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
}

/// Checks a `POST /products` body; the product to store, or the field errors.
pub fn product(body: &Value) -> Result<Map<String, Value>, Vec<FieldError>> {
    if !body.is_object() {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    }
    let mut c = Check { body, errors: vec![] };
    let external_id = c.id("external_id");
    let sku = c.text("sku", true);
    let name = c.text("name", true);
    c.amount("price", true, false);
    let gtin = c.text("gtin", false).filter(|g| !g.is_empty());
    if let Some(g) = &gtin
        && !(matches!(g.len(), 8 | 12 | 13 | 14) && g.chars().all(|ch| ch.is_ascii_digit()))
    {
        c.errors.push(FieldError::new("gtin", "must be a GTIN of 8, 12, 13 or 14 digits"));
    }
    c.amount("weight_kg", false, true);
    if !c.at("dimensions_cm").is_null() {
        for d in ["width", "height", "depth"] {
            c.amount(&format!("dimensions_cm.{d}"), true, true);
        }
    }
    let images = c.images();
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let mut p = Map::new();
    p.insert("external_id".into(), json!(external_id));
    p.insert("sku".into(), json!(sku));
    p.insert("name".into(), json!(name));
    p.insert("price".into(), body["price"].clone());
    p.insert("gtin".into(), json!(gtin));
    p.insert("weight_kg".into(), body["weight_kg"].clone());
    p.insert("dimensions_cm".into(), body["dimensions_cm"].clone());
    p.insert("images".into(), Value::Array(images));
    Ok(p)
}

/// Checks a `POST /orders` / `PUT /orders/{id}` body; the fields to store, or the errors.
pub fn order(body: &Value) -> Result<Map<String, Value>, Vec<FieldError>> {
    if !body.is_object() {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    }
    let mut c = Check { body, errors: vec![] };
    let external_id = c.id("external_id");
    let number = c.id("number");
    c.text("store_ref", false);
    if !c.at("customer").is_object() {
        c.errors.push(FieldError::new("customer", "is required"));
    } else {
        c.text("customer.name", true);
        for f in ["document", "email", "phone"] {
            c.text(&format!("customer.{f}"), false);
        }
    }
    if !c.at("address").is_object() {
        c.errors.push(FieldError::new("address", "is required"));
    } else {
        for f in ["street", "number", "district", "city"] {
            c.text(&format!("address.{f}"), true);
        }
        c.text("address.complement", false);
        if let Some(uf) = c.text("address.state", true)
            && !(uf.len() == 2 && uf.chars().all(|ch| ch.is_ascii_alphabetic()))
        {
            c.errors.push(FieldError::new("address.state", "must be a two-letter UF"));
        }
        if let Some(zip) = c.text("address.zip", true) {
            let digits: String = zip.chars().filter(|ch| *ch != '-' && *ch != '.').collect();
            if !(digits.len() == 8 && digits.chars().all(|ch| ch.is_ascii_digit())) {
                c.errors.push(FieldError::new("address.zip", "must be an 8-digit CEP"));
            }
        }
    }
    match c.at("items") {
        Value::Array(items) if !items.is_empty() => {
            for i in 0..items.len() {
                let at = |f: &str| format!("items.{i}.{f}");
                c.id(&at("product_id"));
                c.id(&at("external_product_id"));
                c.text(&at("sku"), true);
                c.text(&at("name"), true);
                c.amount(&at("quantity"), true, true);
                c.amount(&at("unit_price"), true, false);
            }
        }
        Value::Array(_) => c.errors.push(FieldError::new("items", "must have at least one item")),
        Value::Null => c.errors.push(FieldError::new("items", "is required")),
        _ => c.errors.push(FieldError::new("items", "must be a list")),
    }
    c.amount("total", true, false);
    c.amount("shipping_cost", false, false);
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let mut o = Map::new();
    o.insert("external_id".into(), json!(external_id));
    o.insert("number".into(), json!(number));
    for f in ["store_ref", "customer", "address", "items", "total", "shipping_cost"] {
        o.insert(f.into(), body[f].clone());
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        assert!(allowed("received", "in_packing_list").is_ok());
        assert!(allowed("received", "in_transit").is_ok(), "a step may be skipped");
        assert!(allowed("in_transit", "awaiting_shipment").is_err());
        assert!(allowed("awaiting_shipment", CANCELLED).is_ok());
        assert!(allowed("in_transit", CANCELLED).is_err());
        assert!(allowed(CANCELLED, "delivered").is_err());
        assert_eq!(allowed("received", "lost"), Err(Transition::UnknownStatus("lost".into())));
    }

    #[test]
    fn order_errors_name_each_field() {
        let body = json!({"external_id": 123, "number": "9", "customer": {"name": ""},
            "address": {"street": "R", "number": "1", "district": "C", "city": "SP", "state": "São Paulo", "zip": "01001-000"},
            "items": [{"product_id": "pr_1", "external_product_id": "1", "sku": "A", "name": "A", "quantity": 0, "unit_price": 1.5}],
            "total": -1});
        let fields: Vec<String> = order(&body).unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["customer.name", "address.state", "items.0.quantity", "total"]);
    }
}
