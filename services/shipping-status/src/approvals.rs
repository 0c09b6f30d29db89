//! 360Envios's verdict on a product ponte sent (`product.approval_changed`): recorded for the
//! product (never over a newer verdict: webhooks arrive out of order), and so shown on every
//! shipment holding it, each of which gets a history line; a rejection carries the hub's reason.

use ponte_connectors::envios360::types::{ApprovalStatus, StatusWebhook};
use ponte_core::{BlingId, TenantId, error::ServiceError};

use crate::{
    context::Context,
    history::Done,
    shipments::{self, Verdict},
};

pub(crate) async fn on_approval(
    ctx: &Context,
    tenant: &TenantId,
    product: BlingId,
    occurred: i64,
    payload: &[u8],
) -> Result<Done, ServiceError> {
    let Some(p) = serde_json::from_slice::<StatusWebhook>(payload).ok().and_then(|w| w.product) else {
        return Ok(Done::reported(format!(
            "360Envios sent product.approval_changed for product {product} that ponte cannot read; nothing changed"
        )));
    };
    let reason = p.rejection_reason.clone().unwrap_or_default();
    let verdict = match p.approval_status {
        ApprovalStatus::Approved => "approved".to_owned(),
        ApprovalStatus::Pending => "put back to pending".to_owned(),
        ApprovalStatus::Rejected if reason.is_empty() => "rejected".to_owned(),
        ApprovalStatus::Rejected => format!("rejected: {reason}"),
    };
    let orders = shipments::orders_with(&ctx.db, tenant, product).await?;
    let done = match shipments::set_approval(&ctx.db, tenant, product, p.approval_status, &reason, occurred).await? {
        Verdict::Recorded if p.approval_status == ApprovalStatus::Rejected => Done::parked(
            format!("360Envios {verdict} (product {product}, {})", p.id),
            format!(
                "360Envios rejected product {product}: {}",
                if reason.is_empty() { "no reason given" } else { &reason }
            ),
        ),
        Verdict::Recorded => Done::applied(format!("360Envios {verdict} (product {product}, {})", p.id)),
        Verdict::Older => {
            Done::stale(format!("360Envios {verdict} product {product} before its newest verdict; kept the newest"))
        }
        Verdict::Unknown => {
            return Ok(Done::reported(format!(
                "360Envios {verdict} product {product} ({}), which ponte never sent; nothing changed",
                p.id
            )));
        }
    };
    Ok(done.touching(orders))
}
