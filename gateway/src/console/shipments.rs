//! Envios: the tenant's shipments and their status.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use ponte_proto::v1::{ListShipmentsRequest, ShippingStatus};

use super::{Console, Lang, Page, esc, notice, when};

pub(super) async fn page(
    State(c): State<Console>,
    headers: HeaderMap,
    lang: Lang,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut ctx = match c.ctx(&headers, lang, &tenant) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    ctx.notice = notice(lang, &q);
    let req = ListShipmentsRequest { tenant_id: ctx.tenant.to_string(), page_size: 200, ..Default::default() };
    let list = match c.clients.shipping.clone().list_shipments(ctx.req(req)).await {
        Ok(r) => r.into_inner().shipments,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let mut body = format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("Envios (360Envios)", "Shipments (360Envios)"),
        lang.pick("Pedido Bling", "Bling order"),
        lang.pick("Número", "Number"),
        lang.pick("Status", "Status"),
        lang.pick("Rastreio", "Tracking"),
        lang.pick("Último erro", "Last error"),
        lang.pick("Atualizado em", "Updated"),
    );
    let hq = if lang == Lang::En { "&lang=en" } else { "" };
    for s in &list {
        let status =
            ShippingStatus::try_from(s.status).map_or("?", |x| x.as_str_name()).trim_start_matches("SHIPPING_STATUS_");
        let _ = write!(
            body,
            "<tr><td><a href=\"{}/historico?entity=order:{}{hq}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ctx.base(),
            s.bling_order_id,
            s.bling_order_id,
            esc(&s.bling_numero),
            esc(status),
            esc(&s.tracking_code),
            esc(&s.last_error),
            when(s.update_time.as_ref()),
        );
    }
    if list.is_empty() {
        let _ = write!(body, "<tr><td colspan=\"6\">{}</td></tr>", lang.pick("Nenhum envio.", "No shipment."));
    }
    body.push_str("</tbody></table>");
    ctx.page("envios", lang.pick("Envios", "Shipments"), &body).into_response()
}
