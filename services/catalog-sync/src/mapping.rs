//! The mapping service as catalog-sync calls it: product translations through a tenant's field
//! mappings, and the link registry (which Bling product or order is which Bitrix24 record),
//! one record or a page at a time. Its failures become the answers a flow gives: a mapping
//! that cannot translate a product parks the event; a registry that cannot answer is retried.

use std::collections::HashMap;

use ponte_connectors::bitrix24::{DealId, ProductId};
use ponte_core::{
    BlingId, TenantId,
    error::ServiceError,
    grpc::TracedChannel,
    structs::{from_struct, to_struct},
};
use ponte_proto::v1::{
    BatchLinkRequest, BatchResolveRequest, EntityKind, EntityLink, LinkRequest, ListFieldMappingsRequest,
    MappingTarget, Provider, ResolveRequest, TranslateDirection, TranslateProductRequest,
    mapping_service_client::MappingServiceClient,
};
use serde_json::{Map, Value};
use tonic::{Code, Status};

#[derive(Clone)]
pub(crate) struct Mapping {
    client: MappingServiceClient<TracedChannel>,
}

/// The registry is ponte's own service: when it cannot answer, the work waits for it. A
/// refusal (a bad value, a missing tenant) is permanent and is not retried.
fn registry_down(s: Status) -> ServiceError {
    peer_error("link registry", &s)
}

/// A failed call to ponte's `peer`: retried when the peer may answer later (it is down, busy,
/// or failed inside); its refusals are permanent.
fn peer_error(peer: &str, s: &Status) -> ServiceError {
    if ponte_core::error::is_retriable(s) || s.code() == Code::Internal {
        ServiceError::unavailable(format!("{peer}: {}", s.message()), None)
    } else {
        ServiceError::FailedPrecondition(format!("{peer}: {}", s.message()))
    }
}

/// An id the registry holds for `what`, as the id it must be.
fn stored<I: std::str::FromStr>(what: &str, id: String) -> Result<I, ServiceError> {
    id.parse().map_err(|_| {
        ServiceError::FailedPrecondition(format!(
            "the link registry holds {} for {what}, which is not such an id",
            ponte_core::error::quote(&id)
        ))
    })
}

impl Mapping {
    pub fn new(client: MappingServiceClient<TracedChannel>) -> Self {
        Self { client }
    }

    /// `source` translated in `direction` through the tenant's mappings; `what` names the
    /// product in errors. A mapping that cannot translate it is for a person to fix.
    pub async fn translate(
        &self,
        tenant_id: &TenantId,
        direction: TranslateDirection,
        what: &str,
        source: &Value,
    ) -> Result<Map<String, Value>, ServiceError> {
        let translated = self
            .client
            .clone()
            .translate_product(TranslateProductRequest {
                tenant_id: tenant_id.to_string(),
                direction: direction as i32,
                fields: Some(to_struct(source)),
            })
            .await
            .map_err(|s| match s.code() {
                Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => {
                    ServiceError::FailedPrecondition(format!("mapping product {what}: {}", s.message()))
                }
                _ => ServiceError::unavailable(format!("mapping: {}", s.message()), None),
            })?
            .into_inner();
        match translated.fields.as_ref().map(from_struct) {
            Some(Value::Object(fields)) => Ok(fields),
            _ => Err(ServiceError::FailedPrecondition(format!("mapping product {what} produced no fields"))),
        }
    }

    /// The Bling fields the tenant's Bitrix24 mappings read (their top-level names).
    pub async fn bling_fields_for_bitrix24(&self, tenant_id: &TenantId) -> Result<Vec<String>, ServiceError> {
        let mappings = self
            .client
            .clone()
            .list_field_mappings(ListFieldMappingsRequest {
                tenant_id: tenant_id.to_string(),
                target: MappingTarget::Bitrix24 as i32,
            })
            .await
            .map_err(|s| peer_error("mapping", &s))?
            .into_inner()
            .mappings;
        Ok(mappings.iter().map(|m| m.bling_field.split(['.', '[']).next().unwrap_or_default().to_owned()).collect())
    }

