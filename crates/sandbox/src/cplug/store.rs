//! What CPLUG holds for each account: the products ponte upserts (by Bling id), checked field
//! by field with Laravel-style messages, and the sales rung up at the till, with amounts kept
//! as decimals and written with two places.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};

use crate::common::values::decimal;

/// Field → messages: the `errors` of a 422.
pub type Errors = BTreeMap<String, Vec<String>>;

fn push(errors: &mut Errors, field: &str, message: String) {
    errors.entry(field.to_owned()).or_default().push(message);
}

fn human(field: &str) -> String {
    field.replace('_', " ")
}

/// Checks one product for `PUT /products/{external_id}` (or one bulk item, whose
/// `external_id` comes from the body).
pub fn product(body: &Value, external_id: &str) -> Result<Map<String, Value>, Errors> {
    let mut errors = Errors::new();
    let Value::Object(m) = body else {
        push(&mut errors, "product", "The product must be an object.".into());
        return Err(errors);
    };
    if external_id.trim().is_empty() {
        push(&mut errors, "external_id", "The external id field is required.".into());
    }
    match m.get("external_id") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_str() == Some(external_id) || v.as_u64().is_some_and(|n| n.to_string() == external_id) => {}
        Some(_) => push(&mut errors, "external_id", "The external id must match the URL.".into()),
    }
    for field in ["sku", "name", "unit"] {
        match m.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                if s.chars().count() > 255 {
                    push(&mut errors, field, format!("The {} may not be greater than 255 characters.", human(field)));
                }
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {
                push(&mut errors, field, format!("The {} field is required.", human(field)));
            }
            Some(_) => push(&mut errors, field, format!("The {} must be a string.", human(field))),
        }
    }
    match m.get("price") {
        None | Some(Value::Null) => push(&mut errors, "price", "The price field is required.".into()),
        Some(v @ Value::Number(_)) => match decimal(v) {
            Some(d) if d < Decimal::ZERO => push(&mut errors, "price", "The price must be at least 0.".into()),
            Some(d) if d.normalize().scale() > 2 => {
                push(&mut errors, "price", "The price must have at most 2 decimal places.".into());
            }
            Some(_) => {}
            None => push(&mut errors, "price", "The price must be a number.".into()),
        },
        Some(_) => push(&mut errors, "price", "The price must be a number.".into()),
    }
    match m.get("active") {
        Some(Value::Bool(_)) => {}
        None | Some(Value::Null) => push(&mut errors, "active", "The active field is required.".into()),
        Some(_) => push(&mut errors, "active", "The active field must be true or false.".into()),
    }
    match m.get("parent_external_id") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(_) => push(&mut errors, "parent_external_id", "The parent external id must be a string.".into()),
    }
    if m.get("parent_external_id").and_then(Value::as_str) == Some(external_id) && !external_id.is_empty() {
        push(&mut errors, "parent_external_id", "A product cannot be its own parent.".into());
    }
    match m.get("variation") {
        None | Some(Value::Null) => {}
        Some(Value::Object(v)) => {
            if v.get("name").and_then(Value::as_str).is_none_or(|n| n.trim().is_empty()) {
                push(&mut errors, "variation.name", "The variation.name field is required.".into());
            }
            match v.get("attributes") {
                None | Some(Value::Null) => {}
                Some(Value::Object(a)) if a.values().all(Value::is_string) => {}
                Some(_) => push(
                    &mut errors,
                    "variation.attributes",
                    "The variation.attributes must be an object of texts.".into(),
                ),
            }
        }
        Some(_) => push(&mut errors, "variation", "The variation must be an object.".into()),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut p = Map::new();
    p.insert("external_id".into(), json!(external_id));
    for f in ["sku", "name", "price", "active", "unit"] {
        p.insert(f.into(), m.get(f).cloned().unwrap_or(Value::Null));
    }
    let parent = m.get("parent_external_id").and_then(Value::as_str).filter(|s| !s.is_empty());
    p.insert("parent_external_id".into(), json!(parent));
    p.insert("variation".into(), m.get("variation").cloned().unwrap_or(Value::Null));
    Ok(p)
}

/// One line of a sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleItem {
    pub sku: String,
    pub name: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub discount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub method: String,
    pub method_name: String,
    pub amount: Decimal,
    pub installments: u32,
}

/// A sale rung up at the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub id: String,
    pub store_id: String,
    pub register_id: String,
    pub number: u64,
    pub customer: Option<Value>,
    pub items: Vec<SaleItem>,
    pub payments: Vec<Payment>,
    pub discount: Decimal,
    pub total: Decimal,
    pub cancelled: bool,
}

