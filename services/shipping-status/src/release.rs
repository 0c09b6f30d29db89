//! An order released for shipping becomes a 360Envios order. The order is read from Bling (the
//! event is only a notification) and must still be at the release situação and not be a
//! point-of-sale sale; its recipient must be complete, then its products are made sure of at 360
//! (only those), and the order is created with `external_id` = its Bling id.
//!
//! Creating is safe to repeat: the shipment records that a create began before the call, so a
//! retry after an ambiguous failure (a timeout, a crash before the answer was recorded) looks
//! the order up by `external_id` first, and a create that finds one answers 409 with its id,
//! which is adopted. An adopted order is then given the current body (an edit may have come in
//! between), so what 360 holds is known. What the merchant must fix parks the shipment with the
//! reason; the order's next change in Bling tries again.

use ponte_connectors::{
    CallError, ConnectorError,
    bling::resources::PedidoVenda,
    envios360::{
        client::Created,
        types::{OrderBody, OrderStatus},
    },
};
use ponte_core::{BlingId, TenantId, error::ServiceError, time::now_millis};
use ponte_proto::v1::ShippingStatus;

use crate::{
    context::Context,
    echo,
    history::Done,
    mapping::Situacoes,
    order_body, products,
    shipments::{self, Shipment},
};

/// Keeps the shipment waiting for the merchant, saying why.
pub(crate) async fn park(ctx: &Context, mut s: Shipment, why: String) -> Result<Done, ServiceError> {
    let unchanged = s.waiting_reason == why;
    s.waiting_reason = why.clone();
    shipments::save(&ctx.db, &mut s).await?;
    let action = if unchanged { "still waiting for the merchant" } else { "waiting for the merchant" };
    Ok(Done::parked(format!("{action}: {why}"), why))
}

/// Sends order `order` to 360Envios if it is still released; `shipment` when one exists already
/// (parked, or cancelled before it reached the hub), `pedido` when the caller read it already.
pub(crate) async fn release(
    ctx: &Context,
    situacoes: &Situacoes,
    tenant: &TenantId,
    order: BlingId,
    shipment: Option<Shipment>,
    pedido: Option<PedidoVenda>,
) -> Result<Done, ServiceError> {
    if !ctx.hub_connected(tenant).await? {
        return Ok(Done::skipped("360Envios is not connected for this tenant; nothing was sent"));
    }
    let pedido = match pedido {
        Some(p) => p,
        None => match ctx.pedido(tenant, order).await? {
            Some(p) => p,
            None => return Ok(Done::skipped("the order no longer exists in Bling")),
        },
    };
    if !situacoes.releases(pedido.situacao.id) {
        return Ok(Done::skipped(format!(
            "the order is now at situação {}, which does not release it to shipping",
            situacoes.name(pedido.situacao.id)
        )));
    }
    if let Some(loja) = pedido.loja.filter(|l| l.id > 0)
        && ctx.mapping.pos_lojas(tenant).await?.contains(&loja.id)
    {
        return Ok(Done::skipped(format!("a point-of-sale sale (Bling loja {}) is not shipped", loja.id)));
    }
    let mut s = shipment.unwrap_or_else(|| Shipment::new(tenant, order));
    s.numero = pedido.numero.to_string();
    s.bling_total = pedido.total.unwrap_or_default().normalize().to_string();
    s.situacao = Some(pedido.situacao.id);
    if s.status == ShippingStatus::Cancelled && s.hub_id.is_none() {
        // Cancelled before it reached the hub, released again: a shipment like a new one.
        s.status = ShippingStatus::Unspecified;
    }
    shipments::set_products(&ctx.db, tenant, order, &order_body::lines(&pedido)).await?;
    let ids = match order_body::product_ids(&pedido).and_then(|ids| order_body::recipient(&pedido).map(|_| ids)) {
        Ok(ids) => ids,
        Err(why) => return park(ctx, s, why).await,
    };
    let (hub, sent) = match products::at_hub(ctx, tenant, &ids).await? {
        Ok(found) => found,
        Err(why) => return park(ctx, s, why).await,
    };
    let body = match order_body::build(&pedido, &hub) {
        Ok(body) => body,
        Err(why) => return park(ctx, s, why).await,
    };
    create(ctx, situacoes, s, &body, ids.len(), sent).await
}

