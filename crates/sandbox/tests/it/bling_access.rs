//! Who gets into the Bling sandbox and how its queries are read: a missing or malformed
//! `Authorization` is `invalid_request`, tokens asked with `enable-jwt: 1` are JWT-sized and
//! opaque ones otherwise, and an id filter that is not an integer is refused rather than
//! silently dropped (which would answer the whole catalog).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ponte_sandbox::bling::Config;
use serde_json::{Value, json};

use crate::support::BlingClient;

fn lenient() -> Config {
    Config { per_second: 10_000, ..Config::default() }
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_is_invalid_request() {
    let (h, c) = BlingClient::start(lenient()).await;
    let token = c.access_token(&h).await;
    let url = format!("{}/produtos", c.base);
    let invalid_request = json!({"error": {"type": "invalid_request", "message": "invalid_request", "description": "Malformed auth header"}});
    for header in [None, Some("Basic dXNlcjpwYXNz".to_owned()), Some("Bearer ".to_owned()), Some(token.clone())] {
        let mut req = c.http.get(&url);
        if let Some(v) = &header {
            req = req.header("authorization", v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{header:?}");
        assert_eq!(r.json::<Value>().await.unwrap(), invalid_request, "{header:?}");
    }
    let (status, body, _) = c.get("not-a-token", "/produtos").await;
    assert_eq!((status, body["error"]["type"].as_str()), (401, Some("invalid_token")), "a bearer Bling never issued");
    assert_eq!(c.get(&token, "/produtos").await.0, 200);
    assert_eq!(h.bling.stats().api_requests, 1, "refused calls are not counted against the account");
}

/// The JSON of one part of a JWT.
fn part(jwt: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn tokens_asked_with_enable_jwt_are_jwts_of_blings_size_and_opaque_otherwise() {
    let (h, c) = BlingClient::start(lenient()).await;
    let opaque = c.connect(&h).await;
    for k in ["access_token", "refresh_token"] {
        let t = opaque[k].as_str().unwrap();
        assert_eq!(t.len(), 40, "{k} without enable-jwt: {t}");
        assert!(t.chars().all(|ch| ch.is_ascii_hexdigit()));
    }

    let url = format!("{}/oauth/authorize?response_type=code&client_id={}&state=j", c.base, c.cfg.client_id);
    let (code, _) = h.authorize(&url).await.unwrap();
    let exchange = |form: Vec<(&'static str, String)>| {
        c.http
            .post(format!("{}/oauth/token", c.base))
            .basic_auth(&c.cfg.client_id, Some(&c.cfg.client_secret))
            .header("enable-jwt", "1")
            .form(&form)
            .send()
    };
    let jwt: Value = exchange(vec![("grant_type", "authorization_code".into()), ("code", code)])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in ["access_token", "refresh_token"] {
        let t = jwt[k].as_str().unwrap();
        assert!((1_500..=3_000).contains(&t.len()), "{k} is {} characters", t.len());
        assert_eq!(t.split('.').count(), 3, "{k}: header, claims, signature");
        assert!(t.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.'), "base64url");
        assert_eq!(part(t, 0)["typ"], "JWT");
        assert_eq!(part(t, 1)["sub"], c.cfg.company_id.as_str());
    }
    assert_eq!(jwt["expires_in"], 21_600);
    let access = jwt["access_token"].as_str().unwrap();
    assert_eq!(c.get(access, "/empresas/me/dados-basicos").await.0, 200, "a JWT opens the API");
    let refreshed: Value = exchange(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", jwt["refresh_token"].as_str().unwrap().into()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_ne!(refreshed["refresh_token"], jwt["refresh_token"], "JWT refresh tokens rotate too");
    assert!(refreshed["access_token"].as_str().unwrap().len() >= 1_500);
}

#[tokio::test]
async fn id_filters_that_are_not_integers_are_refused_and_skus_are_looked_up() {
    let (h, c) = BlingClient::start(lenient()).await;
    let token = c.access_token(&h).await;
    let copo = h.bling.seed_product(json!({"nome": "Copo", "codigo": "COPO", "preco": 5}));
    h.bling.seed_product(json!({"nome": "Prato", "codigo": "PRATO", "preco": 9}));
    for query in ["idsProdutos[]=abc", &format!("idsProdutos[]={copo}&idsProdutos[]=1.5")] {
        let (status, body, _) = c.get(&token, &format!("/produtos?criterio=5&{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["type"], "VALIDATION_ERROR");
        assert_eq!(body["error"]["fields"][0]["element"], "idsProdutos");
    }
    for query in ["/pedidos/vendas?idsSituacoes[]=aberto", "/contatos?idsContatos[]=x", "/produtos?criterio=9"] {
        assert_eq!(c.get(&token, query).await.0, 400, "{query}");
    }
    let ids = |v: &Value| v["data"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&c.get(&token, &format!("/produtos?criterio=5&idsProdutos[]={copo}")).await.1), [copo]);
    let (_, by_sku, _) = c.get(&token, "/produtos?criterio=5&codigos[]=COPO").await;
    assert_eq!(ids(&by_sku), [copo]);
    assert_eq!(by_sku["data"][0]["codigo"], "COPO");
    assert_eq!(c.get(&token, "/produtos?criterio=5&codigos[]=NADA").await.1["data"], json!([]));
}
