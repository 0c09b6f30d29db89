//! `GET /oauth/{provider}/callback`: where the merchant's browser lands after the provider's
//! consent page. The gateway hands code and state to auth-token (which exchanges the code
//! exactly once) and shows the merchant a page that says what happened; a denial, a bad or
//! reused state or a failed exchange is a clear page, never a 500.

use std::collections::HashMap;

use axum::{
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use ponte_core::{error::quote, grpc::TracedChannel};
use ponte_proto::v1::{CompleteAuthorizationRequest, Provider, auth_token_service_client::AuthTokenServiceClient};

use crate::problem::Problem;

fn page(status: StatusCode, title: &str, detail: &str) -> Response {
    page_with(status, title, detail, "")
}

/// A page with `more` (HTML) after the detail.
fn page_with(status: StatusCode, title: &str, detail: &str, more: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\"><title>ponte — {t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>{t}</h1><p>{d}</p>{more}</body></html>",
        t = esc(title),
        d = esc(detail)
    );
    (status, Html(body)).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Why a callback cannot be completed, as the page that tells the merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
}

/// What a callback's path and query ask auth-token to complete, or why they cannot: a pure
/// reading of what the browser sent (fuzzed in `fuzz/fuzz_targets/oauth_callback.rs`).
pub fn callback_request(
    provider: &str,
    query: &HashMap<String, String>,
) -> Result<CompleteAuthorizationRequest, Refusal> {
    let provider = match provider {
        "bling" => Provider::Bling,
        "bitrix24" => Provider::Bitrix24,
        other => {
            return Err(Refusal {
                status: StatusCode::NOT_FOUND,
                title: "Unknown provider",
                detail: format!("ponte has no OAuth connection for {}.", quote(other)),
            });
        }
    };
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    if get("state").is_empty() {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            title: "Missing state",
            detail: "The link is incomplete: start the connection again.".into(),
        });
    }
    Ok(CompleteAuthorizationRequest {
        provider: provider as i32,
        code: get("code"),
        state: get("state"),
        error: get("error"),
        bitrix24_application_token: String::new(),
        bitrix24_domain: get("domain"),
        bitrix24_member_id: get("member_id"),
    })
}

pub(crate) async fn callback(
    State(mut auth): State<AuthTokenServiceClient<TracedChannel>>,
    provider: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    // A path or query that does not decode (not UTF-8) is a link ponte never made.
    let provider = provider.map(|Path(p)| p).unwrap_or_default();
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let req = match callback_request(&provider, &q) {
        Ok(req) => req,
        Err(r) => return page(r.status, r.title, &r.detail),
    };
    match auth.complete_authorization(req).await {
        Ok(resp) => {
            let c = resp.into_inner().connection.unwrap_or_default();
            // An operator who connected from the console goes back to the tenant's Conexões.
            let back = format!(
                "<p><a id=\"console\" href=\"/console/t/{}/conexoes\">Conexões no console</a></p>",
                crate::console::enc(&c.tenant_id)
            );
            page_with(
                StatusCode::OK,
                "Connected",
                &format!(
                    "Tenant '{}' is connected (account {}). You can close this page.",
                    c.tenant_id, c.external_account_id
                ),
                &back,
            )
        }
        Err(s) => {
            tracing::info!(code = ?s.code(), "OAuth callback not completed");
            let problem = Problem::from(s);
            let title = match problem.status {
                StatusCode::FORBIDDEN => "Access denied",
                StatusCode::CONFLICT => "Already connected elsewhere",
                StatusCode::SERVICE_UNAVAILABLE => "Try again shortly",
                _ => "The connection was not completed",
            };
            page(problem.status, title, &problem.detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::StatusCode;

    use super::callback_request;

    #[test]
    fn a_callback_is_read_into_the_request_or_a_short_refusal() {
        let q: HashMap<String, String> =
            [("code", "c1"), ("state", "s1")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let req = callback_request("bling", &q).unwrap();
        assert_eq!((req.code.as_str(), req.state.as_str()), ("c1", "s1"));

        let unknown = callback_request(&"x".repeat(20_000), &q).unwrap_err();
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert!(unknown.detail.len() < 100, "{}", unknown.detail);

        let no_state = callback_request("bitrix24", &HashMap::new()).unwrap_err();
        assert_eq!(no_state.status, StatusCode::BAD_REQUEST);
    }
}
