//! HTTP glue for Bitrix24: how a portal is called (incoming webhook or OAuth app), the
//! [`Portal`] handle every call goes through, and error bodies classified. Every call takes a
//! slot from the portal's shared budget first (2 requests/s, burst 50, across every replica: a
//! batch counts as one).

use std::{sync::Arc, time::Duration};

use ponte_core::{
    access::AccessToken,
    ratelimit::{self, Priority, Quota, RateLimitError, RateLimiter},
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::Instrument;

use super::{
    SYSTEM,
    types::{Envelope, ErrorBody},
};
use crate::error::ConnectorError;

pub use super::types::field_values;

/// How a portal is called.
#[derive(Clone)]
pub enum Bitrix24Auth {
    /// An incoming webhook: `https://{portal}/rest/{user}/{code}/`; the code is the secret.
    Webhook { base: String },
    /// An OAuth app: the token goes in the body as `auth`.
    OAuth { client_endpoint: String, access_token: String },
}

impl std::fmt::Debug for Bitrix24Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Webhook { .. } => f.write_str("Bitrix24Auth::Webhook(***)"),
            Self::OAuth { client_endpoint, .. } => write!(f, "Bitrix24Auth::OAuth({client_endpoint}, ***)"),
        }
    }
}

impl Bitrix24Auth {
    /// How an access token from auth-token calls its portal: an incoming webhook has no
    /// token, its URL is the secret.
    pub fn from_token(token: &AccessToken) -> Self {
        if token.secret().is_empty() {
            Self::Webhook { base: token.base_url().to_owned() }
        } else {
            Self::OAuth { client_endpoint: token.base_url().to_owned(), access_token: token.secret().to_owned() }
        }
    }

    fn url(&self, method: &str) -> String {
        let base = match self {
            Self::Webhook { base } => base,
            Self::OAuth { client_endpoint, .. } => client_endpoint,
        };
        format!("{}/{method}.json", base.trim_end_matches('/'))
    }

    pub(super) fn is_webhook(&self) -> bool {
        matches!(self, Self::Webhook { .. })
    }
}

/// The HTTP client and the rate budget every portal is called through.
#[derive(Clone)]
pub struct Bitrix24Client {
    http: reqwest::Client,
    limiter: Arc<dyn RateLimiter>,
    quota: Quota,
    max_wait: Duration,
}

impl Bitrix24Client {
    pub fn new(http: reqwest::Client, limiter: Arc<dyn RateLimiter>, quota: Quota) -> Self {
        Self { http, limiter, quota, max_wait: Duration::from_secs(60) }
    }

    /// The portal `domain` (the key of its budget), called with `auth` at `priority`.
    pub fn portal(&self, auth: Bitrix24Auth, domain: &str, priority: Priority) -> Portal {
        Portal { client: self.clone(), auth, domain: domain.to_owned(), budget: format!("bitrix24:{domain}"), priority }
    }

    /// The portal an access token from auth-token opens (its account is the portal's domain).
    pub fn portal_for(&self, token: &AccessToken, priority: Priority) -> Portal {
        self.portal(Bitrix24Auth::from_token(token), &token.account, priority)
    }
}

/// One portal as ponte calls it: its address and credentials, its domain (the key of its
/// shared budget) and how urgent the caller's work is. Every Bitrix24 method ponte uses is a
/// typed method of this handle.
#[derive(Clone)]
pub struct Portal {
    client: Bitrix24Client,
    auth: Bitrix24Auth,
    domain: String,
    budget: String,
    priority: Priority,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").field("domain", &self.domain).field("auth", &self.auth).finish_non_exhaustive()
    }
}

impl Portal {
    /// The portal's domain (`loja.bitrix24.com.br`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub(super) fn is_webhook(&self) -> bool {
        self.auth.is_webhook()
    }

    /// Calls `method` with JSON `params`.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &Value,
    ) -> Result<Envelope<T>, ConnectorError> {
        // A client span per call (the URL is never recorded: a webhook URL holds its secret).
        let span = tracing::info_span!(
            "bitrix24.request",
            otel.name = %format!("Bitrix24 {method}"),
            otel.kind = "client",
            rpc.system = "bitrix24",
            rpc.method = %method,
            http.request.method = "POST",
            server.address = %self.domain,
            http.response.status_code = tracing::field::Empty,
            ponte.ratelimit.wait_ms = tracing::field::Empty,
        );
        self.call_in_span(method, params).instrument(span).await
    }

    async fn call_in_span<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &Value,
    ) -> Result<Envelope<T>, ConnectorError> {
        let c = &self.client;
        let waited = std::time::Instant::now();
        ratelimit::acquire(&*c.limiter, &self.budget, c.quota, self.priority, c.max_wait).await.map_err(
            |e| match e {
                RateLimitError::Unavailable(m) => ConnectorError::Unavailable { system: SYSTEM, message: m },
                other => ConnectorError::RateLimited { system: SYSTEM, message: other.to_string(), retry_after: None },
            },
        )?;
        tracing::Span::current().record("ponte.ratelimit.wait_ms", waited.elapsed().as_millis() as u64);
        let mut body = params.clone();
        if let (Bitrix24Auth::OAuth { access_token, .. }, Value::Object(m)) = (&self.auth, &mut body) {
            m.insert("auth".into(), Value::String(access_token.clone()));
        }
        let req = c.http.post(self.auth.url(method)).header("Accept", "application/json").json(&body);
        let resp =
            crate::http::send("bitrix24", method, req).await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        if !status.is_success() {
            return Err(error_from(status, &bytes, self.is_webhook()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("{method}: {e}") })
    }

    /// Every row of a list method, 50 at a time, following `next`.
    pub(super) async fn list_all<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &Value,
    ) -> Result<Vec<T>, ConnectorError> {
        let mut rows = Vec::new();
        let mut start = 0_u64;
        loop {
            let mut p = params.clone();
            if let Value::Object(m) = &mut p {
                m.insert("start".into(), json!(start));
            }
            let page: Envelope<Vec<T>> = self.call(method, &p).await?;
            rows.extend(page.result);
            match page.next {
                Some(next) if next > start => start = next,
                _ => return Ok(rows),
            }
        }
    }
}

