//! Bling's OAuth 2.0 server: the authorize redirect with single-use one-minute codes (reusing
//! one revokes the grant), the form-encoded token endpoint with Basic client auth only, six-hour
//! access tokens and rotating refresh tokens, opaque by default and JWTs (1.5–3 kB, three
//! base64url parts) when asked with `enable-jwt: 1`, and the token endpoint's IP block after 20
//! calls a minute.

use std::collections::HashMap;

use axum::{
    Form, Json,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    errors::error,
    store::Bling,
    tokens::{Access, Auth, Code, Grant},
};

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    state: String,
}

/// Whether the request is a person's browser (it asks for HTML), who sees the consent page;
/// a program following the link (the tests' and the demo's shortcut) is approved at once.
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// The consent page: the app asks for access; "Autorizar" posts the same query back.
fn consent(q: &AuthorizeQuery) -> Response {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let html = format!(
        "<!doctype html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\"><title>Bling — Autorizar aplicativo</title></head>\
         <body><h1>Autorizar aplicativo</h1><p>O aplicativo <strong>{client}</strong> quer acessar a sua conta Bling.</p>\
         <form method=\"post\" action=\"/Api/v3/oauth/authorize\">\
         <input type=\"hidden\" name=\"response_type\" value=\"code\">\
         <input type=\"hidden\" name=\"client_id\" value=\"{client}\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <button type=\"submit\" id=\"autorizar\">Autorizar</button></form></body></html>",
        client = esc(&q.client_id),
        state = esc(&q.state),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

pub async fn authorize(State(b): State<Bling>, headers: HeaderMap, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id != b.config.client_id || q.response_type != "code" {
        return invalid_app();
    }
    if wants_html(&headers) {
        return consent(&q);
    }
    grant(&b, &q)
}

/// "Autorizar" on the consent page.
pub async fn approve(State(b): State<Bling>, Form(q): Form<AuthorizeQuery>) -> Response {
    if q.client_id != b.config.client_id || q.response_type != "code" {
        return invalid_app();
    }
    let mut r = grant(&b, &q);
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

fn invalid_app() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "invalid_request",
        "Aplicativo não encontrado ou parâmetros inválidos",
    )
}

/// The redirect back to the app with a single-use code (or the denial the test asked for).
fn grant(b: &Bling, q: &AuthorizeQuery) -> Response {
    let Ok(mut url) = url::Url::parse(&b.config.redirect_uri) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR", "redirect", "bad redirect URI");
    };
    let issued = b.now();
    let mut inner = b.inner.lock();
    let auth = &mut inner.auth;
    if std::mem::take(&mut auth.deny_next) {
        url.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "O usuário negou o acesso")
            .append_pair("state", &q.state);
        return Redirect::to(url.as_str()).into_response();
    }
    auth.grants.push(Grant { refresh_token: String::new(), revoked: false });
    let grant = auth.grants.len() - 1;
    let code = hex::encode(rand::random::<[u8; 20]>());
    crate::common::scan::record([&code]);
    auth.codes.insert(code.clone(), Code { grant, issued, used: false });
    url.query_pairs_mut().append_pair("code", &code).append_pair("state", &q.state);
    Redirect::to(url.as_str()).into_response()
}

/// The app's Basic client credentials, as the token and revoke endpoints require them, or
/// Bling's `invalid_client` answer.
fn client_of(b: &Bling, headers: &HeaderMap) -> Result<(), Response> {
    let ok =
        basic_client(headers).is_some_and(|(id, secret)| id == b.config.client_id && secret == b.config.client_secret);
    if ok {
        Ok(())
    } else {
        Err(error(StatusCode::UNAUTHORIZED, "invalid_client", "invalid_client", "The client credentials are invalid"))
    }
}

fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(raw.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The scope ids granted to the app, as the token answer lists them.
const SCOPE: &str = "98309 318257570";

/// A JWT the size of Bling's (1.5–3 kB): header, claims (the granted scope ids among them) and
/// an RS256-sized signature, each base64url without padding. Nothing checks the signature: the
/// token is only ever looked up.
fn jwt(b: &Bling, token_use: &str, now: DateTime<Utc>, ttl: chrono::Duration) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "bling-sandbox-2026"});
    // A real token carries every resource scope of the app: about a hundred ids.
    let scopes: Vec<i64> = (0..96).map(|i| 318_257_570 + i * 7_919).collect();
    let claims = json!({"iss": "https://www.bling.com.br", "aud": b.config.client_id, "sub": b.config.company_id,
        "iat": now.timestamp(), "nbf": now.timestamp(), "exp": (now + ttl).timestamp(),
        "jti": uuid::Uuid::new_v4().to_string(), "token_use": token_use, "scope": scopes});
    let signature: Vec<u8> = (0..256).map(|_| rand::random::<u8>()).collect();
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{}", part(&header), part(&claims), URL_SAFE_NO_PAD.encode(signature))
}

