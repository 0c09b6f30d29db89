//! mapping: how one system's data becomes another's, per tenant. Payment-method DE-PARA,
//! store, situação and product field mappings, and the link registry. Every change is audited.
//! [`document`] is the YAML form of a tenant's tables that `ponte mapping export|import` moves.
//! Every Bling id a map names (forma de pagamento, loja, depósito, situação) is checked against
//! the tenant's Bling account when the map is written ([`bling`]).

mod audit;
mod bling;
pub mod document;
mod fields;
mod links;
mod payment_methods;
mod situacoes;
mod stores;
pub mod transform;

pub use audit::ACTOR_METADATA;
pub use fields::{Direction, RULES_TTL, Spec as FieldSpec, Target};

use ponte_connectors::Outside;
use ponte_core::{
    ServiceError, TenantId,
    access::AccessTokens,
    config::ConfigError,
    db::{Database, Migrations},
    service::{Deps, ServiceSpec, TENANT_CACHE_TTL},
    tenants::TenantCheck,
};
use ponte_proto::{service_names, v1::mapping_service_server::MappingServiceServer};
use sqlx::migrate::Migrator;
use tonic::service::Routes;

static PG: Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATIONS: Migrations = Migrations { postgres: &PG, sqlite: &SQLITE };

/// The mapping service as the binary runs it.
pub static SPEC: ServiceSpec = ServiceSpec {
    name: "mapping",
    schema: "mapping",
    grpc_services: &[service_names::MAPPING],
    migrations: &MIGRATIONS,
    routes,
};

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    let tenants = TenantCheck::new(deps.auth_token_channel()?, TENANT_CACHE_TTL);
    let api = Outside::from_env(&deps.env, deps.limiter.clone())?.bling;
    let bling = bling::BlingLists::new(AccessTokens::new(deps.auth_token_channel()?), api, bling::LIST_TTL);
    Ok(Routes::new(MappingServiceServer::new(Mapping {
        db: deps.db.clone(),
        tenants,
        bling,
        rules: Default::default(),
    })))
}

/// The gRPC implementation.
#[derive(Clone)]
pub struct Mapping {
    db: Database,
    tenants: TenantCheck,
    /// The tenants' Bling lists that mapped Bling ids are checked against.
    bling: bling::BlingLists,
    rules: fields::RuleCache,
}

impl Mapping {
    /// The tenant must exist; a bad id is blamed on `field` (e.g. `map.tenant_id`).
    async fn tenant(&self, field: &str, tenant_id: &str) -> Result<TenantId, ServiceError> {
        self.tenants.require_field(field, tenant_id).await
    }
}

mod api {
    use ponte_core::error::ServiceError;
    use ponte_proto::v1::{
        BatchLinkRequest, BatchLinkResponse, BatchResolveRequest, BatchResolveResponse, CreateFieldMappingRequest,
        CreateFieldMappingResponse, CreatePaymentMethodMapRequest, CreatePaymentMethodMapResponse,
        CreateSituacaoMapRequest, CreateSituacaoMapResponse, CreateStoreMapRequest, CreateStoreMapResponse,
        DeleteFieldMappingRequest, DeleteFieldMappingResponse, DeletePaymentMethodMapRequest,
        DeletePaymentMethodMapResponse, DeleteSituacaoMapRequest, DeleteSituacaoMapResponse, DeleteStoreMapRequest,
        DeleteStoreMapResponse, LinkRequest, LinkResponse, ListAuditEntriesRequest, ListAuditEntriesResponse,
        ListFieldMappingsRequest, ListFieldMappingsResponse, ListPaymentMethodMapsRequest,
        ListPaymentMethodMapsResponse, ListSituacaoMapsRequest, ListSituacaoMapsResponse, ListStoreMapsRequest,
        ListStoreMapsResponse, MappingTarget, ResolveRequest, ResolveResponse, ResolveStoreRequest,
        ResolveStoreResponse, TranslatePaymentMethodRequest, TranslatePaymentMethodResponse, TranslateProductRequest,
        TranslateProductResponse, TranslateSituacaoRequest, TranslateSituacaoResponse,
        mapping_service_server::MappingService,
    };
    use tonic::{Request, Response, Status};

