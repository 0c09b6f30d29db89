//! 360Envios's `order.status_changed` moves the Bling order to the situação mapped to the new
//! status (`PATCH /pedidos/vendas/{id}/situacoes/{idSituacao}`): romaneio → Em romaneio,
//! awaiting shipment → Aguardando coleta, in transit → Em rota de entrega, delivered → Atendido.
//!
//! Forward only: a status behind the shipment's (a late or reordered webhook) changes nothing
//! and is STALE; the same status again is a repeat. Bling is written before the status is
//! recorded, so a failure retries the whole step, and moving an order to the situação it is in
//! is a no-op at Bling. The situação written is remembered so that Bling's echo of it is not
//! taken for a change (see `echo`). The tracking code and URL are kept on the shipment: Bling's
//! API has no call that sets them on an order without a PUT of the whole order, which would race
//! with the merchant's own edits, and its logistics objects need an invoice and a carrier
//! service ponte does not have. A status ponte does not know, or an order it never sent, is kept
//! in the history and reported in the flow's status, not answered with an error.

use ponte_connectors::{
    CallError,
    envios360::types::{OrderStatus, StatusWebhook},
};
use ponte_core::{BlingId, TenantId, error::ServiceError};
use ponte_proto::v1::ShippingStatus;

use crate::{
    context::Context,
    echo,
    history::Done,
    release::failed,
    shipments::{self, Shipment},
};

/// The status the body names, as 360 wrote it, when ponte cannot read it.
fn raw_status(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| {
            v.pointer("/order/status").map(|s| s.as_str().map(str::to_owned).unwrap_or_else(|| s.to_string()))
        })
        .unwrap_or_default()
}

pub(crate) async fn on_status(
    ctx: &Context,
    tenant: &TenantId,
    order: BlingId,
    payload: &[u8],
) -> Result<Done, ServiceError> {
    let hook = match serde_json::from_slice::<StatusWebhook>(payload).map(|w| w.order) {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Ok(Done::reported("360Envios sent order.status_changed without its order; nothing changed"));
        }
        Err(_) => {
            return Ok(Done::reported(format!(
                "360Envios sent status {} for Bling order {order}, which ponte does not know; nothing changed",
                ponte_core::error::quote(&raw_status(payload))
            )));
        }
    };
    let Some(mut s) = shipments::get(&ctx.db, tenant, order).await? else {
        return Ok(Done::reported(format!(
            "360Envios order {} names Bling order {order}, which ponte never sent; nothing changed",
            hook.id
        )));
    };
    match &s.hub_id {
        Some(ours) if *ours != hook.id => {
            return Ok(Done::reported(format!(
                "360Envios order {} names Bling order {order}, whose 360Envios order is {ours}; nothing changed",
                hook.id
            )));
        }
        Some(_) => {}
        // Made by a create whose answer was never recorded: the hub's own word is proof enough.
        None => s.hub_id = Some(hook.id.clone()),
    }
    keep_tracking(&mut s, hook.tracking_code.as_deref(), hook.tracking_url.as_deref());
    let new = ShippingStatus::from(hook.status);
    let current = OrderStatus::try_from(s.status).ok();
    if s.status == new {
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::skipped(format!("already {}", new.as_str_name())));
    }
    if current.is_some_and(|c| !c.can_move_to(hook.status)) {
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::stale(format!(
            "{} is behind the shipment's {}; statuses only move forward",
            new.as_str_name(),
            s.status.as_str_name()
        )));
    }
    move_situacao(ctx, s, new).await
}

/// Keeps the tracking the hub sent (a repeat without it keeps what is known).
fn keep_tracking(s: &mut Shipment, code: Option<&str>, url: Option<&str>) {
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        s.tracking_code = code.to_owned();
    }
    if let Some(url) = url.filter(|u| !u.is_empty()) {
        s.tracking_url = url.to_owned();
    }
}

/// Records `new` and moves the Bling order to its situação, when one is mapped.
async fn move_situacao(ctx: &Context, mut s: Shipment, new: ShippingStatus) -> Result<Done, ServiceError> {
    let situacoes = ctx.mapping.situacoes(&s.tenant).await?;
    let target = situacoes.for_status(new).map(|m| (m.bling_situacao_id, m.bling_situacao_name.clone()));
    let Some((situacao, name)) = target.filter(|_| new != ShippingStatus::Received) else {
        s.status = new;
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::applied(format!(
            "recorded {}; no Bling situação is mapped to it, so the Bling order was not moved",
            new.as_str_name()
        )));
    };
    match ctx.mudar_situacao(&s.tenant, s.order, situacao).await {
        Ok(()) => {}
        Err(CallError::Outside(e)) if e.is_not_found() => {
            s.status = new;
            let problem = format!("{}, but the Bling order or situação '{name}' no longer exists", new.as_str_name());
            s.failed(&problem);
            shipments::save(&ctx.db, &mut s).await?;
            return Ok(Done::parked(format!("recorded {problem}"), problem));
        }
        Err(e) => return Err(failed(ctx, &mut s, e).await),
    }
    s.status = new;
    s.situacao = Some(situacao);
    s.last_error.clear();
    echo::expect(&mut s, situacao);
    shipments::save(&ctx.db, &mut s).await?;
    Ok(Done::applied(format!("{}: moved the Bling order to '{name}' ({situacao})", new.as_str_name())))
}
