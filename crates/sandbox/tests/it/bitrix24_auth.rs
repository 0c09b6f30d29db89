//! How callers authenticate with the Bitrix24 portal: incoming-webhook URLs and their scopes,
//! and OAuth apps (the consent redirect, the GET token endpoint, access tokens that expire
//! after an hour, refresh tokens that work once).

use std::time::Duration;

use ponte_sandbox::bitrix24::{self, Config};
use serde_json::{Value, json};

use crate::support::get_json;

#[tokio::test]
async fn a_wrong_webhook_code_or_missing_scope_is_refused_in_bitrix24s_words() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let (status, body) = get_json(&format!("http://{}/rest/1/not-the-code/crm.product.list.json", portal.addr)).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}));
    let (status, _) =
        get_json(&format!("http://{}/rest/2/{}/crm.product.list", portal.addr, portal.config().webhook_code)).await;
    assert_eq!(status, 401, "the code belongs to user 1");
    // The `.json` suffix is optional.
    assert_eq!(get_json(&format!("{}crm.product.list", portal.webhook_url)).await.0, 200);

    let no_crm = bitrix24::spawn(Config { webhook_scopes: vec!["user".into()], ..Config::for_tests() }).await.unwrap();
    let (status, body) = get_json(&format!("{}crm.deal.list.json", no_crm.webhook_url)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("insufficient_scope")));
    let (status, body) = get_json(&format!("{}no.such.method.json", portal.webhook_url)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("ERROR_METHOD_NOT_FOUND")));
}

#[tokio::test]
async fn event_bind_needs_an_application_not_a_webhook() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}event.bind.json", portal.webhook_url))
        .json(&json!({"event": "ONCRMPRODUCTUPDATE", "handler": "https://example.com/h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "WRONG_AUTH_TYPE");
    assert!(portal.bindings().is_empty());
}

#[tokio::test]
async fn the_consent_page_redirects_with_a_code_that_works_once() {
    let cfg =
        Config { redirect_uri: Some("https://ponte.example/oauth/bitrix24/callback".into()), ..Config::for_tests() };
    let portal = bitrix24::spawn(cfg.clone()).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http
        .get(format!("{}/oauth/authorize/?client_id={}&state=st-1", portal.base_url, cfg.client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with("https://ponte.example/oauth/bitrix24/callback?"));
    let q: std::collections::BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["domain"], cfg.domain);
    assert_eq!(q["member_id"], cfg.member_id);
    assert_eq!(q["server_domain"], "oauth.bitrix.info");

    let exchange = |code: &str| {
        format!(
            "{}?grant_type=authorization_code&client_id={}&client_secret={}&code={code}",
            portal.token_url, cfg.client_id, cfg.client_secret
        )
    };
    let (status, tokens) = get_json(&exchange(&q["code"])).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["client_endpoint"], portal.client_endpoint());
    assert_eq!(tokens["member_id"], cfg.member_id);
    assert!(tokens["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    let (status, again) = get_json(&exchange(&q["code"])).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")));

    // Codes live 30 seconds.
    let late = portal.authorize();
    portal.clock().advance(Duration::from_secs(31));
    assert_eq!(get_json(&exchange(&late)).await.1["error"], "invalid_grant");

    let wrong = format!(
        "{}?grant_type=authorization_code&client_id={}&client_secret=nope&code={}",
        portal.token_url,
        cfg.client_id,
        portal.authorize()
    );
    assert_eq!(
        get_json(&wrong).await,
        (401, json!({"error": "invalid_client", "error_description": "Client authentication failed"}))
    );
}

#[tokio::test]
async fn access_tokens_expire_and_refresh_tokens_work_once() {
    let cfg = Config::for_tests();
    let portal = bitrix24::spawn(cfg.clone()).await.unwrap();
    let token_url = |grant: &str, extra: &str| {
        format!(
            "{}?grant_type={grant}&client_id={}&client_secret={}&{extra}",
            portal.token_url, cfg.client_id, cfg.client_secret
        )
    };
    let (_, t1) = get_json(&token_url("authorization_code", &format!("code={}", portal.authorize()))).await;
    let access1 = t1["access_token"].as_str().unwrap().to_owned();
    let refresh1 = t1["refresh_token"].as_str().unwrap().to_owned();

    let http = reqwest::Client::new();
    // `auth` in the query string or in the JSON body.
    let (status, _) = get_json(&format!("{}crm.product.list?auth={access1}", portal.client_endpoint())).await;
    assert_eq!(status, 200);
    let r = http
        .post(format!("{}crm.deal.list", portal.client_endpoint()))
        .json(&json!({"auth": access1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = get_json(&format!("{}crm.product.list", portal.client_endpoint())).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("NO_AUTH_FOUND")));

    portal.clock().advance(Duration::from_secs(3601));
    let (status, body) = get_json(&format!("{}crm.product.list?auth={access1}", portal.client_endpoint())).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"error": "expired_token", "error_description": "The access token provided has expired."}));

    let (status, t2) = get_json(&token_url("refresh_token", &format!("refresh_token={refresh1}"))).await;
    assert_eq!(status, 200, "{t2}");
    let access2 = t2["access_token"].as_str().unwrap().to_owned();
    assert_ne!(t2["refresh_token"], t1["refresh_token"], "every refresh rotates the refresh token");
    assert!(t2["expires"].as_i64().is_some() && t2["user_id"].is_number());
    assert_eq!(get_json(&format!("{}crm.product.list?auth={access2}", portal.client_endpoint())).await.0, 200);

    // The used refresh token is refused from now on, and so is the access token issued with it.
    let (status, reused) = get_json(&token_url("refresh_token", &format!("refresh_token={refresh1}"))).await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(portal.stats().stale_refresh_tokens, 1);
    portal.clock().advance(Duration::from_secs(1));
    let refresh2 = t2["refresh_token"].as_str().unwrap();
    let (_, t3) = get_json(&token_url("refresh_token", &format!("refresh_token={refresh2}"))).await;
    let (status, body) = get_json(&format!("{}crm.product.list?auth={access2}", portal.client_endpoint())).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")));
    let access3 = t3["access_token"].as_str().unwrap();
    assert_eq!(get_json(&format!("{}crm.product.list?auth={access3}", portal.client_endpoint())).await.0, 200);

    let (status, body) =
        get_json(&format!("{}?client_id={}&client_secret={}", portal.token_url, cfg.client_id, cfg.client_secret))
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    assert_eq!(portal.stats().token_calls, 5);
}
