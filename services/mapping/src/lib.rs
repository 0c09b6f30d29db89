//! mapping: how one system's data becomes another's, per tenant. Payment-method DE-PARA,
//! store, situação and product field mappings, and the link registry. Every change is audited.
//! [`document`] is the YAML form of a tenant's tables that `ponte mapping export|import` moves.
//! Every Bling id a map names (forma de pagamento, loja, depósito, situação) is checked against
//! the tenant's Bling account when the map is written ([`bling`]).

mod api;
mod audit;
mod bling;
mod depara;
pub mod document;
mod fields;
mod links;
mod payment_methods;
mod situacoes;
#[cfg(test)]
mod sqlite;
mod stores;
pub mod transform;

pub use audit::ACTOR_METADATA;
pub use fields::{Direction, RULES_TTL, Spec as FieldSpec, Target};

use ponte_connectors::Outside;
use ponte_core::{
    access::AccessTokens,
    config::ConfigError,
    db::Database,
    service::{Deps, TENANT_CACHE_TTL},
    tenants::TenantCheck,
};
use ponte_proto::{service_names, v1::mapping_service_server::MappingServiceServer};
use tonic::service::Routes;

ponte_core::service_spec! {
    /// The mapping service as the binary runs it.
    pub static SPEC = { name: "mapping", schema: "mapping", grpc_services: &[service_names::MAPPING, service_names::TENANT_DATA], routes: routes };
}

fn routes(deps: &Deps) -> Result<Routes, ConfigError> {
    let tenants = TenantCheck::new(deps.auth_token_channel()?, TENANT_CACHE_TTL);
    let api = Outside::from_env(&deps.env, deps.limiter.clone())?.bling;
    let bling = bling::BlingLists::new(AccessTokens::new(deps.auth_token_channel()?), api, bling::LIST_TTL);
    Ok(Routes::new(MappingServiceServer::new(Mapping {
        db: deps.db.clone(),
        tenants,
        bling,
        rules: Default::default(),
    }))
    .add_service(ponte_core::erasure::TenantData::server(deps, &ponte_core::erasure::PLAIN)))
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
