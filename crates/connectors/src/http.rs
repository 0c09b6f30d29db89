//! The HTTP client every connector shares: timeouts, a user agent, no redirects followed
//! silently, and one send path ([`send`]) that puts the trace context on every request and
//! counts every call by provider, operation and status (`ponte_outbound_requests_total`, with
//! its duration): the 429s and 5xx of each outside system, seen in one place.

use std::time::{Duration, Instant};

use crate::error::ConnectorError;

/// One `reqwest::Client` per process is enough: it pools connections per host.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("ponte/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A call of `method` on `base` + `path` authorized by the bearer `token`, with `body` as JSON;
/// with the operation [`send`] counts it as (the path, its ids left out).
pub fn bearer_request<B: serde::Serialize>(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&B>,
) -> (String, reqwest::RequestBuilder) {
    let operation = ponte_core::metrics::operation_of(method.as_str(), path);
    let req = http.request(method, format!("{base}{path}")).bearer_auth(token);
    (
        operation,
        match body {
            Some(body) => req.json(body),
            None => req,
        },
    )
}

/// Reads an answer: its status, the `Retry-After` it asked for (in seconds), and its body.
pub async fn read(
    system: &'static str,
    resp: reqwest::Response,
) -> Result<(reqwest::StatusCode, Option<Duration>, bytes::Bytes), ConnectorError> {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = resp.bytes().await.map_err(|e| ConnectorError::transport(system, e))?;
    Ok((status, retry_after, bytes))
}

/// Sends `req` to `provider` (`bling`, `bitrix24`, `cplug`, `envios360`) as `operation` (a
/// bounded name: a REST method, or [`ponte_core::metrics::operation_of`] a path), with the
/// current trace context; records its status and duration, and the status on the current span.
pub async fn send(
    provider: &'static str,
    operation: &str,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    let started = Instant::now();
    let sent = ponte_core::telemetry::traced(req).send().await;
    let status = sent.as_ref().ok().map(|r| r.status().as_u16());
    ponte_core::metrics::record_outbound(provider, operation, status, started.elapsed());
    if let Some(code) = status {
        tracing::Span::current().record("http.response.status_code", code);
    }
    sent
}
