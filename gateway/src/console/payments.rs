//! Método de pagamento: the DE-PARA of CPLUG payment methods to Bling formas de pagamento, the
//! sales each unmapped method holds parked, and a form to map one (which then retries those
//! sales).

use std::fmt::Write as _;

use axum::extract::State;
use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, ListParkedSalesRequest, ListPaymentMethodMapsRequest, ParkReason, PaymentMethodMap,
    ReplayParkedRequest, SaleRecord,
};

use super::{Answer, Console, Ctx, Page, Posted, Table, esc, when};

/// The sales parked on an unmapped payment method.
async fn parked(c: &Console, ctx: &Ctx, page_size: u32) -> Result<Vec<SaleRecord>, Page> {
    let req = ListParkedSalesRequest {
        tenant_id: ctx.tenant_id(),
        park_reason: ParkReason::UnmappedPaymentMethod as i32,
        page_size,
        page_token: String::new(),
    };
    Ok(ctx.ok(c.clients.sales.clone().list_parked_sales(ctx.req(req)).await)?.records)
}

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = ListPaymentMethodMapsRequest { tenant_id: ctx.tenant_id() };
    let maps = ctx.ok(c.clients.mapping.clone().list_payment_method_maps(ctx.req(req)).await)?.maps;
    let parked = parked(&c, &ctx, 200).await?;
    let mut table = Table::new(
        lang.pick("DE-PARA de formas de pagamento", "Payment method DE-PARA"),
        &[
            lang.pick("Método CPLUG", "CPLUG method"),
            lang.pick("Forma de pagamento Bling (id)", "Bling forma de pagamento (id)"),
            lang.pick("Padrão", "Default"),
            lang.pick("Criado em", "Created"),
        ],
    );
    for m in &maps {
        table.row(&[
            &esc(&m.cplug_method),
            &m.bling_forma_pagamento_id.to_string(),
            if m.is_default { lang.pick("sim", "yes") } else { "" },
            &when(m.create_time.as_ref()),
        ]);
    }
    let mut body = table.finish(lang.pick("Nenhum mapeamento.", "No mapping."));
    let _ = write!(
        body,
        "<h2>{}</h2><ul class=\"parked\">",
        lang.pick("Vendas paradas por método sem DE-PARA", "Sales parked on an unmapped method")
    );
    for r in &parked {
        let sale = r.sale.clone().unwrap_or_default();
        let methods: Vec<&str> = sale.payments.iter().map(|p| p.method.as_str()).collect();
        let _ =
            write!(body, "<li>{} — {}: {}</li>", esc(&sale.sale_id), esc(&methods.join(", ")), esc(&r.parked_reason));
    }
    if parked.is_empty() {
        let _ = write!(body, "<li>{}</li>", lang.pick("Nenhuma.", "None."));
    }
    let _ = write!(
        body,
        "</ul><h2>{}</h2><form method=\"post\" action=\"{}/pagamento\" class=\"stack\">{}\
         <label for=\"cplug_method\">{}</label><input id=\"cplug_method\" name=\"cplug_method\" required maxlength=\"200\">\
         <label for=\"bling_forma_pagamento_id\">{}</label><input id=\"bling_forma_pagamento_id\" name=\"bling_forma_pagamento_id\" inputmode=\"numeric\" pattern=\"[0-9]+\" required>\
         <button type=\"submit\">{}</button></form>",
        lang.pick("Mapear um método", "Map a method"),
        ctx.base(),
        ctx.hidden(),
        lang.pick("Método CPLUG (ex.: CREDITO)", "CPLUG method (e.g. CREDITO)"),
        lang.pick("Id da forma de pagamento no Bling", "Bling forma de pagamento id"),
        lang.pick("Salvar e reenviar as vendas paradas", "Save and retry the parked sales"),
    );
    ctx.page("pagamento", lang.pick("Método de pagamento", "Payment method"), &body)
}

/// Maps a CPLUG method, then retries the sales parked on an unmapped method.
pub(super) async fn create(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let method = p.field("cplug_method")?.to_owned();
    let id = ctx.id_field(&p.form, "bling_forma_pagamento_id")?;
    let map = PaymentMethodMap {
        tenant_id: ctx.tenant_id(),
        cplug_method: method,
        bling_forma_pagamento_id: id,
        ..Default::default()
    };
    let req = CreatePaymentMethodMapRequest { map: Some(map), validate_only: false };
    ctx.ok(c.clients.mapping.clone().create_payment_method_map(ctx.req(req)).await)?;
    // The sales this method held back: retried now (those still unmapped park again).
    let ids: Vec<String> = parked(&c, ctx, 1000).await?.into_iter().filter_map(|r| r.sale.map(|s| s.sale_id)).collect();
    if !ids.is_empty() {
        let req = ReplayParkedRequest { tenant_id: ctx.tenant_id(), sale_ids: ids };
        ctx.ok(c.clients.sales.clone().replay_parked(ctx.req(req)).await)?;
    }
    ctx.back("pagamento", "mapped")
}
