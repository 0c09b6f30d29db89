//! Login, logout and sessions: the session cookie (`HttpOnly; Secure; SameSite=Strict;
//! Path=/console`) holds a random id; the session (the operator's identity, their API token,
//! the CSRF token) is kept in the store every gateway replica shares (Redis), under a hash of
//! that id, sealed (the token is never at rest in clear), with an idle expiry: a replica behind
//! a load balancer sees the session another opened, and a logout on one ends it on all. Every
//! form carries the session's CSRF token, compared in constant time.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Form,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use ponte_core::{
    config::ConfigError,
    crypto::Sealer,
    expiring::ExpiringStore,
    identity::{ApiTokens, Caller, Scope},
    service::Deps,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    COOKIE, Console,
    layout::{Lang, Page, document, esc},
};

/// How long a session lasts without use.
pub(super) const IDLE: Duration = Duration::from_secs(8 * 3600);

/// How long a service has to answer a page's call.
const DEADLINE: Duration = Duration::from_secs(10);

/// One logged-in person.
#[derive(Clone)]
pub(crate) struct Session {
    pub caller: Caller,
    token: Arc<str>,
    pub csrf: String,
}

/// A session as kept in the store: sealed whole (the token never in clear).
#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    scope: String,
    token: String,
    csrf: String,
}

fn scope_text(s: &Scope) -> String {
    match s {
        Scope::Service => "service".into(),
        Scope::Operator => "operator".into(),
        Scope::Tenant(t) => format!("tenant:{t}"),
    }
}