    use crate::{
        Mapping, audit,
        bling::List::{CanaisVenda, Depositos, FormasPagamento, Situacoes},
        fields, links, payment_methods, situacoes, stores,
    };

    #[tonic::async_trait]
    impl MappingService for Mapping {
        async fn create_payment_method_map(
            &self,
            req: Request<CreatePaymentMethodMapRequest>,
        ) -> Result<Response<CreatePaymentMethodMapResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let req = req.into_inner();
            let map = req.map.ok_or_else(|| ServiceError::invalid("map", "is required"))?;
            let tenant = self.tenant("map.tenant_id", &map.tenant_id).await?;
            let map = payment_methods::prepare(map)?;
            let forma = map.bling_forma_pagamento_id;
            self.bling.require(&tenant, FormasPagamento, "map.bling_forma_pagamento_id", forma).await?;
            let map = if req.validate_only { map } else { payment_methods::create(&self.db, map, &actor).await? };
            Ok(Response::new(CreatePaymentMethodMapResponse { map: Some(map) }))
        }

        async fn list_payment_method_maps(
            &self,
            req: Request<ListPaymentMethodMapsRequest>,
        ) -> Result<Response<ListPaymentMethodMapsResponse>, Status> {
            let tenant_id = req.into_inner().tenant_id;
            self.tenant("tenant_id", &tenant_id).await?;
            let maps = payment_methods::list(&self.db, &tenant_id).await?;
            Ok(Response::new(ListPaymentMethodMapsResponse { maps }))
        }

