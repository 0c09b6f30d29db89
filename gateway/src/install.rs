//! `POST /install/bitrix24`: the installation path of ponte's Bitrix24 app (a Market app's
//! "Installation event handler URL", a local app's "Initial installation path"). One URL serves
//! every portal, as an app has one installation path: the portal in the body says whose it is.
//! Right after the app is installed, Bitrix24 posts the installation's `auth[...]` fields there,
//! form-encoded, as the `ONAPPINSTALL` event; auth-token checks that the installation is
//! genuine and keeps its application token, which the portal's events on
//! `/webhooks/bitrix24/{tenant}` are then checked against.
//!
//! 200 once the token is stored; 401 (a problem body) when the installation cannot be
//! verified, and nothing is stored; 400 for a body that is not an installation; 503 when the
//! check could not run (Bitrix24 does not resend it: install the app again); otherwise what
//! auth-token's answer maps to.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use ponte_connectors::bitrix24::events::{APP_INSTALL, EventForm};
use ponte_core::{TenantId, error::quote, grpc::TracedChannel};
use ponte_proto::v1::{InstallBitrix24AppRequest, Provider, auth_token_service_client::AuthTokenServiceClient};
use tonic::Code;
use tracing::Instrument;

use crate::{
    ingest::{Ingest, content_type_is, read_body},
    problem::Problem,
    sources::{Bitrix24, WebhookSource},
};

/// How long the check may take: auth-token asks the portal, retrying briefly.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid-installation", "The body is not a Bitrix24 app installation", detail)
}

pub(crate) async fn bitrix24(
    State(auth): State<AuthTokenServiceClient<TracedChannel>>,
    State(ingest): State<Arc<Ingest>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let span = tracing::info_span!(
        "bitrix24.install",
        otel.name = "POST /install/bitrix24",
        otel.kind = "server",
        http.response.status_code = tracing::field::Empty,
    );
    let resp = match install(auth, &ingest, &headers, body).instrument(span.clone()).await {
        Ok(resp) => resp,
        Err(problem) => {
            tracing::info!(parent: &span, status = problem.status.as_u16(), detail = %problem.detail, "Bitrix24 installation refused");
            problem.into_response()
        }
    };
    span.record("http.response.status_code", resp.status().as_u16());
    resp
}

async fn install(
    mut auth: AuthTokenServiceClient<TracedChannel>,
    ingest: &Ingest,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    if !content_type_is(headers, Bitrix24::CONTENT_TYPE) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
            format!("Bitrix24 installations are sent as {}", Bitrix24::CONTENT_TYPE),
        ));
    }
    let body = read_body(headers, body).await?;
    let form = EventForm::parse(&body);
    if let Some(event) = form.event()
        && !event.eq_ignore_ascii_case(APP_INSTALL)
    {
        return Err(bad_request(format!(
            "event {} is not an installation ({APP_INSTALL}): a portal's events go to /webhooks/bitrix24/<tenant>",
            quote(event)
        )));
    }
    let field = |name: &str| {
        form.auth(name)
            .map(str::to_owned)
            .ok_or_else(|| bad_request(format!("{} is missing", EventForm::auth_key(name))))
    };
    let mut call = tonic::Request::new(InstallBitrix24AppRequest {
        domain: field("domain")?,
        member_id: field("member_id")?,
        client_endpoint: field("client_endpoint")?,
        access_token: field("access_token")?,
        application_token: field("application_token")?,
    });
    call.set_timeout(CHECK_TIMEOUT);
    match auth.install_bitrix24_app(call).await {
        Ok(resp) => {
            let tenant = resp.into_inner().connection.unwrap_or_default().tenant_id;
            // Events signed with the new token are checked against it from now on here; other
            // replicas fetch it again when a request does not verify with the one they hold.
            if let Ok(tenant) = TenantId::parse(&tenant) {
                ingest.lookups.forget_webhook_secret(&tenant, Provider::Bitrix24).await;
            }
            let body = serde_json::json!({"status": "installed"}).to_string();
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        // What auth-token's refusals mean for an installation; anything else as for every route.
        Err(s) => Err(match s.code() {
            Code::PermissionDenied => Problem::new(
                StatusCode::UNAUTHORIZED,
                "installation-not-verified",
                "The installation could not be verified",
                s.message(),
            ),
            Code::InvalidArgument => bad_request(s.message()),
            _ => {
                let mut problem = Problem::from(s);
                if problem.status.is_server_error() {
                    problem.detail = format!("the installation could not be checked: {}", problem.detail);
                }
                problem
            }
        }),
    }
}
