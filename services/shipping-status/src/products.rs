//! An order's products at 360Envios: the registry's link when ponte sent the product before,
//! else the product read from Bling and sent for approval (its `external_id` the Bling id, its
//! images with it; a 409 adopts the hub's existing product), then linked in the registry and
//! remembered as awaiting approval. Only products of an order released for shipping are sent.

use std::collections::HashMap;

use ponte_connectors::{CallError, ConnectorError, envios360::transformers::new_product};
use ponte_core::{BlingId, TenantId, error::ServiceError};

use crate::{context::Context, shipments};

/// The products' 360 ids (and how many were sent now), or why one cannot be sent (for the
/// merchant: the hub's own reason when it refused one).
pub(crate) async fn at_hub(
    ctx: &Context,
    tenant: &TenantId,
    ids: &[BlingId],
) -> Result<Result<(HashMap<BlingId, String>, usize), String>, ServiceError> {
    let mut linked = ctx.mapping.hub_products(tenant, ids).await?;
    let mut sent = 0;
    for id in ids {
        if let Some(hub_id) = linked.get(id) {
            // Known to the registry; remembered here too, whichever replica sent it.
            shipments::sent_product(&ctx.db, tenant, *id, hub_id).await?;
            continue;
        }
        let Some(produto) = ctx.produto(tenant, *id).await? else {
            return Ok(Err(format!("product {id} of the order no longer exists in Bling")));
        };
        let product = new_product(&produto);
        let created = match ctx.hub_create_product(tenant, &product).await {
            Ok(created) => created,
            Err(CallError::Outside(ConnectorError::Rejected { status, message, fields, .. })) if status < 500 => {
                let why = if fields.is_empty() { message } else { fields.join("; ") };
                return Ok(Err(format!("360Envios refused product '{}' ({id}): {why}", product.sku)));
            }
            Err(e) => return Err(e.into()),
        };
        ctx.mapping.link_product(tenant, *id, created.id()).await?;
        shipments::sent_product(&ctx.db, tenant, *id, created.id()).await?;
        linked.insert(*id, created.id().to_owned());
        sent += 1;
    }
    Ok(Ok((linked, sent)))
}
