//! RFC 7807 problem details: the body of every 4xx and 5xx the gateway's webhook routes answer
//! (`application/problem+json`), so a sender or an operator reads what went wrong and whether
//! retrying helps.

use std::time::Duration;

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

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
    Problem::not_found(format!("the gateway has no route {}", uri.path()))
}

/// A known path called with the wrong method.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{} does not accept {method}", uri.path()),
    )
}
