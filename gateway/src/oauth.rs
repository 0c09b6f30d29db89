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
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let body = format!(
        "<!doctype html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\"><title>ponte — {t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>{t}</h1><p>{d}</p></body></html>",
        t = esc(title),
        d = esc(detail)
    );
    (status, Html(body)).into_response()
}

pub(crate) async fn callback(
    State(mut auth): State<AuthTokenServiceClient<TracedChannel>>,
    provider: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    // A path or query that does not decode (not UTF-8) is a link ponte never made.
    let provider = provider.map(|Path(p)| p).unwrap_or_default();
    let provider = match provider.as_str() {
        "bling" => Provider::Bling,
        "bitrix24" => Provider::Bitrix24,
        other => {
            return page(
                StatusCode::NOT_FOUND,
                "Unknown provider",
                &format!("ponte has no OAuth connection for {}.", quote(other)),
            );
        }
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("state").is_empty() {
        return page(StatusCode::BAD_REQUEST, "Missing state", "The link is incomplete: start the connection again.");
    }
    let req = CompleteAuthorizationRequest {
        provider: provider as i32,
        code: get("code"),
        state: get("state"),
        error: get("error"),
        bitrix24_application_token: String::new(),
        bitrix24_domain: get("domain"),
        bitrix24_member_id: get("member_id"),
    };
    match auth.complete_authorization(req).await {
        Ok(resp) => {
            let c = resp.into_inner().connection.unwrap_or_default();
            page(
                StatusCode::OK,
                "Connected",
                &format!(
                    "Tenant '{}' is connected (account {}). You can close this page.",
                    c.tenant_id, c.external_account_id
                ),
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
