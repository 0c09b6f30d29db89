//! Método de pagamento: the DE-PARA of CPLUG payment methods to Bling formas de pagamento, the
//! sales each unmapped method holds parked, and a form to map one (which then retries those
//! sales).

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    Form,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, ListParkedSalesRequest, ListPaymentMethodMapsRequest, ParkReason, PaymentMethodMap,
    ReplayParkedRequest,
};

use super::{Console, Page, back, esc, field, notice, when};

pub(super) async fn page(
    State(c): State<Console>,
    headers: HeaderMap,
    lang: super::Lang,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut ctx = match c.ctx(&headers, lang, &tenant) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    ctx.notice = notice(lang, &q);
    let req = ListPaymentMethodMapsRequest { tenant_id: ctx.tenant.to_string() };
    let maps = match c.clients.mapping.clone().list_payment_method_maps(ctx.req(req)).await {
        Ok(r) => r.into_inner().maps,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let req = ListParkedSalesRequest {
        tenant_id: ctx.tenant.to_string(),
        park_reason: ParkReason::UnmappedPaymentMethod as i32,
        page_size: 200,
        page_token: String::new(),
    };
    let parked = match c.clients.sales.clone().list_parked_sales(ctx.req(req)).await {
        Ok(r) => r.into_inner().records,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let mut body = format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("DE-PARA de formas de pagamento", "Payment method DE-PARA"),
        lang.pick("Método CPLUG", "CPLUG method"),
        lang.pick("Forma de pagamento Bling (id)", "Bling forma de pagamento (id)"),
        lang.pick("Padrão", "Default"),
        lang.pick("Criado em", "Created"),
    );
    for m in &maps {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.cplug_method),
            m.bling_forma_pagamento_id,
            if m.is_default { lang.pick("sim", "yes") } else { "" },
            when(m.create_time.as_ref()),
        );
    }
    if maps.is_empty() {
        let _ = write!(body, "<tr><td colspan=\"4\">{}</td></tr>", lang.pick("Nenhum mapeamento.", "No mapping."));
    }
    body.push_str("</tbody></table>");
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
    ctx.page("pagamento", lang.pick("Método de pagamento", "Payment method"), &body).into_response()
}

/// Maps a CPLUG method, then retries the sales parked on an unmapped method.
pub(super) async fn create(
    State(c): State<Console>,
    headers: HeaderMap,
    lang: super::Lang,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let ctx = match c.post_ctx(&headers, lang, &tenant, &form) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let lang = ctx.lang;
    let method = match field(lang, &form, "cplug_method") {
        Ok(v) => v.to_owned(),
        Err(p) => return p.into_response(),
    };
    let id = match field(lang, &form, "bling_forma_pagamento_id").map(|v| v.parse::<i64>()) {
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => {
            return Page::bad_field(
                lang,
                "bling_forma_pagamento_id",
                lang.pick("deve ser um número inteiro positivo", "must be a positive whole number"),
            )
            .into_response();
        }
        Err(p) => return p.into_response(),
    };
    let map = PaymentMethodMap {
        tenant_id: ctx.tenant.to_string(),
        cplug_method: method,
        bling_forma_pagamento_id: id,
        ..Default::default()
    };
    let req = CreatePaymentMethodMapRequest { map: Some(map), validate_only: false };
    if let Err(s) = c.clients.mapping.clone().create_payment_method_map(ctx.req(req)).await {
        return Page::status(lang, &s).into_response();
    }
    // The sales this method held back: retried now (those still unmapped park again).
    let req = ListParkedSalesRequest {
        tenant_id: ctx.tenant.to_string(),
        park_reason: ParkReason::UnmappedPaymentMethod as i32,
        page_size: 1000,
        page_token: String::new(),
    };
    let parked = match c.clients.sales.clone().list_parked_sales(ctx.req(req)).await {
        Ok(r) => r.into_inner().records,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let ids: Vec<String> = parked.into_iter().filter_map(|r| r.sale.map(|s| s.sale_id)).collect();
    if !ids.is_empty() {
        let req = ReplayParkedRequest { tenant_id: ctx.tenant.to_string(), sale_ids: ids };
        if let Err(s) = c.clients.sales.clone().replay_parked(ctx.req(req)).await {
            return Page::status(lang, &s).into_response();
        }
    }
    back(&ctx, "pagamento", "mapped")
}
