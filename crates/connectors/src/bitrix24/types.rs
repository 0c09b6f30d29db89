//! Bitrix24's JSON exactly as it sends it: `{"result", "total"?, "next"?, "time"}`, errors as
//! `{"error","error_description"}` (the code a string, empty, or a number), batch maps that
//! arrive as `[]` when empty, and the `crm.*` records ponte reads and writes: products (with
//! their `PROPERTY_<n>` values), product properties, deals and deal product rows. `crm.*` keys
//! are upper case and its numbers come back as text (`"ID":"410"`, `"PRICE":"59.90"`).

use std::{collections::BTreeMap, fmt, marker::PhantomData, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::json::{decimal_text, decimal_text_opt};

/// The success envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<T> {
    pub result: T,
    #[serde(default)]
    pub total: Option<u64>,
    /// The `start` of the next page, present while more pages exist.
    #[serde(default)]
    pub next: Option<u64>,
    #[serde(default)]
    pub time: Option<Value>,
}

/// The error envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    /// A string (`QUERY_LIMIT_EXCEEDED`, `expired_token`, `""`) or a number (catalog methods).
    #[serde(default)]
    pub error: Value,
    #[serde(default)]
    pub error_description: String,
}

impl ErrorBody {
    pub fn code(&self) -> String {
        match &self.error {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// A map that PHP serializes as `[]` when empty.
fn map_or_empty<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Array(a) if a.is_empty() => Ok(BTreeMap::new()),
        Value::Null => Ok(BTreeMap::new()),
        // A command list sent as an array comes back keyed by position.
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::from_value(v).map(|v| (i.to_string(), v)).map_err(serde::de::Error::custom))
            .collect(),
        other => serde_json::from_value(other).map_err(serde::de::Error::custom),
    }
}

/// `batch`'s inner result.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchResult {
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result_error: BTreeMap<String, ErrorBody>,
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result_total: BTreeMap<String, u64>,
    #[serde(default, deserialize_with = "map_or_empty")]
    pub result_next: BTreeMap<String, u64>,
}

/// A value Bitrix24 may send as a string or a number (ids, prices).
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A field's values as text: one for a plain field, each `value` of a product property (read
/// back as `{"valueId": .., "value": ..}`, or a list of those when multiple).
pub fn field_values(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().flat_map(|i| field_values(Some(i))).collect(),
        Some(Value::Object(m)) => field_values(m.get("value")),
        Some(other) => as_string(other).into_iter().collect(),
    }
}

/// The id of a `crm.*` record of kind `K` (a product, a deal, a property): a positive number
/// that Bitrix24 sends as text. Ids of different kinds do not mix.
pub struct CrmId<K> {
    id: u64,
    kind: PhantomData<fn() -> K>,
}

/// Marks [`ProductId`].
#[derive(Debug)]
pub enum ProductKind {}
/// Marks [`DealId`].
#[derive(Debug)]
pub enum DealKind {}
/// Marks [`PropertyId`].
#[derive(Debug)]
pub enum PropertyKind {}

/// A `crm.product` id.
pub type ProductId = CrmId<ProductKind>;
/// A `crm.deal` id.
pub type DealId = CrmId<DealKind>;
/// A `crm.product.property` id: the `n` of `PROPERTY_<n>`.
pub type PropertyId = CrmId<PropertyKind>;

impl<K> CrmId<K> {
    /// `Some` for a positive id.
    pub fn new(id: u64) -> Option<Self> {
        (id > 0).then_some(Self { id, kind: PhantomData })
    }

    pub fn get(self) -> u64 {
        self.id
    }
}

impl<K> Clone for CrmId<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for CrmId<K> {}

impl<K> PartialEq for CrmId<K> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<K> Eq for CrmId<K> {}

impl<K> std::hash::Hash for CrmId<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<K> PartialOrd for CrmId<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for CrmId<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl<K> fmt::Display for CrmId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)
    }
}

impl<K> fmt::Debug for CrmId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CrmId({})", self.id)
    }
}

/// Why a text is not a Bitrix24 id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a Bitrix24 id (a whole number greater than 0)")]
pub struct BadId(pub String);

impl<K> FromStr for CrmId<K> {
    type Err = BadId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().ok().and_then(Self::new).ok_or_else(|| BadId(ponte_core::error::quote(s)))
    }
}

impl<K> Serialize for CrmId<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.id)
    }
}

impl<'de, K> Deserialize<'de> for CrmId<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        as_string(&v).unwrap_or_else(|| v.to_string()).parse().map_err(serde::de::Error::custom)
    }
}

