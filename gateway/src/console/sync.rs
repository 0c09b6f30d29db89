//! Sincronização de dados: per flow, the last success, the last error and the counts that
//! explain why the lists of two systems differ (catalog-sync's `GetSyncStatus`, which asks
//! sales-ingest and shipping-status for theirs).

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use ponte_proto::v1::{Flow, FlowStatus, GetSyncStatusRequest};

use super::{Console, Lang, Page, esc, notice, when};

fn flow_name(lang: Lang, f: Flow) -> &'static str {
    match f {
        Flow::BlingToBitrix24Products => lang.pick("Produtos Bling → Bitrix24", "Products Bling → Bitrix24"),
        Flow::BlingToBitrix24Orders => lang.pick("Pedidos Bling → Bitrix24", "Orders Bling → Bitrix24"),
        Flow::Bitrix24ToBlingProducts => lang.pick("Produtos Bitrix24 → Bling", "Products Bitrix24 → Bling"),
        Flow::BlingToCplugProducts => lang.pick("Produtos Bling → CPLUG", "Products Bling → CPLUG"),
        Flow::CplugSalesToBling => lang.pick("Vendas CPLUG → Bling", "Sales CPLUG → Bling"),
        Flow::BlingToEnvios360Orders => lang.pick("Pedidos Bling → 360Envios", "Orders Bling → 360Envios"),
        Flow::Envios360ToBlingStatus => lang.pick("Status 360Envios → Bling", "Status 360Envios → Bling"),
        Flow::Unspecified => "?",
    }
}

fn counts(lang: Lang, f: &FlowStatus) -> String {
    let mut parts: Vec<(&str, u64)> = Vec::new();
    if let Some(c) = &f.counts {
        parts.extend([
            (lang.pick("produtos", "products"), c.products),
            (lang.pick("variações", "variations"), c.variations),
            (lang.pick("ativos", "active"), c.active),
            (lang.pick("inativos", "inactive"), c.inactive),
            (lang.pick("criados", "created"), c.created),
            (lang.pick("atualizados", "updated"), c.updated),
            (lang.pick("inalterados", "unchanged"), c.unchanged),
            (lang.pick("falhas", "failed"), c.failed),
        ]);
    }
    if let Some(s) = &f.sales {
        parts.extend([
            (lang.pick("recebidas", "received"), s.received),
            (lang.pick("lançadas", "posted"), s.posted),
            (
                lang.pick("paradas: pagamento sem DE-PARA", "parked: unmapped payment method"),
                s.parked_unmapped_payment_method,
            ),
            (lang.pick("paradas: SKU desconhecido", "parked: unknown SKU"), s.parked_unknown_sku),
            (lang.pick("paradas: loja sem DE-PARA", "parked: unmapped store"), s.parked_unmapped_store),
            (lang.pick("paradas: sem conexão", "parked: not connected"), s.parked_not_connected),
            (lang.pick("paradas: recusadas pelo Bling", "parked: rejected by Bling"), s.parked_rejected_by_bling),
            (lang.pick("falhas", "failed"), s.failed),
            (lang.pick("canceladas", "cancelled"), s.cancelled),
        ]);
    }
    if let Some(s) = &f.shipping {
        parts.extend([
            (lang.pick("recebidos", "received"), s.received),
            (lang.pick("em romaneio", "in packing list"), s.in_packing_list),
            (lang.pick("aguardando coleta", "awaiting shipment"), s.awaiting_shipment),
            (lang.pick("em rota", "in transit"), s.in_transit),
            (lang.pick("entregues", "delivered"), s.delivered),
            (lang.pick("cancelados", "cancelled"), s.cancelled),
            (lang.pick("em espera", "waiting"), s.waiting),
            (lang.pick("falhas", "failed"), s.failed),
        ]);
    }
    let shown: Vec<String> = parts.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k}: {n}")).collect();
    if shown.is_empty() { "—".into() } else { esc(&shown.join(" · ")) }
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
    let req = GetSyncStatusRequest { tenant_id: ctx.tenant.to_string() };
    let flows = match c.clients.catalog.clone().get_sync_status(ctx.req(req)).await {
        Ok(r) => r.into_inner().flows,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let mut body = format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("Fluxos de sincronização", "Sync flows"),
        lang.pick("Fluxo", "Flow"),
        lang.pick("Última sincronização com sucesso", "Last successful sync"),
        lang.pick("Último erro", "Last error"),
        lang.pick("Contagens", "Counts"),
    );
    for f in &flows {
        let name = flow_name(lang, Flow::try_from(f.flow).unwrap_or(Flow::Unspecified));
        let error = if f.last_error.is_empty() {
            "—".to_owned()
        } else {
            format!("{} ({})", esc(&f.last_error), when(f.last_error_time.as_ref()))
        };
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{error}</td><td>{}</td></tr>",
            esc(name),
            when(f.last_success_time.as_ref()),
            counts(lang, f),
        );
    }
    if flows.is_empty() {
        let _ = write!(body, "<tr><td colspan=\"4\">{}</td></tr>", lang.pick("Nenhum fluxo.", "No flow."));
    }
    body.push_str("</tbody></table>");
    ctx.page("sincronizacao", lang.pick("Sincronização de dados", "Data sync"), &body).into_response()
}
