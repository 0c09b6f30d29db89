//! The portal's OAuth endpoints for apps: the consent page (already consented: back to the
//! app's redirect URI with a code) and the token endpoint (`oauth.bitrix.info/oauth/token/`, a
//! GET with the grant in the query), answering in Bitrix24's `{"error","error_description"}`.

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{
    params::{request_params, text},
    portal::{Bitrix24, error},
};

/// The token endpoint (`oauth.bitrix.info/oauth/token/`): a GET with the grant in the query.
pub async fn token(State(b): State<Bitrix24>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let p = request_params(q.as_deref(), ct, &body);
    let get = |k: &str| p.get(k).and_then(text).unwrap_or_default();
    let c = &b.config;
    let now = b.now();
    let (access_ttl, refresh_ttl) = (b.span(c.access_ttl), b.span(c.refresh_ttl));
    let mut inner = b.inner.lock();
    inner.stats.token_calls += 1;
    let grant_type = get("grant_type");
    if grant_type.is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "The grant type was not specified in the request");
    }
    if get("client_id") != c.client_id || get("client_secret") != c.client_secret {
        return error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
    }
    let granted = match grant_type.as_str() {
        "authorization_code" => inner.tokens.exchange_code(&get("code"), now, access_ttl, refresh_ttl),
        "refresh_token" => inner.tokens.refresh(&get("refresh_token"), now, access_ttl, refresh_ttl),
        _ => return error(StatusCode::BAD_REQUEST, "invalid_request", "The grant type is not supported"),
    };
    let grant = match granted {
        Ok(g) => g,
        Err(e) => {
            if e.reused {
                inner.stats.stale_refresh_tokens += 1;
            }
            return error(StatusCode::BAD_REQUEST, e.code, e.description);
        }
    };
    Json(json!({
        "access_token": grant.access_token, "expires": grant.expires.timestamp(), "expires_in": c.access_ttl.as_secs(),
        "scope": c.app_scopes.join(","), "domain": "oauth.bitrix.info", "server_endpoint": "https://oauth.bitrix.info/rest/",
        "status": "L", "client_endpoint": inner.client_endpoint, "member_id": c.member_id, "user_id": 1,
        "refresh_token": grant.refresh_token,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    state: String,
}

/// The consent page, already consented: back to the app's redirect URI with a code (or the
/// same fields as JSON when the app has no redirect URI configured).
pub async fn authorize(
    State(b): State<Bitrix24>,
    axum::extract::Query(q): axum::extract::Query<AuthorizeQuery>,
) -> Response {
    if q.client_id != b.config.client_id {
        return (StatusCode::BAD_REQUEST, axum::response::Html("<h1>Application not found</h1>")).into_response();
    }
    let code = b.authorize();
    let fields = [
        ("code", code.as_str()),
        ("state", q.state.as_str()),
        ("domain", b.config.domain.as_str()),
        ("member_id", b.config.member_id.as_str()),
        ("scope", &b.config.app_scopes.join(",")),
        ("server_domain", "oauth.bitrix.info"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    match &b.config.redirect_uri {
        Some(uri) => {
            let sep = if uri.contains('?') { '&' } else { '?' };
            let query = serde_urlencoded::to_string(fields).unwrap_or_default();
            (StatusCode::FOUND, [(header::LOCATION, format!("{uri}{sep}{query}"))]).into_response()
        }
        None => Json(fields.into_iter().collect::<BTreeMap<_, _>>()).into_response(),
    }
}
