//! The 360Envios hub's API over real HTTP: bearer tokens per merchant, products waiting for
//! approval, orders (409 on a repeated `external_id`, 422 edits from `in_transit` on, 422
//! cancels once delivered), lookups by `external_id`, and 429 with `Retry-After` past 5
//! requests a second per token.

use ponte_sandbox::envios360::{self, Config, Handle};
use serde_json::{Value, json};

struct Api<'a> {
    hub: &'a Handle,
    token: String,
    http: reqwest::Client,
}

impl Api<'_> {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value, Option<String>) {
        let mut req = self.http.request(method, format!("{}{path}", self.hub.base_url)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("the hub answers");
        let status = r.status().as_u16();
        let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (status, r.json().await.unwrap_or(Value::Null), retry)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self.send(reqwest::Method::PUT, path, Some(body)).await;
        (s, b)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, b, _) = self.send(reqwest::Method::GET, path, None).await;
        (s, b)
    }
}

fn api(hub: &Handle) -> Api<'_> {
    Api { hub, token: hub.config().api_token.clone(), http: reqwest::Client::new() }
}

fn order(external_id: &str) -> Value {
    json!({"external_id": external_id, "number": "123", "store_ref": "loja-centro",
           "customer": {"name": "Maria Silva", "document": "12345678909", "email": "maria@example.com"},
           "address": {"street": "Rua Direita", "number": "10", "district": "Sé", "city": "São Paulo", "state": "SP", "zip": "01001-000"},
           "items": [{"product_id": "pr_1", "external_product_id": "16059781281", "sku": "CAM-AZ-M", "name": "Camiseta",
                      "quantity": 2, "unit_price": 59.9}],
           "total": 119.8, "shipping_cost": 15.0})
}

async fn admin(hub: &Handle, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{}{path}", hub.admin_url)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn products_wait_for_approval_and_a_repeated_external_id_answers_409_with_the_id() {
    let hub = envios360::spawn(Config::for_tests()).await.unwrap();
    let a = api(&hub);
    let product = json!({"external_id": "16059781281", "sku": "CAM-AZ-M", "name": "Camiseta", "price": 59.9,
                         "gtin": "7891234567895", "weight_kg": 0.3, "dimensions_cm": {"width": 20, "height": 3, "depth": 30}});
    let (status, created) = a.post("/products", product.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(created["approval_status"], "pending");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, dup) = a.post("/products", product).await;
    assert_eq!(status, 409);
    assert_eq!(dup["id"], id.as_str());
    assert_eq!(dup["error"]["id"], id.as_str());
    assert_eq!(dup["error"]["code"], "duplicate_external_id");
    assert_eq!(hub.products().len(), 1);

    let (_, got) = a.get(&format!("/products/{id}")).await;
    assert_eq!((got["external_id"].as_str(), got["sku"].as_str()), (Some("16059781281"), Some("CAM-AZ-M")));
    assert_eq!(got["approval_status"], "pending");

    let (status, rejected) =
        admin(&hub, &format!("/products/{id}/reject"), json!({"reason": "Foto sem fundo branco"})).await;
    assert_eq!(status, 200, "{rejected}");
    let (_, got) = a.get(&format!("/products/{id}")).await;
    assert_eq!(
        (got["approval_status"].as_str(), got["rejection_reason"].as_str()),
        (Some("rejected"), Some("Foto sem fundo branco"))
    );
    admin(&hub, &format!("/products/{id}/approve"), json!({})).await;
    let (_, got) = a.get(&format!("/products/{id}")).await;
    assert_eq!(got["approval_status"], "approved");
    assert!(got.get("rejection_reason").is_none());

    let (status, bad) = a.post("/products", json!({"external_id": "", "sku": "X", "price": "10", "gtin": "12"})).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "validation_error");
    let fields: Vec<&str> =
        bad["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["external_id", "name", "price", "gtin"]);
    assert_eq!(a.get("/products/pr_999").await.0, 404);
}

