//! Vendas: the tenant's sales, posted and parked with the reason, a Replay button on each
//! parked one.

use axum::extract::State;
use ponte_proto::v1::{
    ListSalesRequest, ListStoreMapsRequest, MoveSaleRequest, ParkReason, ReplayParkedRequest, SaleState,
};

use super::{Answer, Console, Ctx, Lang, Posted, Table, enc, esc, short, when};

/// BRL cents as "R$ 12,34" (pt) or "R$ 12.34" (en).
pub(super) fn brl(lang: Lang, cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let sep = lang.pick(",", ".");
    format!("{sign}R$ {}{sep}{:02}", c / 100, c % 100)
}

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = ListSalesRequest { tenant_id: ctx.tenant_id(), state: 0, page_size: 200, page_token: String::new() };
    let sales = ctx.ok(c.clients.sales.clone().list_sales(ctx.req(req)).await)?.records;
    let req = ListStoreMapsRequest { tenant_id: ctx.tenant_id() };
    let stores = ctx.ok(c.clients.mapping.clone().list_store_maps(ctx.req(req)).await)?.maps;
    let stores: Vec<(&str, &str)> =
        stores.iter().map(|m| (m.cplug_store_id.as_str(), m.cplug_store_id.as_str())).collect();
    let mut table = Table::new(
        lang.pick("Vendas do PDV (CPLUG)", "Point-of-sale sales (CPLUG)"),
        &[
            lang.pick("Venda", "Sale"),
            lang.pick("Recebida", "Received"),
            lang.pick("Total", "Total"),
            lang.pick("Estado", "State"),
            lang.pick("Pedido Bling", "Bling order"),
            lang.pick("Motivo", "Reason"),
            lang.pick("Ação", "Action"),
        ],
    );
    for r in &sales {
        let sale = r.sale.clone().unwrap_or_default();
        let state = short(SaleState::try_from(r.state).ok().map(|s| s.as_str_name()), "SALE_STATE_");
        let parked = r.state == SaleState::Parked as i32;
        let reason = if parked {
            let code = short(ParkReason::try_from(r.park_reason).ok().map(|p| p.as_str_name()), "PARK_REASON_");
            format!("{code}: {}", r.parked_reason)
        } else {
            r.failure.clone()
        };
        let order = if r.bling_order_id > 0 {
            ctx.history_link(&format!("order:{}", r.bling_order_id), &r.bling_order_id.to_string())
        } else {
            "—".into()
        };
        let action = if parked {
            let label = lang.pick("Reenviar venda", "Retry sale");
            let aria = format!("{label} {}", sale.sale_id);
            ctx.button("vendas/replay", &[("sale_id", &sale.sale_id)], lang.pick("Reenviar", "Retry"), &aria)
        } else if r.state == SaleState::Posted as i32 && !stores.is_empty() {
            ctx.form("vendas/mover", &format!("mover-{}", enc(&sale.sale_id)), "")
                .hidden("sale_id", &sale.sale_id)
                .select("to_store_id", lang.pick("Mover para a loja", "Move to store"), &stores)
                .submit(lang.pick("Mover", "Move"))
        } else {
            String::new()
        };
        table.row_class(
            &format!("sale-{}", state.to_ascii_lowercase()),
            &[
                &ctx.history_link(&format!("sale:{}", sale.sale_id), &sale.sale_id),
                &when(r.receive_time.as_ref()),
                &brl(lang, sale.total_cents),
                &esc(state),
                &order,
                &esc(&reason),
                &action,
            ],
        );
    }
    let body = table.finish(lang.pick("Nenhuma venda.", "No sale."));
    ctx.page("vendas", lang.pick("Vendas", "Sales"), &body)
}

/// Retries one parked sale.
pub(super) async fn replay(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let id = p.field("sale_id")?.to_owned();
    let req = ReplayParkedRequest { tenant_id: ctx.tenant_id(), sale_ids: vec![id] };
    ctx.ok(c.clients.sales.clone().replay_parked(ctx.req(req)).await)?;
    ctx.back("vendas", "replayed")
}

/// Moves a posted sale to another store: its stock goes back to its depósito and out of the
/// new store's (sales-ingest's `MoveSale`).
pub(super) async fn move_sale(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let req = MoveSaleRequest {
        tenant_id: ctx.tenant_id(),
        sale_id: p.field("sale_id")?.to_owned(),
        to_store_id: p.field("to_store_id")?.to_owned(),
    };
    ctx.ok(c.clients.sales.clone().move_sale(ctx.req(req)).await)?;
    ctx.back("vendas", "moved")
}
