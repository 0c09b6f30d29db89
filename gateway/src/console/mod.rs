//! The operator console under `/console`: server-rendered pages, in pt-BR by default and English
//! with `?lang=en` (or an English `Accept-Language`), one module per tab. It reads and acts only
//! through ponte's own gRPC APIs, presenting the logged-in operator's token, so what a person may
//! see and do is what the services let that token do.
//!
//! Login takes an API token (scope `operator` or `service`, or `tenant:<id>`, which sees only its
//! tenant) checked against `PONTE_API_TOKENS_FILE`; sessions are in [`session`] (in Redis, shared
//! by every gateway replica, the operator's token sealed). Every POST
//! carries the session's CSRF token; every answer carries a strict Content-Security-Policy (no
//! inline script: the little JS there is is served as a file). A tab's handler takes a [`Ctx`]
//! (a logged-in request for one tenant) or a [`Posted`] form, and answers a [`Page`].

mod connections;
mod events;
mod forms;
mod history;
mod layout;
mod lojas;
mod payments;
mod produtos;
mod sales;
mod session;
mod shipments;
mod situacoes;
mod sync;

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    Form, Router,
    extract::{FromRequest, FromRequestParts, Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use ponte_core::{
    TenantId,
    config::ConfigError,
    grpc::{TracedChannel, channel},
    identity::{Caller, Scope, tokens_file},
    service::Deps,
};
use ponte_proto::v1::{
    auth_token_service_client::AuthTokenServiceClient, catalog_sync_service_client::CatalogSyncServiceClient,
    inbox_service_client::InboxServiceClient, mapping_service_client::MappingServiceClient,
    sales_ingest_service_client::SalesIngestServiceClient, shipping_status_service_client::ShippingStatusServiceClient,
};

pub(crate) use layout::{Lang, Page, Table, enc, esc, notice, short, when};
use session::{Session, Sessions};

/// The session cookie's name.
pub const COOKIE: &str = "ponte_console";

const JS: &str = include_str!("console.js");
const CSS: &str = include_str!("console.css");

/// The services' clients, without a token of their own: each call carries the operator's.
#[derive(Clone)]
pub(crate) struct Clients {
    pub auth: AuthTokenServiceClient<TracedChannel>,
    pub mapping: MappingServiceClient<TracedChannel>,
    pub catalog: CatalogSyncServiceClient<TracedChannel>,
    pub sales: SalesIngestServiceClient<TracedChannel>,
    pub shipping: ShippingStatusServiceClient<TracedChannel>,
    pub inbox: InboxServiceClient<TracedChannel>,
}

/// The console's shared state.
#[derive(Clone)]
pub(crate) struct Console {
    /// `PONTE_API_TOKENS_FILE`, read at each login: a rotated Secret is seen without a restart,
    /// and a process that never serves a login never needs the file.
    tokens: Option<std::path::PathBuf>,
    sessions: Sessions,
    pub clients: Clients,
}

/// The console's routes, to nest under `/console`.
pub fn router(deps: &Deps) -> Result<Router, ConfigError> {
    let tokens = tokens_file(&deps.env)?;
    let none = ponte_core::identity::BearerToken::none();
    let p = &deps.peers;
    let clients = Clients {
        auth: AuthTokenServiceClient::new(channel("PONTE_AUTH_TOKEN_URL", &p.auth_token, &none)?),
        mapping: MappingServiceClient::new(channel("PONTE_MAPPING_URL", &p.mapping, &none)?),
        catalog: CatalogSyncServiceClient::new(channel("PONTE_CATALOG_SYNC_URL", &p.catalog_sync, &none)?),
        sales: SalesIngestServiceClient::new(channel("PONTE_SALES_INGEST_URL", &p.sales_ingest, &none)?),
        shipping: ShippingStatusServiceClient::new(channel("PONTE_SHIPPING_STATUS_URL", &p.shipping_status, &none)?),
        inbox: InboxServiceClient::new(channel("PONTE_GATEWAY_URL", &p.gateway, &none)?),
    };
    let state = Console { tokens, sessions: Sessions::new(deps)?, clients };
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/static/console.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], JS) }))
        .route("/static/console.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }))
        .route(
            "/t/{tenant}",
            get(|Path(t): Path<String>, lang: Lang| async move {
                let q = if lang.q().is_empty() { String::new() } else { format!("?{}", lang.q()) };
                Redirect::to(&format!("/console/t/{}/conexoes{q}", enc(&t)))
            }),
        )
        .route("/t/{tenant}/conexoes", get(connections::page))
        .route("/t/{tenant}/conexoes/bling", post(connections::connect_bling))
        .route("/t/{tenant}/conexoes/bitrix24", post(connections::connect_bitrix24))
        .route("/t/{tenant}/conexoes/cplug", post(connections::connect_cplug))
        .route("/t/{tenant}/conexoes/envios360", post(connections::connect_envios360))
        .route("/t/{tenant}/conexoes/desconectar", post(connections::disconnect))
        .route("/t/{tenant}/conexoes/licenca", post(connections::switch_license))
        .route("/t/{tenant}/produtos", get(produtos::page).post(produtos::create))
        .route("/t/{tenant}/produtos/excluir", post(produtos::delete))
        .route("/t/{tenant}/produtos/sincronizacao", post(produtos::switches))
        .route("/t/{tenant}/lojas", get(lojas::page).post(lojas::create))
        .route("/t/{tenant}/lojas/excluir", post(lojas::delete))
        .route("/t/{tenant}/situacoes", get(situacoes::page).post(situacoes::create))
        .route("/t/{tenant}/situacoes/excluir", post(situacoes::delete))
        .route("/t/{tenant}/situacoes/envio", post(situacoes::set_up_shipping))
        .route("/t/{tenant}/vendas/mover", post(sales::move_sale))
        .route("/t/{tenant}/eventos", get(events::page))
        .route("/t/{tenant}/eventos/replay", post(events::replay))
        .route("/t/{tenant}/vendas", get(sales::page))
        .route("/t/{tenant}/vendas/replay", post(sales::replay))
        .route("/t/{tenant}/envios", get(shipments::page))
        .route("/t/{tenant}/sincronizacao", get(sync::page))
        .route("/t/{tenant}/pagamento", get(payments::page).post(payments::create))
        .route("/t/{tenant}/historico", get(history::page))
        .fallback(|lang: Lang| async move {
            Page::error(lang, StatusCode::NOT_FOUND, lang.pick("Página não encontrada.", "No such page."))
        })
        .layer(axum::middleware::map_response(layout::secure_headers))
        .with_state(state))
}

