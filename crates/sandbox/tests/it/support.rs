//! What the sandbox's tests share: a webhook receiver that records every post and answers as
//! told, the signature a receiver computes from scratch, JSON calls answering (status, body),
//! and a Bling client that connects through the OAuth flow.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, StatusCode},
};
use hmac::{Hmac, Mac};
use ponte_sandbox::bling::{self, Bling};
use serde_json::Value;
use sha2::Sha256;

/// One post a receiver got.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hook {
    /// A header's value, empty when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    /// The fields of a form-encoded body.
    pub fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// A webhook receiver on 127.0.0.1: answers `fail` to the first `failures` posts, `ok` after,
/// whatever the path.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Hook>>>,
}

impl Receiver {
    /// 503 to the first `failures` posts, 200 after.
    pub async fn start(failures: usize) -> Self {
        Self::answering(failures, 503, 200).await
    }

    pub async fn answering(failures: usize, fail: u16, ok: u16) -> Self {
        let seen: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let log = seen.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push(Hook { headers, body });
                let status = if log.len() <= failures { fail } else { ok };
                StatusCode::from_u16(status).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, seen }
    }

    pub fn seen(&self) -> Vec<Hook> {
        self.seen.lock().unwrap().clone()
    }

    /// What arrived once `n` posts did (or, failing that, what arrived in twenty seconds).
    pub async fn wait_for(&self, n: usize) -> Vec<Hook> {
        eventually(|| self.seen.lock().unwrap().len() >= n).await;
        self.seen()
    }
}

/// Waits until `done` holds, for twenty seconds at most (a bound, not a timing: the caller
/// asserts what it waited for).
pub async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a receiver computes to trust a delivery: `sha256=` and the lowercase hex
/// HMAC-SHA256 of the raw body, from scratch.
pub fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A JSON call: its status and body (`null` when the body is not JSON).
pub async fn call(method: reqwest::Method, url: &str, bearer: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.expect("the sandbox answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn get_json(url: &str) -> (u16, Value) {
    call(reqwest::Method::GET, url, None, None).await
}

pub async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    call(reqwest::Method::POST, url, None, Some(body)).await
}

/// A client of the Bling sandbox, as an app registered with it.
pub struct BlingClient {
    pub http: reqwest::Client,
    pub base: String,
    pub cfg: bling::Config,
}

impl BlingClient {
    /// Starts a Bling sandbox with `cfg` and a client for it.
    pub async fn start(cfg: bling::Config) -> (bling::Handle, Self) {
        let h = Bling::new(cfg.clone()).spawn(None).await.unwrap();
        let c = Self { http: reqwest::Client::new(), base: h.base_url.clone(), cfg };
        (h, c)
    }

    /// The token endpoint, with the app's Basic credentials.
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .basic_auth(&self.cfg.client_id, Some(&self.cfg.client_secret))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A merchant authorizes the app and the code is exchanged: the token answer.
    pub async fn connect(&self, h: &bling::Handle) -> Value {
        let url = format!("{}/oauth/authorize?response_type=code&client_id={}&state=s1", self.base, self.cfg.client_id);
        let (code, state) = h.authorize(&url).await.unwrap();
        assert_eq!(state, "s1");
        let (status, body) = self.token(&[("grant_type", "authorization_code"), ("code", &code)]).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A connected client's access token.
    pub async fn access_token(&self, h: &bling::Handle) -> String {
        self.connect(h).await["access_token"].as_str().unwrap().to_owned()
    }

    /// `GET` under the API base: status, body, and whether a `Retry-After` came.
    pub async fn get(&self, token: &str, path: &str) -> (u16, Value, bool) {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        let retry_after = r.headers().contains_key("retry-after");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null), retry_after)
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(token, reqwest::Method::POST, path, Some(&body)).await
    }

    pub async fn send(&self, token: &str, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        call(method, &format!("{}{path}", self.base), Some(token), body).await
    }
}
