//! The CPLUG PDV's product API over real HTTP: the password grant with expiring tokens,
//! upserts by Bling id, bulks of up to 500 with per-item results, pages, deletes, the
//! `{"message","errors"}` body, and 429 with `Retry-After`.

use std::time::Duration;

use ponte_sandbox::cplug::{self, Config, Handle};
use serde_json::{Value, json};

async fn token(pdv: &Handle) -> String {
    let c = pdv.config();
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/token", pdv.base_url))
        .json(&json!({"grant_type": "password", "client_id": c.client_id, "client_secret": c.client_secret,
                      "username": c.username, "password": c.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn send(
    pdv: &Handle,
    token: &str,
    method: reqwest::Method,
    path: impl Into<String>,
    body: Option<Value>,
) -> (u16, Value) {
    let path = path.into();
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", pdv.base_url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("the PDV answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn product(external_id: &str, sku: &str) -> Value {
    json!({"external_id": external_id, "sku": sku, "name": format!("Produto {sku}"), "price": 59.9, "active": true, "unit": "UN"})
}

#[tokio::test]
async fn the_password_grant_issues_tokens_that_expire() {
    let pdv = cplug::spawn(Config { token_ttl: Duration::from_secs(600), ..Config::for_tests() }).await.unwrap();
    let c = pdv.config().clone();
    let http = reqwest::Client::new();
    let grant = |password: &str| {
        http.post(format!("{}/oauth/token", pdv.base_url))
            .json(&json!({"grant_type": "password", "client_id": c.client_id,
            "client_secret": c.client_secret, "username": c.username, "password": password}))
    };
    let body: Value = grant(&c.password).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["expires_in"], 600);
    let t = body["access_token"].as_str().unwrap().to_owned();

    let wrong = grant("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"message": "The user credentials were incorrect.", "errors": {}})
    );
    let missing = http
        .post(format!("{}/oauth/token", pdv.base_url))
        .json(&json!({"grant_type": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 422);
    let errors = missing.json::<Value>().await.unwrap()["errors"].clone();
    assert_eq!(errors["username"], json!(["The username field is required."]));
    let form =
        http.post(format!("{}/oauth/token", pdv.base_url)).form(&[("grant_type", "password")]).send().await.unwrap();
    assert_eq!(form.status(), 422, "the grant is a JSON body");

    assert_eq!(send(&pdv, &t, reqwest::Method::GET, "/products", None).await.0, 200);
    let clock: Value = http
        .post(format!("{}/clock", pdv.admin_url))
        .json(&json!({"advance_seconds": 601}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(clock["now"].as_str().is_some_and(|t| t.parse::<chrono::DateTime<chrono::Utc>>().is_ok()));
    let (status, body) = send(&pdv, &t, reqwest::Method::GET, "/products", None).await;
    assert_eq!((status, body), (401, json!({"message": "Unauthenticated.", "errors": {}})));
    assert_eq!(send(&pdv, "garbage", reqwest::Method::GET, "/products", None).await.0, 401);
    assert_eq!(pdv.stats().token_calls, 4);
}

#[tokio::test]
async fn upserts_keep_cplugs_id_and_bad_products_name_their_fields() {
    let pdv = cplug::spawn(Config::for_tests()).await.unwrap();
    let t = token(&pdv).await;
    let put = |id: &str, body: Value| send(&pdv, &t, reqwest::Method::PUT, format!("/products/{id}"), Some(body));
    let (status, created) = put("16059781281", product("16059781281", "CAM-AZ-M")).await;
    assert_eq!(status, 200);
    assert_eq!(created["external_id"], "16059781281");
    let id = created["id"].clone();
    let mut renamed = product("16059781281", "CAM-AZ-M");
    renamed["name"] = json!("Camiseta azul M");
    renamed["variation"] = json!({"name": "Azul M", "attributes": {"cor": "Azul", "tamanho": "M"}});
    renamed["parent_external_id"] = json!("16059781280");
    let (_, updated) = put("16059781281", renamed).await;
    assert_eq!(updated["id"], id, "an upsert keeps the product's id");
    let held = pdv.products();
    assert_eq!(held.len(), 1);
    assert_eq!(held["16059781281"]["name"], "Camiseta azul M");
    assert_eq!(held["16059781281"]["variation"]["attributes"]["cor"], "Azul");

    let (status, bad) =
        put("1", json!({"external_id": "2", "sku": "", "price": -1, "active": "yes", "unit": "UN"})).await;
    assert_eq!(status, 422);
    assert_eq!(bad["message"], "The given data was invalid.");
    let fields: Vec<&String> = bad["errors"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["active", "external_id", "name", "price", "sku"]);
    assert_eq!(bad["errors"]["sku"], json!(["The sku field is required."]));
    let (status, _) = put("3", json!({"sku": "A", "name": "A", "price": 1.234, "active": true, "unit": "UN"})).await;
    assert_eq!(status, 422, "prices carry at most two decimals");

    let del = |id: &str| send(&pdv, &t, reqwest::Method::DELETE, format!("/products/{id}"), None);
    assert_eq!(del("16059781281").await.0, 204);
    let (status, body) = del("16059781281").await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Product not found.")));
    assert!(pdv.products().is_empty());
}

#[tokio::test]
async fn a_bulk_takes_up_to_500_and_answers_per_item() {
    let pdv = cplug::spawn(Config::for_tests()).await.unwrap();
    let t = token(&pdv).await;
    let mut items: Vec<Value> = (0..500).map(|i| product(&format!("b{i:03}"), &format!("SKU-{i}"))).collect();
    items[7]["price"] = json!("caro");
    items[9] = json!({"sku": "no-id", "name": "x", "price": 1, "active": true, "unit": "UN"});
    let (status, body) = send(&pdv, &t, reqwest::Method::PUT, "/bulks/products", Some(json!({"items": items}))).await;
    assert_eq!(status, 200);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    assert_eq!(results[0]["external_id"], "b000");
    assert!(results[0]["id"].as_str().is_some_and(|id| !id.is_empty()) && results[0].get("error").is_none());
    assert_eq!(results[7]["error"], "The price must be a number.");
    assert!(results[7].get("id").is_none());
    assert!(results[9]["error"].as_str().unwrap().contains("external id"));
    assert_eq!(pdv.products().len(), 498);

    let too_many: Vec<Value> = (0..501).map(|i| product(&format!("c{i}"), "X")).collect();
    let (status, refused) =
        send(&pdv, &t, reqwest::Method::PUT, "/bulks/products", Some(json!({"items": too_many}))).await;
    assert_eq!(status, 422);
    assert_eq!(refused["errors"]["items"], json!(["The items may not have more than 500 items."]));
    assert_eq!(pdv.products().len(), 498, "a refused bulk stores nothing");
    let (status, _) = send(&pdv, &t, reqwest::Method::PUT, "/bulks/products", Some(json!({"items": []}))).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn products_are_listed_in_pages() {
    let pdv = cplug::spawn(Config::for_tests()).await.unwrap();
    let t = token(&pdv).await;
    let items: Vec<Value> = (0..250).map(|i| product(&format!("{}", 1000 + i), &format!("S{i}"))).collect();
    send(&pdv, &t, reqwest::Method::PUT, "/bulks/products", Some(json!({"items": items}))).await;
    let page = |q: &str| send(&pdv, &t, reqwest::Method::GET, format!("/products?{q}"), None);
    let (_, p3) = page("page=3&per_page=100").await;
    assert_eq!((p3["page"].clone(), p3["per_page"].clone(), p3["total"].clone()), (json!(3), json!(100), json!(250)));
    let data = p3["data"].as_array().unwrap();
    assert_eq!(data.len(), 50);
    assert_eq!(data[0]["external_id"], "1200", "in creation order");
    assert_eq!(page("page=4&per_page=100").await.1["data"], json!([]));
    let (status, body) = page("page=1&per_page=101").await;
    assert_eq!(
        (status, body["errors"]["per_page"].clone()),
        (422, json!(["The per page may not be greater than 100."]))
    );
    assert_eq!(page("page=0").await.0, 422);
}

#[tokio::test]
async fn past_the_rate_limit_answers_429_with_retry_after() {
    let pdv = cplug::spawn(Config { per_second: 5, ..Config::for_tests() }).await.unwrap();
    let t = token(&pdv).await;
    let http = reqwest::Client::new();
    let calls = (0..9).map(|_| http.get(format!("{}/products", pdv.base_url)).bearer_auth(&t).send());
    let answers = futures::future::join_all(calls).await;
    let limited: Vec<_> = answers.into_iter().map(Result::unwrap).filter(|r| r.status() == 429).collect();
    assert_eq!(limited.len(), 4);
    for r in limited {
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.json::<Value>().await.unwrap()["message"], "Too Many Attempts.");
    }
    assert_eq!(pdv.stats().rate_limited, 4);
}

#[tokio::test]
async fn injected_server_errors_use_cplugs_body() {
    let pdv = cplug::spawn(Config::for_tests()).await.unwrap();
    let t = token(&pdv).await;
    reqwest::Client::new()
        .put(format!("{}/faults", pdv.admin_url))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    let (status, body) = send(&pdv, &t, reqwest::Method::GET, "/products", None).await;
    assert_eq!((status, body), (500, json!({"message": "Server Error", "errors": {}})));
}
