//! Vendas: the tenant's sales, posted and parked with the reason, a Replay button on each
//! parked one.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    Form,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use ponte_proto::v1::{ListSalesRequest, ParkReason, ReplayParkedRequest, SaleState};

use super::{Console, Lang, Page, back, enc, esc, field, notice, when};

/// BRL cents as "R$ 12,34" (pt) or "R$ 12.34" (en).
pub(super) fn brl(lang: Lang, cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let sep = lang.pick(",", ".");
    format!("{sign}R$ {}{sep}{:02}", c / 100, c % 100)
}

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
    let req =
        ListSalesRequest { tenant_id: ctx.tenant.to_string(), state: 0, page_size: 200, page_token: String::new() };
    let sales = match c.clients.sales.clone().list_sales(ctx.req(req)).await {
        Ok(r) => r.into_inner().records,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let mut body = format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("Vendas do PDV (CPLUG)", "Point-of-sale sales (CPLUG)"),
        lang.pick("Venda", "Sale"),
        lang.pick("Recebida", "Received"),
        lang.pick("Total", "Total"),
        lang.pick("Estado", "State"),
        lang.pick("Pedido Bling", "Bling order"),
        lang.pick("Motivo", "Reason"),
        lang.pick("Ação", "Action"),
    );
    let hq = if lang == Lang::En { "&lang=en" } else { "" };
    for r in &sales {
        let sale = r.sale.clone().unwrap_or_default();
        let state = SaleState::try_from(r.state).map_or("?", |s| s.as_str_name()).trim_start_matches("SALE_STATE_");
        let reason = if r.state == SaleState::Parked as i32 {
            let code =
                ParkReason::try_from(r.park_reason).map_or("", |p| p.as_str_name()).trim_start_matches("PARK_REASON_");
            format!("{code}: {}", r.parked_reason)
        } else {
            r.failure.clone()
        };
        let order = if r.bling_order_id > 0 {
            format!(
                "<a href=\"{}/historico?entity=order:{}{hq}\">{}</a>",
                ctx.base(),
                r.bling_order_id,
                r.bling_order_id
            )
        } else {
            "—".into()
        };
        let action = if r.state == SaleState::Parked as i32 {
            format!(
                "<form method=\"post\" action=\"{}/vendas/replay\">{}<input type=\"hidden\" name=\"sale_id\" value=\"{}\">\
                 <button type=\"submit\" aria-label=\"{} {}\">{}</button></form>",
                ctx.base(),
                ctx.hidden(),
                esc(&sale.sale_id),
                lang.pick("Reenviar venda", "Retry sale"),
                esc(&sale.sale_id),
                lang.pick("Reenviar", "Retry"),
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr class=\"sale-{}\"><td><a href=\"{}/historico?entity=sale:{}{hq}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{order}</td><td>{}</td><td>{action}</td></tr>",
            esc(&state.to_ascii_lowercase()),
            ctx.base(),
            enc(&sale.sale_id),
            esc(&sale.sale_id),
            when(r.receive_time.as_ref()),
            brl(lang, sale.total_cents),
            esc(state),
            esc(&reason),
        );
    }
    if sales.is_empty() {
        let _ = write!(body, "<tr><td colspan=\"7\">{}</td></tr>", lang.pick("Nenhuma venda.", "No sale."));
    }
    body.push_str("</tbody></table>");
    ctx.page("vendas", lang.pick("Vendas", "Sales"), &body).into_response()
}

/// Retries one parked sale.
pub(super) async fn replay(
    State(c): State<Console>,
    headers: HeaderMap,
    lang: Lang,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let ctx = match c.post_ctx(&headers, lang, &tenant, &form) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match field(ctx.lang, &form, "sale_id") {
        Ok(v) => v.to_owned(),
        Err(p) => return p.into_response(),
    };
    let req = ReplayParkedRequest { tenant_id: ctx.tenant.to_string(), sale_ids: vec![id] };
    match c.clients.sales.clone().replay_parked(ctx.req(req)).await {
        Ok(_) => back(&ctx, "vendas", "replayed"),
        Err(s) => Page::status(ctx.lang, &s).into_response(),
    }
}