    async fn resolve(
        &self,
        tenant_id: &TenantId,
        kind: EntityKind,
        (from, id): (Provider, String),
        to: Provider,
    ) -> Result<Option<String>, ServiceError> {
        let req = ResolveRequest {
            tenant_id: tenant_id.to_string(),
            kind: kind as i32,
            from_system: from as i32,
            from_id: id,
            to_system: to as i32,
        };
        match self.client.clone().resolve(req).await {
            Ok(r) => Ok(Some(r.into_inner().id)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(registry_down(s)),
        }
    }

    async fn link(
        &self,
        tenant_id: &TenantId,
        kind: EntityKind,
        bling_id: BlingId,
        bitrix_id: String,
    ) -> Result<(), ServiceError> {
        let link = entity_link(tenant_id, kind, bling_id, bitrix_id);
        self.client.clone().link(LinkRequest { link: Some(link) }).await.map_err(registry_down)?;
        Ok(())
    }

    /// The Bitrix24 product linked to Bling product `id`.
    pub async fn product_of(&self, tenant_id: &TenantId, id: BlingId) -> Result<Option<ProductId>, ServiceError> {
        let found = self.resolve(tenant_id, EntityKind::Product, (Provider::Bling, id.to_string()), Provider::Bitrix24);
        found.await?.map(|b| stored(&format!("Bling product {id}"), b)).transpose()
    }

    /// The Bling product linked to Bitrix24 product `id`.
    pub async fn bling_product_of(&self, tenant_id: &TenantId, id: ProductId) -> Result<Option<BlingId>, ServiceError> {
        let found = self.resolve(tenant_id, EntityKind::Product, (Provider::Bitrix24, id.to_string()), Provider::Bling);
        found.await?.map(|b| stored(&format!("Bitrix24 product {id}"), b)).transpose()
    }

    /// The Bitrix24 deal linked to Bling order `id`.
    pub async fn deal_of(&self, tenant_id: &TenantId, id: BlingId) -> Result<Option<DealId>, ServiceError> {
        let found = self.resolve(tenant_id, EntityKind::Order, (Provider::Bling, id.to_string()), Provider::Bitrix24);
        found.await?.map(|b| stored(&format!("Bling order {id}"), b)).transpose()
    }

    /// Records that Bling product `bling_id` is Bitrix24 product `product`.
    pub async fn link_product(
        &self,
        tenant_id: &TenantId,
        bling_id: BlingId,
        product: ProductId,
    ) -> Result<(), ServiceError> {
        self.link(tenant_id, EntityKind::Product, bling_id, product.to_string()).await
    }

    /// Records that Bling order `bling_id` is Bitrix24 deal `deal`.
    pub async fn link_deal(&self, tenant_id: &TenantId, bling_id: BlingId, deal: DealId) -> Result<(), ServiceError> {
        self.link(tenant_id, EntityKind::Order, bling_id, deal.to_string()).await
    }

    /// The Bitrix24 products linked to Bling products `ids`, in one call.
    pub async fn products_of(
        &self,
        tenant_id: &TenantId,
        ids: &[BlingId],
    ) -> Result<HashMap<BlingId, ProductId>, ServiceError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let req = BatchResolveRequest {
            tenant_id: tenant_id.to_string(),
            kind: EntityKind::Product as i32,
            from_system: Provider::Bling as i32,
            from_ids: ids.iter().map(BlingId::to_string).collect(),
            to_system: Provider::Bitrix24 as i32,
        };
        let found = self.client.clone().batch_resolve(req).await.map_err(registry_down)?.into_inner().ids;
        found
            .into_iter()
            .map(|(bling, bitrix)| {
                let what = format!("Bling product {bling}");
                Ok((stored(&what, bling)?, stored(&what, bitrix)?))
            })
            .collect()
    }

    /// Links Bling products to Bitrix24 products in one call; per link, empty or why it was
    /// refused (either side is linked to another product).
    pub async fn link_products(
        &self,
        tenant_id: &TenantId,
        pairs: &[(BlingId, ProductId)],
    ) -> Result<Vec<String>, ServiceError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let links = pairs
            .iter()
            .map(|(bling, bitrix)| entity_link(tenant_id, EntityKind::Product, *bling, bitrix.to_string()))
            .collect();
        let r = self.client.clone().batch_link(BatchLinkRequest { links }).await.map_err(registry_down)?;
        Ok(r.into_inner().results.into_iter().map(|r| r.conflict).collect())
    }
}

fn entity_link(tenant_id: &TenantId, kind: EntityKind, bling_id: BlingId, bitrix_id: String) -> EntityLink {
    EntityLink {
        tenant_id: tenant_id.to_string(),
        kind: kind as i32,
        system_a: Provider::Bling as i32,
        id_a: bling_id.to_string(),
        system_b: Provider::Bitrix24 as i32,
        id_b: bitrix_id,
        create_time: None,
    }
}
