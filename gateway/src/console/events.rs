//! Eventos: the tenant's dead letters with their reason, each with a Replay button.

use axum::extract::State;
use ponte_proto::v1::{DeadLetterFilter, ListDeadLettersRequest, Provider, ReplayRequest, replay_request::Target};

use super::{Answer, Console, Ctx, Page, Posted, Table, esc, short, when};

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let reason = ctx.query.get("reason").map(|s| s.trim().to_owned()).unwrap_or_default();
    if reason.len() > 200 {
        return Err(Page::bad_field(lang, "reason", lang.pick("longo demais (máx. 200)", "too long (at most 200)")));
    }
    let req = ListDeadLettersRequest {
        filter: Some(DeadLetterFilter { tenant_id: ctx.tenant_id(), source: 0, reason_contains: reason.clone() }),
        page_size: 200,
        page_token: String::new(),
    };
    let events = ctx.ok(c.clients.inbox.clone().list_dead_letters(ctx.req(req)).await)?.events;
    let mut body = format!(
        "<form method=\"get\" action=\"{}/eventos\" class=\"filter\">{}<label for=\"reason\">{}</label>\
         <input id=\"reason\" name=\"reason\" value=\"{}\"><button type=\"submit\">{}</button></form>",
        ctx.base(),
        lang.get_field(),
        lang.pick("Motivo contém", "Reason contains"),
        esc(&reason),
        lang.pick("Filtrar", "Filter"),
    );
    let mut table = Table::new(
        lang.pick("Eventos mortos (dead letters)", "Dead letters"),
        &[
            lang.pick("Recebido", "Received"),
            lang.pick("Origem", "Source"),
            lang.pick("Tipo", "Type"),
            lang.pick("Registro", "Record"),
            lang.pick("Motivo", "Reason"),
            lang.pick("Ação", "Action"),
        ],
    );
    let replay = lang.pick("Reenviar", "Replay");
    for e in &events {
        let source = short(Provider::try_from(e.source).ok().map(|p| p.as_str_name()), "PROVIDER_");
        let record =
            if e.entity_key.is_empty() { String::new() } else { ctx.history_link(&e.entity_key, &e.entity_key) };
        table.row(&[
            &when(e.receive_time.as_ref()),
            &esc(source),
            &esc(&e.event_type),
            &record,
            &esc(&e.dead_reason),
            &ctx.button("eventos/replay", &[("event_id", &e.event_id)], replay, &format!("{replay} {}", e.event_id)),
        ]);
    }
    body.push_str(&table.finish(lang.pick("Nenhum evento morto.", "No dead letter.")));
    ctx.page("eventos", lang.pick("Eventos", "Events"), &body)
}

/// Replays one dead letter.
pub(super) async fn replay(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let id = p.field("event_id")?.to_owned();
    // The event must be this tenant's: the page's tenant was checked against the session, and
    // the inbox answers NOT_FOUND for another tenant's event to a tenant's token.
    let get = ponte_proto::v1::GetEventRequest { event_id: id.clone() };
    let event = ctx.ok(c.clients.inbox.clone().get_event(ctx.req(get)).await)?.event;
    if event.is_none_or(|e| e.tenant_id != ctx.tenant.as_str()) {
        return Err(Page::bad_field(ctx.lang, "event_id", ctx.lang.pick("não é deste tenant", "is not this tenant's")));
    }
    let req = ReplayRequest { target: Some(Target::EventId(id)) };
    ctx.ok(c.clients.inbox.clone().replay(ctx.req(req)).await)?;
    ctx.back("eventos", "replayed")
}