/// Classifies a non-2xx answer by its error code (compared case-insensitively: Bitrix24 mixes
/// cases, and two different 503s mean different things).
pub fn error_from(status: StatusCode, body: &[u8], webhook: bool) -> ConnectorError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    classify(Some(status), parsed.as_ref(), webhook)
}

/// Classifies an error body: a whole answer's (with its HTTP status) or one batch command's.
pub(super) fn classify(status: Option<StatusCode>, body: Option<&ErrorBody>, webhook: bool) -> ConnectorError {
    let code = body.map(ErrorBody::code).unwrap_or_default();
    let desc = body.map(|e| e.error_description.trim().to_owned()).unwrap_or_default();
    let message = if code.is_empty() { desc.clone() } else { format!("{code}: {desc}") };
    // A command's error has no status of its own: Bitrix24 would answer it alone with a 400.
    let status = status.unwrap_or(StatusCode::BAD_REQUEST);
    match code.to_ascii_uppercase().as_str() {
        // Refused before it ran: always safe to retry.
        "QUERY_LIMIT_EXCEEDED" => ConnectorError::RateLimited { system: SYSTEM, message, retry_after: None },
        "OPERATION_TIME_LIMIT" => {
            ConnectorError::RateLimited { system: SYSTEM, message, retry_after: Some(Duration::from_secs(60)) }
        }
        "OVERLOAD_LIMIT" | "INTERNAL_SERVER_ERROR" | "ERROR_UNEXPECTED_ANSWER" => {
            ConnectorError::Unavailable { system: SYSTEM, message }
        }
        "EXPIRED_TOKEN" | "INVALID_TOKEN" => ConnectorError::InvalidToken { system: SYSTEM, message },
        // A wrong webhook code cannot be refreshed: the merchant must give a new URL.
        "NO_AUTH_FOUND" if webhook => ConnectorError::InvalidGrant { system: SYSTEM, message },
        "NO_AUTH_FOUND" => ConnectorError::InvalidToken { system: SYSTEM, message },
        "INVALID_GRANT" | "PORTAL_DELETED" | "PAYMENT_REQUIRED" => {
            ConnectorError::InvalidGrant { system: SYSTEM, message }
        }
        "" if desc.to_ascii_lowercase().contains("not found") => ConnectorError::NotFound { system: SYSTEM, message },
        _ if status.is_server_error() => {
            ConnectorError::Unavailable { system: SYSTEM, message: format!("{status}: {message}") }
        }
        _ if status == StatusCode::NOT_FOUND => ConnectorError::NotFound { system: SYSTEM, message },
        _ => ConnectorError::Rejected { system: SYSTEM, status: status.as_u16(), message, fields: vec![] },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_classified_case_insensitively() {
        let e = |status: u16, body: &str, webhook: bool| {
            error_from(StatusCode::from_u16(status).unwrap(), body.as_bytes(), webhook)
        };
        assert!(matches!(
            e(503, r#"{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}"#, true),
            ConnectorError::RateLimited { .. }
        ));
        assert!(matches!(
            e(503, r#"{"error":"OVERLOAD_LIMIT","error_description":""}"#, true),
            ConnectorError::Unavailable { .. }
        ));
        assert!(matches!(
            e(401, r#"{"error":"expired_token","error_description":"The access token provided has expired"}"#, false),
            ConnectorError::InvalidToken { .. }
        ));
        assert!(matches!(
            e(401, r#"{"error":"NO_AUTH_FOUND","error_description":""}"#, true),
            ConnectorError::InvalidGrant { .. }
        ));
        assert!(matches!(
            e(400, r#"{"error":"","error_description":"Not found"}"#, true),
            ConnectorError::NotFound { .. }
        ));
        assert!(matches!(
            e(400, r#"{"error":200040300010,"error_description":"Access Denied"}"#, true),
            ConnectorError::Rejected { status: 400, .. }
        ));
        assert!(matches!(
            e(429, r#"{"error":"OPERATION_TIME_LIMIT","error_description":""}"#, true),
            ConnectorError::RateLimited { retry_after: Some(_), .. }
        ));
    }

    #[test]
    fn an_access_token_without_a_secret_is_an_incoming_webhook() {
        let token = |secret: &str| AccessToken {
            token: secret.to_owned().into(),
            base_url: "https://loja.bitrix24.com.br/rest/1/code/".to_owned().into(),
            account: "loja.bitrix24.com.br".into(),
            version: 1,
            expire_time: None,
        };
        assert!(Bitrix24Auth::from_token(&token("")).is_webhook());
        let oauth = Bitrix24Auth::from_token(&token("tok"));
        assert!(!oauth.is_webhook());
        assert_eq!(oauth.url("crm.product.get"), "https://loja.bitrix24.com.br/rest/1/code/crm.product.get.json");
        assert!(!format!("{oauth:?}").contains("tok"), "the token never shows");
    }
}
