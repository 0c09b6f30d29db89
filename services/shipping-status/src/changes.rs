//! A later Bling change to an order ponte released, read from Bling and compared with what 360
//! holds: an edit (items, quantities, address) is forwarded with `PUT /orders/{id}` while 360
//! allows it; a cancellation (the situação mapped to CANCELLED, or the order deleted) cancels
//! the 360 order. What 360 no longer accepts — an edit once the order is in transit, a
//! cancellation once it is delivered — is recorded on the shipment for a person ("changed in
//! Bling after dispatch, not forwarded"), never dropped silently.
//!
//! Released, cancelled and released again: an order cancelled before it reached the hub is sent
//! as a new one. One cancelled at the hub is not sent again — 360 keeps one order per
//! `external_id` (the Bling order id), and a cancelled order cannot be revived there — and the
//! shipment asks a person to ship a copy of the order instead.

use ponte_connectors::{CallError, ConnectorError, bling::resources::PedidoVenda, envios360::types::OrderStatus};
use ponte_core::error::ServiceError;
use ponte_proto::v1::ShippingStatus;

use crate::{
    context::Context,
    history::Done,
    mapping::Situacoes,
    order_body, products,
    release::{self, failed},
    shipments::{self, Shipment},
};

/// What a person is told when an order cancelled at 360 is released again.
const RELEASED_AGAIN: &str = "released again in Bling after its 360Envios order was cancelled; 360Envios keeps one \
     order per Bling order, so it was not sent again: copy the order in Bling to ship it";

/// Whether the hub has the parcel already (edits and cancellations are no longer taken).
fn dispatched(s: &Shipment) -> bool {
    matches!(s.status, ShippingStatus::InTransit | ShippingStatus::Delivered)
}

/// The hub's status as messages say it.
fn status_words(s: ShippingStatus) -> String {
    OrderStatus::try_from(s)
        .ok()
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_else(|| "not at the hub".into())
}

/// Records what a person must look at; PARKED, once per distinct note.
async fn attention(ctx: &Context, mut s: Shipment, note: String) -> Result<Done, ServiceError> {
    let repeated = s.attention == note;
    s.attention = note.clone();
    shipments::save(&ctx.db, &mut s).await?;
    let action = if repeated {
        format!("still recorded for a person: {note}")
    } else {
        format!("recorded for a person: {note}")
    };
    Ok(Done::parked(action, note))
}

/// Acts on a Bling change to the order of `s`.
pub(crate) async fn on_change(ctx: &Context, situacoes: &Situacoes, mut s: Shipment) -> Result<Done, ServiceError> {
    let Some(pedido) = ctx.pedido(&s.tenant, s.order).await? else {
        return cancel(ctx, s, "deleted in Bling").await;
    };
    s.bling_total = pedido.total.unwrap_or_default().normalize().to_string();
    let situacao = pedido.situacao.id;
    if situacoes.status_of(situacao) == Some(ShippingStatus::Cancelled) {
        return cancel(ctx, s, "cancelled in Bling").await;
    }
    if s.hub_id.is_none() {
        if situacoes.releases(situacao) {
            let (tenant, order) = (s.tenant.clone(), s.order);
            return release::release(ctx, situacoes, &tenant, order, Some(s), Some(pedido)).await;
        }
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::skipped(format!(
            "not at 360Envios, and no longer released (the order is at situação {})",
            situacoes.name(situacao)
        )));
    }
    if s.status == ShippingStatus::Cancelled {
        if situacoes.releases(situacao) {
            return attention(ctx, s, RELEASED_AGAIN.into()).await;
        }
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::skipped("the 360Envios order is cancelled; nothing to forward"));
    }
    forward(ctx, s, &pedido).await
}

/// Forwards an edit of the order, if it changed what 360 holds.
async fn forward(ctx: &Context, mut s: Shipment, pedido: &PedidoVenda) -> Result<Done, ServiceError> {
    let tenant = s.tenant.clone();
    let Some(hub_id) = s.hub_id.clone() else { return Ok(Done::skipped("not at 360Envios")) };
    let ids = match order_body::product_ids(pedido) {
        Ok(ids) => ids,
        Err(why) => return attention(ctx, s, format!("changed in Bling, not forwarded: {why}")).await,
    };
    // The registry's links alone tell whether the items changed: a product 360 never got is a
    // change, and is not sent for an order that cannot take it any more.
    let linked = ctx.mapping.hub_products(&tenant, &ids).await?;
    let same = order_body::build(pedido, &linked).is_ok_and(|b| order_body::digest(&b) == s.sent_digest);
    if same {
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::skipped("nothing 360Envios holds changed"));
    }
    if dispatched(&s) {
        let note = format!("changed in Bling after dispatch, not forwarded (360Envios: {})", status_words(s.status));
        return attention(ctx, s, note).await;
    }
    let hub = match products::at_hub(ctx, &tenant, &ids).await? {
        Ok((hub, _)) => hub,
        Err(why) => return attention(ctx, s, format!("changed in Bling, not forwarded: {why}")).await,
    };
    let body = match order_body::build(pedido, &hub) {
        Ok(body) => body,
        Err(why) => return attention(ctx, s, format!("changed in Bling, not forwarded: {why}")).await,
    };
    shipments::set_products(&ctx.db, &tenant, s.order, &order_body::lines(pedido)).await?;
    match ctx.hub_update_order(&tenant, &hub_id, &body).await {
        Ok(()) => {
            s.sent_digest = order_body::digest(&body);
            s.last_error.clear();
            shipments::save(&ctx.db, &mut s).await?;
            Ok(Done::applied(format!("forwarded the change to 360Envios order {hub_id}")))
        }
        Err(CallError::Outside(ConnectorError::Rejected { status: 422, message, .. })) => {
            let note = format!("changed in Bling after dispatch, not forwarded (360Envios: {message})");
            attention(ctx, s, note).await
        }
        Err(CallError::Outside(ConnectorError::Rejected { status, message, fields, .. })) if status < 500 => {
            let why = if fields.is_empty() { message } else { fields.join("; ") };
            attention(ctx, s, format!("changed in Bling, not forwarded: 360Envios refused it: {why}")).await
        }
        Err(e) => Err(failed(ctx, &mut s, e).await),
    }
}

/// Cancels the shipment of an order cancelled (or deleted) in Bling.
pub(crate) async fn cancel(ctx: &Context, mut s: Shipment, why: &str) -> Result<Done, ServiceError> {
    if s.status == ShippingStatus::Cancelled {
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::skipped("already cancelled"));
    }
    let Some(hub_id) = s.hub_id.clone() else {
        s.status = ShippingStatus::Cancelled;
        s.waiting_reason.clear();
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::applied(format!("{why} before it reached 360Envios: nothing to cancel there")));
    };
    if dispatched(&s) {
        let note = format!("{why} after dispatch, not forwarded (360Envios: {})", status_words(s.status));
        return attention(ctx, s, note).await;
    }
    match ctx.hub_cancel_order(&s.tenant.clone(), &hub_id).await {
        Ok(_) => {
            s.status = ShippingStatus::Cancelled;
            s.last_error.clear();
            shipments::save(&ctx.db, &mut s).await?;
            Ok(Done::applied(format!("{why}: cancelled 360Envios order {hub_id}")))
        }
        Err(CallError::Outside(ConnectorError::Rejected { status: 422, message, .. })) => {
            attention(ctx, s, format!("{why}, not forwarded: 360Envios refused to cancel ({message})")).await
        }
        Err(e) => Err(failed(ctx, &mut s, e).await),
    }
}
