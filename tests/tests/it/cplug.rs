//! CPLUG against its sandbox: the connector's products and errors, and auth-token's CPLUG
//! tokens from the password grant.

use ponte_connectors::{
    ConnectorError,
    cplug::{CplugClient, CplugCredentials, types::Product},
};
use ponte_core::config::Env;
use ponte_proto::v1::{
    ConnectionState, CplugCredentials as ProtoCreds, CreateTenantRequest, GetAccessTokenRequest, GetConnectionRequest,
    Provider, SetApiCredentialsRequest, auth_token_service_client::AuthTokenServiceClient,
    set_api_credentials_request::Credentials,
};
use ponte_sandbox::cplug::{Config, Cplug};
use ponte_tests::{Mesh, redis_url};
use rust_decimal::Decimal;
use tonic::Code;

fn creds(c: &Config) -> CplugCredentials {
    CplugCredentials {
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.clone(),
        username: c.username.clone(),
        password: c.password.clone(),
    }
}

fn product(id: u32) -> Product {
    Product {
        external_id: format!("1605978{id:04}"),
        sku: format!("SKU-{id}"),
        name: format!("Produto {id}"),
        price: Decimal::new(5990 + i64::from(id), 2),
        active: true,
        unit: "UN".into(),
        parent_external_id: None,
        variation: None,
    }
}

#[tokio::test]
async fn products_upsert_in_bulk_and_errors_name_their_fields() {
    let sandbox = Cplug::new(Config::default()).spawn(None).await.unwrap();
    let client = CplugClient::new(ponte_connectors::http::client(), &sandbox.base_url);
    let token = client.token(&creds(sandbox.cplug.config())).await.unwrap();

    let first = client.upsert(&token.access_token, &product(1)).await.unwrap();
    let again = client.upsert(&token.access_token, &Product { name: "Renomeado".into(), ..product(1) }).await.unwrap();
    assert_eq!(first.id, again.id, "an upsert by Bling id keeps CPLUG's id");

    // 1,001 products go in three bulks of at most 500.
    let many: Vec<Product> = (2..=1002).map(product).collect();
    let results = client.upsert_bulk(&token.access_token, &many).await.unwrap();
    assert_eq!(results.len(), 1001);
    assert!(results.iter().all(|r| r.error.is_none() && r.id.is_some()));
    let held = sandbox.cplug.products();
    assert_eq!(held.len(), 1002);
    assert_eq!(held["16059780001"]["name"], "Renomeado");
    assert_eq!(held["16059780500"]["price"], 64.9);
    let page = client.list(&token.access_token, 11).await.unwrap();
    assert_eq!((page.data.len(), page.total), (2, 1002));

    let bad = client.upsert(&token.access_token, &Product { sku: String::new(), ..product(7) }).await.unwrap_err();
    let ConnectorError::Rejected { status, fields, .. } = bad else { panic!("{bad:?}") };
    assert_eq!(status, 422);
    assert_eq!(fields, ["sku: The sku field is required."]);

    client.delete(&token.access_token, "16059780001").await.unwrap();
    assert!(matches!(client.delete(&token.access_token, "16059780001").await, Err(ConnectorError::NotFound { .. })));
    let wrong = CplugCredentials { password: "nope".into(), ..creds(sandbox.cplug.config()) };
    assert!(matches!(client.token(&wrong).await, Err(ConnectorError::InvalidGrant { .. })));
}

#[tokio::test]
async fn auth_token_hands_out_cplug_tokens_and_marks_refused_credentials() {
    let sandbox = Cplug::new(Config { token_ttl: std::time::Duration::from_secs(3), ..Config::default() })
        .spawn(None)
        .await
        .unwrap();
    let env =
        Env::default().with("PONTE_CPLUG_API_URL", &sandbox.base_url).with("PONTE_TOKEN_REFRESH_MARGIN_SECONDS", "1");
    let mesh = Mesh::start_with(&[&ponte_auth_token::SPEC], &redis_url(), env).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: String::new() }).await.unwrap();
    let cfg = sandbox.cplug.config().clone();
    let set = |password: &str| SetApiCredentialsRequest {
        tenant_id: "loja".into(),
        credentials: Some(Credentials::Cplug(ProtoCreds {
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            username: cfg.username.clone(),
            password: password.into(),
            webhook_secret: cfg.webhook_secret.clone(),
        })),
    };
    auth.set_api_credentials(set(&cfg.password)).await.unwrap();
    let get =
        || GetAccessTokenRequest { tenant_id: "loja".into(), provider: Provider::Cplug as i32, ..Default::default() };
    let t1 = auth.get_access_token(get()).await.unwrap().into_inner();
    let t2 = auth.get_access_token(get()).await.unwrap().into_inner();
    assert_eq!(t1.access_token, t2.access_token, "a valid token is reused");
    assert_eq!(sandbox.cplug.stats().token_calls, 1);
    // The token works against CPLUG.
    let client = CplugClient::new(ponte_connectors::http::client(), &t1.base_url);
    client.list(&t1.access_token, 1).await.unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let t3 = auth.get_access_token(get()).await.unwrap().into_inner();
    assert_ne!(t3.access_token, t1.access_token, "a token near expiry is renewed");
    assert_eq!(sandbox.cplug.stats().token_calls, 2);

    // Wrong credentials: the connection needs the merchant, and CPLUG is not asked again.
    auth.set_api_credentials(set("wrong-password-000000")).await.unwrap();
    let err = auth.get_access_token(get()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let c = auth
        .get_connection(GetConnectionRequest { tenant_id: "loja".into(), provider: Provider::Cplug as i32 })
        .await
        .unwrap()
        .into_inner()
        .connection
        .unwrap();
    assert_eq!(c.state(), ConnectionState::NeedsReauthorization);
    let calls = sandbox.cplug.stats().token_calls;
    assert_eq!(auth.get_access_token(get()).await.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(sandbox.cplug.stats().token_calls, calls);
    mesh.shutdown().await;
}

#[test]
fn sale_webhooks_are_signed_as_the_contract_says() {
    let c = Cplug::new(Config::default());
    let (headers, body) =
        c.sale_webhook("evt-1", "sale.completed", serde_json::json!({"id": "V-000123", "total": 119.8}));
    let sig = headers.iter().find(|(k, _)| k == "x-cplug-signature").unwrap().1.clone();
    assert_eq!(sig, format!("sha256={}", ponte_sandbox::cplug::sign(&c.config().webhook_secret, body.as_bytes())));
    assert_eq!(sig.len(), "sha256=".len() + 64);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["event_id"].as_str(), v["sale"]["id"].as_str()), (Some("evt-1"), Some("V-000123")));
}
