//! auth-token against real PostgreSQL and Redis: credentials are validated and sealed at rest,
//! secrets come back only through the calls made for them, keys rotate.

use ponte_core::{config::Env, crypto::generate_key_entry, db::Database};
use ponte_proto::v1::{
    Bitrix24WebhookCredentials, ConnectionState, CplugCredentials, CreateTenantRequest, Envios360Credentials,
    GetAccessTokenRequest, GetConnectionRequest, GetWebhookSecretRequest, ListConnectionsRequest, Provider,
    ResolveTenantRequest, RevokeConnectionRequest, SetApiCredentialsRequest, StartAuthorizationRequest,
    auth_token_service_client::AuthTokenServiceClient, set_api_credentials_request::Credentials,
};
use ponte_tests::Channel;
use ponte_tests::{Mesh, redis_url};
use sqlx::Row;
use tonic::Code;

const API_TOKEN: &str = "tok-360-aaaaaaaaaaaaaaaaaaaa";
const HOOK_SECRET: &str = "whsec-360-bbbbbbbbbbbbbbbbbbb";
const CPLUG_PASSWORD: &str = "pdv-password-ccccccccccc";

async fn start(env: Env) -> (Mesh, AuthTokenServiceClient<Channel>) {
    let mesh = Mesh::start_with(&[&ponte_auth_token::SPEC], &redis_url(), env).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: "Loja".into() }).await.unwrap();
    (mesh, auth)
}

fn envios(token: &str, secret: &str) -> SetApiCredentialsRequest {
    SetApiCredentialsRequest {
        tenant_id: "loja".into(),
        credentials: Some(Credentials::Envios360(Envios360Credentials {
            api_token: token.into(),
            webhook_secret: secret.into(),
        })),
    }
}

async fn auth_db(mesh: &Mesh) -> Database {
    mesh.db("auth_token").await
}