/// The tabs, in the order the navigation shows them: (slug, pt, en).
const TABS: [(&str, &str, &str); 10] = [
    ("conexoes", "Conexões", "Connections"),
    ("produtos", "Mapeamento de produtos", "Product mapping"),
    ("lojas", "Lojas e depósitos", "Stores and depósitos"),
    ("situacoes", "Situações", "Situações"),
    ("eventos", "Eventos", "Events"),
    ("vendas", "Vendas", "Sales"),
    ("envios", "Envios", "Shipments"),
    ("sincronizacao", "Sincronização de dados", "Data sync"),
    ("pagamento", "Método de pagamento", "Payment method"),
    ("historico", "Histórico", "History"),
];

/// A logged-in request for one tenant's page: the session, the tenant (checked against the
/// session's scope), the language, the query and the notice it asks for.
pub(crate) struct Ctx {
    pub lang: Lang,
    pub session: Session,
    pub tenant: TenantId,
    pub query: HashMap<String, String>,
}

/// What a tab's handler answers: its page, or a page saying what went wrong.
pub(crate) type Answer = Result<Response, Page>;

impl Ctx {
    /// A request to a service carrying the operator's token.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        self.session.req(msg)
    }

    /// A service's answer, or its refusal as a page.
    pub fn ok<T>(&self, r: Result<tonic::Response<T>, tonic::Status>) -> Result<T, Page> {
        r.map(tonic::Response::into_inner).map_err(|s| Page::status(self.lang, &s))
    }

    pub fn tenant_id(&self) -> String {
        self.tenant.to_string()
    }

    pub fn base(&self) -> String {
        format!("/console/t/{}", enc(self.tenant.as_str()))
    }

    /// `tab`'s URL, keeping the language.
    pub fn href(&self, tab: &str) -> String {
        let q = self.lang.q();
        if q.is_empty() { format!("{}/{tab}", self.base()) } else { format!("{}/{tab}?{q}", self.base()) }
    }

    /// A link to a record's history.
    pub fn history_link(&self, entity: &str, text: &str) -> String {
        format!("<a href=\"{}/historico?entity={}{}\">{}</a>", self.base(), enc(entity), self.lang.amp(), esc(text))
    }

    /// The hidden fields every form carries.
    pub fn hidden(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">",
            esc(&self.session.csrf),
            self.lang.pick("pt", "en")
        )
    }

    /// A POST form to `action` (under the tenant) with hidden `fields` and one button.
    pub fn button(&self, action: &str, fields: &[(&str, &str)], label: &str, aria: &str) -> String {
        let mut f = format!("<form method=\"post\" action=\"{}/{action}\">{}", self.base(), self.hidden());
        for (k, v) in fields {
            let _ = write!(f, "<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v));
        }
        let aria = if aria.is_empty() { String::new() } else { format!(" aria-label=\"{}\"", esc(aria)) };
        let _ = write!(f, "<button type=\"submit\"{aria}>{}</button></form>", esc(label));
        f
    }

    /// The tenant's page `tab`, titled `title`, with the notice the query asks for.
    pub fn page(&self, tab: &str, title: &str, body: &str) -> Answer {
        let mut nav = format!(
            "<nav aria-label=\"{}\"><span class=\"tenant\">{}</span><ul>",
            self.lang.pick("Abas", "Tabs"),
            esc(self.tenant.as_str())
        );
        for (slug, pt, en) in TABS {
            let current = if slug == tab { " aria-current=\"page\"" } else { "" };
            let _ = write!(nav, "<li><a href=\"{}\"{current}>{}</a></li>", self.href(slug), self.lang.pick(pt, en));
        }
        let _ = write!(nav, "</ul>{}</nav>", logout_form(self.lang, &self.session));
        let notice = notice(self.lang, &self.query)
            .map(|n| format!("<p role=\"status\" class=\"notice\">{}</p>", esc(&n)))
            .unwrap_or_default();
        Ok(Page::ok(self.lang, title, &nav, &format!("{notice}{body}")).into_response())
    }

    /// After a form: back to `tab` with a notice.
    pub fn back(&self, tab: &str, ok: &str) -> Answer {
        Ok(Redirect::to(&format!("{}/{tab}?ok={ok}{}", self.base(), self.lang.amp())).into_response())
    }
}

