//! The Bling catalog into CPLUG (the point of sale): a product or price change in Bling is
//! upserted in CPLUG by its Bling id (`external_id`), from the webhook's copy of the product
//! (a variation is read from Bling again for its attributes), through the tenant's Bling →
//! CPLUG mapping, in a bulk call shared with whatever arrives meanwhile
//! ([`crate::cplug_bulks`]).
//!
//! Variations: with the store's grid module ("grade", the tenant's `cplug_grid_enabled`) a
//! variation carries its parent's Bling id and its attributes; without it, each variation is a
//! product of its own whose name carries the attributes, as CPLUG's contract says.

use ponte_connectors::{
    CallError,
    bling::resources::Produto,
    cplug::{CplugClient, transformers::from_bling, types::Product},
};
use ponte_core::{BlingId, TenantId, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::{Provider, SyncSettings, TranslateDirection};
use serde_json::Value;

use crate::{change::Change, context::Context};

/// Upserts Bling product `bling_id` of `tenant_id` into CPLUG. `sent` is the product as the
/// webhook carried it: it holds everything CPLUG takes but a variation's attributes, so only
/// variations are read from Bling again, sparing the account's 3 requests a second (the
/// gateway hands over an entity's events in order and stale ones never get here).
pub(crate) async fn sync(
    ctx: &Context,
    tenant_id: &TenantId,
    bling_id: BlingId,
    sent: Option<&Value>,
    settings: &SyncSettings,
    priority: Priority,
) -> Result<Change, ServiceError> {
    if ctx.tokens.get_if_connected(tenant_id, Provider::Cplug).await?.is_none() {
        return Ok(Change::Skipped("CPLUG is not connected"));
    }
    let sent = sent
        .filter(|v| v.get("idProdutoPai").is_none_or(Value::is_null))
        .and_then(|v| serde_json::from_value::<Produto>(v.clone()).ok())
        .filter(|p| p.id == bling_id && !p.nome.is_empty() && p.state().is_some());
    let product = match sent {
        Some(p) => p,
        None => match ctx.produto(tenant_id, bling_id, priority).await? {
            Some(p) => p,
            None => return Ok(Change::Skipped("deleted in Bling; CPLUG keeps its sales history")),
        },
    };
    let item = &cplug_product(ctx, tenant_id, &product, settings.cplug_grid_enabled).await?;
    let written = ctx
        .tokens
        .with_token(tenant_id, Provider::Cplug, |token| async move {
            // A refused token (CPLUG's ran out) is renewed by auth-token and the write goes once more.
            let client = CplugClient::new(ctx.http.clone(), token.base_url());
            ctx.cplug_bulks.upsert(&client, token.secret(), tenant_id, item.clone()).await.map_err(CallError::from)
        })
        .await;
    written?;
    Ok(Change::Updated(bling_id.to_string()))
}

/// CPLUG's product for Bling's `product` under the tenant's Bling → CPLUG mapping; `grid`: the
/// store uses CPLUG's grid module.
pub(crate) async fn cplug_product(
    ctx: &Context,
    tenant_id: &TenantId,
    product: &Produto,
    grid: bool,
) -> Result<Product, ServiceError> {
    let source = serde_json::to_value(product).map_err(|e| ServiceError::Internal(e.into()))?;
    let what = product.id.to_string();
    let mapped = ctx.mapping.translate(tenant_id, TranslateDirection::BlingToCplug, &what, &source).await?;
    Ok(from_bling(product, &mapped, grid))
}
