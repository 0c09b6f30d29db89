//! 360Envios's JSON as the contract defines it.

use serde::{Deserialize, Serialize};

/// The hub's order status. Moves forward only, in this order; `Cancelled` is reachable from
/// any status before `InTransit`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Received,
    InPackingList,
    AwaitingShipment,
    InTransit,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    /// Whether moving from `self` to `next` goes forward.
    pub fn can_move_to(self, next: OrderStatus) -> bool {
        match next {
            OrderStatus::Cancelled => self < OrderStatus::InTransit,
            _ => self != OrderStatus::Cancelled && next > self,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
}

/// A product image (ponte's extension of the contract): an absolute http(s) URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Image {
    pub url: String,
}

/// The most images a product carries.
pub const MAX_IMAGES: usize = 10;
/// The longest image URL the hub takes.
pub const MAX_IMAGE_URL: usize = 2048;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Dimensions {
    pub width: rust_decimal::Decimal,
    pub height: rust_decimal::Decimal,
    pub depth: rust_decimal::Decimal,
}

/// `POST /products`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewProduct {
    /// The Bling product id.
    pub external_id: String,
    pub sku: String,
    pub name: String,
    #[serde(with = "rust_decimal::serde::float")]
    pub price: rust_decimal::Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rust_decimal::serde::float_option")]
    pub weight_kg: Option<rust_decimal::Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions_cm: Option<Dimensions>,
    /// At most [`MAX_IMAGES`], in the order the product shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    #[serde(default)]
    pub external_id: String,
    #[serde(default)]
    pub sku: String,
    #[serde(default)]
    pub name: String,
    pub approval_status: ApprovalStatus,
    #[serde(default)]
    pub rejection_reason: Option<String>,
    #[serde(default)]
    pub images: Vec<Image>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Customer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Address {
    pub street: String,
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complement: Option<String>,
    pub district: String,
    pub city: String,
    pub state: String,
    pub zip: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderItem {
    /// 360's product id (from `POST /products`).
    pub product_id: String,
    /// The Bling product id.
    pub external_product_id: String,
    pub sku: String,
    pub name: String,
    #[serde(with = "rust_decimal::serde::float")]
    pub quantity: rust_decimal::Decimal,
    #[serde(with = "rust_decimal::serde::float")]
    pub unit_price: rust_decimal::Decimal,
}

/// `POST /orders` and `PUT /orders/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderBody {
    /// The Bling order id.
    pub external_id: String,
    /// The Bling order number.
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ref: Option<String>,
    pub customer: Customer,
    pub address: Address,
    pub items: Vec<OrderItem>,
    #[serde(with = "rust_decimal::serde::float")]
    pub total: rust_decimal::Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rust_decimal::serde::float_option")]
    pub shipping_cost: Option<rust_decimal::Decimal>,
}

/// `{id, status}` from create and cancel.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct OrderRef {
    pub id: String,
    #[serde(default)]
    pub status: Option<OrderStatus>,
}

/// `GET /orders/{id}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub external_id: String,
    pub status: OrderStatus,
    #[serde(default)]
    pub tracking_code: Option<String>,
    #[serde(default)]
    pub tracking_url: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderList {
    pub data: Vec<Order>,
}

/// `{"error":{"code","message","fields":[{"field","message"}]}}`; a 409 carries `id`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<FieldError>,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The status webhook: `order.status_changed`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct StatusWebhook {
    pub event_id: String,
    pub event: String,
    pub occurred_at: String,
    #[serde(default)]
    pub order: Option<WebhookOrder>,
    #[serde(default)]
    pub product: Option<WebhookProduct>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct WebhookOrder {
    pub id: String,
    pub external_id: String,
    pub status: OrderStatus,
    #[serde(default)]
    pub previous_status: Option<OrderStatus>,
    #[serde(default)]
    pub tracking_code: Option<String>,
    #[serde(default)]
    pub tracking_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct WebhookProduct {
    pub id: String,
    pub external_id: String,
    pub approval_status: ApprovalStatus,
    #[serde(default)]
    pub rejection_reason: Option<String>,
}
