//! RFC 7807 problem details: the body of every 4xx and 5xx the gateway's webhook routes answer
//! (`application/problem+json`), so a sender or an operator reads what went wrong and whether
//! retrying helps; and the one mapping of a ponte service's gRPC status to an HTTP answer, which
//! the OAuth callback's pages use too.

use std::time::Duration;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ponte_core::error::{quote, retry_after};
use serde_json::json;
use tonic::Code;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// A stable identifier of the kind of problem (`urn:ponte:problem:<slug>`).
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Sent as `Retry-After` (whole seconds, at least 1) on answers worth retrying.
    pub retry_after: Option<Duration>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, slug, title, detail: detail.into(), retry_after: None }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid-signature", "The request is not signed by its sender", detail)
    }

    pub fn unavailable(detail: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self {
            retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Try again shortly", detail)
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "No such resource", detail)
    }
}

/// A ponte service refused or failed a call made for the request: the caller's mistake is a
/// 4xx, an outage it may retry a 503 with `Retry-After`, anything else the service's fault (502).
impl From<tonic::Status> for Problem {
    fn from(s: tonic::Status) -> Self {
        let detail = s.message().to_owned();
        match s.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::NotFound | Code::OutOfRange => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-request", "The request cannot be completed", detail)
            }
            Code::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "Not authenticated", detail)
            }
            Code::PermissionDenied => Self::new(StatusCode::FORBIDDEN, "forbidden", "Access denied", detail),
            Code::AlreadyExists => Self::new(StatusCode::CONFLICT, "conflict", "Already done elsewhere", detail),
            Code::Unimplemented => {
                Self::new(StatusCode::NOT_IMPLEMENTED, "not-implemented", "Not available in this build", detail)
            }
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => {
                Self::unavailable(detail, retry_after(&s))
            }
            _ => Self::new(StatusCode::BAD_GATEWAY, "service-failed", "A ponte service failed", detail),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("urn:ponte:problem:{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// The router's fallback: an unknown path.
pub async fn no_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("the gateway has no route {}", quote(uri.path())))
}

/// A known path called with the wrong method.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{} does not accept {method}", quote(uri.path())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_caller_s_mistake_a_retry_or_a_failure() {
        let cases = [
            (tonic::Status::invalid_argument("bad"), StatusCode::BAD_REQUEST),
            (tonic::Status::failed_precondition("no"), StatusCode::BAD_REQUEST),
            (tonic::Status::permission_denied("denied"), StatusCode::FORBIDDEN),
            (tonic::Status::already_exists("taken"), StatusCode::CONFLICT),
            (tonic::Status::unimplemented("later"), StatusCode::NOT_IMPLEMENTED),
            (tonic::Status::internal("boom"), StatusCode::BAD_GATEWAY),
        ];
        for (status, http) in cases {
            let p = Problem::from(status.clone());
            assert_eq!((p.status, p.detail.as_str(), p.retry_after), (http, status.message(), None), "{status:?}");
        }
        let mut busy = tonic::Status::unavailable("auth-token is down");
        busy.metadata_mut().insert(ponte_core::error::RETRY_AFTER_MS, "3000".parse().unwrap());
        let p = Problem::from(busy);
        assert_eq!((p.status, p.retry_after), (StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(3))));
        let late = Problem::from(tonic::Status::deadline_exceeded("slow"));
        assert_eq!((late.status, late.retry_after), (StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(1))));
    }
}