#[tokio::test]
async fn orders_are_created_once_found_by_external_id_and_edited_until_in_transit() {
    let hub = envios360::spawn(Config::for_tests()).await.unwrap();
    let a = api(&hub);
    let (status, created) = a.post("/orders", order("12345678")).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("received")));
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, dup) = a.post("/orders", order("12345678")).await;
    assert_eq!((status, dup["id"].as_str()), (409, Some(id.as_str())), "a retried create finds the order");

    let (_, found) = a.get("/orders?external_id=12345678").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], id.as_str());
    assert_eq!(a.get("/orders?external_id=999").await.1, json!({"data": []}));

    let mut edited = order("12345678");
    edited["total"] = json!(129.8);
    let (status, updated) = a.put(&format!("/orders/{id}"), edited.clone()).await;
    assert_eq!((status, updated["total"].clone()), (200, json!(129.8)));
    let (_, got) = a.get(&format!("/orders/{id}")).await;
    assert_eq!(got["status"], "received");
    assert!(got["updated_at"].is_string() && got["tracking_code"].is_null());

    for expected in ["in_packing_list", "awaiting_shipment"] {
        let (_, moved) = admin(&hub, &format!("/orders/{id}/advance"), json!({})).await;
        assert_eq!(moved["status"], expected);
    }
    assert_eq!(a.put(&format!("/orders/{id}"), edited.clone()).await.0, 200, "editable before transit");
    let (_, got) = a.get(&format!("/orders/{id}")).await;
    assert!(got["tracking_code"].is_string(), "labels come with a tracking code: {got}");

    admin(&hub, &format!("/orders/{id}/advance"), json!({})).await;
    let (status, refused) = a.put(&format!("/orders/{id}"), edited).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("invalid_state")));
    let (status, _) = admin(&hub, &format!("/orders/{id}/status"), json!({"status": "awaiting_shipment"})).await;
    assert_eq!(status, 422, "statuses never move back");
    let (status, cancel) = a.post(&format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 422, "no cancel once in transit: {cancel}");
    admin(&hub, &format!("/orders/{id}/advance"), json!({})).await;
    assert_eq!(hub.order(&id).unwrap()["status"], "delivered");
    let (status, _) = a.post(&format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(status, 422, "no cancel once delivered");
    let (status, _) = admin(&hub, &format!("/orders/{id}/advance"), json!({})).await;
    assert_eq!(status, 422, "delivered is the end");
}

#[tokio::test]
async fn an_order_before_transit_can_be_cancelled_once_and_bad_bodies_name_their_fields() {
    let hub = envios360::spawn(Config::for_tests()).await.unwrap();
    let a = api(&hub);
    let id = a.post("/orders", order("1")).await.1["id"].as_str().unwrap().to_owned();
    hub.set_status(&id, "in_packing_list").unwrap();
    let (status, cancelled) = a.post(&format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!((status, cancelled), (200, json!({"id": id, "status": "cancelled"})));
    assert_eq!(a.post(&format!("/orders/{id}/cancel"), json!({})).await.0, 200, "cancelling again is harmless");
    assert_eq!(a.put(&format!("/orders/{id}"), order("1")).await.0, 422);
    assert!(hub.advance(&id).is_err());

    let mut bad = order("2");
    bad["address"]["zip"] = json!("123");
    bad["items"][0]["quantity"] = json!(0);
    bad["customer"] = json!({});
    let (status, body) = a.post("/orders", bad).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> =
        body["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["customer.name", "address.zip", "items.0.quantity"]);

    let r = reqwest::Client::new()
        .post(format!("{}/orders", hub.base_url))
        .bearer_auth(&hub.config().api_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");
    assert_eq!(a.get("/orders/o_1").await.0, 404);
}

#[tokio::test]
async fn tokens_are_per_merchant() {
    let hub = envios360::spawn(Config::for_tests()).await.unwrap();
    let a = api(&hub);
    let wrong = Api { token: "nope".into(), ..api(&hub) };
    let (status, body) = wrong.get("/orders?external_id=1").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));

    let id = a.post("/orders", order("77")).await.1["id"].as_str().unwrap().to_owned();
    let (status, _) = admin(&hub, "/merchants", json!({"token": "tok-other", "webhook_secret": "s"})).await;
    assert_eq!(status, 201);
    let other = Api { token: "tok-other".into(), ..api(&hub) };
    assert_eq!(other.get(&format!("/orders/{id}")).await.0, 404, "another merchant's order is not visible");
    assert_eq!(other.post("/orders", order("77")).await.0, 201, "external ids are per merchant");
}

#[tokio::test]
async fn more_than_five_requests_a_second_per_token_get_429_with_retry_after() {
    let hub = envios360::spawn(Config::default()).await.unwrap();
    hub.add_merchant("tok-b", None, "s");
    let a = api(&hub);
    let calls = (0..12).map(|_| a.send(reqwest::Method::GET, "/orders?external_id=1", None));
    let answers = futures::future::join_all(calls).await;
    let limited: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(limited.len(), 7, "5 a second are allowed");
    for (_, body, retry) in &limited {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["error"]["code"], "rate_limited");
    }
    assert_eq!(hub.rate_limited(), 7);
    let b = Api { token: "tok-b".into(), ..api(&hub) };
    assert_eq!(b.get("/orders?external_id=1").await.0, 200, "another token has its own budget");

    hub.clock().advance(std::time::Duration::from_secs(1));
    assert_eq!(a.get("/orders?external_id=1").await.0, 200, "a second later the window has room");
    let stats: Value = reqwest::get(format!("{}/stats", hub.admin_url)).await.unwrap().json().await.unwrap();
    assert_eq!(stats["rate_limited"], 7);
}

