//! Bitrix24 OAuth for apps: the portal's consent page, then a GET to the central token server
//! (`https://oauth.bitrix.info/oauth/token/`) for both the code exchange and refreshes. Access
//! tokens live an hour; refresh tokens rotate (a used one is refused afterwards).

use std::{fmt, time::Duration};

use ponte_core::config::{ConfigError, Env};
use serde::Deserialize;

use super::SYSTEM;
use crate::error::ConnectorError;

/// The Bitrix24 app ponte runs as.
#[derive(Clone)]
pub struct Bitrix24AppConfig {
    /// `PONTE_BITRIX24_CLIENT_ID`.
    pub client_id: String,
    /// `PONTE_BITRIX24_CLIENT_SECRET`.
    pub client_secret: String,
    /// `PONTE_BITRIX24_TOKEN_URL`, default `https://oauth.bitrix.info/oauth/token/`.
    pub token_url: String,
}

impl fmt::Debug for Bitrix24AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bitrix24AppConfig")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .finish()
    }
}

impl Bitrix24AppConfig {
    /// `None` when no Bitrix24 app is configured.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(client_id) = env.get("PONTE_BITRIX24_CLIENT_ID") else { return Ok(None) };
        Ok(Some(Self {
            client_id: client_id.to_owned(),
            client_secret: env.required("PONTE_BITRIX24_CLIENT_SECRET", "the Bitrix24 app's client secret")?,
            // The token server's path ends with a slash.
            token_url: format!(
                "{}/",
                env.http_url_or("PONTE_BITRIX24_TOKEN_URL", "https://oauth.bitrix.info/oauth/token")?
            ),
        }))
    }
}

/// The token server's answer.
#[derive(Clone, Deserialize)]
pub struct Bitrix24Tokens {
    pub access_token: String,
    pub refresh_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The portal's REST base, e.g. `https://loja.bitrix24.com.br/rest/`.
    #[serde(default)]
    pub client_endpoint: String,
    #[serde(default)]
    pub member_id: String,
    #[serde(default)]
    pub domain: String,
}

impl fmt::Debug for Bitrix24Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bitrix24Tokens")
            .field("client_endpoint", &self.client_endpoint)
            .field("member_id", &self.member_id)
            .finish_non_exhaustive()
    }
}

impl Bitrix24Tokens {
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.expires_in.unwrap_or(3600))
    }
}

#[derive(Deserialize)]
struct FlatError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Clone)]
pub struct Bitrix24OAuth {
    http: reqwest::Client,
    config: Bitrix24AppConfig,
}

impl Bitrix24OAuth {
    pub fn new(http: reqwest::Client, config: Bitrix24AppConfig) -> Self {
        Self { http, config }
    }

    pub fn config(&self) -> &Bitrix24AppConfig {
        &self.config
    }

    /// The portal's consent page (`redirect_uri` comes from the app's settings).
    pub fn authorize_url(&self, portal: &str, state: &str) -> String {
        let scheme = if portal.starts_with("127.0.0.1") || portal.starts_with("localhost") { "http" } else { "https" };
        let mut url = url::Url::parse(&format!("{scheme}://{portal}/oauth/authorize/"))
            .unwrap_or_else(|_| url::Url::parse("https://invalid.bitrix24.invalid/oauth/authorize/").expect("static"));
        url.query_pairs_mut().append_pair("client_id", &self.config.client_id).append_pair("state", state);
        url.to_string()
    }

    /// Exchanges a code (it lives 30 s). Not retried: a code is single-use.
    pub async fn exchange_code(&self, code: &str) -> Result<Bitrix24Tokens, ConnectorError> {
        self.token(&[("grant_type", "authorization_code"), ("code", code)]).await
    }

    /// Trades a refresh token for new tokens; the old refresh token dies.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Bitrix24Tokens, ConnectorError> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    async fn token(&self, grant: &[(&str, &str)]) -> Result<Bitrix24Tokens, ConnectorError> {
        let mut q: Vec<(&str, &str)> = grant.to_vec();
        q.push(("client_id", &self.config.client_id));
        q.push(("client_secret", &self.config.client_secret));
        let req = self.http.get(&self.config.token_url).query(&q);
        let resp = crate::http::send("bitrix24", "oauth.token", req)
            .await
            .map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        if let Ok(err) = serde_json::from_slice::<FlatError>(&body)
            && !err.error.is_empty()
        {
            let message = format!("{}: {}", err.error, err.error_description);
            return Err(match err.error.as_str() {
                "invalid_grant" | "PAYMENT_REQUIRED" => ConnectorError::InvalidGrant { system: SYSTEM, message },
                _ if status.is_server_error() => ConnectorError::Unavailable { system: SYSTEM, message },
                _ => ConnectorError::Rejected { system: SYSTEM, status: status.as_u16(), message, fields: vec![] },
            });
        }
        if !status.is_success() {
            return Err(if status.is_server_error() {
                ConnectorError::Unavailable { system: SYSTEM, message: status.to_string() }
            } else {
                ConnectorError::Rejected {
                    system: SYSTEM,
                    status: status.as_u16(),
                    message: status.to_string(),
                    fields: vec![],
                }
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("token answer: {e}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_page_is_on_the_portal() {
        let o = Bitrix24OAuth::new(
            reqwest::Client::new(),
            Bitrix24AppConfig { client_id: "app.1".into(), client_secret: "s".into(), token_url: "http://x/".into() },
        );
        let u = url::Url::parse(&o.authorize_url("loja.bitrix24.com.br", "st")).unwrap();
        assert_eq!(u.host_str(), Some("loja.bitrix24.com.br"));
        assert_eq!(u.path(), "/oauth/authorize/");
        assert!(u.query().unwrap().contains("client_id=app.1") && u.query().unwrap().contains("state=st"));
    }
}