        async fn delete_payment_method_map(
            &self,
            req: Request<DeletePaymentMethodMapRequest>,
        ) -> Result<Response<DeletePaymentMethodMapResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let method = ServiceError::require("cplug_method", &req.cplug_method)?;
            payment_methods::delete(&self.db, &req.tenant_id, method, &actor).await?;
            Ok(Response::new(DeletePaymentMethodMapResponse {}))
        }

        async fn create_store_map(
            &self,
            req: Request<CreateStoreMapRequest>,
        ) -> Result<Response<CreateStoreMapResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let req = req.into_inner();
            let map = req.map.ok_or_else(|| ServiceError::invalid("map", "is required"))?;
            let t = &self.tenant("map.tenant_id", &map.tenant_id).await?;
            let map = stores::prepare(map)?;
            self.bling.require(t, CanaisVenda, "map.bling_loja_id", map.bling_loja_id).await?;
            self.bling.require(t, Depositos, "map.bling_deposito_id", map.bling_deposito_id).await?;
            let map = if req.validate_only { map } else { stores::create(&self.db, map, &actor).await? };
            Ok(Response::new(CreateStoreMapResponse { map: Some(map) }))
        }

        async fn list_store_maps(
            &self,
            req: Request<ListStoreMapsRequest>,
        ) -> Result<Response<ListStoreMapsResponse>, Status> {
            let tenant_id = req.into_inner().tenant_id;
            self.tenant("tenant_id", &tenant_id).await?;
            let maps = stores::list(&self.db, &tenant_id).await?;
            Ok(Response::new(ListStoreMapsResponse { maps }))
        }

        async fn delete_store_map(
            &self,
            req: Request<DeleteStoreMapRequest>,
        ) -> Result<Response<DeleteStoreMapResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let store = ServiceError::require("cplug_store_id", &req.cplug_store_id)?;
            stores::delete(&self.db, &req.tenant_id, store, &actor).await?;
            Ok(Response::new(DeleteStoreMapResponse {}))
        }

        async fn create_situacao_map(
            &self,
            req: Request<CreateSituacaoMapRequest>,
        ) -> Result<Response<CreateSituacaoMapResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let req = req.into_inner();
            let map = req.map.ok_or_else(|| ServiceError::invalid("map", "is required"))?;
            let tenant = self.tenant("map.tenant_id", &map.tenant_id).await?;
            let map = situacoes::prepare(map)?;
            self.bling.require(&tenant, Situacoes, "map.bling_situacao_id", map.bling_situacao_id).await?;
            let map = if req.validate_only { map } else { situacoes::create(&self.db, map, &actor).await? };
            Ok(Response::new(CreateSituacaoMapResponse { map: Some(map) }))
        }

        async fn list_situacao_maps(
            &self,
            req: Request<ListSituacaoMapsRequest>,
        ) -> Result<Response<ListSituacaoMapsResponse>, Status> {
            let tenant_id = req.into_inner().tenant_id;
            self.tenant("tenant_id", &tenant_id).await?;
            let maps = situacoes::list(&self.db, &tenant_id).await?;
            Ok(Response::new(ListSituacaoMapsResponse { maps }))
        }

        async fn delete_situacao_map(
            &self,
            req: Request<DeleteSituacaoMapRequest>,
        ) -> Result<Response<DeleteSituacaoMapResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            situacoes::delete(&self.db, &req.tenant_id, req.bling_situacao_id, &actor).await?;
            Ok(Response::new(DeleteSituacaoMapResponse {}))
        }

        async fn create_field_mapping(
            &self,
            req: Request<CreateFieldMappingRequest>,
        ) -> Result<Response<CreateFieldMappingResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let m = req.into_inner().mapping.ok_or_else(|| ServiceError::invalid("mapping", "is required"))?;
            self.tenant("mapping.tenant_id", &m.tenant_id).await?;
            let spec = fields::Spec::from_proto("mapping", &m)?;
            let mapping = fields::create(&self.db, &self.rules, &m.tenant_id, spec, &actor).await?;
            Ok(Response::new(CreateFieldMappingResponse { mapping: Some(mapping) }))
        }

        async fn list_field_mappings(
            &self,
            req: Request<ListFieldMappingsRequest>,
        ) -> Result<Response<ListFieldMappingsResponse>, Status> {
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let target = match MappingTarget::try_from(req.target) {
                Ok(MappingTarget::Unspecified) => None,
                Ok(MappingTarget::Bitrix24) => Some(fields::Target::Bitrix24),
                Ok(MappingTarget::Cplug) => Some(fields::Target::Cplug),
                Err(_) => return Err(ServiceError::invalid("target", "is not a mapping target").into()),
            };
            let mappings = fields::list(&self.db, &req.tenant_id, target).await?;
            Ok(Response::new(ListFieldMappingsResponse { mappings }))
        }

        async fn delete_field_mapping(
            &self,
            req: Request<DeleteFieldMappingRequest>,
        ) -> Result<Response<DeleteFieldMappingResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let id = ServiceError::require("mapping_id", &req.mapping_id)?;
            fields::delete(&self.db, &self.rules, &req.tenant_id, id, &actor).await?;
            Ok(Response::new(DeleteFieldMappingResponse {}))
        }

        async fn translate_product(
            &self,
            req: Request<TranslateProductRequest>,
        ) -> Result<Response<TranslateProductResponse>, Status> {
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let fields =
                fields::translate(&self.db, &self.rules, &req.tenant_id, req.direction, req.fields.as_ref()).await?;
            Ok(Response::new(TranslateProductResponse { fields: Some(fields) }))
        }

        async fn translate_payment_method(
            &self,
            req: Request<TranslatePaymentMethodRequest>,
        ) -> Result<Response<TranslatePaymentMethodResponse>, Status> {
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let method = ServiceError::require("cplug_method", &req.cplug_method)?;
            let (id, used_default) =
                payment_methods::translate(&self.db, &req.tenant_id, method, &req.cplug_store_id).await?;
            Ok(Response::new(TranslatePaymentMethodResponse { bling_forma_pagamento_id: id, used_default }))
        }

        async fn translate_situacao(
            &self,
            req: Request<TranslateSituacaoRequest>,
        ) -> Result<Response<TranslateSituacaoResponse>, Status> {
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let map = situacoes::translate(&self.db, &req.tenant_id, req.from).await?;
            Ok(Response::new(TranslateSituacaoResponse { map: Some(map) }))
        }

        async fn resolve_store(
            &self,
            req: Request<ResolveStoreRequest>,
        ) -> Result<Response<ResolveStoreResponse>, Status> {
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let store = ServiceError::require("cplug_store_id", &req.cplug_store_id)?;
            let map = stores::resolve(&self.db, &req.tenant_id, store).await?;
            Ok(Response::new(ResolveStoreResponse { map: Some(map) }))
        }

        async fn link(&self, req: Request<LinkRequest>) -> Result<Response<LinkResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let l = req.into_inner().link.ok_or_else(|| ServiceError::invalid("link", "is required"))?;
            self.tenant("link.tenant_id", &l.tenant_id).await?;
            let created = links::link(&self.db, &l, &actor).await?;
            Ok(Response::new(LinkResponse { link: Some(links::answered(&l)), created }))
        }

        async fn batch_link(&self, req: Request<BatchLinkRequest>) -> Result<Response<BatchLinkResponse>, Status> {
            let actor = audit::actor(req.metadata());
            let links = req.into_inner().links;
            if let Some(first) = links.first() {
                self.tenant("links[0].tenant_id", &first.tenant_id).await?;
            }
            let results = links::batch_link(&self.db, &links, &actor).await?;
            Ok(Response::new(BatchLinkResponse { results }))
        }

        async fn batch_resolve(
            &self,
            req: Request<BatchResolveRequest>,
        ) -> Result<Response<BatchResolveResponse>, Status> {
            let r = req.into_inner();
            self.tenant("tenant_id", &r.tenant_id).await?;
            let ids =
                links::batch_resolve(&self.db, &r.tenant_id, r.kind, r.from_system, &r.from_ids, r.to_system).await?;
            Ok(Response::new(BatchResolveResponse { ids }))
        }

        async fn resolve(&self, req: Request<ResolveRequest>) -> Result<Response<ResolveResponse>, Status> {
            let r = req.into_inner();
            self.tenant("tenant_id", &r.tenant_id).await?;
            match links::resolve(&self.db, &r.tenant_id, r.kind, r.from_system, &r.from_id, r.to_system).await? {
                Some(id) => Ok(Response::new(ResolveResponse { id })),
                None => {
                    Err(ServiceError::NotFound(format!("'{}' is not linked to an id in the other system", r.from_id))
                        .into())
                }
            }
        }

        async fn list_audit_entries(
            &self,
            req: Request<ListAuditEntriesRequest>,
        ) -> Result<Response<ListAuditEntriesResponse>, Status> {
            let req = req.into_inner();
            self.tenant("tenant_id", &req.tenant_id).await?;
            let (entries, next_page_token) =
                audit::list(&self.db, &req.tenant_id, req.page_size, &req.page_token).await?;
            Ok(Response::new(ListAuditEntriesResponse { entries, next_page_token }))
        }
    }
}

