//! A Bling order event, as shipping sees it. Without a 360Envios connection or a situação map
//! (shipping not set up) nothing is sent, and the event says so. An order ponte never released
//! is looked at only when the event's situação releases it; every other order event (a
//! point-of-sale sale posted as Atendido, an order in Em aberto) is answered SKIPPED with the
//! reason, at no call's cost. For a released order, Bling echoing ponte's own situação write is
//! recognised and left alone; anything else is a change, read from Bling and acted on.

use ponte_connectors::bling::webhooks::EventType;
use ponte_core::{BlingId, TenantId, error::ServiceError};

use crate::{
    changes,
    context::Context,
    echo::{self, Sent},
    history::Done,
    release, shipments,
};

pub(crate) async fn on_event(
    ctx: &Context,
    tenant: &TenantId,
    order: BlingId,
    kind: EventType,
    sent: Sent,
) -> Result<Done, ServiceError> {
    if !ctx.hub_connected(tenant).await? {
        return Ok(Done::skipped("360Envios is not connected for this tenant; nothing was sent"));
    }
    let situacoes = ctx.mapping.situacoes(tenant).await?;
    if situacoes.is_empty() {
        return Ok(Done::skipped(format!(
            "shipping is not set up for tenant '{tenant}' (no situação is mapped: ponte shipping setup --tenant {tenant})"
        )));
    }
    let shipment = shipments::get(&ctx.db, tenant, order).await?;
    let Some(mut s) = shipment else {
        if kind == EventType::OrderDeleted {
            return Ok(Done::skipped("deleted in Bling; it was never released for shipping"));
        }
        return match sent.situacao {
            Some(situacao) if !situacoes.releases(situacao) => Ok(Done::skipped(format!(
                "the order is at situação {}; only '{}' releases an order to shipping",
                situacoes.name(situacao),
                situacoes.release_name()
            ))),
            _ => release::release(ctx, &situacoes, tenant, order, None, None).await,
        };
    };
    if kind == EventType::OrderDeleted {
        return changes::cancel(ctx, s, "deleted in Bling").await;
    }
    if echo::is_echo(&s, &sent) {
        let name = situacoes.name(sent.situacao.unwrap_or_default());
        echo::consume(&mut s);
        shipments::save(&ctx.db, &mut s).await?;
        return Ok(Done::skipped(format!("Bling echoing ponte's own move to situação {name}; nothing to send")));
    }
    changes::on_change(ctx, &situacoes, s).await
}
