//! A CPLUG sale webhook's `sale` object (`contracts/cplug.md`) as ponte's [`Sale`]: amounts in
//! BRL with two places become cents, quantities their decimal text, the customer's CPF/CNPJ its
//! digits. Reading is strict about form (a field that is not a number, an amount with a third
//! decimal place) and names the field; whether the values make a sale ponte can post (positive
//! amounts, payments that add up) is sales-ingest's check, the same for every way a sale comes in.

use std::str::FromStr;

use ponte_proto::v1::{Customer, Payment, Sale, SaleItem};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::webhooks::Id;

/// A field of the sale that cannot be read, named as the sale's JSON names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_owned(), message: message.into() }
}

fn decimal(v: &Value, field: &str) -> Result<Decimal, FieldError> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err(bad(field, "must be a number")),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| bad(field, format!("{} is not a number", ponte_core::error::quote(&text))))
}

/// BRL with at most two places, as cents.
fn cents(v: &Value, field: &str) -> Result<i64, FieldError> {
    let d = decimal(v, field)?;
    if d.normalize().scale() > 2 {
        return Err(bad(field, format!("{d} has more than 2 decimal places")));
    }
    d.checked_mul(Decimal::ONE_HUNDRED)
        .ok_or_else(|| bad(field, "is out of range"))?
        .trunc()
        .to_string()
        .parse()
        .map_err(|_| bad(field, "is out of range"))
}

fn text(m: &Map<String, Value>, key: &str, field: &str) -> Result<String, FieldError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(bad(field, "must be text")),
    }
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, FieldError> {
    v.as_object().ok_or_else(|| bad(field, "must be an object"))
}

fn list<'a>(m: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a [Value], FieldError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(bad(field, "must be a list")),
    }
}

/// CPF/CNPJ as digits: the usual punctuation (`.`, `-`, `/`, spaces) dropped, anything else kept
/// for the check to refuse.
pub fn document_digits(raw: &str) -> String {
    raw.chars().filter(|c| !matches!(c, '.' | '-' | '/' | ' ')).collect()
}

/// The sale in a webhook body's `sale`, at `occurred_ms` (the event's `occurred_at`).
///
/// ```
/// # use ponte_connectors::cplug::sales::to_sale;
/// let sale = serde_json::json!({"id": "V-1", "store_id": "loja-centro", "items": [{"sku": "A",
///     "quantity": 2, "unit_price": 59.90}], "payments": [{"method": "PIX", "amount": 119.80}],
///     "total": 119.80});
/// let s = to_sale(&sale, Some(0)).unwrap();
/// assert_eq!((s.items[0].unit_price_cents, s.total_cents, s.payments[0].installments), (5990, 11980, 1));
/// ```
pub fn to_sale(sale: &Value, occurred_ms: Option<i64>) -> Result<Sale, FieldError> {
    let m = object(sale, "sale")?;
    let id = match m.get("id") {
        None | Some(Value::Null) => String::new(),
        Some(v) => Id::of(v).map(|id| id.as_str().to_owned()).ok_or_else(|| bad("sale.id", "is not an id"))?,
    };
    let customer = match m.get("customer") {
        None | Some(Value::Null) => None,
        Some(c) => {
            let c = object(c, "sale.customer")?;
            Some(Customer {
                document: document_digits(&text(c, "document", "sale.customer.document")?),
                name: text(c, "name", "sale.customer.name")?,
            })
        }
    };
    let mut items = Vec::new();
    for (i, it) in list(m, "items", "sale.items")?.iter().enumerate() {
        let at = |f: &str| format!("sale.items[{i}].{f}");
        let it = object(it, &format!("sale.items[{i}]"))?;
        let quantity = match it.get("quantity") {
            None | Some(Value::Null) => return Err(bad(&at("quantity"), "is required")),
            Some(q) => decimal(q, &at("quantity"))?.normalize().to_string(),
        };
        let money = |k: &str| match it.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => cents(v, &at(k)),
        };
        items.push(SaleItem {
            sku: text(it, "sku", &at("sku"))?,
            quantity,
            unit_price_cents: money("unit_price")?,
            discount_cents: money("discount")?,
            name: text(it, "name", &at("name"))?,
        });
    }
    let mut payments = Vec::new();
    for (i, p) in list(m, "payments", "sale.payments")?.iter().enumerate() {
        let at = |f: &str| format!("sale.payments[{i}].{f}");
        let p = object(p, &format!("sale.payments[{i}]"))?;
        let installments = match p.get("installments") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(&at("installments"), "must be a whole number of installments"))?,
        };
        payments.push(Payment {
            method: text(p, "method", &at("method"))?,
            method_name: text(p, "method_name", &at("method_name"))?,
            amount_cents: match p.get("amount") {
                None | Some(Value::Null) => return Err(bad(&at("amount"), "is required")),
                Some(v) => cents(v, &at("amount"))?,
            },
            installments,
        });
    }
    let money = |k: &str| match m.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => cents(v, &format!("sale.{k}")),
    };
    Ok(Sale {
        sale_id: id,
        store_id: text(m, "store_id", "sale.store_id")?,
        register_id: text(m, "register_id", "sale.register_id")?,
        number: m.get("number").and_then(Value::as_i64).unwrap_or_default(),
        customer,
        items,
        payments,
        discount_cents: money("discount")?,
        total_cents: money("total")?,
        occurred_at: occurred_ms.map(ponte_core::time::to_timestamp),
    })
}

