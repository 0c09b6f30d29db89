//! Conexões: each connection's state and last error, and "Conectar ao Bling" (the OAuth flow
//! `ponte connections connect bling` starts).

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    Form,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use ponte_proto::v1::{ConnectionState, ListConnectionsRequest, Provider, StartAuthorizationRequest};

use super::{Console, Lang, Page, esc, notice, when};

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
    let req = ListConnectionsRequest { tenant_id: ctx.tenant.to_string() };
    let list = match c.clients.auth.clone().list_connections(ctx.req(req)).await {
        Ok(r) => r.into_inner().connections,
        Err(s) => return Page::status(lang, &s).into_response(),
    };
    let mut body = format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("Conexões do tenant", "The tenant's connections"),
        lang.pick("Sistema", "System"),
        lang.pick("Estado", "State"),
        lang.pick("Conta", "Account"),
        lang.pick("Último erro", "Last error"),
        lang.pick("Atualizada em", "Updated"),
    );
    for x in &list {
        let provider = Provider::try_from(x.provider).map_or("?", |p| p.as_str_name()).trim_start_matches("PROVIDER_");
        let state =
            ConnectionState::try_from(x.state).map_or("?", |s| s.as_str_name()).trim_start_matches("CONNECTION_STATE_");
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"state-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(provider),
            esc(&state.to_ascii_lowercase()),
            esc(state),
            esc(&x.external_account_id),
            esc(&x.reason),
            when(x.update_time.as_ref()),
        );
    }
    if list.is_empty() {
        let _ = write!(body, "<tr><td colspan=\"5\">{}</td></tr>", lang.pick("Nenhuma conexão.", "No connection."));
    }
    let _ = write!(
        body,
        "</tbody></table><form method=\"post\" action=\"{}/conexoes/bling\">{}<button type=\"submit\">{}</button></form>",
        ctx.base(),
        ctx.hidden(),
        lang.pick("Conectar ao Bling", "Connect to Bling"),
    );
    ctx.page("conexoes", lang.pick("Conexões", "Connections"), &body).into_response()
}

/// Starts Bling's OAuth flow and sends the browser to Bling's consent page.
pub(super) async fn connect_bling(
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
    let req = StartAuthorizationRequest {
        tenant_id: ctx.tenant.to_string(),
        provider: Provider::Bling as i32,
        bitrix24_domain: String::new(),
    };
    match c.clients.auth.clone().start_authorization(ctx.req(req)).await {
        Ok(r) => {
            let url = r.into_inner().authorize_url;
            if url.starts_with("https://") || url.starts_with("http://") {
                Redirect::to(&url).into_response()
            } else {
                Page::error(ctx.lang, axum::http::StatusCode::BAD_GATEWAY, "authorize_url").into_response()
            }
        }
        Err(s) => Page::status(ctx.lang, &s).into_response(),
    }
}
