//! Helpers for the gateway's tests and benchmark: signed Bling webhook bodies, and a mesh with
//! a merchant whose Bling account is connected through the Bling sandbox (so its `companyId`
//! resolves to a tenant the way it does in production).

use ponte_core::config::Env;
use std::time::Duration;

use ponte_proto::v1::{
    Bitrix24WebhookCredentials, CompleteAuthorizationRequest, CplugCredentials, CreateTenantRequest,
    Envios360Credentials, GetAccessTokenRequest, Provider, SetApiCredentialsRequest, StartAuthorizationRequest,
    auth_token_service_client::AuthTokenServiceClient, set_api_credentials_request::Credentials,
};
use ponte_sandbox::bling::{Bling, Config, Handle};
use serde_json::{Value, json};

use crate::{Mesh, redis_url};

/// The tenant every gateway test connects.
pub const TENANT: &str = "loja";

/// `sha256=<hex>` of `body` under `secret`, as Bling, 360Envios and CPLUG sign.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", ponte_sandbox::cplug::sign(secret, body))
}

/// A Bling v1 webhook body.
pub fn bling_body(event_id: &str, event: &str, company_id: &str, date: &str, data: Value) -> String {
    json!({"eventId": event_id, "date": date, "version": "v1", "event": event, "companyId": company_id, "data": data})
        .to_string()
}

/// An RFC 3339 time `secs` seconds after a fixed instant.
pub fn date(secs: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339("2026-03-02T14:00:00Z").expect("fixed date")
        + chrono::Duration::seconds(secs))
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The Bling sandbox, a mesh, and tenant [`TENANT`] connected to the sandbox's account.
pub struct BlingWorld {
    pub bling: Handle,
    pub mesh: Mesh,
}

impl BlingWorld {
    pub fn company_id(&self) -> String {
        self.bling.bling.config().company_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.bling.bling.config().client_secret.clone()
    }

