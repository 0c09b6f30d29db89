//! Sincronização de dados: per flow, the last success, the last error and the counts that
//! explain why the lists of two systems differ (catalog-sync's `GetSyncStatus`, which asks
//! sales-ingest and shipping-status for theirs).

use axum::extract::State;
use ponte_proto::v1::{Flow, FlowStatus, GetSyncStatusRequest};

use super::{Answer, Console, Ctx, Lang, Table, esc, when};

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

/// The counts' names, in the order [`counts`] lists their values: catalog, sales, shipping.
const COUNTS: [(&str, &str); 25] = [
    ("produtos", "products"),
    ("variações", "variations"),
    ("ativos", "active"),
    ("inativos", "inactive"),
    ("criados", "created"),
    ("atualizados", "updated"),
    ("inalterados", "unchanged"),
    ("falhas", "failed"),
    ("recebidas", "received"),
    ("lançadas", "posted"),
    ("paradas: pagamento sem DE-PARA", "parked: unmapped payment method"),
    ("paradas: SKU desconhecido", "parked: unknown SKU"),
    ("paradas: loja sem DE-PARA", "parked: unmapped store"),
    ("paradas: sem conexão", "parked: not connected"),
    ("paradas: recusadas pelo Bling", "parked: rejected by Bling"),
    ("falhas", "failed"),
    ("canceladas", "cancelled"),
    ("recebidos", "received"),
    ("em romaneio", "in packing list"),
    ("aguardando coleta", "awaiting shipment"),
    ("em rota", "in transit"),
    ("entregues", "delivered"),
    ("cancelados", "cancelled"),
    ("em espera", "waiting"),
    ("falhas", "failed"),
];

/// A flow's counts that are not zero, named (a flow has one kind of counts; the others are 0).
fn counts(lang: Lang, f: &FlowStatus) -> String {
    let c = f.counts.unwrap_or_default();
    let s = f.sales.clone().unwrap_or_default();
    let h = f.shipping.unwrap_or_default();
    let values = [
        c.products,
        c.variations,
        c.active,
        c.inactive,
        c.created,
        c.updated,
        c.unchanged,
        c.failed,
        s.received,
        s.posted,
        s.parked_unmapped_payment_method,
        s.parked_unknown_sku,
        s.parked_unmapped_store,
        s.parked_not_connected,
        s.parked_rejected_by_bling,
        s.failed,
        s.cancelled,
        h.received,
        h.in_packing_list,
        h.awaiting_shipment,
        h.in_transit,
        h.delivered,
        h.cancelled,
        h.waiting,
        h.failed,
    ];
    let shown: Vec<String> = COUNTS
        .iter()
        .zip(values)
        .filter(|(_, n)| *n > 0)
        .map(|((pt, en), n)| format!("{}: {n}", lang.pick(pt, en)))
        .collect();
    if shown.is_empty() { "—".into() } else { esc(&shown.join(" · ")) }
}

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = GetSyncStatusRequest { tenant_id: ctx.tenant_id() };
    let flows = ctx.ok(c.clients.catalog.clone().get_sync_status(ctx.req(req)).await)?.flows;
    let mut table = Table::new(
        lang.pick("Fluxos de sincronização", "Sync flows"),
        &[
            lang.pick("Fluxo", "Flow"),
            lang.pick("Última sincronização com sucesso", "Last successful sync"),
            lang.pick("Último erro", "Last error"),
            lang.pick("Contagens", "Counts"),
        ],
    );
    for f in &flows {
        let name = flow_name(lang, Flow::try_from(f.flow).unwrap_or(Flow::Unspecified));
        let error = if f.last_error.is_empty() {
            "—".to_owned()
        } else {
            format!("{} ({})", esc(&f.last_error), when(f.last_error_time.as_ref()))
        };
        table.headed_row(name, &[&when(f.last_success_time.as_ref()), &error, &counts(lang, f)]);
    }
    let body = table.finish(lang.pick("Nenhum fluxo.", "No flow."));
    ctx.page("sincronizacao", lang.pick("Sincronização de dados", "Data sync"), &body)
}
