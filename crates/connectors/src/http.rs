//! The HTTP client every connector shares: timeouts, a user agent, no redirects followed
//! silently, and the trace context on every request.

use std::time::Duration;

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
