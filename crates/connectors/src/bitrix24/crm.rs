//! The `crm.*` methods ponte calls, typed: products (`crm.product.*`, the legacy product API,
//! still the one with `XML_ID` and string properties), their properties, deals and deal
//! product rows. Look-ups by property run as one `batch` of list commands.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{
    batch::Batch,
    client::Portal,
    types::{
        Deal, DealFields, DealId, DealRow, Envelope, NewProperty, Product, ProductFields, ProductId, Property,
        PropertyKey, YesNo,
    },
};
use crate::error::ConnectorError;

/// Rows of one list page.
const LIST_PAGE: usize = 50;

impl Portal {
    /// The product `id`; `NotFound` when the portal has none.
    pub async fn product(&self, id: ProductId) -> Result<Product, ConnectorError> {
        Ok(self.call::<Product>("crm.product.get", &json!({ "id": id })).await?.result)
    }

    /// Every product, with its properties, 50 a call.
    pub async fn products(&self) -> Result<Vec<Product>, ConnectorError> {
        self.list_all("crm.product.list", &json!({"select": ["*", "PROPERTY_*"]})).await
    }

    /// Creates a product; its id.
    pub async fn add_product(&self, fields: &ProductFields) -> Result<ProductId, ConnectorError> {
        Ok(self.call::<ProductId>("crm.product.add", &json!({ "fields": fields })).await?.result)
    }

    pub async fn update_product(&self, id: ProductId, fields: &ProductFields) -> Result<(), ConnectorError> {
        self.call::<Value>("crm.product.update", &json!({ "id": id, "fields": fields })).await.map(|_| ())
    }

    /// The product whose `XML_ID` ("External code") is `xml_id`, if any.
    pub async fn find_product_by_xml_id(&self, xml_id: &str) -> Result<Option<Product>, ConnectorError> {
        let found = self.find_product_where("XML_ID", xml_id).await?;
        Ok(found.into_iter().find(|p| p.xml_id.as_deref() == Some(xml_id)))
    }

    /// The first product whose property `key` holds `value`.
    pub async fn find_product_by_property(
        &self,
        key: &PropertyKey,
        value: &str,
    ) -> Result<Option<Product>, ConnectorError> {
        let found = self.find_product_where(&key.to_string(), value).await?;
        // The filter is applied by the portal; the check here guards against a portal that
        // ignores an unknown filter key and answers every product.
        Ok(found.into_iter().find(|p| p.property(key).iter().any(|v| v == value)))
    }

    async fn find_product_where(&self, field: &str, value: &str) -> Result<Vec<Product>, ConnectorError> {
        let params = json!({"filter": {field: value}, "select": ["*", "PROPERTY_*"]});
        Ok(self.call::<Vec<Product>>("crm.product.list", &params).await?.result)
    }

    /// The products whose property `key` holds any of `values`, by that value (the first
    /// product for each), in one `batch` of list commands (a list answers 50 at a time). A
    /// failed look-up fails it whole.
    pub async fn find_products_by_property(
        &self,
        key: &PropertyKey,
        values: &[String],
    ) -> Result<HashMap<String, Product>, ConnectorError> {
        if values.is_empty() {
            return Ok(HashMap::new());
        }
        let mut batch = Batch::new();
        let mut filter = Map::new();
        filter.insert(format!("@{key}"), json!(values));
        let pages: Vec<_> = (0..values.len().div_ceil(LIST_PAGE))
            .map(|k| batch.list_products(Value::Object(filter.clone()), k * LIST_PAGE))
            .collect();
        let answers = self.batch(&batch, false).await?;
        let mut found = HashMap::new();
        for page in &pages {
            let products = match answers.take(page) {
                Some(Ok(products)) => products,
                Some(Err(e)) => return Err(e),
                None => continue,
            };
            for p in products {
                for v in p.property(key) {
                    if values.contains(&v) {
                        found.entry(v).or_insert_with(|| p.clone());
                    }
                }
            }
        }
        Ok(found)
    }

    /// The key of the portal's product property with symbolic code `code`, created (a string
    /// property named `name`) when the portal has none. Its `n` differs per portal, so it is
    /// discovered, never configured.
    pub async fn property_key(&self, code: &str, name: &str) -> Result<PropertyKey, ConnectorError> {
        let props: Vec<Property> = self.list_all("crm.product.property.list", &json!({})).await?;
        let found = props.iter().find(|p| {
            p.code.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(code)) || p.name.eq_ignore_ascii_case(name)
        });
        let id = match found {
            Some(p) => p.id,
            None => {
                let fields = NewProperty { name, code, active: YesNo::Y, property_type: "S", multiple: YesNo::N };
                self.call("crm.product.property.add", &json!({ "fields": fields })).await?.result
            }
        };
        Ok(PropertyKey::Id(id))
    }

    /// The deal an outside system made (`ORIGINATOR_ID`, `ORIGIN_ID`: "bling" and its order id).
    pub async fn find_deal_by_origin(
        &self,
        originator: &str,
        origin_id: &str,
    ) -> Result<Option<DealId>, ConnectorError> {
        #[derive(serde::Deserialize)]
        struct Row {
            #[serde(rename = "ID")]
            id: DealId,
        }
        let params = json!({"filter": {"ORIGINATOR_ID": originator, "ORIGIN_ID": origin_id}, "select": ["ID"]});
        let page: Envelope<Vec<Row>> = self.call("crm.deal.list", &params).await?;
        Ok(page.result.first().map(|r| r.id))
    }

    /// The deal `id`; `NotFound` when the portal has none.
    pub async fn deal(&self, id: DealId) -> Result<Deal, ConnectorError> {
        Ok(self.call::<Deal>("crm.deal.get", &json!({ "id": id })).await?.result)
    }

    /// Creates a deal; its id.
    pub async fn add_deal(&self, fields: &DealFields) -> Result<DealId, ConnectorError> {
        Ok(self.call::<DealId>("crm.deal.add", &json!({ "fields": fields })).await?.result)
    }

    /// Writes the fields given (only those).
    pub async fn update_deal(&self, id: DealId, fields: &DealFields) -> Result<(), ConnectorError> {
        self.call::<Value>("crm.deal.update", &json!({ "id": id, "fields": fields })).await.map(|_| ())
    }

    pub async fn deal_rows(&self, id: DealId) -> Result<Vec<DealRow>, ConnectorError> {
        Ok(self.call::<Vec<DealRow>>("crm.deal.productrows.get", &json!({ "id": id })).await?.result)
    }

    /// Replaces a deal's product rows (those not given are deleted).
    pub async fn set_deal_rows(&self, id: DealId, rows: &[DealRow]) -> Result<(), ConnectorError> {
        self.call::<Value>("crm.deal.productrows.set", &json!({ "id": id, "rows": rows })).await.map(|_| ())
    }
}
