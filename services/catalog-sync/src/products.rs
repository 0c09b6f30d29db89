//! One Bling product into Bitrix24: re-read from Bling (events are notifications; Bling is the
//! truth), translated through the tenant's field mapping, found through the link registry and
//! then the portal's "Bling ID" property ([`crate::portal`]) before anything is created (so a
//! retry never duplicates), written only when something changed (so Bitrix24 echoing ponte's
//! own write back does not loop), and linked. A product deleted in Bling is deactivated.

use ponte_connectors::{
    CallError,
    bitrix24::{Portal, ProductFields, YesNo},
    bling::transformers::ProductState,
};
use ponte_core::{BlingId, TenantId, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::{Provider, SyncSettings, TranslateDirection};
use serde::Serialize;

use crate::{change::Change, context::Context, portal::BLING_ID_CODE};

/// Syncs Bling product `bling_id` of `tenant_id` into Bitrix24 as `settings` allow.
pub(crate) async fn sync(
    ctx: &Context,
    tenant_id: &TenantId,
    bling_id: BlingId,
    settings: &SyncSettings,
    priority: Priority,
) -> Result<Change, ServiceError> {
    // A merchant who has not connected Bitrix24 does not use this flow.
    if ctx.tokens.get_if_connected(tenant_id, Provider::Bitrix24).await?.is_none() {
        return Ok(Change::Skipped("Bitrix24 is not connected"));
    }
    let product = ctx.produto(tenant_id, bling_id, priority).await?;
    let fields = match product.filter(|p| p.state() != Some(ProductState::Deleted)) {
        Some(p) => Some(bitrix24_fields(ctx, tenant_id, bling_id, &p).await?),
        None => None,
    };
    let fields = &fields;
    let written = ctx
        .tokens
        .with_token(tenant_id, Provider::Bitrix24, |token| async move {
            let portal = ctx.bitrix24.portal_for(&token, priority);
            write(ctx, tenant_id, &portal, bling_id, fields.clone(), settings).await
        })
        .await;
    Ok(written?)
}

/// The Bitrix24 fields of Bling product `bling_id` (read in full, or as a list item) under the
/// tenant's mapping; the "Bling ID" property still under its code.
pub(crate) async fn bitrix24_fields(
    ctx: &Context,
    tenant_id: &TenantId,
    bling_id: BlingId,
    product: &impl Serialize,
) -> Result<ProductFields, ServiceError> {
    let what = bling_id.to_string();
    let source = serde_json::to_value(product).map_err(|e| ServiceError::Internal(e.into()))?;
    let mapped = ctx.mapping.translate(tenant_id, TranslateDirection::BlingToBitrix24, &what, &source).await?;
    ProductFields::try_from(mapped)
        .map_err(|e| ServiceError::FailedPrecondition(format!("mapping product {what}: {e}")))
}

/// Writes what Bling holds (`None`: deleted) to the portal.
async fn write(
    ctx: &Context,
    tenant_id: &TenantId,
    portal: &Portal,
    bling_id: BlingId,
    fields: Option<ProductFields>,
    settings: &SyncSettings,
) -> Result<Change, CallError> {
    let property = ctx.bling_id_keys.get(portal).await?;
    let linked = ctx.mapping.product_of(tenant_id, bling_id).await?;
    let existing = match linked {
        Some(id) => Some(id),
        None => portal.find_product_by_property(&property, &bling_id.to_string()).await?.map(|p| p.id),
    };

    let Some(mut fields) = fields else {
        let Some(id) = existing else { return Ok(Change::Skipped("deleted in Bling and never synced")) };
        portal.update_product(id, &ProductFields { active: Some(YesNo::N), ..Default::default() }).await?;
        return Ok(Change::Deactivated(id.to_string()));
    };
    // The link property carries the Bling id whatever the mapping says: it is how a retry
    // (or another replica) finds the product before the link registry knows it.
    fields.set_property(BLING_ID_CODE, property, bling_id.to_string());

    let Some(id) = existing else {
        if !settings.bling_create_creates_in_bitrix24 {
            return Ok(Change::Skipped("creation in Bling does not create in Bitrix24 (switch off)"));
        }
        let id = portal.add_product(&fields).await?;
        ctx.mapping.link_product(tenant_id, bling_id, id).await?;
        return Ok(Change::Created(id.to_string()));
    };
    if linked.is_none() {
        ctx.mapping.link_product(tenant_id, bling_id, id).await?;
    }
    if !settings.bling_update_updates_bitrix24 {
        return Ok(Change::Skipped("changes in Bling do not update Bitrix24 (switch off)"));
    }
    if fields.held_by(&portal.product(id).await?) {
        return Ok(Change::Unchanged(id.to_string()));
    }
    portal.update_product(id, &fields).await?;
    Ok(Change::Updated(id.to_string()))
}