/// `ponte dev` runs on SQLite: every table's queries, on a migrated SQLite file.
#[cfg(test)]
mod sqlite {
    use ponte_core::db::Database;
    use ponte_proto::v1::{
        EntityKind, EntityLink, MappingDirection, MappingTarget, PaymentMethodMap, Provider, ShippingStatus,
        SituacaoMap, StoreMap, TranslateDirection, translate_situacao_request::From as SituacaoFrom,
    };
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn every_table_reads_and_writes_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::sqlite_in(dir.path(), "mapping").await.unwrap();
        db.migrate(&MIGRATIONS).await.unwrap();
        let t = "loja";

        let pm = |m: &str, id, d| PaymentMethodMap {
            tenant_id: t.into(),
            cplug_method: m.into(),
            bling_forma_pagamento_id: id,
            is_default: d,
            create_time: None,
        };
        payment_methods::create(&db, pm("CREDITO", 1, false), "a").await.unwrap();
        payment_methods::create(&db, pm("DINHEIRO", 2, true), "a").await.unwrap();
        assert!(payment_methods::create(&db, pm("PIX", 3, true), "a").await.is_err());
        let listed = payment_methods::list(&db, t).await.unwrap();
        assert_eq!(listed.iter().map(|m| m.is_default).collect::<Vec<_>>(), [false, true]);
        assert_eq!(payment_methods::translate(&db, t, "VALE", "").await.unwrap(), (2, true));

