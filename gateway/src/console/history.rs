//! Histórico: every step that touched one record (`?entity=product:123`, `sale:V-1`,
//! `order:456`), each with its trace id linked through `PONTE_TRACE_URL_TEMPLATE`.

use axum::extract::State;
use ponte_proto::v1::GetRecordHistoryRequest;

use super::{Answer, Console, Ctx, Page, Table, esc, when};

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let entity = ctx.query.get("entity").map(|s| s.trim().to_owned()).unwrap_or_default();
    let mut body = format!(
        "<form method=\"get\" action=\"{}/historico\" class=\"filter\">{}<label for=\"entity\">{}</label>\
         <input id=\"entity\" name=\"entity\" value=\"{}\" placeholder=\"product:123\" required maxlength=\"200\">\
         <button type=\"submit\">{}</button></form>",
        ctx.base(),
        lang.get_field(),
        lang.pick("Registro (product:123, sale:V-1, order:456)", "Record (product:123, sale:V-1, order:456)"),
        esc(&entity),
        lang.pick("Ver histórico", "Show history"),
    );
    if !entity.is_empty() {
        match entity.split_once(':') {
            Some((k, i)) if !k.is_empty() && !i.is_empty() && entity.len() <= 200 => {}
            _ => {
                return Err(Page::bad_field(
                    lang,
                    "entity",
                    lang.pick(
                        "deve ser '<tipo>:<id>', ex.: product:123, sale:V-1, order:456",
                        "must be '<kind>:<id>', e.g. product:123, sale:V-1, order:456",
                    ),
                ));
            }
        }
        let req = GetRecordHistoryRequest { tenant_id: ctx.tenant_id(), entity: entity.clone() };
        let entries = ctx.ok(c.clients.inbox.clone().get_record_history(ctx.req(req)).await)?.entries;
        let mut table = Table::new(
            &entity,
            &[
                lang.pick("Quando", "When"),
                lang.pick("Componente", "Component"),
                lang.pick("O que ponte fez", "What ponte did"),
                lang.pick("Resultado", "Outcome"),
                lang.pick("Detalhe", "Detail"),
                lang.pick("Trace", "Trace"),
            ],
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
            table.row(&[
                &when(e.time.as_ref()),
                &esc(&e.component),
                &esc(&e.action),
                &esc(&e.outcome),
                &esc(&e.detail),
                &trace,
            ]);
        }
        body.push_str(&table.finish(lang.pick("Nenhum registro.", "Nothing recorded.")));
    }
    ctx.page("historico", lang.pick("Histórico", "History"), &body)
}