    /// Posts `body` to `gateway`'s Bling webhook route, signed with the app's secret as Bling signs.
    pub async fn post_bling(&self, gateway: &crate::GatewayHttp, body: String) -> reqwest::Response {
        reqwest::Client::new()
            .post(gateway.url("/webhooks/bling"))
            .header("content-type", "application/json")
            .header("X-Bling-Signature-256", sign(&self.client_secret(), body.as_bytes()))
            .body(body)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// Connects [`TENANT`] to a Bitrix24 sandbox portal through its incoming webhook (with the
    /// application token its outbound events carry).
    pub async fn connect_portal(&self, portal: &ponte_sandbox::bitrix24::Handle) {
        connect_portal_at(self.mesh.channel("auth-token").await, portal).await;
    }

    /// Connects [`TENANT`] to a CPLUG sandbox store (ponte must have been started with
    /// `PONTE_CPLUG_API_URL` set to the store's `base_url`).
    pub async fn connect_cplug(mesh: &Mesh, pos: &ponte_sandbox::cplug::Handle) {
        connect_cplug_at(mesh.channel("auth-token").await, pos).await;
    }

    /// Calls the Bling sandbox's API as [`TENANT`]'s connected account, as a merchant's other
    /// tools would: the account's 3 requests/s are shared with ponte's own calls, so a 429 is
    /// waited out as any Bling client must. Panics on any other error.
    pub async fn bling_api(mesh: &Mesh, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        bling_api_at(mesh.channel("auth-token").await, method, path, body).await
    }

    /// `specs` must include auth-token.
    pub async fn start(specs: &[&'static ponte_core::service::ServiceSpec]) -> Self {
        Self::start_with(specs, Config::default(), &redis_url()).await
    }

    pub async fn start_with(
        specs: &[&'static ponte_core::service::ServiceSpec],
        config: Config,
        redis_url: &str,
    ) -> Self {
        Self::start_with_env(specs, config, redis_url, Env::default()).await
    }

    /// As [`BlingWorld::start_with`], the services also configured by `env` (e.g. where the
    /// other sandboxes listen).
    pub async fn start_with_env(
        specs: &[&'static ponte_core::service::ServiceSpec],
        config: Config,
        redis_url: &str,
        env: Env,
    ) -> Self {
        let bling = Bling::new(config).spawn(None).await.expect("Bling sandbox");
        let cfg = bling.bling.config();
        let env = env
            .with("PONTE_BLING_CLIENT_ID", &cfg.client_id)
            .with("PONTE_BLING_CLIENT_SECRET", &cfg.client_secret)
            .with("PONTE_BLING_API_URL", &bling.base_url)
            .with("PONTE_BLING_AUTHORIZE_URL", &format!("{}/oauth/authorize", bling.base_url))
            .with("PONTE_BLING_TOKEN_URL", &format!("{}/oauth/token", bling.base_url));
        let mesh = Mesh::start_with(specs, redis_url, env).await;
        create_tenant_with_bling(mesh.channel("auth-token").await, &bling).await;
        Self { bling, mesh }
    }
}

/// Connects [`TENANT`] to a Bitrix24 sandbox portal through its incoming webhook, through the
/// auth-token service at `auth_token`.
pub async fn connect_portal_at(auth_token: crate::Channel, portal: &ponte_sandbox::bitrix24::Handle) {
    AuthTokenServiceClient::new(auth_token)
        .set_api_credentials(SetApiCredentialsRequest {
            tenant_id: TENANT.into(),
            credentials: Some(Credentials::Bitrix24Webhook(Bitrix24WebhookCredentials {
                webhook_url: portal.webhook_url.clone(),
                application_token: portal.portal.config().application_token.clone(),
            })),
        })
        .await
        .expect("connect Bitrix24");
}

/// Connects [`TENANT`] to a CPLUG sandbox store through the auth-token service at `auth_token`.
pub async fn connect_cplug_at(auth_token: crate::Channel, pos: &ponte_sandbox::cplug::Handle) {
    let cfg = pos.cplug.config().clone();
    AuthTokenServiceClient::new(auth_token)
        .set_api_credentials(SetApiCredentialsRequest {
            tenant_id: TENANT.into(),
            credentials: Some(Credentials::Cplug(CplugCredentials {
                client_id: cfg.client_id,
                client_secret: cfg.client_secret,
                username: cfg.username,
                password: cfg.password,
                webhook_secret: cfg.webhook_secret,
            })),
        })
        .await
        .expect("connect CPLUG");
}

/// Connects [`TENANT`] to a 360Envios sandbox hub through the auth-token service at `auth_token`.
pub async fn connect_envios360_at(auth_token: crate::Channel, hub: &ponte_sandbox::envios360::Handle) {
    let cfg = hub.hub.config().clone();
    AuthTokenServiceClient::new(auth_token)
        .set_api_credentials(SetApiCredentialsRequest {
            tenant_id: TENANT.into(),
            credentials: Some(Credentials::Envios360(Envios360Credentials {
                api_token: cfg.api_token,
                webhook_secret: cfg.webhook_secret,
            })),
        })
        .await
        .expect("connect 360Envios");
}

/// Creates tenant [`TENANT`] and connects it to the Bling sandbox `bling` (the merchant's OAuth
/// consent), through the auth-token service at `auth_token`.
pub async fn create_tenant_with_bling(auth_token: crate::Channel, bling: &Handle) {
    let mut auth = AuthTokenServiceClient::new(auth_token);
    auth.create_tenant(CreateTenantRequest { tenant_id: TENANT.into(), display_name: "Loja".into() })
        .await
        .expect("create tenant");
    let url = auth
        .start_authorization(StartAuthorizationRequest {
            tenant_id: TENANT.into(),
            provider: Provider::Bling as i32,
            ..Default::default()
        })
        .await
        .expect("start authorization")
        .into_inner()
        .authorize_url;
    let (code, state) = bling.authorize(&url).await.expect("authorize at the sandbox");
    auth.complete_authorization(CompleteAuthorizationRequest {
        provider: Provider::Bling as i32,
        code,
        state,
        ..Default::default()
    })
    .await
    .expect("complete authorization");
}

/// [`BlingWorld::bling_api`] through the auth-token service at `auth_token`.
pub async fn bling_api_at(
    auth_token: crate::Channel,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut auth = AuthTokenServiceClient::new(auth_token);
    let token = auth
        .get_access_token(GetAccessTokenRequest {
            tenant_id: TENANT.into(),
            provider: Provider::Bling as i32,
            ..Default::default()
        })
        .await
        .expect("Bling token")
        .into_inner();
    let http = reqwest::Client::new();
    for _ in 0..50 {
        let mut req = http
            .request(method.clone(), format!("{}{path}", token.base_url.trim_end_matches('/')))
            .bearer_auth(&token.access_token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("Bling sandbox");
        if resp.status() == 429 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            continue;
        }
        let status = resp.status();
        let text = resp.text().await.expect("Bling answer");
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        return if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("Bling JSON") };
    }
    panic!("Bling kept answering 429")
}