/// An id as the portal writes it in what it returns: as text.
fn id_text<K, S: Serializer>(id: &CrmId<K>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// A product field naming a property: `PROPERTY_<n>` as the portal knows it, or
/// `PROPERTY_<CODE>`, by the property's symbolic code, as ponte's mappings name it before the
/// portal's `n` is known (`PROPERTY_BLING_ID`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PropertyKey {
    Id(PropertyId),
    Code(String),
}

impl PropertyKey {
    const PREFIX: &'static str = "PROPERTY_";

    /// The key a field name holds, when it names a property.
    pub fn parse(field: &str) -> Option<Self> {
        let rest = field.strip_prefix(Self::PREFIX).filter(|r| !r.is_empty())?;
        Some(match rest.parse::<u64>() {
            Ok(n) => Self::Id(PropertyId::new(n)?),
            Err(_) => Self::Code(rest.to_owned()),
        })
    }
}

impl fmt::Display for PropertyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{}{id}", Self::PREFIX),
            Self::Code(code) => write!(f, "{}{code}", Self::PREFIX),
        }
    }
}

impl Serialize for PropertyKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Bitrix24's `char` flags (`ACTIVE`, `VAT_INCLUDED`): `Y` or `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum YesNo {
    Y,
    N,
}

impl Serialize for YesNo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Y => "Y",
            Self::N => "N",
        })
    }
}

