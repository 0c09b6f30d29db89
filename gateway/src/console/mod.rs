//! The operator console under `/console`: server-rendered pages, in pt-BR by default and English
//! with `?lang=en` (or an English `Accept-Language`), one module per tab. It reads and acts only
//! through ponte's own gRPC APIs, presenting the logged-in operator's token, so what a person may
//! see and do is what the services let that token do.
//!
//! Login takes an API token (scope `operator` or `service`, or `tenant:<id>`, which sees only its
//! tenant) checked against `PONTE_API_TOKENS_FILE`. The session cookie (`HttpOnly; Secure;
//! SameSite=Strict; Path=/console`) holds a random id of a server-side session that expires;
//! the token stays in this process's memory and is never logged. Every POST carries the
//! session's CSRF token; every answer carries a strict Content-Security-Policy (no inline
//! script: the little JS there is is served as a file).

mod connections;
mod events;
mod history;
mod payments;
mod sales;
mod shipments;
mod sync;

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Form, Router,
    extract::{FromRequestParts, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use ponte_core::{
    TenantId,
    config::ConfigError,
    grpc::{TracedChannel, channel},
    identity::{ApiTokens, Caller, Scope, tokens_file},
    service::Deps,
};
use ponte_proto::v1::{
    auth_token_service_client::AuthTokenServiceClient, catalog_sync_service_client::CatalogSyncServiceClient,
    inbox_service_client::InboxServiceClient, mapping_service_client::MappingServiceClient,
    sales_ingest_service_client::SalesIngestServiceClient, shipping_status_service_client::ShippingStatusServiceClient,
};
use subtle::ConstantTimeEq;
use tonic::Code;

/// The session cookie's name.
pub const COOKIE: &str = "ponte_console";

/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(8 * 3600);

/// The most sessions kept at once (the oldest go first).
const MAX_SESSIONS: usize = 10_000;

/// How long a service has to answer a page's call.
const DEADLINE: Duration = Duration::from_secs(10);

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

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

/// One logged-in person.
#[derive(Clone)]
pub(crate) struct Session {
    pub caller: Caller,
    token: Arc<str>,
    pub csrf: String,
    last_use: Instant,
}

/// The console's shared state.
#[derive(Clone)]
pub(crate) struct Console {
    /// `PONTE_API_TOKENS_FILE`, read at each login: a rotated Secret is seen without a restart,
    /// and a process that never serves a login never needs the file.
    tokens: Option<std::path::PathBuf>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
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
    let state = Console { tokens, sessions: Arc::default(), clients };
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/static/console.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], JS) }))
        .route("/static/console.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }))
        .route(
            "/t/{tenant}",
            get(|Path(t): Path<String>, q: Query<HashMap<String, String>>| async move {
                let lang = q.get("lang").map(|l| format!("?lang={}", esc(l))).unwrap_or_default();
                Redirect::to(&format!("/console/t/{}/conexoes{lang}", esc(&t)))
            }),
        )
        .route("/t/{tenant}/conexoes", get(connections::page))
        .route("/t/{tenant}/conexoes/bling", post(connections::connect_bling))
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
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(state))
}

/// The headers every console answer carries.
async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The page's language: `?lang=en|pt`, else the browser's first preference, else pt-BR.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lang {
    Pt,
    En,
}

impl Lang {
    pub fn pick(self, pt: &'static str, en: &'static str) -> &'static str {
        if self == Lang::En { en } else { pt }
    }

    fn code(self) -> &'static str {
        self.pick("pt-BR", "en")
    }

    /// The query suffix that keeps the language on links (`lang=en`), empty for the default.
    pub fn q(self) -> &'static str {
        self.pick("", "lang=en")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        for pair in query.split('&') {
            match pair {
                "lang=en" => return Ok(Lang::En),
                "lang=pt" | "lang=pt-BR" => return Ok(Lang::Pt),
                _ => {}
            }
        }
        let accept = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let first = accept.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
        Ok(if first.starts_with("en") { Lang::En } else { Lang::Pt })
    }
}

/// HTML-escapes text for an element or an attribute.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A timestamp as UTC text.
pub(crate) fn when(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// A whole answer: an HTML page or an error page, with its status.
pub(crate) struct Page {
    status: StatusCode,
    html: String,
    cookie: Option<String>,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut r = (self.status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], self.html).into_response();
        if let Some(c) = self.cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            r.headers_mut().insert(header::SET_COOKIE, c);
        }
        r
    }
}

fn document(lang: Lang, title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · ponte</title><link rel=\"stylesheet\" href=\"/console/static/console.css\">\
         <script src=\"/console/static/console.js\" defer></script></head><body>\
         <header><a class=\"brand\" href=\"/console?{q}\">ponte</a>{nav}</header><main id=\"main\"><h1>{title}</h1>{body}</main></body></html>",
        code = lang.code(),
        title = esc(title),
        q = lang.q(),
    )
}

