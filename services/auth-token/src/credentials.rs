//! API credentials of providers without OAuth (360Envios, CPLUG) and Bitrix24 incoming
//! webhooks: checked field by field, sealed, stored.

use ponte_core::{TenantId, error::ServiceError};
use ponte_proto::v1::{Provider, set_api_credentials_request::Credentials};
use serde_json::json;

use crate::{
    AuthToken,
    connections::{self, ConnectionRow, Field},
};

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, ServiceError> {
    ServiceError::require(field, value)
}

/// A secret a sender signs with: long enough not to be guessed.
pub(crate) fn secret<'a>(field: &str, value: &'a str) -> Result<&'a str, ServiceError> {
    let v = required(field, value)?;
    if v.len() < 16 {
        return Err(ServiceError::invalid(field, "must be at least 16 characters"));
    }
    Ok(v)
}

pub(crate) async fn store(
    svc: &AuthToken,
    tenant: &TenantId,
    credentials: Option<Credentials>,
) -> Result<ConnectionRow, ServiceError> {
    let (provider, account, creds, webhook_secret) = match credentials {
        None => return Err(ServiceError::invalid("credentials", "is required (envios360, cplug or bitrix24_webhook)")),
        Some(Credentials::Envios360(c)) => {
            let token = required("envios360.api_token", &c.api_token)?;
            let hook = secret("envios360.webhook_secret", &c.webhook_secret)?;
            (Provider::Envios360, String::new(), json!({"api_token": token}), hook.to_owned())
        }
        Some(Credentials::Cplug(c)) => {
            let creds = json!({
                "client_id": required("cplug.client_id", &c.client_id)?,
                "client_secret": required("cplug.client_secret", &c.client_secret)?,
                "username": required("cplug.username", &c.username)?,
                "password": required("cplug.password", &c.password)?,
            });
            (Provider::Cplug, String::new(), creds, secret("cplug.webhook_secret", &c.webhook_secret)?.to_owned())
        }
        Some(Credentials::Bitrix24Webhook(c)) => {
            let raw = required("bitrix24_webhook.webhook_url", &c.webhook_url)?;
            let url = url::Url::parse(raw)
                .map_err(|_| ServiceError::invalid("bitrix24_webhook.webhook_url", "is not a URL"))?;
            let segments: Vec<&str> =
                url.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
            let shaped =
                url.scheme() == "https" || url.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost");
            if !shaped || segments.len() != 3 || segments[0] != "rest" || segments[1].parse::<u64>().is_err() {
                return Err(ServiceError::invalid(
                    "bitrix24_webhook.webhook_url",
                    "must look like https://<portal>/rest/<user id>/<code>/",
                ));
            }
            let domain = url.host_str().unwrap_or_default().to_owned();
            let token = secret("bitrix24_webhook.application_token", &c.application_token)?;
            let base = format!("{}/", raw.trim_end_matches('/'));
            (Provider::Bitrix24, domain, json!({"webhook_url": base}), token.to_owned())
        }
    };
    let mut row = ConnectionRow::connected(tenant, provider, account);
    row.seal(&svc.sealer, Field::Credentials, &creds.to_string());
    row.seal(&svc.sealer, Field::WebhookSecret, &webhook_secret);
    let stored = connections::upsert(&svc.db, &row).await?;
    tracing::info!(tenant_id = %tenant, provider = connections::provider_name(provider), "API credentials stored");
    Ok(stored)
}