/// A decimal written as a bare JSON number with `places` decimals (see [`to_json_text`]).
fn exact(d: Decimal, places: Option<u32>) -> Value {
    let s = match places {
        Some(p) => format!("{:.*}", p as usize, d.round_dp(p)),
        None => d.normalize().to_string(),
    };
    Value::String(format!("{MARK}{s}"))
}

/// Marks a string that [`to_json_text`] writes as a bare number: serde_json has no way to
/// write `119.80` (it would write `119.8`), and CPLUG's amounts carry two places.
const MARK: char = '\u{1}';

/// Serializes `v`, writing marked strings as the numbers they hold.
pub fn to_json_text(v: &Value) -> String {
    let raw = v.to_string();
    let marker = "\"\\u0001";
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        let after = &rest[at + marker.len()..];
        let end = after.find('"').unwrap_or(after.len());
        out.push_str(&after[..end]);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

impl Sale {
    /// The contract's `sale` object, amounts marked for [`to_json_text`].
    pub fn to_json(&self) -> Value {
        let money = |d: Decimal| exact(d, Some(2));
        let mut s = Map::new();
        s.insert("id".into(), json!(self.id));
        s.insert("store_id".into(), json!(self.store_id));
        s.insert("register_id".into(), json!(self.register_id));
        s.insert("number".into(), json!(self.number));
        if let Some(c) = &self.customer {
            s.insert("customer".into(), c.clone());
        }
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                json!({"sku": i.sku, "quantity": exact(i.quantity, None), "unit_price": money(i.unit_price),
                       "discount": money(i.discount), "name": i.name})
            })
            .collect();
        s.insert("items".into(), Value::Array(items));
        let payments: Vec<Value> = self
            .payments
            .iter()
            .map(|p| {
                json!({"method": p.method, "method_name": p.method_name, "amount": money(p.amount),
                       "installments": p.installments})
            })
            .collect();
        s.insert("payments".into(), Value::Array(payments));
        s.insert("discount".into(), money(self.discount));
        s.insert("total".into(), money(self.total));
        Value::Object(s)
    }
}