#[tokio::test]
async fn the_admin_state_shows_each_merchants_records() {
    let hub = envios360::spawn(Config::for_tests()).await.unwrap();
    let a = api(&hub);
    let id = a.post("/orders", order("42")).await.1["id"].as_str().unwrap().to_owned();
    let state: Value = reqwest::get(format!("{}/state", hub.admin_url)).await.unwrap().json().await.unwrap();
    let merchant = &state["merchants"][0];
    assert_eq!(merchant["token"], hub.config().api_token.as_str());
    assert_eq!(merchant["orders"][0]["id"], id.as_str());
    assert_eq!(merchant["orders"][0]["items"][0]["sku"], "CAM-AZ-M");
    assert_eq!(merchant["orders"][0]["total"], json!(119.8));
}

#[tokio::test]
async fn products_carry_up_to_ten_image_urls_and_a_bad_one_is_named_by_its_index() {
    let hub = envios360::spawn(Config::for_tests()).await.unwrap();
    let a = api(&hub);
    let images =
        json!([{"url": "https://cdn.bling.com.br/img/cam-az-m-1.jpg"}, {"url": "http://img.loja.example/cam.png"}]);
    let product =
        json!({"external_id": "16059781281", "sku": "CAM-AZ-M", "name": "Camiseta", "price": 59.9, "images": images});
    let (status, created) = a.post("/products", product).await;
    assert_eq!(status, 201, "{created}");
    let (_, got) = a.get(&format!("/products/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(got["images"], images, "stored and returned as sent");
    let (_, plain) = a.post("/products", json!({"external_id": "2", "sku": "B", "name": "B", "price": 1})).await;
    assert_eq!(a.get(&format!("/products/{}", plain["id"].as_str().unwrap())).await.1["images"], json!([]));

    let fields = |v: &Value| -> Vec<(String, String)> {
        v["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["field"].as_str().unwrap().to_owned(), f["message"].as_str().unwrap().to_owned()))
            .collect()
    };
    let bad = json!([{"url": "https://a.example/1.jpg"}, {}, "https://a.example/3.jpg", {"url": "ftp://a.example/4.jpg"},
                     {"url": "not a url"}, {"url": 5}]);
    let (status, refused) =
        a.post("/products", json!({"external_id": "3", "sku": "C", "name": "C", "price": 1, "images": bad})).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], "validation_error");
    assert_eq!(
        fields(&refused),
        [
            ("images[1].url".to_owned(), "is required".to_owned()),
            ("images[2]".to_owned(), "must be an object with a url".to_owned()),
            ("images[3].url".to_owned(), "must be an http or https URL".to_owned()),
            ("images[4].url".to_owned(), "must be an http or https URL".to_owned()),
            ("images[5].url".to_owned(), "must be an http or https URL".to_owned()),
        ]
    );
    let eleven: Vec<Value> = (0..11).map(|i| json!({"url": format!("https://a.example/{i}.jpg")})).collect();
    let (status, refused) =
        a.post("/products", json!({"external_id": "4", "sku": "D", "name": "D", "price": 1, "images": eleven})).await;
    assert_eq!(
        (status, fields(&refused)),
        (400, vec![("images".to_owned(), "must have at most 10 images".to_owned())])
    );
    let ten: Vec<Value> = (0..10).map(|i| json!({"url": format!("https://a.example/{i}.jpg")})).collect();
    let (status, _) =
        a.post("/products", json!({"external_id": "5", "sku": "E", "name": "E", "price": 1, "images": ten})).await;
    assert_eq!(status, 201, "ten is the most");
    assert_eq!(hub.products().len(), 3, "refused products are not stored");
}
