//! HTTP glue for Bling v3: OAuth at the token endpoint (HTTP Basic client auth, form body),
//! API calls with a bearer token through the account's shared rate budget, and the error
//! envelope turned into a classified [`ConnectorError`].

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use ponte_core::{
    config::{ConfigError, Env},
    ratelimit::{self, Priority, Quota, RateLimitError, RateLimiter},
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::{
    SYSTEM,
    types::{Data, EmpresaDadosBasicos, ErrorEnvelope, FieldError, FlatOAuthError, TokenResponse},
};
use crate::error::ConnectorError;
use tracing::Instrument;

/// Bling's API base: the default of `PONTE_BLING_API_URL`.
pub const API_URL: &str = "https://api.bling.com.br/Api/v3";

/// The Bling app ponte runs as, and where Bling is.
#[derive(Clone)]
pub struct BlingConfig {
    /// `PONTE_BLING_API_URL`, default [`API_URL`].
    pub api_url: String,
    /// `PONTE_BLING_AUTHORIZE_URL`, default `https://www.bling.com.br/Api/v3/oauth/authorize`.
    pub authorize_url: String,
    /// `PONTE_BLING_TOKEN_URL`, default `https://www.bling.com.br/Api/v3/oauth/token`.
    pub token_url: String,
    /// `PONTE_BLING_CLIENT_ID`.
    pub client_id: String,
    /// `PONTE_BLING_CLIENT_SECRET`: also the key of webhook signatures.
    pub client_secret: String,
}

impl fmt::Debug for BlingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlingConfig")
            .field("api_url", &self.api_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish()
    }
}

impl BlingConfig {
    /// `None` when no Bling app is configured (`PONTE_BLING_CLIENT_ID` unset).
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(client_id) = env.get("PONTE_BLING_CLIENT_ID") else { return Ok(None) };
        Ok(Some(Self {
            client_id: client_id.to_owned(),
            client_secret: env.required("PONTE_BLING_CLIENT_SECRET", "the Bling app's client secret")?,
            api_url: env.http_url_or("PONTE_BLING_API_URL", API_URL)?,
            authorize_url: env
                .http_url_or("PONTE_BLING_AUTHORIZE_URL", "https://www.bling.com.br/Api/v3/oauth/authorize")?,
            token_url: env.http_url_or("PONTE_BLING_TOKEN_URL", "https://www.bling.com.br/Api/v3/oauth/token")?,
        }))
    }

    /// Every endpoint under one base URL (a sandbox, or Bling's docs test server).
    pub fn at(base: &str, client_id: &str, client_secret: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            api_url: base.to_owned(),
            authorize_url: format!("{base}/oauth/authorize"),
            token_url: format!("{base}/oauth/token"),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
        }
    }
}

/// Tokens from one exchange or refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    /// `None` when Bling sent none (keep the current one).
    pub refresh_token: Option<String>,
    pub expires_in: Duration,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

/// The OAuth side of Bling.
#[derive(Clone)]
pub struct BlingOAuth {
    http: reqwest::Client,
    config: BlingConfig,
}

impl BlingOAuth {
    pub fn new(http: reqwest::Client, config: BlingConfig) -> Self {
        Self { http, config }
    }

    pub fn config(&self) -> &BlingConfig {
        &self.config
    }

    /// Where to send the merchant (Bling uses the redirect URI registered with the app).
    pub fn authorize_url(&self, state: &str) -> String {
        let mut url = url::Url::parse(&self.config.authorize_url)
            .unwrap_or_else(|_| url::Url::parse("https://www.bling.com.br/Api/v3/oauth/authorize").expect("static"));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("state", state);
        url.to_string()
    }

    /// Exchanges an authorization code. Call it once per code and never retry it: Bling
    /// revokes the merchant's access when a code is used twice.
    pub async fn exchange_code(&self, code: &str) -> Result<TokenSet, ConnectorError> {
        self.token(&[("grant_type", "authorization_code"), ("code", code)]).await
    }