#[cfg(test)]
mod tests {

    /// Found by the `cplug_sale` fuzz target: an amount too large for cents overflowed
    /// `Decimal`'s multiplication and panicked.
    #[test]
    fn an_amount_too_large_for_cents_is_a_field_error_not_a_panic() {
        let sale = serde_json::json!({"discount": "-3333333333300000003333333333"});
        assert!(to_sale(&sale, Some(0)).is_err());
    }
    use serde_json::json;

    use super::*;

    #[test]
    fn the_contracts_sale_becomes_cents_and_digits() {
        let body: Value = serde_json::from_str(
            r#"{"id":"V-000123","store_id":"loja-centro","register_id":"caixa-2","number":123,
            "customer":{"document":"123.456.789-09","name":"Maria"},
            "items":[{"sku":"CAM-AZ-M","quantity":2,"unit_price":59.90,"discount":0.00,"name":"Camiseta azul M"},
                     {"sku":"QJ-1","quantity":0.750,"unit_price":10.99}],
            "payments":[{"method":"CREDITO","method_name":"Cartão de crédito","amount":119.80,"installments":3},
                        {"method":"PIX","amount":8.24}],
            "discount":0.00,"total":128.04}"#,
        )
        .unwrap();
        let s = to_sale(&body, Some(1_772_471_111_000)).unwrap();
        assert_eq!((s.sale_id.as_str(), s.store_id.as_str(), s.number), ("V-000123", "loja-centro", 123));
        assert_eq!(s.customer.as_ref().unwrap().document, "12345678909");
        assert_eq!((s.items[0].quantity.as_str(), s.items[0].unit_price_cents), ("2", 5990));
        assert_eq!(s.items[1].quantity, "0.75");
        assert_eq!((s.payments[0].amount_cents, s.payments[0].installments), (11980, 3));
        assert_eq!((s.payments[1].installments, s.total_cents), (1, 12804));
        assert_eq!(s.occurred_at.unwrap().seconds, 1_772_471_111);
    }

    #[test]
    fn unreadable_fields_are_named() {
        let base = json!({"id": "V-1", "items": [{"sku": "A", "quantity": 1, "unit_price": 1.0}],
            "payments": [{"method": "PIX", "amount": 1.0, "installments": 1}], "total": 1.0});
        for (path, value, field) in [
            ("/items/0/unit_price", json!(1.005), "sale.items[0].unit_price"),
            ("/items/0/quantity", json!("dois"), "sale.items[0].quantity"),
            ("/payments/0/installments", json!(-2), "sale.payments[0].installments"),
            ("/payments/0/amount", json!({"v": 1}), "sale.payments[0].amount"),
            ("/items/0", json!("A"), "sale.items[0]"),
        ] {
            let mut sale = base.clone();
            *sale.pointer_mut(path).unwrap() = value;
            assert_eq!(to_sale(&sale, None).unwrap_err().field, field);
        }
        assert!(to_sale(&base, None).is_ok());
    }
}
