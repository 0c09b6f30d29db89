//! One Bitrix24 product into Bling ("exportação", when the tenant turns it on): read from the
//! portal, translated through the inverse of the tenant's two-way mappings, matched to its Bling
//! product through the link registry or the "Bling ID" property, and written to Bling only when
//! Bling holds something else.
//!
//! No loops: every write ponte makes comes back as an event from the system it wrote (Bling's
//! `product.updated` after an export, Bitrix24's `ONCRMPRODUCTUPDATE` after a sync). Both
//! directions re-read the source and compare it with the target before writing, so the echo of
//! ponte's own write finds the two systems equal and stops there.

use ponte_connectors::{
    CallError,
    bitrix24::{Portal, ProductFields, ProductId},
    bling::{resources::produto_numbers, transformers::new_produto},
};
use ponte_core::{BlingId, TenantId, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::{Provider, TranslateDirection};
use serde_json::Value;

use crate::{change::Change, context::Context, portal::BLING_ID_CODE};

/// Exports Bitrix24 product `bitrix_id` of `tenant_id` into Bling.
pub(crate) async fn sync(
    ctx: &Context,
    tenant_id: &TenantId,
    bitrix_id: ProductId,
    priority: Priority,
) -> Result<Change, ServiceError> {
    let exported = ctx
        .tokens
        .with_token_if_connected(tenant_id, Provider::Bitrix24, |token| async move {
            export(ctx, tenant_id, &ctx.bitrix24.portal_for(&token, priority), bitrix_id, priority).await
        })
        .await?;
    Ok(exported.unwrap_or(Change::Skipped("Bitrix24 is not connected")))
}

async fn export(
    ctx: &Context,
    tenant_id: &TenantId,
    portal: &Portal,
    bitrix_id: ProductId,
    priority: Priority,
) -> Result<Change, CallError> {
    let property = ctx.bling_id_keys.get(portal).await?;
    let product = match portal.product(bitrix_id).await {
        Ok(p) => p,
        // Bling keeps its product when the CRM's copy is deleted.
        Err(e) if e.is_not_found() => return Ok(Change::Skipped("deleted in Bitrix24; Bling keeps it")),
        Err(e) => return Err(e.into()),
    };
    let marked = product.property(&property).into_iter().next().and_then(|v| BlingId::parse(&v).ok());
    let registered = ctx.mapping.bling_product_of(tenant_id, bitrix_id).await?;
    let in_registry = registered.is_some();
    // The mapping knows the property by its portal-independent name.
    let source = Value::Object(product.mapping_source(&property, BLING_ID_CODE));
    let direction = TranslateDirection::Bitrix24ToBling;
    let mut fields = ctx.mapping.translate(tenant_id, direction, &bitrix_id.to_string(), &source).await?;
    fields.remove("id");
    produto_numbers(&mut fields);

    let Some(bling_id) = registered.or(marked) else {
        // New in the CRM: create it in Bling, link it, and mark the CRM product so another
        // replica (or a retry) finds it before the link registry answers.
        // Bling's failures come back as ponte's, so a Bling refusal never renews the portal's token.
        let id = ctx.create_produto(tenant_id, &Value::Object(new_produto(fields)), priority).await?;
        ctx.mapping.link_product(tenant_id, id, bitrix_id).await?;
        let mut mark = ProductFields::default();
        mark.properties.insert(property, Value::String(id.to_string()));
        portal.update_product(bitrix_id, &mark).await?;
        return Ok(Change::Created(id.to_string()));
    };
    if !in_registry {
        ctx.mapping.link_product(tenant_id, bling_id, bitrix_id).await?;
    }
    let Some(current) = ctx.produto(tenant_id, bling_id, priority).await? else {
        return Ok(Change::Skipped("deleted in Bling; not created again"));
    };
    if current.holds(&fields) {
        return Ok(Change::Unchanged(bling_id.to_string()));
    }
    // Bling's PUT replaces the whole product: send what it has with the mapped fields over it.
    ctx.update_produto(tenant_id, bling_id, &Value::Object(current.with_fields(fields)), priority).await?;
    Ok(Change::Updated(bling_id.to_string()))
}
