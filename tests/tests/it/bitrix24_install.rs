//! Installing ponte's Bitrix24 app on a connected portal, against the Bitrix24 sandbox, real
//! PostgreSQL and Redis and auth-token over gRPC: the sandbox posts the installation to the
//! gateway's `/install/bitrix24`, a genuine one stores the application token sealed, the
//! portal's events are checked against it from then on, a reinstall replaces it, and an
//! installation that does not check out is refused with nothing stored.

use std::time::Duration;

use ponte_proto::v1::{
    CompleteAuthorizationRequest, CreateTenantRequest, GetAccessTokenRequest, Provider, StartAuthorizationRequest,
    auth_token_service_client::AuthTokenServiceClient,
};
use ponte_sandbox::bitrix24::{Bitrix24, Config, Handle};
use ponte_tests::{GatewayHttp, Mesh, eventually, redis_url};
use serde_json::Value;
use tokio::net::TcpListener;

const TENANT: &str = "loja";

/// A Bitrix24 portal connected (OAuth) by tenant [`TENANT`], whose app's installation path and
/// outgoing webhook are the first of two gateway replicas.
struct World {
    portal: Handle,
    mesh: Mesh,
    gateway: GatewayHttp,
    replica: GatewayHttp,
    auth: AuthTokenServiceClient<ponte_tests::Channel>,
}

