//! Histórico: every step that touched one record (`?entity=product:123`, `sale:V-1`,
//! `order:456`), each with its trace id linked through `PONTE_TRACE_URL_TEMPLATE`.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use ponte_proto::v1::GetRecordHistoryRequest;

use super::{Console, Lang, Page, esc, when};

pub(super) async fn page(
    State(c): State<Console>,
    headers: HeaderMap,
    lang: Lang,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match c.ctx(&headers, lang, &tenant) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let entity = q.get("entity").map(|s| s.trim().to_owned()).unwrap_or_default();
    let mut body = format!(
        "<form method=\"get\" action=\"{}/historico\" class=\"filter\">{}<label for=\"entity\">{}</label>\
         <input id=\"entity\" name=\"entity\" value=\"{}\" placeholder=\"product:123\" required maxlength=\"200\">\
         <button type=\"submit\">{}</button></form>",
        ctx.base(),
        if lang == Lang::En { "<input type=\"hidden\" name=\"lang\" value=\"en\">" } else { "" },
        lang.pick("Registro (product:123, sale:V-1, order:456)", "Record (product:123, sale:V-1, order:456)"),
        esc(&entity),
        lang.pick("Ver histórico", "Show history"),
    );
    if !entity.is_empty() {
        match entity.split_once(':') {
            Some((k, i)) if !k.is_empty() && !i.is_empty() && entity.len() <= 200 => {}
            _ => {
                return Page::bad_field(
                    lang,
                    "entity",
                    lang.pick(
                        "deve ser '<tipo>:<id>', ex.: product:123, sale:V-1, order:456",
                        "must be '<kind>:<id>', e.g. product:123, sale:V-1, order:456",
                    ),
                )
                .into_response();
            }
        }
        let req = GetRecordHistoryRequest { tenant_id: ctx.tenant.to_string(), entity: entity.clone() };
        let entries = match c.clients.inbox.clone().get_record_history(ctx.req(req)).await {
            Ok(r) => r.into_inner().entries,
            Err(s) => return Page::status(lang, &s).into_response(),
        };
        let _ = write!(
            body,
            "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            esc(&entity),
            lang.pick("Quando", "When"),
            lang.pick("Componente", "Component"),
            lang.pick("O que ponte fez", "What ponte did"),
            lang.pick("Resultado", "Outcome"),
            lang.pick("Detalhe", "Detail"),
            lang.pick("Trace", "Trace"),
        );
        for e in &entries {
            let trace = match (e.trace_id.is_empty(), e.trace_url.is_empty()) {
                (true, _) => String::new(),
                (false, true) => format!("<code>{}</code>", esc(&e.trace_id)),
                (false, false) => format!(
                    "<a href=\"{}\" rel=\"noreferrer noopener\" target=\"_blank\"><code>{}</code></a>",
                    esc(&e.trace_url),
                    esc(&e.trace_id)
                ),
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{trace}</td></tr>",
                when(e.time.as_ref()),
                esc(&e.component),
                esc(&e.action),
                esc(&e.outcome),
                esc(&e.detail),
            );
        }
        if entries.is_empty() {
            let _ =
                write!(body, "<tr><td colspan=\"6\">{}</td></tr>", lang.pick("Nenhum registro.", "Nothing recorded."));
        }
        body.push_str("</tbody></table>");
    }
    ctx.page("historico", lang.pick("Histórico", "History"), &body).into_response()
}
