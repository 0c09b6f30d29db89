//! The gRPC surface of mapping: each call's tenant checked and parsed once, here, then handed to
//! the module that owns the table it touches.

use ponte_core::{
    TenantId,
    error::{ServiceError, quote},
};
use ponte_proto::v1::{
    BatchLinkRequest, BatchLinkResponse, BatchResolveRequest, BatchResolveResponse, CreateFieldMappingRequest,
    CreateFieldMappingResponse, CreatePaymentMethodMapRequest, CreatePaymentMethodMapResponse,
    CreateSituacaoMapRequest, CreateSituacaoMapResponse, CreateStoreMapRequest, CreateStoreMapResponse,
    DeleteFieldMappingRequest, DeleteFieldMappingResponse, DeletePaymentMethodMapRequest,
    DeletePaymentMethodMapResponse, DeleteSituacaoMapRequest, DeleteSituacaoMapResponse, DeleteStoreMapRequest,
    DeleteStoreMapResponse, LinkRequest, LinkResponse, ListAuditEntriesRequest, ListAuditEntriesResponse,
    ListFieldMappingsRequest, ListFieldMappingsResponse, ListPaymentMethodMapsRequest, ListPaymentMethodMapsResponse,
    ListSituacaoMapsRequest, ListSituacaoMapsResponse, ListStoreMapsRequest, ListStoreMapsResponse, MappingTarget,
    ResolveRequest, ResolveResponse, ResolveStoreRequest, ResolveStoreResponse, TranslatePaymentMethodRequest,
    TranslatePaymentMethodResponse, TranslateProductRequest, TranslateProductResponse, TranslateSituacaoRequest,
    TranslateSituacaoResponse, mapping_service_server::MappingService,
};
use tonic::{Request, Response, Status};

use crate::{
    Mapping, audit,
    depara::{self, Depara, Key},
    fields, links,
    payment_methods::{self, Method},
    situacoes::{self, Situacao},
    stores::{self, Store},
};

impl Mapping {
    /// The tenant must exist; a bad id is blamed on `field` (e.g. `map.tenant_id`).
    async fn tenant(&self, field: &str, raw: &str) -> Result<TenantId, ServiceError> {
        self.tenants.require_field(field, raw).await
    }

    /// A DE-PARA create: the map's tenant, its own checks, each Bling id it names against the
    /// tenant's Bling account, then the row (unless the caller only validates).
    async fn create_map<T: Depara>(
        &self,
        map: Option<T::Proto>,
        validate_only: bool,
        actor: &str,
    ) -> Result<T::Proto, ServiceError> {
        let map = map.ok_or_else(|| ServiceError::invalid("map", "is required"))?;
        let tenant = self.tenant("map.tenant_id", T::tenant_of(&map)).await?;
        let map = T::prepare("map", map)?;
        for (list, field, id) in map.bling_ids() {
            self.bling.require(&tenant, list, field, id).await?;
        }
        if validate_only {
            return Ok(map.to_proto(&tenant, None));
        }
        Ok(depara::create(&self.db, &tenant, map, actor).await?.to_proto(&tenant))
    }

    async fn list_maps<T: Depara>(&self, tenant_id: &str) -> Result<Vec<T::Proto>, ServiceError> {
        let tenant = self.tenant("tenant_id", tenant_id).await?;
        let rows = depara::list::<T>(&self.db, &tenant).await?;
        Ok(rows.iter().map(|r| r.to_proto(&tenant)).collect())
    }
}

