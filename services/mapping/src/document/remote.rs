//! The document against a running mapping service over gRPC: reading a tenant's tables, having
//! the service check the changes (their Bling ids included), and making them.

use std::collections::HashMap;

use anyhow::Context;
use ponte_core::grpc::TracedChannel as Channel;
use ponte_proto::v1::{
    CreateFieldMappingRequest, CreatePaymentMethodMapRequest, CreateSituacaoMapRequest, CreateStoreMapRequest,
    DeleteFieldMappingRequest, DeletePaymentMethodMapRequest, DeleteSituacaoMapRequest, DeleteStoreMapRequest,
    ListFieldMappingsRequest, ListPaymentMethodMapsRequest, ListSituacaoMapsRequest, ListStoreMapsRequest,
    mapping_service_client::MappingServiceClient,
};

use super::{
    format::{Document, PaymentMethod, Situacao, Status, Store, VERSION},
    plan::{Change, Current},
};
use crate::{audit::ACTOR_METADATA, fields::Spec};

fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", e.code(), e.message())
}

/// Reads a tenant's tables from the mapping service.
pub async fn read(client: &mut MappingServiceClient<Channel>, tenant_id: &str) -> anyhow::Result<Current> {
    let tenant = tenant_id.to_owned();
    let payment_methods = client
        .list_payment_method_maps(ListPaymentMethodMapsRequest { tenant_id: tenant.clone() })
        .await
        .map_err(status)?
        .into_inner()
        .maps
        .into_iter()
        .map(|m| PaymentMethod {
            cplug_method: m.cplug_method,
            bling_forma_pagamento_id: m.bling_forma_pagamento_id,
            is_default: m.is_default,
        })
        .collect();
    let stores = client
        .list_store_maps(ListStoreMapsRequest { tenant_id: tenant.clone() })
        .await
        .map_err(status)?
        .into_inner()
        .maps
        .into_iter()
        .map(|m| Store {
            cplug_store_id: m.cplug_store_id,
            bling_loja_id: m.bling_loja_id,
            bling_deposito_id: m.bling_deposito_id,
        })
        .collect();
    let mut situacoes = Vec::new();
    for m in client
        .list_situacao_maps(ListSituacaoMapsRequest { tenant_id: tenant.clone() })
        .await
        .map_err(status)?
        .into_inner()
        .maps
    {
        let shipping_status = Status::from_proto(m.shipping_status())
            .with_context(|| format!("situação {} has no shipping status", m.bling_situacao_id))?;
        situacoes.push(Situacao {
            bling_situacao_id: m.bling_situacao_id,
            bling_situacao_name: m.bling_situacao_name,
            shipping_status,
            releases_to_shipping: m.releases_to_shipping,
        });
    }
    let mut field_mappings = Vec::new();
    let mut field_mapping_ids = HashMap::new();
    for m in client
        .list_field_mappings(ListFieldMappingsRequest { tenant_id: tenant, target: 0 })
        .await
        .map_err(status)?
        .into_inner()
        .mappings
        .into_iter()
        .filter(|m| !m.builtin)
    {
        let spec = Spec::from_proto("mapping", &m).map_err(|e| anyhow::anyhow!("mapping {}: {e}", m.mapping_id))?;
        field_mapping_ids.insert((spec.target, spec.target_field.clone()), m.mapping_id);
        field_mappings.push(spec);
    }
    Ok(Current {
        document: Document {
            version: VERSION,
            payment_methods: Some(payment_methods),
            stores: Some(stores),
            situacoes: Some(situacoes),
            field_mappings: Some(field_mappings),
        },
        field_mapping_ids,
    })
}

fn request<T>(message: T, actor: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(ACTOR_METADATA, actor.parse().with_context(|| format!("actor '{actor}'"))?);
    Ok(req)
}

/// Whether the service checks a change against the tenant's Bling account.
fn checked_in_bling(change: &Change) -> bool {
    matches!(change, Change::CreatePaymentMethod(_) | Change::CreateStore(_) | Change::CreateSituacao(_))
}

/// Sends one change as `actor`; with `validate_only`, a create is checked and not made.
async fn send(
    client: &mut MappingServiceClient<Channel>,
    tenant_id: &str,
    change: &Change,
    actor: &str,
    validate_only: bool,
) -> anyhow::Result<Result<(), tonic::Status>> {
    let t = || tenant_id.to_owned();
    Ok(match change {
        Change::DeletePaymentMethod(p) => client
            .delete_payment_method_map(request(
                DeletePaymentMethodMapRequest { tenant_id: t(), cplug_method: p.cplug_method.clone() },
                actor,
            )?)
            .await
            .map(drop),
        Change::DeleteStore(s) => client
            .delete_store_map(request(
                DeleteStoreMapRequest { tenant_id: t(), cplug_store_id: s.cplug_store_id.clone() },
                actor,
            )?)
            .await
            .map(drop),
        Change::DeleteSituacao(s) => client
            .delete_situacao_map(request(
                DeleteSituacaoMapRequest { tenant_id: t(), bling_situacao_id: s.bling_situacao_id },
                actor,
            )?)
            .await
            .map(drop),
        Change::DeleteFieldMapping(_, id) => client
            .delete_field_mapping(request(DeleteFieldMappingRequest { tenant_id: t(), mapping_id: id.clone() }, actor)?)
            .await
            .map(drop),
        Change::CreatePaymentMethod(p) => client
            .create_payment_method_map(request(
                CreatePaymentMethodMapRequest { map: Some(p.to_proto(tenant_id)), validate_only },
                actor,
            )?)
            .await
            .map(drop),
        Change::CreateStore(s) => client
            .create_store_map(request(
                CreateStoreMapRequest { map: Some(s.to_proto(tenant_id)), validate_only },
                actor,
            )?)
            .await
            .map(drop),
        Change::CreateSituacao(s) => client
            .create_situacao_map(request(
                CreateSituacaoMapRequest { map: Some(s.to_proto(tenant_id)), validate_only },
                actor,
            )?)
            .await
            .map(drop),
        Change::CreateFieldMapping(s) => client
            .create_field_mapping(request(
                CreateFieldMappingRequest { mapping: Some(s.to_proto(tenant_id, "", false, None)) },
                actor,
            )?)
            .await
            .map(drop),
    })
}

/// Has the service check every payment method, store and situação `changes` create, their Bling
/// ids against the tenant's Bling account included, without making any change; stops at the
/// first refusal. (The rest of the document was checked whole by [`plan`].)
pub async fn check(
    client: &mut MappingServiceClient<Channel>,
    tenant_id: &str,
    changes: &[Change],
    actor: &str,
) -> anyhow::Result<()> {
    for change in changes.iter().filter(|c| checked_in_bling(c)) {
        send(client, tenant_id, change, actor, true)
            .await?
            .map_err(status)
            .with_context(|| format!("{change} (no change was made)"))?;
    }
    Ok(())
}

/// Checks `changes` (see [`check`]), then makes them in order, as `actor`; stops at the first
/// refusal, saying how many were made.
pub async fn apply(
    client: &mut MappingServiceClient<Channel>,
    tenant_id: &str,
    changes: &[Change],
    actor: &str,
) -> anyhow::Result<()> {
    check(client, tenant_id, changes, actor).await?;
    for (done, change) in changes.iter().enumerate() {
        send(client, tenant_id, change, actor, false)
            .await?
            .map_err(status)
            .with_context(|| format!("{change} (after {done} of {} changes)", changes.len()))?;
    }
    Ok(())
}
