//! Eventos: the tenant's dead letters with their reason, each with a Replay button.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    Form,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use ponte_proto::v1::{DeadLetterFilter, ListDeadLettersRequest, Provider, ReplayRequest, replay_request::Target};

use super::{Console, Lang, Page, back, enc, esc, field, notice, when};

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
    let reason = q.get("reason").map(|s| s.trim().to_owned()).unwrap_or_default();
    if reason.len() > 200 {
        return Page::bad_field(lang, "reason", lang.pick("longo demais (máx. 200)", "too long (at most 200)"))
            .into_response();
    }
    let req = ListDeadLettersRequest {
        filter: Some(DeadLetterFilter {
            tenant_id: ctx.tenant.to_string(),
            source: 0,
            reason_contains: reason.clone(),
        }),
        page_size: 200,
        page_token: String::new(),
    };
    let events = match c.clients.inbox.clone().list_dead_letters(ctx.req(req)).await {
        Ok(r) => r.into_inner().events,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let mut body = format!(
        "<form method=\"get\" action=\"{base}/eventos\" class=\"filter\">{lang_field}<label for=\"reason\">{}</label>\
         <input id=\"reason\" name=\"reason\" value=\"{}\"><button type=\"submit\">{}</button></form>\
         <table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("Motivo contém", "Reason contains"),
        esc(&reason),
        lang.pick("Filtrar", "Filter"),
        lang.pick("Eventos mortos (dead letters)", "Dead letters"),
        lang.pick("Recebido", "Received"),
        lang.pick("Origem", "Source"),
        lang.pick("Tipo", "Type"),
        lang.pick("Registro", "Record"),
        lang.pick("Motivo", "Reason"),
        lang.pick("Ação", "Action"),
        base = ctx.base(),
        lang_field = if lang == Lang::En { "<input type=\"hidden\" name=\"lang\" value=\"en\">" } else { "" },
    );
    for e in &events {
        let source = Provider::try_from(e.source).map_or("?", |p| p.as_str_name()).trim_start_matches("PROVIDER_");
        let record = if e.entity_key.is_empty() {
            String::new()
        } else {
            let q = if lang == Lang::En { "&lang=en" } else { "" };
            format!("<a href=\"{}/historico?entity={}{q}\">{}</a>", ctx.base(), enc(&e.entity_key), esc(&e.entity_key))
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{record}</td><td>{}</td><td><form method=\"post\" action=\"{}/eventos/replay\">{}\
             <input type=\"hidden\" name=\"event_id\" value=\"{}\"><button type=\"submit\" aria-label=\"{} {}\">{}</button></form></td></tr>",
            when(e.receive_time.as_ref()),
            esc(source),
            esc(&e.event_type),
            esc(&e.dead_reason),
            ctx.base(),
            ctx.hidden(),
            esc(&e.event_id),
            lang.pick("Reenviar", "Replay"),
            esc(&e.event_id),
            lang.pick("Reenviar", "Replay"),
        );
    }
    if events.is_empty() {
        let _ =
            write!(body, "<tr><td colspan=\"6\">{}</td></tr>", lang.pick("Nenhum evento morto.", "No dead letter."));
    }
    body.push_str("</tbody></table>");
    ctx.page("eventos", lang.pick("Eventos", "Events"), &body).into_response()
}

/// Replays one dead letter.
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
    let id = match field(ctx.lang, &form, "event_id") {
        Ok(v) => v.to_owned(),
        Err(p) => return p.into_response(),
    };
    // The event must be this tenant's: the page's tenant was checked against the session, and
    // the inbox answers NOT_FOUND for another tenant's event to a tenant's token.
    let get = ponte_proto::v1::GetEventRequest { event_id: id.clone() };
    match c.clients.inbox.clone().get_event(ctx.req(get)).await {
        Ok(r) if r.get_ref().event.as_ref().is_some_and(|e| e.tenant_id == ctx.tenant.as_str()) => {}
        Ok(_) => {
            return Page::bad_field(ctx.lang, "event_id", ctx.lang.pick("não é deste tenant", "is not this tenant's"))
                .into_response();
        }
        Err(s) => return Page::status(ctx.lang, &s).into_response(),
    }
    let req = ReplayRequest { target: Some(Target::EventId(id)) };
    match c.clients.inbox.clone().replay(ctx.req(req)).await {
        Ok(_) => back(&ctx, "eventos", "replayed"),
        Err(s) => Page::status(ctx.lang, &s).into_response(),
    }
}
