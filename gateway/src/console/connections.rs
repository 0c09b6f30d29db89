//! Conexões: each connection's state and last error, and "Conectar ao Bling" (the OAuth flow
//! `ponte connections connect bling` starts).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect},
};
use ponte_proto::v1::{ConnectionState, ListConnectionsRequest, Provider, StartAuthorizationRequest};

use super::{Answer, Console, Ctx, Page, Posted, Table, esc, short, when};

pub(super) async fn page(State(c): State<Console>, ctx: Ctx) -> Answer {
    let lang = ctx.lang;
    let req = ListConnectionsRequest { tenant_id: ctx.tenant_id() };
    let list = ctx.ok(c.clients.auth.clone().list_connections(ctx.req(req)).await)?.connections;
    let mut table = Table::new(
        lang.pick("Conexões do tenant", "The tenant's connections"),
        &[
            lang.pick("Sistema", "System"),
            lang.pick("Estado", "State"),
            lang.pick("Conta", "Account"),
            lang.pick("Último erro", "Last error"),
            lang.pick("Atualizada em", "Updated"),
        ],
    );
    for x in &list {
        let provider = short(Provider::try_from(x.provider).ok().map(|p| p.as_str_name()), "PROVIDER_");
        let state = short(ConnectionState::try_from(x.state).ok().map(|s| s.as_str_name()), "CONNECTION_STATE_");
        table.row(&[
            &esc(provider),
            &format!("<span class=\"state-{}\">{}</span>", esc(&state.to_ascii_lowercase()), esc(state)),
            &esc(&x.external_account_id),
            &esc(&x.reason),
            &when(x.update_time.as_ref()),
        ]);
    }
    let mut body = table.finish(lang.pick("Nenhuma conexão.", "No connection."));
    body.push_str(&ctx.button("conexoes/bling", &[], lang.pick("Conectar ao Bling", "Connect to Bling"), ""));
    ctx.page("conexoes", lang.pick("Conexões", "Connections"), &body)
}

/// Starts Bling's OAuth flow and sends the browser to Bling's consent page.
pub(super) async fn connect_bling(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let req = StartAuthorizationRequest {
        tenant_id: ctx.tenant_id(),
        provider: Provider::Bling as i32,
        bitrix24_domain: String::new(),
    };
    let url = ctx.ok(c.clients.auth.clone().start_authorization(ctx.req(req)).await)?.authorize_url;
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(Redirect::to(&url).into_response())
    } else {
        Err(Page::error(ctx.lang, StatusCode::BAD_GATEWAY, "authorize_url"))
    }
}