impl Page {
    pub fn error(lang: Lang, status: StatusCode, message: &str) -> Self {
        let body = format!(
            "<p role=\"alert\" class=\"error\">{}</p><p><a href=\"/console?{}\">{}</a></p>",
            esc(message),
            lang.q(),
            lang.pick("Voltar ao início", "Back to the start")
        );
        let title = match status {
            StatusCode::FORBIDDEN => lang.pick("Acesso negado", "Forbidden"),
            StatusCode::NOT_FOUND => lang.pick("Não encontrado", "Not found"),
            s if s.is_client_error() => lang.pick("Pedido inválido", "Bad request"),
            _ => lang.pick("Serviço indisponível", "Service unavailable"),
        };
        Self { status, html: document(lang, title, "", &body), cookie: None }
    }

    /// A service's refusal as a page: the caller's mistake a 4xx naming what was wrong, an outage
    /// a 503, anything else a 502; never a 500.
    pub fn status(lang: Lang, s: &tonic::Status) -> Self {
        let code = match s.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        Self::error(lang, code, s.message())
    }

    pub fn bad_field(lang: Lang, field: &str, why: &str) -> Self {
        let msg = format!("{}: {field}: {why}", lang.pick("Campo inválido", "Invalid field"));
        Self::error(lang, StatusCode::BAD_REQUEST, &msg)
    }
}

/// A logged-in request for one tenant's page: the session, the tenant (checked against the
/// session's scope) and the language.
pub(crate) struct Ctx {
    pub lang: Lang,
    pub session: Session,
    pub tenant: TenantId,
    pub notice: Option<String>,
}

impl Ctx {
    /// A request to a service carrying the operator's token.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        with_token(&self.session.token, msg)
    }

    pub fn base(&self) -> String {
        format!("/console/t/{}", enc(self.tenant.as_str()))
    }

    /// `tab`'s URL, keeping the language.
    pub fn href(&self, tab: &str) -> String {
        let q = self.lang.q();
        if q.is_empty() { format!("{}/{tab}", self.base()) } else { format!("{}/{tab}?{q}", self.base()) }
    }

    /// The hidden fields every form carries.
    pub fn hidden(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">",
            esc(&self.session.csrf),
            self.lang.pick("pt", "en")
        )
    }

    /// The tenant's page `tab`, titled `title`.
    pub fn page(&self, tab: &str, title: &str, body: &str) -> Page {
        let tabs: [(&str, &str, &str); 7] = [
            ("conexoes", "Conexões", "Connections"),
            ("eventos", "Eventos", "Events"),
            ("vendas", "Vendas", "Sales"),
            ("envios", "Envios", "Shipments"),
            ("sincronizacao", "Sincronização de dados", "Data sync"),
            ("pagamento", "Método de pagamento", "Payment method"),
            ("historico", "Histórico", "History"),
        ];
        let mut nav = format!(
            "<nav aria-label=\"{}\"><span class=\"tenant\">{}</span><ul>",
            self.lang.pick("Abas", "Tabs"),
            esc(self.tenant.as_str())
        );
        for (slug, pt, en) in tabs {
            let current = if slug == tab { " aria-current=\"page\"" } else { "" };
            let _ = write!(nav, "<li><a href=\"{}\"{current}>{}</a></li>", self.href(slug), self.lang.pick(pt, en));
        }
        let _ = write!(
            nav,
            "</ul><form method=\"post\" action=\"/console/logout\" class=\"logout\">{}<button type=\"submit\">{}</button></form></nav>",
            self.hidden(),
            self.lang.pick("Sair", "Log out")
        );
        let notice = self
            .notice
            .as_deref()
            .map(|n| format!("<p role=\"status\" class=\"notice\">{}</p>", esc(n)))
            .unwrap_or_default();
        Page {
            status: StatusCode::OK,
            html: document(self.lang, title, &nav, &format!("{notice}{body}")),
            cookie: None,
        }
    }
}

pub(crate) fn with_token<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(DEADLINE);
    if let Ok(mut v) = tonic::metadata::MetadataValue::try_from(format!("Bearer {token}")) {
        v.set_sensitive(true);
        r.metadata_mut().insert("authorization", v);
    }
    r
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