#[tonic::async_trait]
impl MappingService for Mapping {
    async fn create_payment_method_map(
        &self,
        req: Request<CreatePaymentMethodMapRequest>,
    ) -> Result<Response<CreatePaymentMethodMapResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let req = req.into_inner();
        let map = self.create_map::<Method>(req.map, req.validate_only, &actor).await?;
        Ok(Response::new(CreatePaymentMethodMapResponse { map: Some(map) }))
    }

    async fn list_payment_method_maps(
        &self,
        req: Request<ListPaymentMethodMapsRequest>,
    ) -> Result<Response<ListPaymentMethodMapsResponse>, Status> {
        let maps = self.list_maps::<Method>(&req.into_inner().tenant_id).await?;
        Ok(Response::new(ListPaymentMethodMapsResponse { maps }))
    }

    async fn delete_payment_method_map(
        &self,
        req: Request<DeletePaymentMethodMapRequest>,
    ) -> Result<Response<DeletePaymentMethodMapResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let method = ServiceError::require("cplug_method", &req.cplug_method)?;
        depara::delete::<Method>(&self.db, &tenant, Key::Text(method), &actor).await?;
        Ok(Response::new(DeletePaymentMethodMapResponse {}))
    }

    async fn create_store_map(
        &self,
        req: Request<CreateStoreMapRequest>,
    ) -> Result<Response<CreateStoreMapResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let req = req.into_inner();
        let map = self.create_map::<Store>(req.map, req.validate_only, &actor).await?;
        Ok(Response::new(CreateStoreMapResponse { map: Some(map) }))
    }

    async fn list_store_maps(
        &self,
        req: Request<ListStoreMapsRequest>,
    ) -> Result<Response<ListStoreMapsResponse>, Status> {
        let maps = self.list_maps::<Store>(&req.into_inner().tenant_id).await?;
        Ok(Response::new(ListStoreMapsResponse { maps }))
    }

    async fn delete_store_map(
        &self,
        req: Request<DeleteStoreMapRequest>,
    ) -> Result<Response<DeleteStoreMapResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let store = ServiceError::require("cplug_store_id", &req.cplug_store_id)?;
        depara::delete::<Store>(&self.db, &tenant, Key::Text(store), &actor).await?;
        Ok(Response::new(DeleteStoreMapResponse {}))
    }

    async fn create_situacao_map(
        &self,
        req: Request<CreateSituacaoMapRequest>,
    ) -> Result<Response<CreateSituacaoMapResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let req = req.into_inner();
        let map = self.create_map::<Situacao>(req.map, req.validate_only, &actor).await?;
        Ok(Response::new(CreateSituacaoMapResponse { map: Some(map) }))
    }

    async fn list_situacao_maps(
        &self,
        req: Request<ListSituacaoMapsRequest>,
    ) -> Result<Response<ListSituacaoMapsResponse>, Status> {
        let maps = self.list_maps::<Situacao>(&req.into_inner().tenant_id).await?;
        Ok(Response::new(ListSituacaoMapsResponse { maps }))
    }

    async fn delete_situacao_map(
        &self,
        req: Request<DeleteSituacaoMapRequest>,
    ) -> Result<Response<DeleteSituacaoMapResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let id = depara::bling_id("bling_situacao_id", req.bling_situacao_id)?;
        depara::delete::<Situacao>(&self.db, &tenant, Key::Bling(id), &actor).await?;
        Ok(Response::new(DeleteSituacaoMapResponse {}))
    }

    async fn create_field_mapping(
        &self,
        req: Request<CreateFieldMappingRequest>,
    ) -> Result<Response<CreateFieldMappingResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let m = req.into_inner().mapping.ok_or_else(|| ServiceError::invalid("mapping", "is required"))?;
        let tenant = self.tenant("mapping.tenant_id", &m.tenant_id).await?;
        let spec = fields::Spec::from_proto("mapping", &m)?;
        let mapping = fields::create(&self.db, &self.rules, &tenant, spec, &actor).await?;
        Ok(Response::new(CreateFieldMappingResponse { mapping: Some(mapping) }))
    }

    async fn list_field_mappings(
        &self,
        req: Request<ListFieldMappingsRequest>,
    ) -> Result<Response<ListFieldMappingsResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let target = match MappingTarget::try_from(req.target) {
            Ok(MappingTarget::Unspecified) => None,
            Ok(MappingTarget::Bitrix24) => Some(fields::Target::Bitrix24),
            Ok(MappingTarget::Cplug) => Some(fields::Target::Cplug),
            Err(_) => return Err(ServiceError::invalid("target", "is not a mapping target").into()),
        };
        let mappings = fields::list(&self.db, &tenant, target).await?;
        Ok(Response::new(ListFieldMappingsResponse { mappings }))
    }

    async fn delete_field_mapping(
        &self,
        req: Request<DeleteFieldMappingRequest>,
    ) -> Result<Response<DeleteFieldMappingResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let id = ServiceError::require("mapping_id", &req.mapping_id)?;
        fields::delete(&self.db, &self.rules, &tenant, id, &actor).await?;
        Ok(Response::new(DeleteFieldMappingResponse {}))
    }

    async fn translate_product(
        &self,
        req: Request<TranslateProductRequest>,
    ) -> Result<Response<TranslateProductResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let fields = fields::translate(&self.db, &self.rules, &tenant, req.direction, req.fields.as_ref()).await?;
        Ok(Response::new(TranslateProductResponse { fields: Some(fields) }))
    }

    async fn translate_payment_method(
        &self,
        req: Request<TranslatePaymentMethodRequest>,
    ) -> Result<Response<TranslatePaymentMethodResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let method = ServiceError::require("cplug_method", &req.cplug_method)?;
        let (id, used_default) = payment_methods::translate(&self.db, &tenant, method, &req.cplug_store_id).await?;
        Ok(Response::new(TranslatePaymentMethodResponse { bling_forma_pagamento_id: id.get(), used_default }))
    }

    async fn translate_situacao(
        &self,
        req: Request<TranslateSituacaoRequest>,
    ) -> Result<Response<TranslateSituacaoResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let map = situacoes::translate(&self.db, &tenant, req.from).await?;
        Ok(Response::new(TranslateSituacaoResponse { map: Some(map.to_proto(&tenant)) }))
    }

    async fn resolve_store(&self, req: Request<ResolveStoreRequest>) -> Result<Response<ResolveStoreResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let store = ServiceError::require("cplug_store_id", &req.cplug_store_id)?;
        let map = stores::resolve(&self.db, &tenant, store).await?;
        Ok(Response::new(ResolveStoreResponse { map: Some(map.to_proto(&tenant)) }))
    }

    async fn link(&self, req: Request<LinkRequest>) -> Result<Response<LinkResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let l = req.into_inner().link.ok_or_else(|| ServiceError::invalid("link", "is required"))?;
        let tenant = self.tenant("link.tenant_id", &l.tenant_id).await?;
        let created = links::link(&self.db, &tenant, &l, &actor).await?;
        Ok(Response::new(LinkResponse { link: Some(links::answered(&l)), created }))
    }

    async fn batch_link(&self, req: Request<BatchLinkRequest>) -> Result<Response<BatchLinkResponse>, Status> {
        let actor = audit::actor(req.metadata());
        let links = req.into_inner().links;
        let Some(first) = links.first() else { return Ok(Response::new(BatchLinkResponse { results: vec![] })) };
        let tenant = self.tenant("links[0].tenant_id", &first.tenant_id).await?;
        let results = links::batch_link(&self.db, &tenant, &links, &actor).await?;
        Ok(Response::new(BatchLinkResponse { results }))
    }

    async fn batch_resolve(&self, req: Request<BatchResolveRequest>) -> Result<Response<BatchResolveResponse>, Status> {
        let r = req.into_inner();
        let tenant = self.tenant("tenant_id", &r.tenant_id).await?;
        let ids = links::batch_resolve(&self.db, &tenant, r.kind, r.from_system, &r.from_ids, r.to_system).await?;
        Ok(Response::new(BatchResolveResponse { ids }))
    }

    async fn resolve(&self, req: Request<ResolveRequest>) -> Result<Response<ResolveResponse>, Status> {
        let r = req.into_inner();
        let tenant = self.tenant("tenant_id", &r.tenant_id).await?;
        match links::resolve(&self.db, &tenant, r.kind, r.from_system, &r.from_id, r.to_system).await? {
            Some(id) => Ok(Response::new(ResolveResponse { id })),
            None => {
                Err(ServiceError::NotFound(format!("{} is not linked to an id in the other system", quote(&r.from_id)))
                    .into())
            }
        }
    }

    async fn list_audit_entries(
        &self,
        req: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenant("tenant_id", &req.tenant_id).await?;
        let (entries, next_page_token) = audit::list(&self.db, &tenant, req.page_size, &req.page_token).await?;
        Ok(Response::new(ListAuditEntriesResponse { entries, next_page_token }))
    }
}
