//! Bitrix24: the sandbox's limits, the connector against it, and auth-token's app connection.

use std::{sync::Arc, time::Duration};

use ponte_connectors::{
    ConnectorError,
    bitrix24::{Batch, Bitrix24Auth, Bitrix24Client, DealFields, DealRow, ProductFields, ProductId},
};
use ponte_core::{
    config::Env,
    ratelimit::{MemoryRateLimiter, Priority, Quota},
};
use ponte_proto::v1::{
    CompleteAuthorizationRequest, CreateTenantRequest, GetAccessTokenRequest, Provider,
    auth_token_service_client::AuthTokenServiceClient,
};
use ponte_sandbox::bitrix24::{Bitrix24, Config};
use ponte_tests::{Mesh, redis_url};
use serde_json::{Value, json};

#[tokio::test]
async fn the_leaky_bucket_rejects_exactly_the_excess_of_a_burst() {
    let portal = Bitrix24::new(Config::default()).spawn(None).await.unwrap();
    let http = reqwest::Client::new();
    let calls =
        (0..60).map(|_| http.post(format!("{}crm.product.list.json", portal.webhook_url)).json(&json!({})).send());
    let statuses: Vec<u16> =
        futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 10, "burst 50");
    let r = http.post(format!("{}crm.product.list.json", portal.webhook_url)).json(&json!({})).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "QUERY_LIMIT_EXCEEDED");
    let wrong = http.post(format!("http://{}/rest/1/wrong/crm.product.list.json", portal.addr)).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn the_connector_pages_batches_and_finds_products_by_xml_id() {
    let portal =
        Bitrix24::new(Config { per_second: 1000.0, burst: 1000.0, ..Config::default() }).spawn(None).await.unwrap();
    let client = Bitrix24Client::new(
        ponte_connectors::http::client(),
        Arc::new(MemoryRateLimiter::default()),
        Quota::per_second(1000.0, 100),
    );
    let auth = Bitrix24Auth::Webhook { base: portal.webhook_url.clone() };
    let live = client.portal(auth.clone(), "loja.bitrix24.com.br", Priority::Live);

    // 120 products in three batch calls of at most 50.
    let mut adds = Batch::new();
    let added: Vec<_> = (0..120)
        .map(|i| {
            adds.add_product(&ProductFields {
                name: Some(format!("Produto {i}")),
                xml_id: Some(format!("bling-{i}")),
                price: Some("10.5".parse().unwrap()),
                ..Default::default()
            })
        })
        .collect();
    let backfill = client.portal(auth, "loja.bitrix24.com.br", Priority::Backfill);
    let done = backfill.batch(&adds, false).await.unwrap();
    assert_eq!(added.iter().filter(|slot| matches!(done.take(*slot), Some(Ok(_)))).count(), 120);
    assert!(done.first_error().is_none());
    assert_eq!(portal.portal.products().len(), 120);
    assert_eq!(portal.portal.products()[0]["PRICE"], "10.5", "numbers come back as strings");

    let all = live.products().await.unwrap();
    assert_eq!(all.len(), 120, "every 50-row page was followed");
    let found = live.find_product_by_xml_id("bling-77").await.unwrap().unwrap();
    assert_eq!(found.name.as_deref(), Some("Produto 77"));
    assert!(live.find_product_by_xml_id("bling-999").await.unwrap().is_none());

    // References to earlier results, and halt on the first failure.
    let mut chained = Batch::new();
    let d = chained.add_deal(&DealFields {
        title: Some("Pedido 123".into()),
        originator_id: Some("bling".into()),
        origin_id: Some("555".into()),
        ..Default::default()
    });
    let g = chained.get_deal(&d);
    let bad = chained.get_product(ProductId::new(999999).unwrap());
    let never = chained.get_deal(&d);
    let r = live.batch(&chained, true).await.unwrap();
    assert_eq!(r.take(&g).map(|g| g.unwrap().title), Some(Some("Pedido 123".into())), "{r:?}");
    let bad = r.take(&bad).unwrap().unwrap_err();
    assert!(matches!(&bad, ConnectorError::NotFound { message, .. } if message == "Not found"), "{bad:?}");
    assert!(r.take(&never).is_none(), "halt stops at the first failure");
    let deal = live.find_deal_by_origin("bling", "555").await.unwrap().unwrap();
    let row = DealRow {
        product_id: ProductId::new(401),
        product_name: "Camiseta".into(),
        price: "59.9".parse().unwrap(),
        quantity: 2.into(),
    };
    live.set_deal_rows(deal, std::slice::from_ref(&row)).await.unwrap();
    assert_eq!(portal.portal.deal_rows(deal.get())[0]["QUANTITY"], "2");
    // A row the portal refuses (its quantity must be positive) is answered as refused.
    let bad_rows = live.set_deal_rows(deal, &[DealRow { quantity: 0.into(), ..row }]).await.unwrap_err();
    assert!(matches!(bad_rows, ConnectorError::Rejected { status: 400, .. }), "{bad_rows:?}");
    let renamed = ProductFields { name: Some("x".into()), ..Default::default() };
    let missing = live.update_product(ProductId::new(999999).unwrap(), &renamed).await.unwrap_err();
    assert!(matches!(missing, ConnectorError::NotFound { .. }), "{missing:?}");
}

