//! Conexões: each connection's state and last error; "Conectar ao Bling" and Bitrix24 by their
//! OAuth flows (as `ponte connections connect` starts them: the browser goes to the consent
//! page and comes back through the gateway), CPLUG and 360Envios by credentials (secrets:
//! password inputs, never shown back nor logged), "Desconectar", and the tenant's licença
//! switch (the Bitrix24 app's "licença ativa": while it is off the gateway stores the tenant's
//! events and holds them; switched back on they flow in their order).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect},
};
use ponte_proto::v1::{
    ConnectionState, CplugCredentials, Envios360Credentials, GetTenantRequest, ListConnectionsRequest, Provider,
    RevokeConnectionRequest, SetApiCredentialsRequest, SetTenantLicenseRequest, StartAuthorizationRequest,
    set_api_credentials_request::Credentials,
};

use super::{Answer, Console, Ctx, Page, Posted, Table, esc, short, when};

const PROVIDERS: [(&str, Provider); 4] = [
    ("BLING", Provider::Bling),
    ("BITRIX24", Provider::Bitrix24),
    ("CPLUG", Provider::Cplug),
    ("ENVIOS360", Provider::Envios360),
];

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
            lang.pick("Ação", "Action"),
        ],
    );
    for x in &list {
        let provider = short(Provider::try_from(x.provider).ok().map(|p| p.as_str_name()), "PROVIDER_");
        let state = short(ConnectionState::try_from(x.state).ok().map(|s| s.as_str_name()), "CONNECTION_STATE_");
        let action = if x.state == ConnectionState::Revoked as i32 {
            String::new()
        } else {
            let label = lang.pick("Desconectar", "Disconnect");
            ctx.button("conexoes/desconectar", &[("provider", provider)], label, &format!("{label} {provider}"))
        };
        table.row(&[
            &esc(provider),
            &format!("<span class=\"state-{}\">{}</span>", esc(&state.to_ascii_lowercase()), esc(state)),
            &esc(&x.external_account_id),
            &esc(&x.reason),
            &when(x.update_time.as_ref()),
            &action,
        ]);
    }
    let mut body = table.finish(lang.pick("Nenhuma conexão.", "No connection."));
    body.push_str(&license(&c, &ctx).await?);
    body.push_str(&ctx.button("conexoes/bling", &[], lang.pick("Conectar ao Bling", "Connect to Bling"), ""));
    body.push_str(
        &ctx.form("conexoes/bitrix24", "bitrix24", lang.pick("Conectar ao Bitrix24", "Connect to Bitrix24"))
            .text(
                "bitrix24_domain",
                lang.pick("Portal (ex.: loja.bitrix24.com.br)", "Portal (e.g. loja.bitrix24.com.br)"),
            )
            .submit(lang.pick("Conectar ao Bitrix24", "Connect to Bitrix24")),
    );
    body.push_str(
        &ctx.form("conexoes/cplug", "cplug", lang.pick("Conectar o CPLUG", "Connect CPLUG"))
            .secret("client_id", "Client id")
            .secret("client_secret", "Client secret")
            .secret("username", lang.pick("Usuário", "Username"))
            .secret("password", lang.pick("Senha", "Password"))
            .secret("webhook_secret", lang.pick("Segredo dos webhooks", "Webhook secret"))
            .submit(lang.pick("Salvar credenciais do CPLUG", "Save the CPLUG credentials")),
    );
    body.push_str(
        &ctx.form("conexoes/envios360", "envios360", lang.pick("Conectar o 360Envios", "Connect 360Envios"))
            .secret("api_token", lang.pick("Token de API do painel 360", "API token from the 360 panel"))
            .secret("webhook_secret", lang.pick("Segredo dos webhooks", "Webhook secret"))
            .submit(lang.pick("Salvar credenciais do 360Envios", "Save the 360Envios credentials")),
    );
    ctx.page("conexoes", lang.pick("Conexões", "Connections"), &body)
}

/// Starts `provider`'s OAuth flow and sends the browser to its consent page.
async fn authorize(c: &Console, ctx: &Ctx, provider: Provider, bitrix24_domain: String) -> Answer {
    let req = StartAuthorizationRequest { tenant_id: ctx.tenant_id(), provider: provider as i32, bitrix24_domain };
    let url = ctx.ok(c.clients.auth.clone().start_authorization(ctx.req(req)).await)?.authorize_url;
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(Redirect::to(&url).into_response())
    } else {
        Err(Page::error(ctx.lang, StatusCode::BAD_GATEWAY, "authorize_url"))
    }
}