fn logout_form(lang: Lang, session: &Session) -> String {
    format!(
        "<form method=\"post\" action=\"/console/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\"><button type=\"submit\">{}</button></form>",
        esc(&session.csrf),
        lang.pick("pt", "en"),
        lang.pick("Sair", "Log out")
    )
}

impl Console {
    /// The context of a tenant's page: logged in (else a redirect to the login page), allowed to
    /// see the tenant (else 403), the tenant id valid (else 400).
    async fn ctx(&self, headers: &HeaderMap, lang: Lang, tenant: &str) -> Result<Ctx, Response> {
        let Some(session) = self.sessions.get(headers, lang).await.map_err(IntoResponse::into_response)? else {
            return Err(lang.to_login());
        };
        let tenant =
            TenantId::parse(tenant).map_err(|e| Page::bad_field(lang, "tenant", &e.to_string()).into_response())?;
        if !Caller::may_see(Some(&session.caller), tenant.as_str()) {
            let why =
                lang.pick("Este token não dá acesso a este tenant.", "This token does not give access to this tenant.");
            return Err(Page::error(lang, StatusCode::FORBIDDEN, why).into_response());
        }
        Ok(Ctx { lang, session, tenant, query: HashMap::new() })
    }
}

impl FromRequestParts<Console> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        let Ok(lang) = Lang::from_request_parts(parts, c).await;
        let Path(tenant) = Path::<String>::from_request_parts(parts, c).await.map_err(IntoResponse::into_response)?;
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, c)
            .await
            .map_err(IntoResponse::into_response)?;
        let mut ctx = c.ctx(&parts.headers, lang, &tenant).await?;
        ctx.query = query;
        Ok(ctx)
    }
}

/// A form posted to a tenant's page: logged in, allowed, and its CSRF token the session's
/// (else 403); its hidden `lang` field sets the language.
pub(crate) struct Posted {
    pub ctx: Ctx,
    pub form: HashMap<String, String>,
}

impl FromRequest<Console> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, c: &Console) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Ok(lang) = Lang::from_request_parts(&mut parts, c).await;
        let Path(tenant) =
            Path::<String>::from_request_parts(&mut parts, c).await.map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let Form(form) = Form::<HashMap<String, String>>::from_request(Request::from_parts(parts, body), c)
            .await
            .map_err(IntoResponse::into_response)?;
        let lang = Lang::of_form(&form).unwrap_or(lang);
        let ctx = c.ctx(&headers, lang, &tenant).await?;
        ctx.session.check_csrf(&form).map_err(IntoResponse::into_response)?;
        Ok(Self { ctx, form })
    }
}

impl Posted {
    pub fn field(&self, name: &str) -> Result<&str, Page> {
        self.ctx.field(&self.form, name)
    }
}

/// The tenants the session may see, and its home page.
async fn home(State(c): State<Console>, headers: HeaderMap, lang: Lang) -> Answer {
    let Some(session) = c.sessions.get(&headers, lang).await? else {
        return Ok(lang.to_login());
    };
    let tenants: Vec<(String, String)> = match &session.caller.scope {
        Scope::Tenant(t) => vec![(t.to_string(), String::new())],
        _ => {
            let req = ponte_proto::v1::ListTenantsRequest { page_size: 1000, page_token: String::new() };
            match c.clients.auth.clone().list_tenants(session.req(req)).await {
                Ok(r) => r.into_inner().tenants.into_iter().map(|t| (t.tenant_id, t.display_name)).collect(),
                Err(s) => return Err(Page::status(lang, &s)),
            }
        }
    };
    let mut table =
        Table::new(lang.pick("Tenants", "Tenants"), &[lang.pick("Tenant", "Tenant"), lang.pick("Nome", "Name")]);
    let q = if lang == Lang::En { "?lang=en" } else { "" };
    for (id, name) in &tenants {
        table.row(&[&format!("<a href=\"/console/t/{}/conexoes{q}\">{}</a>", enc(id), esc(id)), &esc(name)]);
    }
    let body = table.finish(lang.pick("Nenhum tenant.", "No tenant."));
    let nav = format!("<nav>{}</nav>", logout_form(lang, &session));
    Ok(Page::ok(lang, lang.pick("Tenants", "Tenants"), &nav, &body).into_response())
}