#[tokio::test]
async fn an_app_connection_renews_its_token_once_expired_and_never_reuses_a_refresh_token() {
    let portal =
        Bitrix24::new(Config { access_ttl: Duration::from_secs(2), ..Config::default() }).spawn(None).await.unwrap();
    let cfg = portal.portal.config().clone();
    let env = Env::default()
        .with("PONTE_BITRIX24_CLIENT_ID", &cfg.client_id)
        .with("PONTE_BITRIX24_CLIENT_SECRET", &cfg.client_secret)
        .with("PONTE_BITRIX24_TOKEN_URL", &portal.token_url);
    let mesh = Mesh::start_with(&[&ponte_auth_token::SPEC], &redis_url(), env).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: String::new() }).await.unwrap();
    let start = auth
        .start_authorization(ponte_proto::v1::StartAuthorizationRequest {
            tenant_id: "loja".into(),
            provider: Provider::Bitrix24 as i32,
            bitrix24_domain: cfg.domain.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        start.authorize_url.starts_with("https://loja.bitrix24.com.br/oauth/authorize/?client_id="),
        "{}",
        start.authorize_url
    );
    let code = portal.portal.authorize();
    let c = auth
        .complete_authorization(CompleteAuthorizationRequest {
            provider: Provider::Bitrix24 as i32,
            code,
            state: start.state,
            bitrix24_domain: cfg.domain.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .connection
        .unwrap();
    assert_eq!(c.external_account_id, "loja.bitrix24.com.br");

    let get = || GetAccessTokenRequest {
        tenant_id: "loja".into(),
        provider: Provider::Bitrix24 as i32,
        ..Default::default()
    };
    let t1 = auth.get_access_token(get()).await.unwrap().into_inner();
    assert_eq!(t1.base_url, portal.client_endpoint());
    let client = Bitrix24Client::new(
        ponte_connectors::http::client(),
        Arc::new(MemoryRateLimiter::default()),
        Quota::bitrix24(),
    );
    let oauth = Bitrix24Auth::OAuth { client_endpoint: t1.base_url.clone(), access_token: t1.access_token.clone() };
    let app = client.portal(oauth, &cfg.domain, Priority::Live);
    let listed = app.products().await.unwrap();
    assert!(listed.is_empty());

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let expired = app.products().await.unwrap_err();
    assert!(matches!(expired, ConnectorError::InvalidToken { .. }), "{expired:?}");
    let t2 = auth.get_access_token(get()).await.unwrap().into_inner();
    assert_ne!(t2.access_token, t1.access_token);
    let t3 = auth.get_access_token(get()).await.unwrap().into_inner();
    assert_eq!(t3.access_token, t2.access_token, "a valid token is not renewed again");
    let stats = portal.portal.stats();
    assert_eq!(stats.token_calls, 2, "one exchange and one refresh");
    assert_eq!(stats.stale_refresh_tokens, 0);
    mesh.shutdown().await;
}