fn issue(b: &Bling, auth: &mut Auth, grant: usize, now: DateTime<Utc>, as_jwt: bool) -> Value {
    let ttl = chrono::Duration::from_std(b.config.access_ttl).unwrap_or_default();
    let opaque = || hex::encode(rand::random::<[u8; 20]>());
    let (access, refresh) = if as_jwt {
        (jwt(b, "access", now, ttl), jwt(b, "refresh", now, chrono::Duration::days(30)))
    } else {
        (opaque(), opaque())
    };
    // The whole token, and a JWT's signature alone (its header is the same in every token).
    let signatures = [&access, &refresh].map(|t| t.rsplit('.').next().unwrap_or_default().to_owned());
    crate::common::scan::record(
        [access.as_str(), refresh.as_str()].into_iter().chain(signatures.iter().map(String::as_str)),
    );
    auth.access.insert(access.clone(), Access { grant, expires: now + ttl });
    let old = std::mem::replace(&mut auth.grants[grant].refresh_token, refresh.clone());
    if !old.is_empty() {
        auth.retired_refresh.insert(old, grant);
    }
    json!({"access_token": access, "expires_in": b.config.access_ttl.as_secs(), "token_type": "Bearer",
           "scope": SCOPE, "refresh_token": refresh})
}

fn ip_blocked() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        "IP bloqueado",
        "Muitas requisições ao endpoint de token; tente novamente mais tarde.",
    )
}

pub async fn token(State(b): State<Bling>, headers: HeaderMap, body: String) -> Response {
    let now = b.now();
    let (minute, hour) = (b.window(60_000.0), b.window(3_600_000.0));
    let as_jwt = headers.get("enable-jwt").and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == "1");
    let mut inner = b.inner.lock();
    inner.stats.token_calls += 1;
    if inner.auth.blocked_until.is_some_and(|until| until > now) {
        return ip_blocked();
    }
    if inner.auth.token_calls.record(now, minute) > b.config.token_calls_per_minute {
        inner.auth.blocked_until = Some(now + hour);
        return ip_blocked();
    }
    if let Err(refused) = client_of(&b, &headers) {
        return refused;
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let invalid_grant = |d: &str| error(StatusCode::BAD_REQUEST, "invalid_grant", "invalid_grant", d);
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            inner.stats.code_exchanges += 1;
            let auth = &mut inner.auth;
            let Some(code) = auth.codes.get_mut(form.get("code").map(String::as_str).unwrap_or_default()) else {
                return invalid_grant("The authorization code is invalid");
            };
            let grant = code.grant;
            if code.used {
                // Reuse revokes the user's access.
                auth.grants[grant].revoked = true;
                auth.access.retain(|_, a| a.grant != grant);
                return error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "Invalid authorization code",
                    "This authorization code has already been used, for security reasons the user has had access revoked",
                );
            }
            code.used = true;
            if code.issued + chrono::Duration::from_std(b.config.code_ttl).unwrap_or_default() < now {
                return invalid_grant("The authorization code has expired");
            }
            (StatusCode::OK, Json(issue(&b, auth, grant, now, as_jwt))).into_response()
        }
        Some("refresh_token") => {
            inner.stats.refreshes += 1;
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            let grant = inner.auth.grants.iter().position(|g| !rt.is_empty() && g.refresh_token == rt);
            let Some(grant) = grant else {
                if inner.auth.retired_refresh.contains_key(&rt) {
                    inner.stats.stale_refresh_tokens += 1;
                }
                return invalid_grant("The refresh token is invalid");
            };
            if inner.auth.grants[grant].revoked {
                return invalid_grant("The refresh token was revoked");
            }
            (StatusCode::OK, Json(issue(&b, &mut inner.auth, grant, now, as_jwt))).into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, "invalid_request", "invalid_request", "grant_type is required"),
    }
}

/// `POST /oauth/revoke`: form `token` (and an optional `token_type_hint`), Basic client auth as
/// the token endpoint. A refresh token revokes its grant (every access token of it stops
/// working); an access token stops working alone. As RFC 7009 has it, an unknown or already
/// revoked token is answered as revoked.
pub async fn revoke(State(b): State<Bling>, headers: HeaderMap, body: String) -> Response {
    if let Err(refused) = client_of(&b, &headers) {
        return refused;
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let token = form.get("token").cloned().unwrap_or_default();
    if token.is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "invalid_request", "token is required");
    }
    let mut inner = b.inner.lock();
    let auth = &mut inner.auth;
    let mut revoked = false;
    if let Some(grant) = auth.grants.iter().position(|g| g.refresh_token == token && !g.revoked) {
        auth.grants[grant].revoked = true;
        auth.access.retain(|_, a| a.grant != grant);
        revoked = true;
    } else if auth.access.remove(&token).is_some() {
        revoked = true;
    }
    if revoked {
        inner.stats.revocations += 1;
    }
    StatusCode::OK.into_response()
}