    /// Trades a refresh token for new tokens; the old refresh token dies.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, ConnectorError> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// Revokes a token at Bling (`POST /oauth/revoke`, next to the token endpoint): a refresh
    /// token ends the merchant's grant. An unknown or already revoked token is not an error.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<(), ConnectorError> {
        let basic = STANDARD.encode(format!("{}:{}", self.config.client_id, self.config.client_secret));
        let url = match self.config.token_url.strip_suffix("/token") {
            Some(base) => format!("{base}/revoke"),
            None => format!("{}/revoke", self.config.token_url.trim_end_matches('/')),
        };
        let req = self
            .http
            .post(url)
            .header("Authorization", format!("Basic {basic}"))
            .form(&[("token", token), ("token_type_hint", hint)]);
        let resp = crate::http::send("bling", "POST /oauth/revoke", req)
            .await
            .map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        if status.is_success() {
            return Ok(());
        }
        match error_from(status, &body) {
            // Bling's envelope for a token it no longer knows: nothing left to revoke.
            ConnectorError::InvalidGrant { .. } => Ok(()),
            other => Err(other),
        }
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenSet, ConnectorError> {
        let basic = STANDARD.encode(format!("{}:{}", self.config.client_id, self.config.client_secret));
        let req = self
            .http
            .post(&self.config.token_url)
            .header("Authorization", format!("Basic {basic}"))
            .header("enable-jwt", "1")
            .form(form);
        let resp = crate::http::send("bling", "POST /oauth/token", req)
            .await
            .map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        if !status.is_success() {
            return Err(error_from(status, &body));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("token answer: {e}") })?;
        if t.token_type.as_deref().is_some_and(|tt| !tt.eq_ignore_ascii_case("bearer")) {
            return Err(ConnectorError::Protocol { system: SYSTEM, message: "token type is not bearer".into() });
        }
        Ok(TokenSet {
            access_token: t.access_token,
            refresh_token: t.refresh_token.filter(|r| !r.is_empty()),
            expires_in: Duration::from_secs(t.expires_in.unwrap_or(21_600)),
        })
    }
}

/// On whose behalf a call is made: the account whose budget it spends, how urgent it is, and
/// the bearer token.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The Bling `companyId` (or the tenant, before the account is known).
    pub account: &'a str,
    pub priority: Priority,
    pub token: &'a str,
}

/// The API side of Bling for one account: every call takes a slot from the account's shared
/// budget first.
#[derive(Clone)]
pub struct BlingApi {
    http: reqwest::Client,
    base: String,
    /// The API's host, for spans (`server.address`).
    host: String,
    limiter: Arc<dyn RateLimiter>,
    quota: Quota,
    max_wait: Duration,
}

impl BlingApi {
    pub fn new(http: reqwest::Client, base: &str, limiter: Arc<dyn RateLimiter>, quota: Quota) -> Self {
        let host = url::Url::parse(base).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            host,
            limiter,
            quota,
            max_wait: Duration::from_secs(60),
        }
    }

    /// Sends one request, after taking a slot from the caller's account budget.
    pub async fn send(
        &self,
        caller: Caller<'_>,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<bytes::Bytes, ConnectorError> {
        // A client span per call: its time includes the wait for the account's budget
        // (`ponte.ratelimit.wait_ms`), which is where a slow sync usually spends it.
        let span = tracing::info_span!(
            "bling.request",
            otel.name = %format!("Bling {method}"),
            otel.kind = "client",
            http.request.method = %method,
            server.address = %self.host,
            url.path = %path,
            http.response.status_code = tracing::field::Empty,
            ponte.ratelimit.wait_ms = tracing::field::Empty,
        );
        async move {
            let waited = std::time::Instant::now();
            ratelimit::acquire(
                &*self.limiter,
                &format!("bling:{}", caller.account),
                self.quota,
                caller.priority,
                self.max_wait,
            )
            .await
            .map_err(|e| match e {
                RateLimitError::DailyExhausted { renews_in, .. } => ConnectorError::BudgetExhausted {
                    system: SYSTEM,
                    message: "the account's 120,000 daily requests are spent".into(),
                    renews_in: Some(renews_in),
                },
                other => ConnectorError::RateLimited { system: SYSTEM, message: other.to_string(), retry_after: None },
            })?;
            tracing::Span::current().record("ponte.ratelimit.wait_ms", waited.elapsed().as_millis() as u64);
            let operation = ponte_core::metrics::operation_of(method.as_str(), path);
            let mut req = self
                .http
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(caller.token)
                .header("enable-jwt", "1")
                .query(query);
            if let Some(body) = body {
                req = req.json(body);
            }
            let resp =
                crate::http::send("bling", &operation, req).await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
            if status.is_success() { Ok(bytes) } else { Err(error_from(status, &bytes)) }
        }
        .instrument(span)
        .await
    }

    /// GET returning `{"data": T}`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        caller: Caller<'_>,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ConnectorError> {
        let bytes = self.send(caller, Method::GET, path, query, None).await?;
        let data: Data<T> = serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("GET {path}: {e}") })?;
        Ok(data.data)
    }

    /// The account behind the caller's token, spending the caller's budget and priority.
    pub async fn dados_basicos_for(&self, caller: Caller<'_>) -> Result<EmpresaDadosBasicos, ConnectorError> {
        self.get(caller, "/empresas/me/dados-basicos", &[]).await
    }

    /// The account behind a token; its `id` is the `companyId` of its webhooks.
    pub async fn dados_basicos(&self, account: &str, token: &str) -> Result<EmpresaDadosBasicos, ConnectorError> {
        self.get(Caller { account, priority: Priority::Live, token }, "/empresas/me/dados-basicos", &[]).await
    }
}