/// Reads a sale to ring up: `items` (`sku`, `quantity`, `unit_price`, optional `discount` and
/// `name`), optional `payments` (one `DINHEIRO` payment of the total when absent), `discount`,
/// `total` (checked when given), `customer`, `store_id`, `register_id`, `id`.
pub fn sale(body: &Value, names: impl Fn(&str) -> Option<String>) -> Result<Sale, Errors> {
    let mut errors = Errors::new();
    let amount = |v: &Value, field: &str, errors: &mut Errors, positive: bool| -> Decimal {
        match decimal(v) {
            Some(d) if d < Decimal::ZERO || (positive && d.is_zero()) => {
                let bound = if positive { "greater than 0" } else { "at least 0" };
                push(errors, field, format!("The {field} must be {bound}."));
                Decimal::ZERO
            }
            Some(d) => d,
            None => {
                push(errors, field, format!("The {field} must be a number."));
                Decimal::ZERO
            }
        }
    };
    let mut items = Vec::new();
    match body.get("items") {
        Some(Value::Array(a)) if !a.is_empty() => {
            for (i, it) in a.iter().enumerate() {
                let field = |f: &str| format!("items.{i}.{f}");
                let sku = it.get("sku").and_then(Value::as_str).unwrap_or_default().to_owned();
                if sku.is_empty() {
                    push(&mut errors, &field("sku"), format!("The {} field is required.", field("sku")));
                }
                let quantity = amount(it.get("quantity").unwrap_or(&json!(1)), &field("quantity"), &mut errors, true);
                let unit_price = match it.get("unit_price") {
                    Some(v) => amount(v, &field("unit_price"), &mut errors, false),
                    None => {
                        push(
                            &mut errors,
                            &field("unit_price"),
                            format!("The {} field is required.", field("unit_price")),
                        );
                        Decimal::ZERO
                    }
                };
                let discount = amount(it.get("discount").unwrap_or(&json!(0)), &field("discount"), &mut errors, false);
                let name = it
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| names(&sku))
                    .unwrap_or_else(|| sku.clone());
                items.push(SaleItem { sku, name, quantity, unit_price, discount });
            }
        }
        _ => push(&mut errors, "items", "The items field is required.".into()),
    }
    let discount = amount(body.get("discount").unwrap_or(&json!(0)), "discount", &mut errors, false);
    let gross = items.iter().try_fold(Decimal::ZERO, |sum, i| {
        // The point of sale rounds each line half a cent away from zero, as a till does.
        let line = i
            .quantity
            .checked_mul(i.unit_price)?
            .checked_sub(i.discount)?
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        sum.checked_add(line)
    });
    let Some(total) = gross.and_then(|g| g.checked_sub(discount)).map(|t| t.round_dp(2)) else {
        push(&mut errors, "items", "The items add up to more than a sale can hold.".into());
        return Err(errors);
    };
    if let Some(given) = body.get("total") {
        let given = amount(given, "total", &mut errors, false);
        if errors.is_empty() && given != total {
            push(&mut errors, "total", format!("The total must be {total:.2}, the items less the discount."));
        }
    }
    let mut payments = Vec::new();
    match body.get("payments") {
        None | Some(Value::Null) => payments.push(Payment {
            method: "DINHEIRO".into(),
            method_name: "Dinheiro".into(),
            amount: total,
            installments: 1,
        }),
        Some(Value::Array(a)) if !a.is_empty() => {
            for (i, p) in a.iter().enumerate() {
                let field = |f: &str| format!("payments.{i}.{f}");
                let method = p.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
                if method.is_empty() {
                    push(&mut errors, &field("method"), format!("The {} field is required.", field("method")));
                }
                let method_name =
                    p.get("method_name").and_then(Value::as_str).map_or_else(|| method.clone(), str::to_owned);
                let amount = amount(p.get("amount").unwrap_or(&Value::Null), &field("amount"), &mut errors, true);
                let installments = match p.get("installments") {
                    None | Some(Value::Null) => 1,
                    Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n >= 1) {
                        Some(n) => n,
                        None => {
                            push(&mut errors, &field("installments"), "The installments must be at least 1.".into());
                            1
                        }
                    },
                };
                payments.push(Payment { method, method_name, amount, installments });
            }
        }
        Some(_) => push(&mut errors, "payments", "The payments must be a non-empty list.".into()),
    }
    let paid = payments.iter().try_fold(Decimal::ZERO, |sum, p| sum.checked_add(p.amount)).unwrap_or(Decimal::MAX);
    if errors.is_empty() && paid != total {
        push(&mut errors, "payments", format!("The payments add up to {paid:.2}, not the total {total:.2}."));
    }
    let customer = match body.get("customer") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c.clone()),
        Some(_) => {
            push(&mut errors, "customer", "The customer must be an object.".into());
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(Sale {
        id: text("id"),
        store_id: text("store_id"),
        register_id: text("register_id"),
        number: body.get("number").and_then(Value::as_u64).unwrap_or(0),
        customer,
        items,
        payments,
        discount,
        total,
        cancelled: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_with_two_places() {
        let s = sale(
            &json!({"items": [{"sku": "CAM-AZ-M", "quantity": 2, "unit_price": 59.9}],
                    "payments": [{"method": "CREDITO", "amount": 119.8, "installments": 3}]}),
            |_| Some("Camiseta azul M".into()),
        )
        .unwrap();
        let text = to_json_text(&s.to_json());
        assert!(text.contains(r#""quantity":2,"unit_price":59.90,"discount":0.00,"name":"Camiseta azul M""#), "{text}");
        assert!(text.contains(r#""total":119.80"#), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["payments"][0]["amount"], json!(119.8));
    }

    #[test]
    fn payments_must_add_up_to_the_total() {
        let e = sale(
            &json!({"items": [{"sku": "A", "quantity": 1, "unit_price": 10}], "payments": [{"method": "PIX", "amount": 9.99}]}),
            |_| None,
        )
        .unwrap_err();
        assert!(e.contains_key("payments"), "{e:?}");
    }

    #[test]
    fn amounts_past_what_a_decimal_holds_are_refused_not_a_panic() {
        let huge = json!({"items": [{"sku": "A", "quantity": 1e27, "unit_price": 1e27}]});
        assert!(sale(&huge, |_| None).unwrap_err().contains_key("items"));
    }

    #[test]
    fn product_errors_are_per_field() {
        let e = product(&json!({"external_id": "2", "sku": "", "price": -1, "active": "yes", "unit": "UN"}), "1")
            .unwrap_err();
        assert_eq!(e.keys().cloned().collect::<Vec<_>>(), ["active", "external_id", "name", "price", "sku"]);
    }
}