impl Console {
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = session_id(headers)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let s = sessions.get_mut(&id)?;
        if s.last_use.elapsed() > IDLE {
            sessions.remove(&id);
            return None;
        }
        s.last_use = Instant::now();
        Some(s.clone())
    }

    fn open(&self, caller: Caller, token: &str) -> (String, Session) {
        let id = ponte_core::identity::generate_token();
        let s = Session {
            caller,
            token: token.into(),
            csrf: ponte_core::identity::generate_token(),
            last_use: Instant::now(),
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.last_use.elapsed() <= IDLE);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.last_use).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), s.clone());
        (id, s)
    }

    fn close(&self, headers: &HeaderMap) {
        if let Some(id) = session_id(headers) {
            self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }
    }

    /// The context of a tenant's page: logged in (else a redirect to the login page), allowed to
    /// see the tenant (else 403), the tenant id valid (else 400).
    pub(crate) fn ctx(&self, headers: &HeaderMap, lang: Lang, tenant: &str) -> Result<Ctx, Box<Response>> {
        let Some(session) = self.session(headers) else {
            return Err(Box::new(Redirect::to(&format!("/console/login?{}", lang.q())).into_response()));
        };
        let tenant = TenantId::parse(tenant)
            .map_err(|e| Box::new(Page::bad_field(lang, "tenant", &e.to_string()).into_response()))?;
        if !Caller::may_see(Some(&session.caller), tenant.as_str()) {
            return Err(Box::new(
                Page::error(
                    lang,
                    StatusCode::FORBIDDEN,
                    lang.pick(
                        "Este token não dá acesso a este tenant.",
                        "This token does not give access to this tenant.",
                    ),
                )
                .into_response(),
            ));
        }
        Ok(Ctx { lang, session, tenant, notice: None })
    }

    /// As [`Console::ctx`], for a form: its CSRF token must be the session's (else 403).
    pub(crate) fn post_ctx(
        &self,
        headers: &HeaderMap,
        lang: Lang,
        tenant: &str,
        form: &HashMap<String, String>,
    ) -> Result<Ctx, Box<Response>> {
        let lang = form_lang(form).unwrap_or(lang);
        let ctx = self.ctx(headers, lang, tenant)?;
        csrf_ok(&ctx.session, form).map_err(|p| Box::new(p.into_response()))?;
        Ok(ctx)
    }
}

fn form_lang(form: &HashMap<String, String>) -> Option<Lang> {
    match form.get("lang").map(String::as_str) {
        Some("en") => Some(Lang::En),
        Some("pt") => Some(Lang::Pt),
        _ => None,
    }
}

fn csrf_ok(session: &Session, form: &HashMap<String, String>) -> Result<(), Page> {
    let given = form.get("csrf").map(String::as_bytes).unwrap_or_default();
    if given.is_empty() || !bool::from(given.ct_eq(session.csrf.as_bytes())) {
        let lang = form_lang(form).unwrap_or(Lang::Pt);
        return Err(Page::error(
            lang,
            StatusCode::FORBIDDEN,
            lang.pick(
                "Formulário recusado: o token CSRF falta ou não confere. Recarregue a página e tente de novo.",
                "Form refused: its CSRF token is missing or wrong. Reload the page and try again.",
            ),
        ));
    }
    Ok(())
}

/// A text field of a form, trimmed; `Err` a page naming it when it is missing or too long.
pub(crate) fn field<'a>(lang: Lang, form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Page> {
    let v = form.get(name).map(|s| s.trim()).unwrap_or("");
    if v.is_empty() {
        return Err(Page::bad_field(lang, name, lang.pick("obrigatório", "required")));
    }
    if v.len() > 200 {
        return Err(Page::bad_field(lang, name, lang.pick("longo demais (máx. 200)", "too long (at most 200)")));
    }
    Ok(v)
}

/// The tenants the session may see, and its home page.
async fn home(State(c): State<Console>, headers: HeaderMap, lang: Lang) -> Response {
    let Some(session) = c.session(&headers) else {
        return Redirect::to(&format!("/console/login?{}", lang.q())).into_response();
    };
    let tenants: Vec<(String, String)> = match &session.caller.scope {
        Scope::Tenant(t) => vec![(t.to_string(), String::new())],
        _ => {
            let req = ponte_proto::v1::ListTenantsRequest { page_size: 1000, page_token: String::new() };
            match c.clients.auth.clone().list_tenants(with_token(&session.token, req)).await {
                Ok(r) => r.into_inner().tenants.into_iter().map(|t| (t.tenant_id, t.display_name)).collect(),
                Err(s) => return Page::status(lang, &s).into_response(),
            }
        }
    };
    let mut body = format!(
        "<table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        lang.pick("Tenants", "Tenants"),
        lang.pick("Tenant", "Tenant"),
        lang.pick("Nome", "Name")
    );
    for (id, name) in &tenants {
        let q = if lang == Lang::En { "?lang=en" } else { "" };
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/t/{}/conexoes{q}\">{}</a></td><td>{}</td></tr>",
            enc(id),
            esc(id),
            esc(name)
        );
    }
    if tenants.is_empty() {
        let _ = write!(body, "<tr><td colspan=\"2\">{}</td></tr>", lang.pick("Nenhum tenant.", "No tenant."));
    }
    body.push_str("</tbody></table>");
    let nav = format!(
        "<nav><form method=\"post\" action=\"/console/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">{}</button></form></nav>",
        esc(&session.csrf),
        lang.pick("Sair", "Log out")
    );
    Page { status: StatusCode::OK, html: document(lang, lang.pick("Tenants", "Tenants"), &nav, &body), cookie: None }
        .into_response()
}

