//! A sale as sales-ingest keeps it, checked once where it comes in (an `IngestSale` call or a
//! CPLUG webhook) into a value every later step can trust: ids that fit in Bling's fields, SKUs
//! without spaces, positive quantities with at most 4 places, money in cents, payments that add
//! up to the total and a total that is the items less the discounts, a valid CPF or CNPJ.
//! Each refusal names the field (`sale.items[2].quantity: …`).

use std::str::FromStr;

use ponte_core::{
    error::{ServiceError, quote},
    time::{from_timestamp, to_timestamp},
};
use ponte_proto::v1 as pb;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The longest sale id, store id and SKU taken (they go into Bling text fields).
const MAX_ID: usize = 64;
const MAX_ITEMS: usize = 500;
const MAX_PAYMENTS: usize = 20;
const MAX_INSTALLMENTS: u32 = 99;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Customer {
    /// CPF (11 digits) or CNPJ (14 digits).
    pub document: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub sku: String,
    pub quantity: Decimal,
    pub unit_price_cents: i64,
    /// On the whole line.
    pub discount_cents: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payment {
    pub method: String,
    pub method_name: String,
    pub amount_cents: i64,
    pub installments: u32,
}

/// A checked sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sale {
    pub sale_id: String,
    pub store_id: String,
    pub register_id: String,
    pub number: i64,
    pub customer: Option<Customer>,
    pub items: Vec<Item>,
    pub payments: Vec<Payment>,
    pub discount_cents: i64,
    pub total_cents: i64,
    /// Unix ms.
    pub occurred_ms: i64,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

/// A non-blank id of at most [`MAX_ID`] characters without spaces or control characters.
pub(crate) fn check_id(field: &str, raw: &str) -> Result<String, ServiceError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if v.chars().count() > MAX_ID {
        return Err(invalid(field, format!("{} is longer than {MAX_ID} characters", quote(v))));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(field, format!("{} must not contain spaces or control characters", quote(v))));
    }
    Ok(v.to_owned())
}

/// Whether `digits` is a CPF (11 digits) or CNPJ (14) whose check digits hold.
pub(crate) fn valid_document(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().map(|c| c.to_digit(10)).collect::<Option<_>>().unwrap_or_default();
    let check = |body: &[u32], weights: &[u32]| {
        let r = body.iter().zip(weights).map(|(a, w)| a * w).sum::<u32>() % 11;
        if r < 2 { 0 } else { 11 - r }
    };
    match d.len() {
        11 => {
            let w1: Vec<u32> = (2..=10).rev().collect();
            let w2: Vec<u32> = (2..=11).rev().collect();
            d.iter().any(|x| *x != d[0]) && check(&d[..9], &w1) == d[9] && check(&d[..10], &w2) == d[10]
        }
        14 => {
            let w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
            let w2 = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
            d.iter().any(|x| *x != d[0]) && check(&d[..12], &w1) == d[12] && check(&d[..13], &w2) == d[13]
        }
        _ => false,
    }
}

/// A line's amount in cents as the point of sale rounds it: quantity × unit price, less the
/// line's discount, to the cent.
pub(crate) fn line_cents(quantity: Decimal, unit_price_cents: i64, discount_cents: i64) -> Option<i64> {
    let gross = quantity
        .checked_mul(Decimal::from(unit_price_cents))?
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(gross).ok()?.checked_sub(discount_cents)
}

