//! Envios: the tenant's shipments and their status.

use axum::extract::State;
use ponte_proto::v1::{ListShipmentsRequest, ShippingStatus};

use super::{Answer, Console, Ctx, Table, esc, short, when};

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = ListShipmentsRequest { tenant_id: ctx.tenant_id(), page_size: 200, ..Default::default() };
    let list = ctx.ok(c.clients.shipping.clone().list_shipments(ctx.req(req)).await)?.shipments;
    let mut table = Table::new(
        lang.pick("Envios (360Envios)", "Shipments (360Envios)"),
        &[
            lang.pick("Pedido Bling", "Bling order"),
            lang.pick("Número", "Number"),
            lang.pick("Status", "Status"),
            lang.pick("Rastreio", "Tracking"),
            lang.pick("Último erro", "Last error"),
            lang.pick("Atualizado em", "Updated"),
        ],
    );
    for s in &list {
        let status = short(ShippingStatus::try_from(s.status).ok().map(|x| x.as_str_name()), "SHIPPING_STATUS_");
        table.row(&[
            &ctx.history_link(&format!("order:{}", s.bling_order_id), &s.bling_order_id.to_string()),
            &esc(&s.bling_numero),
            &esc(status),
            &esc(&s.tracking_code),
            &esc(&s.last_error),
            &when(s.update_time.as_ref()),
        ]);
    }
    let body = table.finish(lang.pick("Nenhum envio.", "No shipment."));
    ctx.page("envios", lang.pick("Envios", "Shipments"), &body)
}