impl<'de> Deserialize<'de> for YesNo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        YesNo::try_from(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A deal stage id: `NEW`, `WON`, or `C3:WON` in pipeline 3.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StageId(pub String);

impl StageId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `crm.product` as `crm.product.get|list` return it (with `select: ["*", "PROPERTY_*"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    #[serde(rename = "ID", serialize_with = "id_text")]
    pub id: ProductId,
    #[serde(rename = "NAME", default)]
    pub name: Option<String>,
    #[serde(rename = "ACTIVE", default)]
    pub active: Option<YesNo>,
    #[serde(rename = "PRICE", default, with = "decimal_text_opt")]
    pub price: Option<Decimal>,
    /// "External code".
    #[serde(rename = "XML_ID", default)]
    pub xml_id: Option<String>,
    /// Every other field as the portal sent it: `CURRENCY_ID`, `SORT`, the properties
    /// (`PROPERTY_<n>`: `{"valueId", "value"}`, a list of those, or `null`), user fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Product {
    /// The values of property `key`, as text.
    pub fn property(&self, key: &PropertyKey) -> Vec<String> {
        field_values(self.extra.get(&key.to_string()))
    }
}

/// The fields ponte writes to a `crm.product` (`crm.product.add|update`): the ones it knows,
/// property values by key, and whatever else a tenant's mapping names, spelt as the portal
/// spells it (`SECTION_ID`, `DESCRIPTION`, …). Only the fields present are written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProductFields {
    #[serde(rename = "NAME", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "ACTIVE", skip_serializing_if = "Option::is_none")]
    pub active: Option<YesNo>,
    /// Sent as a JSON number.
    #[serde(rename = "PRICE", skip_serializing_if = "Option::is_none", with = "crate::json::decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(rename = "XML_ID", skip_serializing_if = "Option::is_none")]
    pub xml_id: Option<String>,
    #[serde(flatten)]
    pub properties: BTreeMap<PropertyKey, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A product property as `crm.product.property.list` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Property {
    #[serde(rename = "ID")]
    pub id: PropertyId,
    #[serde(rename = "NAME", default)]
    pub name: String,
    /// The symbolic code (`BLING_ID`); `null` when none was given.
    #[serde(rename = "CODE", default)]
    pub code: Option<String>,
}

/// `crm.product.property.add`'s fields: a single string property.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewProperty<'a> {
    #[serde(rename = "NAME")]
    pub name: &'a str,
    #[serde(rename = "CODE")]
    pub code: &'a str,
    #[serde(rename = "ACTIVE")]
    pub active: YesNo,
    #[serde(rename = "PROPERTY_TYPE")]
    pub property_type: &'static str,
    #[serde(rename = "MULTIPLE")]
    pub multiple: YesNo,
}

/// A `crm.deal` as `crm.deal.get` returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deal {
    #[serde(rename = "ID")]
    pub id: DealId,
    #[serde(rename = "TITLE", default)]
    pub title: Option<String>,
    /// Who made the deal, when an outside system did (`bling`).
    #[serde(rename = "ORIGINATOR_ID", default)]
    pub originator_id: Option<String>,
    /// The deal's id in that system.
    #[serde(rename = "ORIGIN_ID", default)]
    pub origin_id: Option<String>,
    #[serde(rename = "OPPORTUNITY", default, with = "decimal_text_opt")]
    pub opportunity: Option<Decimal>,
    #[serde(rename = "CURRENCY_ID", default)]
    pub currency_id: Option<String>,
    #[serde(rename = "STAGE_ID", default)]
    pub stage_id: Option<StageId>,
    /// Every other field as the portal sent it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The fields ponte writes to a `crm.deal` (`crm.deal.add|update`); only those present.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DealFields {
    #[serde(rename = "TITLE", skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(rename = "ORIGINATOR_ID", skip_serializing_if = "Option::is_none")]
    pub originator_id: Option<String>,
    #[serde(rename = "ORIGIN_ID", skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<String>,
    /// The amount, as text (`"119.80"`).
    #[serde(rename = "OPPORTUNITY", skip_serializing_if = "Option::is_none", with = "decimal_text_opt")]
    pub opportunity: Option<Decimal>,
    #[serde(rename = "CURRENCY_ID", skip_serializing_if = "Option::is_none")]
    pub currency_id: Option<String>,
    /// The pipeline a new deal goes to (0, the default one, when absent).
    #[serde(rename = "CATEGORY_ID", skip_serializing_if = "Option::is_none")]
    pub category_id: Option<u32>,
    #[serde(rename = "STAGE_ID", skip_serializing_if = "Option::is_none")]
    pub stage_id: Option<StageId>,
}

/// A deal's product row (`crm.deal.productrows.get|set`), as far as ponte writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealRow {
    /// The catalog product; `None` (0 on the wire) for a free-text row.
    #[serde(rename = "PRODUCT_ID", with = "product_or_free_text")]
    pub product_id: Option<ProductId>,
    #[serde(rename = "PRODUCT_NAME", default)]
    pub product_name: String,
    /// The final unit price.
    #[serde(rename = "PRICE", with = "decimal_text")]
    pub price: Decimal,
    #[serde(rename = "QUANTITY", with = "decimal_text")]
    pub quantity: Decimal,
}

/// `PRODUCT_ID`: a product id, or 0 for a free-text row.
mod product_or_free_text {
    use super::*;

    pub fn serialize<S: Serializer>(id: &Option<ProductId>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(id.map_or(0, ProductId::get))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ProductId>, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(None);
        }
        let text = as_string(&v).ok_or_else(|| serde::de::Error::custom(format!("{v} is not a product id")))?;
        match text.trim() {
            "" | "0" => Ok(None),
            id => id.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_results_accept_php_empty_arrays() {
        let body = r#"{"result":{"p1":"410","p2":true},"result_error":[],"result_total":[],"result_next":[]}"#;
        let r: BatchResult = serde_json::from_str(body).unwrap();
        assert_eq!(r.result["p1"], "410");
        assert!(r.result_error.is_empty());
        let with_error = r#"{"result":[],"result_error":{"p3":{"error":"insufficient_scope","error_description":""}},
            "result_total":{"l":120},"result_next":{"l":50}}"#;
        let r: BatchResult = serde_json::from_str(with_error).unwrap();
        assert_eq!(r.result_error["p3"].code(), "insufficient_scope");
        assert_eq!((r.result_total["l"], r.result_next["l"]), (120, 50));
    }

    #[test]
    fn ids_and_property_keys_read_as_the_portal_writes_them() {
        let id: ProductId = serde_json::from_str(r#""410""#).unwrap();
        assert_eq!((id.get(), serde_json::to_string(&id).unwrap()), (410, "410".to_owned()));
        assert_eq!(serde_json::from_str::<DealId>("394").unwrap().get(), 394);
        for bad in [r#""0""#, r#""x""#, "-1", "null"] {
            assert!(serde_json::from_str::<ProductId>(bad).is_err(), "{bad}");
        }
        assert_eq!(PropertyKey::parse("PROPERTY_104"), Some(PropertyKey::Id(PropertyId::new(104).unwrap())));
        assert_eq!(PropertyKey::parse("PROPERTY_BLING_ID"), Some(PropertyKey::Code("BLING_ID".into())));
        assert_eq!((PropertyKey::parse("PROPERTY_"), PropertyKey::parse("NAME")), (None, None));
        assert_eq!(PropertyKey::Code("BLING_ID".into()).to_string(), "PROPERTY_BLING_ID");
    }
}