fn login_form(lang: Lang, status: StatusCode, error: Option<&str>) -> Page {
    let error = error.map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", esc(e))).unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\" action=\"/console/login\" class=\"login\">\
         <input type=\"hidden\" name=\"lang\" value=\"{l}\">\
         <label for=\"token\">{label}</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>\
         <button type=\"submit\">{button}</button></form><p>{hint}</p>",
        l = lang.pick("pt", "en"),
        label = lang.pick("Token de API (operador)", "API token (operator)"),
        button = lang.pick("Entrar", "Log in"),
        hint = lang.pick(
            "Com <code>ponte dev</code>, o token está em <code>.ponte/api-token</code>.",
            "With <code>ponte dev</code>, the token is in <code>.ponte/api-token</code>."
        ),
    );
    Page {
        status,
        html: document(lang, lang.pick("Entrar no console", "Log in to the console"), "", &body),
        cookie: None,
    }
}

async fn login_page(lang: Lang) -> Page {
    login_form(lang, StatusCode::OK, None)
}

async fn login(State(c): State<Console>, lang: Lang, Form(form): Form<HashMap<String, String>>) -> Response {
    let lang = form_lang(&form).unwrap_or(lang);
    let Some(path) = &c.tokens else {
        return login_form(
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            Some(lang.pick(
                "O console precisa de PONTE_API_TOKENS_FILE (a identidade está desligada).",
                "The console needs PONTE_API_TOKENS_FILE (identity is disabled).",
            )),
        )
        .into_response();
    };
    let tokens = match ApiTokens::load(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "console login: the token list cannot be read");
            return login_form(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(lang.pick(
                    "O console não consegue ler a lista de tokens (PONTE_API_TOKENS_FILE); tente de novo em instantes.",
                    "The console cannot read its token list (PONTE_API_TOKENS_FILE); try again shortly.",
                )),
            )
            .into_response();
        }
    };
    let token = form.get("token").map(|t| t.trim()).unwrap_or("");
    if token.is_empty() {
        return login_form(lang, StatusCode::BAD_REQUEST, Some(lang.pick("token: obrigatório", "token: required")))
            .into_response();
    }
    let Some(caller) = tokens.find(token).cloned() else {
        tracing::info!("console login refused: unknown token");
        return login_form(
            lang,
            StatusCode::UNAUTHORIZED,
            Some(lang.pick("token: desconhecido", "token: not recognised")),
        )
        .into_response();
    };
    tracing::info!(caller = %caller.name, "console login");
    let (id, _) = c.open(caller, token);
    let mut r = Redirect::to(&format!("/console?{}", lang.q())).into_response();
    let cookie = format!("{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/console; Max-Age={}", IDLE.as_secs());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    lang: Lang,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = form_lang(&form).unwrap_or(lang);
    if let Some(s) = c.session(&headers) {
        if let Err(p) = csrf_ok(&s, &form) {
            return p.into_response();
        }
        c.close(&headers);
    }
    let mut r = Redirect::to(&format!("/console/login?{}", lang.q())).into_response();
    let cookie = format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/console; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The `ok` notices pages show after a form (post, redirect, get).
pub(crate) fn notice(lang: Lang, q: &HashMap<String, String>) -> Option<String> {
    let n = match q.get("ok")?.as_str() {
        "replayed" => lang.pick("Reenvio enfileirado.", "Replay queued."),
        "mapped" => lang.pick(
            "Forma de pagamento mapeada; as vendas estacionadas foram reenviadas.",
            "Payment method mapped; the parked sales were replayed.",
        ),
        _ => return None,
    };
    Some(n.to_owned())
}

/// After a form: back to `tab` with a notice.
pub(crate) fn back(ctx: &Ctx, tab: &str, ok: &str) -> Response {
    let q = ctx.lang.q();
    let sep = if q.is_empty() { "" } else { "&" };
    Redirect::to(&format!("{}/{tab}?ok={ok}{sep}{q}", ctx.base())).into_response()
}