/// Creates (or finds) the 360 order for `body` and records it on the shipment.
async fn create(
    ctx: &Context,
    situacoes: &Situacoes,
    mut s: Shipment,
    body: &OrderBody,
    products: usize,
    sent: usize,
) -> Result<Done, ServiceError> {
    let tenant = s.tenant.clone();
    let found = if s.create_started > 0 && s.hub_id.is_none() {
        match ctx.hub_find_order(&tenant, &body.external_id).await {
            Ok(found) => found,
            Err(e) => return Err(failed(ctx, &mut s, e).await),
        }
    } else {
        None
    };
    if s.create_started == 0 {
        s.create_started = now_millis();
        shipments::save(&ctx.db, &mut s).await?;
    }
    let (id, status, how) = match found {
        Some(o) => (o.id, o.status, "found after an interrupted create"),
        None => match ctx.hub_create_order(&tenant, body).await {
            Ok(Created::New(id)) => (id, OrderStatus::Received, "created"),
            Ok(Created::Existing(id)) => match ctx.hub_order(&tenant, &id).await {
                Ok(o) => (id, o.status, "adopted the existing"),
                Err(e) => return Err(failed(ctx, &mut s, e).await),
            },
            Err(CallError::Outside(ConnectorError::Rejected { status, message, fields, .. })) if status < 500 => {
                let why = if fields.is_empty() { message } else { fields.join("; ") };
                return park(ctx, s, format!("360Envios refused the order: {why}")).await;
            }
            Err(e) => return Err(failed(ctx, &mut s, e).await),
        },
    };
    // An order found or adopted that the hub already moved on (its status webhooks may have come
    // and gone while ponte did not know the order as its own): the Bling order follows the hub
    // now, before the order is recorded, so a failure finds it again and tries again.
    let hub_status = ShippingStatus::from(status);
    let known = OrderStatus::try_from(s.status).ok();
    let mut followed = String::new();
    if how != "created"
        && !matches!(status, OrderStatus::Received | OrderStatus::Cancelled)
        && known.is_none_or(|k| k.can_move_to(status))
        && let Some(m) = situacoes.for_status(hub_status)
    {
        match ctx.mudar_situacao(&tenant, s.order, m.bling_situacao_id).await {
            Ok(()) => {
                s.situacao = Some(m.bling_situacao_id);
                echo::expect(&mut s, m.bling_situacao_id);
                followed = format!(
                    "; the hub had it at {}: moved the Bling order to '{}' ({})",
                    hub_status.as_str_name(),
                    m.bling_situacao_name,
                    m.bling_situacao_id
                );
            }
            Err(CallError::Outside(e)) if e.is_not_found() => {}
            Err(e) => return Err(failed(ctx, &mut s, e).await),
        }
    }
    s.hub_id = Some(id.clone());
    s.status = hub_status;
    s.sent_digest = order_body::digest(body);
    if how != "created" && status.can_move_to(OrderStatus::InTransit) {
        // What an adopted order holds is not known: it gets the current body.
        match ctx.hub_update_order(&tenant, &id, body).await {
            Ok(()) | Err(CallError::Outside(ConnectorError::Rejected { status: 422, .. })) => {}
            Err(e) => return Err(failed(ctx, &mut s, e).await),
        }
    }
    s.waiting_reason.clear();
    s.last_error.clear();
    shipments::save(&ctx.db, &mut s).await?;
    Ok(Done::applied(format!(
        "{how} 360Envios order {id} with {products} product(s), {sent} sent to 360Envios for approval{followed}"
    )))
}

/// Records a failed call on the shipment; the error to answer (the gateway retries).
pub(crate) async fn failed(ctx: &Context, s: &mut Shipment, e: CallError) -> ServiceError {
    let e: ServiceError = e.into();
    s.failed(&e.to_string());
    if let Err(not_saved) = shipments::save(&ctx.db, s).await {
        tracing::warn!(error = %not_saved, "could not record a failed call on the shipment");
    }
    e
}