        let store = StoreMap {
            tenant_id: t.into(),
            cplug_store_id: "centro".into(),
            bling_loja_id: 7,
            bling_deposito_id: 8,
            create_time: None,
        };
        stores::create(&db, store.clone(), "a").await.unwrap();
        // Another tenant may use the same store id.
        stores::create(&db, StoreMap { tenant_id: "outra".into(), bling_deposito_id: 9, ..store }, "a").await.unwrap();
        assert_eq!(stores::resolve(&db, t, "centro").await.unwrap().bling_deposito_id, 8);
        stores::delete(&db, t, "centro", "a").await.unwrap();
        assert!(stores::list(&db, t).await.unwrap().is_empty());
        assert_eq!(stores::resolve(&db, "outra", "centro").await.unwrap().bling_deposito_id, 9);

        let sit = |id, status: ShippingStatus, r| SituacaoMap {
            tenant_id: t.into(),
            bling_situacao_id: id,
            bling_situacao_name: format!("s{id}"),
            shipping_status: status as i32,
            releases_to_shipping: r,
            create_time: None,
        };
        situacoes::create(&db, sit(15, ShippingStatus::Received, true), "a").await.unwrap();
        situacoes::create(&db, sit(16, ShippingStatus::Delivered, false), "a").await.unwrap();
        assert!(situacoes::create(&db, sit(17, ShippingStatus::Cancelled, true), "a").await.is_err());
        let back = situacoes::translate(&db, t, Some(SituacaoFrom::ShippingStatus(ShippingStatus::Received as i32)))
            .await
            .unwrap();
        assert!(back.releases_to_shipping && back.bling_situacao_id == 15);
        situacoes::delete(&db, t, 15, "a").await.unwrap();
        assert_eq!(situacoes::list(&db, t).await.unwrap().len(), 1);

        let rules = fields::RuleCache::default();
        let m = ponte_proto::v1::FieldMapping {
            target: MappingTarget::Cplug as i32,
            bling_field: "preco".into(),
            target_field: "price".into(),
            direction: MappingDirection::OneWay as i32,
            transforms: vec![
                transform::Transform::NumberFormat(transform::NumberFormat { decimals: 2, decimal_separator: ',' })
                    .to_proto(),
            ],
            ..Default::default()
        };
        let spec = fields::Spec::from_proto("mapping", &m).unwrap();
        let created = fields::create(&db, &rules, t, spec, "a").await.unwrap();
        let out = fields::translate(
            &db,
            &rules,
            t,
            TranslateDirection::BlingToCplug as i32,
            Some(&ponte_core::structs::to_struct(&json!({"preco": 5}))),
        )
        .await
        .unwrap();
        assert_eq!(ponte_core::structs::from_struct(&out), json!({"price": "5,00"}));
        assert_eq!(fields::list(&db, t, Some(Target::Cplug)).await.unwrap().len(), 1);
        fields::delete(&db, &rules, t, &created.mapping_id, "a").await.unwrap();

        let l = EntityLink {
            tenant_id: t.into(),
            kind: EntityKind::Product as i32,
            system_a: Provider::Bling as i32,
            id_a: "1".into(),
            system_b: Provider::Bitrix24 as i32,
            id_b: "2".into(),
            create_time: None,
        };
        assert!(links::link(&db, &l, "a").await.unwrap());
        assert!(!links::link(&db, &l, "a").await.unwrap());
        let resolved = links::resolve(&db, t, l.kind, l.system_b, "2", l.system_a).await.unwrap();
        assert_eq!(resolved.as_deref(), Some("1"));

        let (entries, _) = audit::list(&db, t, 100, "").await.unwrap();
        let mut tables: Vec<&str> = entries.iter().map(|e| e.table.as_str()).collect();
        tables.dedup();
        assert_eq!(tables, ["link", "field_mapping", "situacao", "store", "payment_method"]);
    }
}