impl Sale {
    /// Checks a sale as `IngestSale` or a webhook carries it; `now_ms` dates one without a time.
    pub fn check(s: &pb::Sale, now_ms: i64) -> Result<Self, ServiceError> {
        let sale_id = check_id("sale.sale_id", &s.sale_id)?;
        let store_id = check_id("sale.store_id", &s.store_id)?;
        let customer = match &s.customer {
            Some(c) if !c.document.trim().is_empty() => {
                let document = c.document.trim();
                if !valid_document(document) {
                    return Err(invalid(
                        "sale.customer.document",
                        format!("{} is not a valid CPF or CNPJ (digits only)", quote(document)),
                    ));
                }
                let name = c.name.trim();
                if name.chars().count() > 120 {
                    return Err(invalid("sale.customer.name", "is longer than 120 characters"));
                }
                Some(Customer { document: document.to_owned(), name: name.to_owned() })
            }
            _ => None,
        };
        if s.items.is_empty() {
            return Err(invalid("sale.items", "a sale has at least one item"));
        }
        if s.items.len() > MAX_ITEMS {
            return Err(invalid("sale.items", format!("a sale has at most {MAX_ITEMS} items")));
        }
        let mut items = Vec::with_capacity(s.items.len());
        let mut lines = 0_i64;
        for (i, it) in s.items.iter().enumerate() {
            let at = |f: &str| format!("sale.items[{i}].{f}");
            let sku = check_id(&at("sku"), &it.sku)?;
            let quantity = Decimal::from_str(it.quantity.trim())
                .map_err(|_| invalid(at("quantity"), format!("{} is not a decimal number", quote(&it.quantity))))?;
            if quantity <= Decimal::ZERO {
                return Err(invalid(at("quantity"), "must be greater than 0"));
            }
            if quantity.normalize().scale() > 4 || quantity > Decimal::from(1_000_000) {
                return Err(invalid(at("quantity"), "must have at most 4 decimal places and be at most 1000000"));
            }
            if it.unit_price_cents < 0 {
                return Err(invalid(at("unit_price_cents"), "must not be negative"));
            }
            if it.discount_cents < 0 {
                return Err(invalid(at("discount_cents"), "must not be negative"));
            }
            let line = line_cents(quantity, it.unit_price_cents, it.discount_cents)
                .ok_or_else(|| invalid(at("unit_price_cents"), "is too large"))?;
            if line < 0 {
                return Err(invalid(at("discount_cents"), "is more than the line is worth"));
            }
            lines = lines.checked_add(line).ok_or_else(|| invalid("sale.items", "add up to too much"))?;
            items.push(Item {
                sku,
                quantity: quantity.normalize(),
                unit_price_cents: it.unit_price_cents,
                discount_cents: it.discount_cents,
                name: it.name.trim().chars().take(120).collect(),
            });
        }
        if s.discount_cents < 0 {
            return Err(invalid("sale.discount_cents", "must not be negative"));
        }
        if s.payments.is_empty() {
            return Err(invalid("sale.payments", "a sale has at least one payment"));
        }
        if s.payments.len() > MAX_PAYMENTS {
            return Err(invalid("sale.payments", format!("a sale has at most {MAX_PAYMENTS} payments")));
        }
        let mut payments = Vec::with_capacity(s.payments.len());
        let mut paid = 0_i64;
        for (i, p) in s.payments.iter().enumerate() {
            let at = |f: &str| format!("sale.payments[{i}].{f}");
            let method = p.method.trim();
            if method.is_empty() {
                return Err(invalid(at("method"), "is required"));
            }
            if method.chars().count() > MAX_ID || method.chars().any(char::is_control) {
                return Err(invalid(at("method"), format!("{} is not a payment method code", quote(method))));
            }
            if p.amount_cents <= 0 {
                return Err(invalid(at("amount_cents"), "must be greater than 0"));
            }
            // Unset (0) is one installment.
            let installments = p.installments.max(1);
            if installments > MAX_INSTALLMENTS {
                return Err(invalid(at("installments"), format!("must be at most {MAX_INSTALLMENTS}")));
            }
            if i64::from(installments) > p.amount_cents {
                return Err(invalid(at("installments"), "each installment must be at least one cent"));
            }
            paid = paid.checked_add(p.amount_cents).ok_or_else(|| invalid("sale.payments", "add up to too much"))?;
            payments.push(Payment {
                method: method.to_owned(),
                method_name: p.method_name.trim().to_owned(),
                amount_cents: p.amount_cents,
                installments,
            });
        }
        if paid != s.total_cents {
            return Err(invalid(
                "sale.payments",
                format!("add up to {paid} cents, not the total of {} cents", s.total_cents),
            ));
        }
        if lines - s.discount_cents != s.total_cents {
            return Err(invalid(
                "sale.total_cents",
                format!("{} is not the items less the discounts ({} cents)", s.total_cents, lines - s.discount_cents),
            ));
        }
        Ok(Self {
            sale_id,
            store_id,
            register_id: s.register_id.trim().chars().take(MAX_ID).collect(),
            number: s.number,
            customer,
            items,
            payments,
            discount_cents: s.discount_cents,
            total_cents: s.total_cents,
            occurred_ms: s.occurred_at.as_ref().map(from_timestamp).unwrap_or(now_ms),
        })
    }

    pub fn to_proto(&self) -> pb::Sale {
        pb::Sale {
            sale_id: self.sale_id.clone(),
            store_id: self.store_id.clone(),
            register_id: self.register_id.clone(),
            number: self.number,
            customer: self
                .customer
                .as_ref()
                .map(|c| pb::Customer { document: c.document.clone(), name: c.name.clone() }),
            items: self
                .items
                .iter()
                .map(|i| pb::SaleItem {
                    sku: i.sku.clone(),
                    quantity: i.quantity.to_string(),
                    unit_price_cents: i.unit_price_cents,
                    discount_cents: i.discount_cents,
                    name: i.name.clone(),
                })
                .collect(),
            payments: self
                .payments
                .iter()
                .map(|p| pb::Payment {
                    method: p.method.clone(),
                    method_name: p.method_name.clone(),
                    amount_cents: p.amount_cents,
                    installments: p.installments,
                })
                .collect(),
            discount_cents: self.discount_cents,
            total_cents: self.total_cents,
            occurred_at: Some(to_timestamp(self.occurred_ms)),
        }
    }

    /// The SKUs of the sale, each once.
    pub fn skus(&self) -> Vec<String> {
        let mut skus: Vec<String> = self.items.iter().map(|i| i.sku.clone()).collect();
        skus.sort();
        skus.dedup();
        skus
    }
}

#[cfg(test)]
mod tests;
