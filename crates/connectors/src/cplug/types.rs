//! CPLUG's JSON as the contract defines it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /oauth/token` (JSON body, password grant).
#[derive(Debug, Clone, Serialize)]
pub struct PasswordGrant<'a> {
    pub grant_type: &'static str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub token_type: Option<String>,
}

/// A variation's name and attributes (e.g. cor: azul, tamanho: M).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Variation {
    pub name: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A product as ponte serves it to CPLUG, keyed by its Bling id (`external_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    pub external_id: String,
    pub sku: String,
    pub name: String,
    /// BRL with 2 decimals, as a JSON number (kept as a decimal in ponte; a float only on the wire).
    #[serde(with = "rust_decimal::serde::float")]
    pub price: rust_decimal::Decimal,
    pub active: bool,
    #[serde(default)]
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<Variation>,
}

/// `PUT /products/{external_id}` → `{id, external_id}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Upserted {
    pub id: String,
    pub external_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bulk<'a> {
    pub items: &'a [Product],
}

/// One item's result in a bulk upsert.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct BulkResult {
    pub external_id: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BulkResponse {
    pub results: Vec<BulkResult>,
}

/// `GET /products?page&per_page`.
#[derive(Debug, Clone, Deserialize)]
pub struct ProductPage {
    pub data: Vec<Product>,
    pub page: u32,
    pub per_page: u32,
    pub total: u64,
}

/// `{"message", "errors": {field: [..]}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: BTreeMap<String, Vec<String>>,
}