pub(super) async fn connect_bling(State(c): State<Console>, p: Posted) -> Answer {
    authorize(&c, &p.ctx, Provider::Bling, String::new()).await
}

pub(super) async fn connect_bitrix24(State(c): State<Console>, p: Posted) -> Answer {
    let domain = p.field("bitrix24_domain")?.to_owned();
    authorize(&c, &p.ctx, Provider::Bitrix24, domain).await
}

async fn store(c: &Console, ctx: &Ctx, credentials: Credentials) -> Answer {
    let req = SetApiCredentialsRequest { tenant_id: ctx.tenant_id(), credentials: Some(credentials) };
    ctx.ok(c.clients.auth.clone().set_api_credentials(ctx.req(req)).await)?;
    ctx.back("conexoes", "connected")
}

pub(super) async fn connect_cplug(State(c): State<Console>, p: Posted) -> Answer {
    let creds = CplugCredentials {
        client_id: p.field("client_id")?.to_owned(),
        client_secret: p.field("client_secret")?.to_owned(),
        username: p.field("username")?.to_owned(),
        password: p.field("password")?.to_owned(),
        webhook_secret: p.field("webhook_secret")?.to_owned(),
    };
    store(&c, &p.ctx, Credentials::Cplug(creds)).await
}

pub(super) async fn connect_envios360(State(c): State<Console>, p: Posted) -> Answer {
    let creds = Envios360Credentials {
        api_token: p.field("api_token")?.to_owned(),
        webhook_secret: p.field("webhook_secret")?.to_owned(),
    };
    store(&c, &p.ctx, Credentials::Envios360(creds)).await
}

/// The licença's state and its switch. A tenant's own token may read it but not flip it:
/// auth-token refuses, and the page says so.
async fn license(c: &Console, ctx: &Ctx) -> Result<String, Page> {
    let lang = ctx.lang;
    let req = GetTenantRequest { tenant_id: ctx.tenant_id() };
    let tenant = ctx.ok(c.clients.auth.clone().get_tenant(ctx.req(req)).await)?.tenant.unwrap_or_default();
    let license = tenant.license.unwrap_or(ponte_proto::v1::TenantLicense { active: true, ..Default::default() });
    let (state, class, verb, next) = if license.active {
        (lang.pick("ativa", "active"), "connected", lang.pick("Suspender a licença", "Suspend the licence"), "false")
    } else {
        (
            lang.pick("suspensa: os eventos são guardados e retidos", "suspended: events are stored and held"),
            "revoked",
            lang.pick("Reativar a licença", "Reactivate the licence"),
            "true",
        )
    };
    let mut html = format!(
        "<h2>{}</h2><p id=\"license-state\">{}: <span class=\"state-{class}\">{}</span>",
        esc(lang.pick("Licença", "Licence")),
        esc(lang.pick("Licença", "Licence")),
        esc(state),
    );
    if !license.reason.is_empty() {
        html.push_str(&format!(" — {}", esc(&license.reason)));
    }
    if license.change_time.is_some() {
        html.push_str(&format!(" ({})", when(license.change_time.as_ref())));
    }
    html.push_str("</p>");
    html.push_str(
        &ctx.form("conexoes/licenca", "license", "")
            .hidden("active", next)
            .optional_text("reason", lang.pick("Motivo (opcional)", "Reason (optional)"))
            .submit(verb),
    );
    Ok(html)
}

pub(super) async fn switch_license(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let active = ctx.choice(&p.form, "active", &[("true", true), ("false", false)])?;
    let reason = p.form.get("reason").map(|s| s.trim().to_owned()).unwrap_or_default();
    let req = SetTenantLicenseRequest { tenant_id: ctx.tenant_id(), active, reason };
    ctx.ok(c.clients.auth.clone().set_tenant_license(ctx.req(req)).await)?;
    ctx.back("conexoes", if active { "licensed" } else { "suspended" })
}

pub(super) async fn disconnect(State(c): State<Console>, p: Posted) -> Answer {
    let ctx = &p.ctx;
    let provider = ctx.choice(&p.form, "provider", &PROVIDERS)?;
    let req = RevokeConnectionRequest { tenant_id: ctx.tenant_id(), provider: provider as i32 };
    ctx.ok(c.clients.auth.clone().revoke_connection(ctx.req(req)).await)?;
    ctx.back("conexoes", "disconnected")
}