impl Session {
    /// A request to a service carrying the operator's token.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(DEADLINE);
        if let Ok(mut v) = tonic::metadata::MetadataValue::try_from(format!("Bearer {}", self.token)) {
            v.set_sensitive(true);
            r.metadata_mut().insert("authorization", v);
        }
        r
    }

    /// A form's CSRF token must be this session's; else a 403 page.
    pub fn check_csrf(&self, form: &HashMap<String, String>) -> Result<(), Page> {
        let given = form.get("csrf").map(String::as_bytes).unwrap_or_default();
        if given.is_empty() || !bool::from(given.ct_eq(self.csrf.as_bytes())) {
            let lang = Lang::of_form(form).unwrap_or(Lang::Pt);
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
}

/// The sessions, in the store every gateway replica shares (Redis; memory under `ponte dev`),
/// keyed by a hash of the cookie's id and sealed under `PONTE_SEALING_KEYS`, expiring after
/// [`IDLE`] without use.
#[derive(Clone)]
pub(super) struct Sessions {
    store: Arc<dyn ExpiringStore>,
    sealer: Sealer,
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
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The store's key of a session id, and the associated data its sealed value is bound to.
fn key_of(id: &str) -> (String, String) {
    let hash = hex::encode(Sha256::digest(id.as_bytes()));
    (format!("console:session:{hash}"), format!("console/session/{hash}"))
}

/// The store did not answer: a 503 page, the operator asked to try again.
fn unavailable(lang: Lang, e: &dyn std::fmt::Display) -> Page {
    tracing::warn!(error = %e, "console: the session store does not answer");
    Page::error(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        lang.pick(
            "As sessões do console não respondem (Redis); tente de novo em instantes.",
            "The console's sessions do not answer (Redis); try again shortly.",
        ),
    )
}

impl Sessions {
    /// Sealed under `PONTE_SEALING_KEYS`; without it (a process that seals nothing else), a
    /// key of this process only, so sessions are not seen by another replica.
    pub fn new(deps: &Deps) -> Result<Self, ConfigError> {
        let sealer = if deps.env.get("PONTE_SEALING_KEYS").is_some() {
            Sealer::from_env(&deps.env)?
        } else {
            tracing::warn!(
                "console: PONTE_SEALING_KEYS is not set; sessions are sealed with a key of this process and not seen by other replicas"
            );
            Sealer::ephemeral()
        };
        Ok(Self { store: deps.expiring.clone(), sealer })
    }

    /// The request's session, its idle time restarted; `None` when there is none, it expired,
    /// or it does not open (another deployment's key, a tampered value).
    pub async fn get(&self, headers: &HeaderMap, lang: Lang) -> Result<Option<Session>, Page> {
        let Some(id) = session_id(headers) else { return Ok(None) };
        let (key, aad) = key_of(&id);
        let Some(sealed) = self.store.touch(&key, IDLE).await.map_err(|e| unavailable(lang, &e))? else {
            return Ok(None);
        };
        let Some(s) =
            self.sealer.open(&sealed, &aad).ok().and_then(|json| serde_json::from_slice::<Stored>(&json).ok())
        else {
            tracing::warn!("console: a stored session does not open; treated as logged out");
            return Ok(None);
        };
        let Ok(scope) = Scope::parse(&s.scope) else { return Ok(None) };
        Ok(Some(Session { caller: Caller { name: s.name, scope }, token: s.token.into(), csrf: s.csrf }))
    }

    async fn open(&self, caller: Caller, token: &str, lang: Lang) -> Result<String, Page> {
        let id = ponte_core::identity::generate_token();
        let stored = Stored {
            name: caller.name,
            scope: scope_text(&caller.scope),
            token: token.to_owned(),
            csrf: ponte_core::identity::generate_token(),
        };
        let json = serde_json::to_vec(&stored).unwrap_or_default();
        let (key, aad) = key_of(&id);
        let sealed = self.sealer.seal(&json, &aad);
        self.store.put(&key, &sealed, IDLE).await.map_err(|e| unavailable(lang, &e))?;
        Ok(id)
    }

    async fn close(&self, headers: &HeaderMap, lang: Lang) -> Result<(), Page> {
        if let Some(id) = session_id(headers) {
            self.store.delete(&key_of(&id).0).await.map_err(|e| unavailable(lang, &e))?;
        }
        Ok(())
    }
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
    Page { status, html: document(lang, lang.pick("Entrar no console", "Log in to the console"), "", &body) }
}

pub(super) async fn login_page(lang: Lang) -> Page {
    login_form(lang, StatusCode::OK, None)
}

fn with_cookie(mut r: Response, value: &str, max_age: u64) -> Response {
    let cookie = format!("{COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/console; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub(super) async fn login(State(c): State<Console>, lang: Lang, Form(form): Form<HashMap<String, String>>) -> Response {
    let lang = Lang::of_form(&form).unwrap_or(lang);
    let refuse = |pt, en| login_form(lang, StatusCode::SERVICE_UNAVAILABLE, Some(lang.pick(pt, en))).into_response();
    let Some(path) = &c.tokens else {
        return refuse(
            "O console precisa de PONTE_API_TOKENS_FILE (a identidade está desligada).",
            "The console needs PONTE_API_TOKENS_FILE (identity is disabled).",
        );
    };
    let tokens = match ApiTokens::load(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "console login: the token list cannot be read");
            return refuse(
                "O console não consegue ler a lista de tokens (PONTE_API_TOKENS_FILE); tente de novo em instantes.",
                "The console cannot read its token list (PONTE_API_TOKENS_FILE); try again shortly.",
            );
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
    let id = match c.sessions.open(caller, token, lang).await {
        Ok(id) => id,
        Err(p) => return p.into_response(),
    };
    with_cookie(Redirect::to(&format!("/console?{}", lang.q())).into_response(), &id, IDLE.as_secs())
}

pub(super) async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    lang: Lang,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = Lang::of_form(&form).unwrap_or(lang);
    match c.sessions.get(&headers, lang).await {
        Ok(Some(s)) => {
            if let Err(p) = s.check_csrf(&form) {
                return p.into_response();
            }
            if let Err(p) = c.sessions.close(&headers, lang).await {
                return p.into_response();
            }
        }
        Ok(None) => {}
        Err(p) => return p.into_response(),
    }
    with_cookie(lang.to_login(), "", 0)
}