fn describe_fields(fields: &[FieldError], prefix: &str, out: &mut Vec<String>) {
    for f in fields {
        let element = f.element.clone().unwrap_or_default();
        let path = if prefix.is_empty() { element } else { format!("{prefix}.{element}") };
        out.push(format!("{path}: {} (code {})", f.msg, f.code));
        describe_fields(&f.collection, &path, out);
    }
}

/// Classifies a non-2xx answer from its status and body.
pub fn error_from(status: StatusCode, body: &[u8]) -> ConnectorError {
    let code = status.as_u16();
    if let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(body) {
        let e = env.error;
        let message =
            if e.description.is_empty() { e.message.clone() } else { format!("{}: {}", e.message, e.description) };
        let kind = e.kind.as_str();
        if code == 429 || kind == "TOO_MANY_REQUESTS" {
            return if e.period.as_deref() == Some("day") {
                ConnectorError::BudgetExhausted { system: SYSTEM, message, renews_in: None }
            } else {
                ConnectorError::RateLimited { system: SYSTEM, message, retry_after: None }
            };
        }
        match kind {
            "invalid_token" => return ConnectorError::InvalidToken { system: SYSTEM, message },
            "invalid_grant" | "UNAUTHORIZED_ERROR" => return ConnectorError::InvalidGrant { system: SYSTEM, message },
            // A reused authorization code revokes the grant.
            "VALIDATION_ERROR" if e.message.contains("authorization code") => {
                return ConnectorError::InvalidGrant { system: SYSTEM, message };
            }
            _ => {}
        }
        if code == 404 {
            return ConnectorError::NotFound { system: SYSTEM, message };
        }
        if status.is_server_error() {
            return ConnectorError::Unavailable { system: SYSTEM, message: format!("{code}: {message}") };
        }
        let mut fields = Vec::new();
        describe_fields(&e.fields, "", &mut fields);
        return ConnectorError::Rejected { system: SYSTEM, status: code, message, fields };
    }
    if let Ok(flat) = serde_json::from_slice::<FlatOAuthError>(body) {
        let message = format!("{}: {}", flat.error, flat.error_description);
        return match flat.error.as_str() {
            "invalid_grant" => ConnectorError::InvalidGrant { system: SYSTEM, message },
            "invalid_token" => ConnectorError::InvalidToken { system: SYSTEM, message },
            _ => ConnectorError::Rejected { system: SYSTEM, status: code, message, fields: vec![] },
        };
    }
    match code {
        429 => ConnectorError::RateLimited { system: SYSTEM, message: "429 without a body".into(), retry_after: None },
        401 => ConnectorError::InvalidToken { system: SYSTEM, message: "401 without a body".into() },
        404 => ConnectorError::NotFound { system: SYSTEM, message: "404".into() },
        500..=599 => ConnectorError::Unavailable { system: SYSTEM, message: format!("{code} without an error body") },
        _ => ConnectorError::Protocol { system: SYSTEM, message: format!("{code} with an unreadable body") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_error_bodies_are_classified() {
        let per_second = r#"{"error":{"type":"TOO_MANY_REQUESTS","message":"Limite de requisições atingido.","description":"O limite de requisições por segundo foi atingido, tente novamente mais tarde.","limit":3,"period":"second"}}"#.as_bytes();
        assert!(matches!(
            error_from(StatusCode::TOO_MANY_REQUESTS, per_second),
            ConnectorError::RateLimited { retry_after: None, .. }
        ));
        let per_day = r#"{"error":{"type":"TOO_MANY_REQUESTS","message":"Limite de requisições atingido.","description":"O limite de requisições por dia foi atingido, tente novamente amanhã.","limit":120000,"period":"day"}}"#.as_bytes();
        assert!(matches!(error_from(StatusCode::TOO_MANY_REQUESTS, per_day), ConnectorError::BudgetExhausted { .. }));
        let expired = br#"{"error":{"type":"invalid_token","message":"invalid_token","description":"The access token provided has expired"}}"#;
        assert!(matches!(error_from(StatusCode::UNAUTHORIZED, expired), ConnectorError::InvalidToken { .. }));
        let grant = br#"{"error":{"type":"invalid_grant","message":"invalid_grant","description":"The authorization code has expired"}}"#;
        assert!(matches!(error_from(StatusCode::BAD_REQUEST, grant), ConnectorError::InvalidGrant { .. }));
        let reused = br#"{"error":{"type":"VALIDATION_ERROR","message":"Invalid authorization code","description":"This authorization code has already been used"}}"#;
        assert!(matches!(error_from(StatusCode::BAD_REQUEST, reused), ConnectorError::InvalidGrant { .. }));
        let flat = br#"{"error":"invalid_grant","error_description":"expired"}"#;
        assert!(matches!(error_from(StatusCode::BAD_REQUEST, flat), ConnectorError::InvalidGrant { .. }));
        let server = r#"{"error":{"type":"SERVER_ERROR","message":"Não foi possível executar a operação","description":"Um erro interno ocorreu."}}"#.as_bytes();
        assert!(matches!(error_from(StatusCode::INTERNAL_SERVER_ERROR, server), ConnectorError::Unavailable { .. }));
        assert!(matches!(error_from(StatusCode::BAD_GATEWAY, b"<html>"), ConnectorError::Unavailable { .. }));
    }

    #[test]
    fn validation_errors_keep_their_fields_with_paths() {
        let body = r#"{"error":{"type":"VALIDATION_ERROR","message":"Não foi possível salvar a venda","description":"A venda não pode ser salva, pois ocorreram problemas em sua validação.","fields":[{"code":49,"msg":"Uma ou mais parcelas da venda possuem erros de validação","element":"parcelas","namespace":"VENDAS","collection":[{"index":1,"code":12,"msg":"Id da forma de pagamento inválido.","element":"formaPagamento","namespace":"VENDAS"}]}]}}"#;
        let ConnectorError::Rejected { status, fields, .. } = error_from(StatusCode::BAD_REQUEST, body.as_bytes())
        else {
            panic!("not a rejection");
        };
        assert_eq!(status, 400);
        assert_eq!(
            fields,
            [
                "parcelas: Uma ou mais parcelas da venda possuem erros de validação (code 49)",
                "parcelas.formaPagamento: Id da forma de pagamento inválido. (code 12)"
            ]
        );
    }

    #[test]
    fn the_authorize_url_carries_client_and_state() {
        let oauth = BlingOAuth::new(reqwest::Client::new(), BlingConfig::at("http://127.0.0.1:9/Api/v3", "cid", "sec"));
        let url = url::Url::parse(&oauth.authorize_url("st&ate")).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["state"], "st&ate");
        assert!(!format!("{:?}", oauth.config()).contains("sec\""));
    }
}