/// Every text column of every connection row, concatenated.
async fn stored_text(mesh: &Mesh) -> String {
    let db = auth_db(mesh).await;
    let rows = sqlx::query(
        "SELECT access_token, refresh_token, credentials, webhook_secret, external_account_id FROM connections",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| (0..5).map(|i| r.get::<String, _>(i)).collect::<Vec<_>>().join("|"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn api_credentials_are_sealed_at_rest_and_handed_out_only_as_asked() {
    let (mesh, mut auth) = start(Env::default()).await;
    let c = auth.set_api_credentials(envios(API_TOKEN, HOOK_SECRET)).await.unwrap().into_inner().connection.unwrap();
    assert_eq!(c.state(), ConnectionState::Connected);
    auth.set_api_credentials(SetApiCredentialsRequest {
        tenant_id: "loja".into(),
        credentials: Some(Credentials::Cplug(CplugCredentials {
            client_id: "cid".into(),
            client_secret: "csecret-dddddddddddd".into(),
            username: "caixa".into(),
            password: CPLUG_PASSWORD.into(),
            webhook_secret: "cplug-hook-eeeeeeeeeeee".into(),
        })),
    })
    .await
    .unwrap();

    let text = stored_text(&mesh).await;
    for secret in [API_TOKEN, HOOK_SECRET, CPLUG_PASSWORD, "csecret-dddddddddddd", "cplug-hook-eeeeeeeeeeee"] {
        assert!(!text.contains(secret), "plaintext {secret} found in the connections table");
    }
    assert!(text.contains("v1.test."), "values are not sealed under the configured key");

    let token = auth
        .get_access_token(GetAccessTokenRequest {
            tenant_id: "loja".into(),
            provider: Provider::Envios360 as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.access_token, API_TOKEN);
    let secret = auth
        .get_webhook_secret(GetWebhookSecretRequest { tenant_id: "loja".into(), provider: Provider::Envios360 as i32 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(secret.secret, HOOK_SECRET);

    // The public view never carries a secret.
    let listed = auth.list_connections(ListConnectionsRequest { tenant_id: "loja".into() }).await.unwrap().into_inner();
    assert_eq!(listed.connections.len(), 2);
    assert!(!format!("{listed:?}").contains(API_TOKEN));
    mesh.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_name_the_field() {
    let (mesh, mut auth) = start(Env::default()).await;
    for (req, field) in [
        (envios("", HOOK_SECRET), "envios360.api_token"),
        (envios(API_TOKEN, "short"), "envios360.webhook_secret"),
        (
            SetApiCredentialsRequest {
                tenant_id: "loja".into(),
                credentials: Some(Credentials::Bitrix24Webhook(Bitrix24WebhookCredentials {
                    webhook_url: "https://loja.bitrix24.com.br/api/abc".into(),
                    application_token: "app-token-ffffffffffff".into(),
                })),
            },
            "bitrix24_webhook.webhook_url",
        ),
        (SetApiCredentialsRequest { tenant_id: "loja".into(), credentials: None }, "credentials"),
    ] {
        let err = auth.set_api_credentials(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(err.message().starts_with(field), "{}", err.message());
    }
    let ghost = auth
        .set_api_credentials(SetApiCredentialsRequest { tenant_id: "ghost".into(), ..envios(API_TOKEN, HOOK_SECRET) })
        .await
        .unwrap_err();
    assert_eq!(ghost.code(), Code::NotFound);
    let unspecified = auth
        .get_access_token(GetAccessTokenRequest { tenant_id: "loja".into(), provider: 0, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(unspecified.code(), Code::InvalidArgument);
    assert!(unspecified.message().starts_with("provider"));
    let none = auth
        .get_access_token(GetAccessTokenRequest {
            tenant_id: "loja".into(),
            provider: Provider::Cplug as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::NotFound, "{none:?}");
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_bitrix24_portal_resolves_to_its_tenant_and_revoking_forgets_the_secrets() {
    let (mesh, mut auth) = start(Env::default()).await;
    auth.set_api_credentials(SetApiCredentialsRequest {
        tenant_id: "loja".into(),
        credentials: Some(Credentials::Bitrix24Webhook(Bitrix24WebhookCredentials {
            webhook_url: "https://loja.bitrix24.com.br/rest/1/abc123def456/".into(),
            application_token: "app-token-ffffffffffff".into(),
        })),
    })
    .await
    .unwrap();
    let resolved = auth
        .resolve_tenant(ResolveTenantRequest {
            provider: Provider::Bitrix24 as i32,
            external_account_id: "loja.bitrix24.com.br".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.tenant_id, "loja");
    let token = auth
        .get_access_token(GetAccessTokenRequest {
            tenant_id: "loja".into(),
            provider: Provider::Bitrix24 as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.base_url, "https://loja.bitrix24.com.br/rest/1/abc123def456/");

    auth.revoke_connection(RevokeConnectionRequest { tenant_id: "loja".into(), provider: Provider::Bitrix24 as i32 })
        .await
        .unwrap();
    let c = auth
        .get_connection(GetConnectionRequest { tenant_id: "loja".into(), provider: Provider::Bitrix24 as i32 })
        .await
        .unwrap()
        .into_inner()
        .connection
        .unwrap();
    assert_eq!(c.state(), ConnectionState::Revoked);
    assert!(!stored_text(&mesh).await.contains("v1."), "a revoked connection kept sealed secrets");
    let refused = auth
        .get_access_token(GetAccessTokenRequest {
            tenant_id: "loja".into(),
            provider: Provider::Bitrix24 as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let gone = auth
        .resolve_tenant(ResolveTenantRequest {
            provider: Provider::Bitrix24 as i32,
            external_account_id: "loja.bitrix24.com.br".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    mesh.shutdown().await;
}

#[tokio::test]
async fn rotating_keys_reseals_everything_and_old_keys_can_then_be_dropped() {
    let old = generate_key_entry("k1");
    let (mesh, mut auth) = start(Env::default().with("PONTE_SEALING_KEYS", &old)).await;
    auth.set_api_credentials(envios(API_TOKEN, HOOK_SECRET)).await.unwrap();
    assert!(stored_text(&mesh).await.contains("v1.k1."));

    let new = generate_key_entry("k2");
    let rotated = ponte_core::crypto::Sealer::parse(&format!("{new},{old}")).unwrap();
    let report = ponte_auth_token::keys::reseal_all(&auth_db(&mesh).await, &rotated).await.unwrap();
    assert_eq!((report.resealed, report.skipped), (2, 0));
    let text = stored_text(&mesh).await;
    assert!(text.contains("v1.k2.") && !text.contains("v1.k1."), "{text}");
    let again = ponte_auth_token::keys::reseal_all(&auth_db(&mesh).await, &rotated).await.unwrap();
    assert_eq!((again.resealed, again.current), (0, 2));
    let mesh_url = mesh.database_url.clone();
    mesh.shutdown().await;

    // Restarted with only the new key, the service still reads every secret.
    let env = Env::default().with("PONTE_SEALING_KEYS", &new);
    let mesh = Mesh::start_on(&[&ponte_auth_token::SPEC], &redis_url(), env, mesh_url).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    let token = auth
        .get_access_token(GetAccessTokenRequest {
            tenant_id: "loja".into(),
            provider: Provider::Envios360 as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.access_token, API_TOKEN);
    mesh.shutdown().await;
}

#[tokio::test]
async fn bling_connections_need_a_configured_app() {
    let (mesh, mut auth) = start(Env::default()).await;
    let err = auth
        .start_authorization(StartAuthorizationRequest {
            tenant_id: "loja".into(),
            provider: Provider::Bling as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("PONTE_BLING_CLIENT_ID"), "{}", err.message());
    mesh.shutdown().await;
}

#[tokio::test]
async fn callers_cache_tokens_and_a_refused_token_is_fetched_again() {
    let (mesh, mut auth) = start(Env::default()).await;
    auth.set_api_credentials(envios(API_TOKEN, HOOK_SECRET)).await.unwrap();
    let channel =
        ponte_core::grpc::channel("x", &format!("http://{}", mesh.addr("auth-token")), &mesh.peers.token).unwrap();
    let tokens = ponte_core::access::AccessTokens::new(channel);
    let loja = ponte_core::TenantId::parse("loja").unwrap();
    let first = tokens.get(&loja, Provider::Envios360).await.unwrap();
    assert_eq!(first.secret(), API_TOKEN);

    // Stored anew (version bumps); the cache keeps answering the old token until it is refused.
    auth.set_api_credentials(envios("tok-360-rotated-zzzzzzzzzzzz", HOOK_SECRET)).await.unwrap();
    let cached = tokens.get(&loja, Provider::Envios360).await.unwrap();
    assert_eq!((cached.secret(), cached.version), (API_TOKEN, first.version));
    let fresh = tokens.refused(&loja, Provider::Envios360, &cached).await.unwrap();
    assert_eq!(fresh.secret(), "tok-360-rotated-zzzzzzzzzzzz");
    assert!(fresh.version > first.version);
    assert_eq!(tokens.get(&loja, Provider::Envios360).await.unwrap().secret(), fresh.secret());

    // A connection the merchant must fix is a precondition failure the caller can park on.
    let missing = tokens.get(&loja, Provider::Bling).await.unwrap_err();
    assert!(matches!(missing, ponte_core::error::ServiceError::FailedPrecondition(_)), "{missing:?}");
    mesh.shutdown().await;
}
