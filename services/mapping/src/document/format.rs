//! The document itself: its sections and entries as the YAML file spells them, and reading and
//! writing that file.

use anyhow::Context;
use ponte_proto::v1::{PaymentMethodMap, ShippingStatus, SituacaoMap, StoreMap};
use serde::{Deserialize, Serialize};

use crate::fields::Spec;

/// The document format's version; a file of another version is refused.
pub const VERSION: u32 = 1;

/// A tenant's mapping tables. `None` sections are absent from the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<PaymentMethod>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stores: Option<Vec<Store>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub situacoes: Option<Vec<Situacao>>,
    /// Transforms are written as `- value_map: {...}`, one key naming the kind.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_yaml_ng::with::singleton_map_recursive")]
    pub field_mappings: Option<Vec<Spec>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethod {
    pub cplug_method: String,
    pub bling_forma_pagamento_id: i64,
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub cplug_store_id: String,
    pub bling_loja_id: i64,
    pub bling_deposito_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Situacao {
    pub bling_situacao_id: i64,
    pub bling_situacao_name: String,
    pub shipping_status: Status,
    #[serde(default)]
    pub releases_to_shipping: bool,
}

/// A shipping status by its short name (`received` for `SHIPPING_STATUS_RECEIVED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Received,
    InPackingList,
    AwaitingShipment,
    InTransit,
    Delivered,
    Cancelled,
}

impl Status {
    pub(super) fn to_proto(self) -> ShippingStatus {
        match self {
            Self::Received => ShippingStatus::Received,
            Self::InPackingList => ShippingStatus::InPackingList,
            Self::AwaitingShipment => ShippingStatus::AwaitingShipment,
            Self::InTransit => ShippingStatus::InTransit,
            Self::Delivered => ShippingStatus::Delivered,
            Self::Cancelled => ShippingStatus::Cancelled,
        }
    }

    pub(super) fn from_proto(s: ShippingStatus) -> Option<Self> {
        Some(match s {
            ShippingStatus::Unspecified => return None,
            ShippingStatus::Received => Self::Received,
            ShippingStatus::InPackingList => Self::InPackingList,
            ShippingStatus::AwaitingShipment => Self::AwaitingShipment,
            ShippingStatus::InTransit => Self::InTransit,
            ShippingStatus::Delivered => Self::Delivered,
            ShippingStatus::Cancelled => Self::Cancelled,
        })
    }
}

impl PaymentMethod {
    pub(super) fn to_proto(&self, tenant_id: &str) -> PaymentMethodMap {
        PaymentMethodMap {
            tenant_id: tenant_id.to_owned(),
            cplug_method: self.cplug_method.clone(),
            bling_forma_pagamento_id: self.bling_forma_pagamento_id,
            is_default: self.is_default,
            create_time: None,
        }
    }
}

impl Store {
    pub(super) fn to_proto(&self, tenant_id: &str) -> StoreMap {
        StoreMap {
            tenant_id: tenant_id.to_owned(),
            cplug_store_id: self.cplug_store_id.clone(),
            bling_loja_id: self.bling_loja_id,
            bling_deposito_id: self.bling_deposito_id,
            create_time: None,
        }
    }
}

impl Situacao {
    pub(super) fn to_proto(&self, tenant_id: &str) -> SituacaoMap {
        SituacaoMap {
            tenant_id: tenant_id.to_owned(),
            bling_situacao_id: self.bling_situacao_id,
            bling_situacao_name: self.bling_situacao_name.clone(),
            shipping_status: self.shipping_status.to_proto() as i32,
            releases_to_shipping: self.releases_to_shipping,
            create_time: None,
        }
    }
}

/// The document as YAML, under a comment saying whose it is.
pub fn to_yaml(doc: &Document, tenant_id: &str) -> anyhow::Result<String> {
    let body = serde_yaml_ng::to_string(doc).context("writing the mapping document as YAML")?;
    Ok(format!("# ponte mapping export of tenant '{tenant_id}'\n{body}"))
}

/// Reads a document, refusing unknown keys and other versions.
pub fn from_yaml(text: &str) -> anyhow::Result<Document> {
    let doc: Document = serde_yaml_ng::from_str(text).context("reading the mapping document")?;
    if doc.version != VERSION {
        anyhow::bail!("the mapping document is version {}; this ponte reads version {VERSION}", doc.version);
    }
    Ok(doc)
}