impl World {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = listener.local_addr().unwrap();
        let portal = Bitrix24::new(Config {
            install_url: Some(format!("http://{gw}/install/bitrix24")),
            event_url: Some(format!("http://{gw}/webhooks/bitrix24/{TENANT}")),
            ..Config::for_tests()
        })
        .spawn(None)
        .await
        .unwrap();
        let cfg = portal.config().clone();
        let env = ponte_core::config::Env::default()
            .with("PONTE_BITRIX24_CLIENT_ID", &cfg.client_id)
            .with("PONTE_BITRIX24_CLIENT_SECRET", &cfg.client_secret)
            .with("PONTE_BITRIX24_TOKEN_URL", &portal.token_url)
            .with("PONTE_DISPATCH_ENABLED", "false");
        let mesh = Mesh::start_with(&[&ponte_auth_token::SPEC], &redis_url(), env).await;
        let gateway = mesh.start_gateway_http_with(mesh.env.clone(), mesh.peers.clone(), Some(listener)).await;
        let replica = mesh.start_gateway_http(mesh.env.clone()).await;
        let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
        auth.create_tenant(CreateTenantRequest { tenant_id: TENANT.into(), display_name: String::new() })
            .await
            .unwrap();
        let state = auth
            .start_authorization(StartAuthorizationRequest {
                tenant_id: TENANT.into(),
                provider: Provider::Bitrix24 as i32,
                bitrix24_domain: cfg.domain.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .state;
        auth.complete_authorization(CompleteAuthorizationRequest {
            provider: Provider::Bitrix24 as i32,
            code: portal.authorize(),
            state,
            bitrix24_domain: cfg.domain.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        Self { portal, mesh, gateway, replica, auth }
    }

    /// The stored (sealed) application token of the tenant's Bitrix24 connection.
    async fn stored_token(&self) -> String {
        let db = self.mesh.db("auth_token").await;
        sqlx::query_scalar("SELECT webhook_secret FROM connections WHERE tenant_id = $1 AND provider = 'bitrix24'")
            .bind(TENANT)
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    /// The installation fields a portal posts, as a form body.
    fn install_form(&self, access_token: &str, member_id: &str, application_token: &str) -> String {
        let cfg = self.portal.config();
        form(&[
            ("event", "ONAPPINSTALL"),
            ("data[VERSION]", "1"),
            ("data[INSTALLED]", "Y"),
            ("ts", "1736405807"),
            ("auth[access_token]", access_token),
            ("auth[expires_in]", "3600"),
            ("auth[domain]", &cfg.domain),
            ("auth[client_endpoint]", &self.portal.client_endpoint()),
            ("auth[member_id]", member_id),
            ("auth[application_token]", application_token),
        ])
    }

    /// A valid access token of ponte's app on the portal (the connection's own).
    async fn app_access_token(&mut self) -> String {
        let req = GetAccessTokenRequest {
            tenant_id: TENANT.into(),
            provider: Provider::Bitrix24 as i32,
            ..Default::default()
        };
        self.auth.get_access_token(req).await.unwrap().into_inner().access_token
    }
}

async fn post_form(url: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// An `ONCRMPRODUCTUPDATE` of product `id` carrying `application_token`.
fn event(id: u64, application_token: &str) -> String {
    form(&[
        ("event", "ONCRMPRODUCTUPDATE"),
        ("event_handler_id", "1"),
        ("data[FIELDS][ID]", &id.to_string()),
        ("ts", &(1_736_405_807 + id).to_string()),
        ("auth[domain]", "loja.bitrix24.com.br"),
        ("auth[application_token]", application_token),
    ])
}

/// A form-encoded body, PHP-array keys and all.
fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

async fn status_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn inbox_count(gw: &GatewayHttp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM inbox_events").fetch_one(gw.db.pool()).await.unwrap()
}

#[tokio::test]
async fn a_genuine_installation_stores_the_token_that_authenticates_the_portals_events() {
    let w = World::start().await;
    let token = w.portal.config().application_token.clone();
    // Before any installation no event is accepted, here or on the other replica.
    for gw in [&w.gateway, &w.replica] {
        let (status, _) = status_of(post_form(&gw.url("/webhooks/bitrix24/loja"), event(1, &token)).await).await;
        assert_eq!(status, 401);
    }
    assert_eq!(w.stored_token().await, "");

    // The portal installs the app at its configured installation path: the gateway.
    let grant = w.portal.install().expect("the app has an installation path");
    let installed = eventually(Duration::from_secs(10), || async {
        w.portal.events().iter().any(|e| e.event == "ONAPPINSTALL" && e.status.is_some())
    })
    .await;
    assert!(installed, "the installation never reached the gateway");
    let delivery = w.portal.events().into_iter().find(|e| e.event == "ONAPPINSTALL").unwrap();
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    let sealed = w.stored_token().await;
    assert!(sealed.starts_with("v1.") && !sealed.contains(&token), "stored in plaintext: {sealed}");

    // A person edits a product in the CRM: the portal's event carries the token and is stored.
    let product = w.portal.seed_product(serde_json::json!({"NAME": "Caneca"})).unwrap();
    w.portal.edit_product_in_ui(product, serde_json::json!({"NAME": "Caneca 2"})).unwrap();
    let delivered = eventually(Duration::from_secs(10), || async {
        w.portal.events().iter().any(|e| e.event == "ONCRMPRODUCTUPDATE" && e.status.is_some())
    })
    .await;
    assert!(delivered);
    let update = w.portal.events().into_iter().find(|e| e.event == "ONCRMPRODUCTUPDATE").unwrap();
    assert_eq!(update.status, Some(200), "{update:?}");
    let entity: String =
        sqlx::query_scalar("SELECT entity_key FROM inbox_events WHERE event_type = 'ONCRMPRODUCTUPDATE'")
            .fetch_one(w.gateway.db.pool())
            .await
            .unwrap();
    assert_eq!(entity, format!("bitrix24_product:{product}"));
    // Another token is refused, with a problem body, and nothing is stored.
    let forged =
        post_form(&w.gateway.url("/webhooks/bitrix24/loja"), event(2, "0123456789abcdef0123456789abcdef")).await;
    assert_eq!(forged.headers()["content-type"], "application/problem+json");
    assert_eq!(status_of(forged).await.0, 401);
    assert_eq!(inbox_count(&w.gateway).await, 1);
    // The replica that had found no token a moment ago checks again and accepts the event.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = status_of(post_form(&w.replica.url("/webhooks/bitrix24/loja"), event(3, &token)).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("stored")), "{body}");

    // A reinstall hands over a new application token: it replaces the old one everywhere.
    let renewed = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let form = w.install_form(&grant.access_token, &w.portal.config().member_id, renewed);
    let (status, body) = status_of(post_form(&w.gateway.url("/install/bitrix24"), form).await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("installed")), "{body}");
    let resealed = w.stored_token().await;
    assert!(resealed != sealed && !resealed.contains(renewed));
    assert_eq!(w.portal.stats().methods.get("app.info"), Some(&2), "each installation is checked at the portal");
    let url = w.gateway.url("/webhooks/bitrix24/loja");
    assert_eq!(status_of(post_form(&url, event(4, &token)).await).await.0, 401, "the old token still works");
    assert_eq!(status_of(post_form(&url, event(5, renewed)).await).await.0, 200, "the new token is refused");
    // The replica still holds the old token; an event with the new one makes it fetch that.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = status_of(post_form(&w.replica.url("/webhooks/bitrix24/loja"), event(6, renewed)).await).await;
    assert_eq!(status, 200, "the replica refused the new token");
}

#[tokio::test]
async fn installations_that_do_not_check_out_are_refused_and_store_nothing() {
    let mut w = World::start().await;
    let cfg = w.portal.config().clone();
    let url = w.gateway.url("/install/bitrix24");
    let valid = w.app_access_token().await;
    let refused = |body: Value, needle: &str| {
        assert_eq!(body["status"], 401, "{body}");
        assert_eq!(body["type"], "urn:ponte:problem:installation-not-verified", "{body}");
        assert!(body["detail"].as_str().unwrap().contains(needle), "{body}");
    };

    // An access token the portal never issued.
    let form = w.install_form("0f1e2d3c4b5a69788796a5b4c3d2e1f0", &cfg.member_id, &cfg.application_token);
    let (status, body) = status_of(post_form(&url, form).await).await;
    assert_eq!(status, 401);
    // The portal itself refused it.
    refused(body, "invalid_token");
    // A working access token, with another portal's member id.
    let form = w.install_form(&valid, "ffffffffffffffffffffffffffffffff", &cfg.application_token);
    refused(status_of(post_form(&url, form).await).await.1, "member_id");
    // The portal's member id and a working token, but a REST address the attacker runs.
    let form = w
        .install_form(&valid, &cfg.member_id, &cfg.application_token)
        .replace(&url_encode(&w.portal.client_endpoint()), &url_encode("https://evil.example/rest/"));
    refused(status_of(post_form(&url, form).await).await.1, "client_endpoint");
    // A portal nobody connected.
    let form =
        w.install_form(&valid, &cfg.member_id, &cfg.application_token).replace("loja.bitrix24", "outra.bitrix24");
    refused(status_of(post_form(&url, form).await).await.1, "no tenant has connected");

    // Not an installation at all: 400 naming what is wrong.
    let form = w.install_form(&valid, &cfg.member_id, &cfg.application_token).replace("auth%5Baccess_token%5D", "x");
    let (status, body) = status_of(post_form(&url, form).await).await;
    assert_eq!((status, body["detail"].as_str()), (400, Some("auth[access_token] is missing")), "{body}");
    let (status, _) = status_of(post_form(&url, event(1, &cfg.application_token)).await).await;
    assert_eq!(status, 400);
    let json = reqwest::Client::new().post(&url).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(json.status().as_u16(), 415);

    assert_eq!(w.stored_token().await, "", "a refused installation stored a token");
    let (status, _) =
        status_of(post_form(&w.gateway.url("/webhooks/bitrix24/loja"), event(1, &cfg.application_token)).await).await;
    assert_eq!(status, 401);
    assert_eq!(inbox_count(&w.gateway).await, 0);
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
