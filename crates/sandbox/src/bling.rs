//! A fake Bling v3 that behaves as `contracts/bling-v3.md` describes: OAuth with single-use
//! one-minute codes (reusing one revokes the grant), Basic client auth on a form-encoded token
//! endpoint, six-hour access tokens and rotating refresh tokens, the token endpoint's IP block
//! after 20 calls a minute, the per-account limit of 3 requests a second (and a daily cap)
//! answered with the documented 429 body and no `Retry-After`, the v3 error envelope, and the
//! resources ponte reads and writes: the account, products (with `criterio` and variations),
//! sales orders (parcelas validated against the total, situação changes, stock postings),
//! situações and formas de pagamento (both listed and created), depósitos, stock balances,
//! sales channels and the consumidor final.
//!
//! Time can be advanced (token expiry) and the rate windows scaled (fast tests); counters of
//! what the fake answered (requests, 429s, token calls) are kept for tests to assert on.

// Handlers short-circuit with the response to send; its size does not matter in a fake.
#![allow(clippy::result_large_err)]

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, patch, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    /// The account every approved authorization belongs to (32 hex digits, like Bling's).
    pub company_id: String,
    pub company_name: String,
    /// Where the authorize endpoint redirects (Bling uses the app's registered URI).
    pub redirect_uri: String,
    pub code_ttl: Duration,
    pub access_ttl: Duration,
    /// Requests per second per account.
    pub per_second: usize,
    pub daily: u64,
    /// Token endpoint calls per minute per IP before the hour-long block.
    pub token_calls_per_minute: usize,
    /// Divides every rate window (1.0 = Bling's real limits).
    pub time_scale: f64,
    /// Where webhooks go (the app's configured server, e.g. the gateway's `/webhooks/bling`).
    pub webhook_url: Option<String>,
    /// Delivery attempts before a webhook is abandoned and its resource's hook switched off
    /// (Bling retries for three days; tests shorten it), and the first wait between attempts.
    pub webhook_attempts: u32,
    pub webhook_backoff: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_id: "ponte-sandbox-app".into(),
            client_secret: "ponte-sandbox-secret-0123456789".into(),
            company_id: "d4475854366a36c86a37e792f9634a51".into(),
            company_name: "Loja Sandbox LTDA".into(),
            redirect_uri: "http://127.0.0.1:8080/oauth/bling/callback".into(),
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(21_600),
            per_second: 3,
            daily: 120_000,
            token_calls_per_minute: 20,
            time_scale: 1.0,
            webhook_url: None,
            webhook_attempts: 10,
            webhook_backoff: Duration::from_secs(5),
        }
    }
}

/// What the fake has answered, for tests to assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub api_requests: u64,
    pub rate_limited: u64,
    pub token_calls: u64,
    pub refreshes: u64,
    pub code_exchanges: u64,
    /// Refresh tokens presented after they had been rotated out.
    pub stale_refresh_tokens: u64,
    /// Webhooks answered 2xx.
    pub webhooks_delivered: u64,
    /// Resources ("product", "order") whose hook was switched off after failed deliveries.
    pub hooks_disabled: Vec<String>,
}

struct Grant {
    refresh_token: String,
    revoked: bool,
}

struct Code {
    grant: usize,
    issued: DateTime<Utc>,
    used: bool,
}

struct Access {
    grant: usize,
    expires: DateTime<Utc>,
}

#[derive(Default)]
struct Inner {
    deny_next: bool,
    offset: chrono::Duration,
    grants: Vec<Grant>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    /// Refresh tokens that were valid once and were rotated out.
    retired_refresh: HashMap<String, usize>,
    request_log: VecDeque<DateTime<Utc>>,
    token_log: VecDeque<DateTime<Utc>>,
    blocked_until: Option<DateTime<Utc>>,
    day: (i64, u64),
    stats: Stats,
    next_id: i64,
    products: BTreeMap<i64, Value>,
    orders: BTreeMap<i64, Value>,
    /// (product id, depósito id) → balance.
    stock: HashMap<(i64, i64), rust_decimal::Decimal>,
    situacoes: Vec<Value>,
    /// Seeded from [`FORMAS`]; merchants add their own.
    formas: Vec<Value>,
}

/// The fake's state; clone freely.
#[derive(Clone)]
pub struct Bling {
    config: Arc<Config>,
    inner: Arc<Mutex<Inner>>,
    faults: crate::common::Faults,
}

/// The Vendas module of the default situações.
pub const MODULO_VENDAS: i64 = 98_310;
/// The account's general depósito.
pub const DEPOSITO_GERAL: i64 = 14_886_873_196;
/// The "consumidor final" contact.
pub const CONSUMIDOR_FINAL: i64 = 16_891_556_421;
/// The account's one sales channel (loja), its point of sale.
pub const CANAL_PDV: i64 = 204_511_339;

impl Bling {
    pub fn new(config: Config) -> Self {
        let situacoes = [
            (6, 0, "Em aberto"),
            (9, 1, "Atendido"),
            (12, 2, "Cancelado"),
            (15, 3, "Em andamento"),
            (18, 4, "Venda agenciada"),
            (21, 10, "Em digitação"),
            (24, 11, "Verificado"),
        ]
        .into_iter()
        .map(|(id, valor, nome)| json!({"id": id, "nome": nome, "idHerdado": 0, "cor": "#E9DC40", "valor": valor}))
        .collect();
        let formas = FORMAS
            .iter()
            .map(|(id, descricao, tipo)| {
                json!({"id": id, "descricao": descricao, "tipoPagamento": tipo, "situacao": 1, "fixa": false,
                       "padrao": i64::from(*tipo == 1), "finalidade": 3})
            })
            .collect();
        let inner = Inner { next_id: 16_000_000_000, situacoes, formas, ..Default::default() };
        let faults = crate::common::Faults::new(crate::common::Native {
            server_error: native_server_error,
            rate_limited: native_rate_limited,
        });
        Self { config: Arc::new(config), inner: Arc::new(Mutex::new(inner)), faults }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn now(&self, inner: &Inner) -> DateTime<Utc> {
        Utc::now() + inner.offset
    }

    /// Moves the fake's clock forward (access tokens and codes expire).
    pub fn advance(&self, by: Duration) {
        self.inner.lock().offset += chrono::Duration::from_std(by).unwrap_or_default();
    }

    /// The next authorization is denied (`error=access_denied`).
    pub fn deny_next_authorization(&self) {
        self.inner.lock().deny_next = true;
    }

    /// Revokes every grant (the merchant removed the app): refresh tokens stop working.
    pub fn revoke_all(&self) {
        for g in &mut self.inner.lock().grants {
            g.revoked = true;
        }
    }

    pub fn stats(&self) -> Stats {
        self.inner.lock().stats.clone()
    }

    /// Adds a product as a merchant would in Bling's UI; returns its id. `product` is Bling's
    /// product JSON without `id` (`nome`, `codigo`, `preco`, `situacao`, `formato`, …).
    pub fn seed_product(&self, mut product: Value) -> i64 {
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let now = self.now(&inner);
        if let Value::Object(m) = &mut product {
            m.insert("id".into(), json!(id));
            // The spec requires `cloneInfo` on a variation's parent reference.
            if let Some(Value::Object(pai)) = m.get_mut("variacao").and_then(|v| v.get_mut("produtoPai")) {
                pai.entry("cloneInfo").or_insert(json!(false));
            }
            m.entry("situacao").or_insert(json!("A"));
            m.entry("formato").or_insert(json!("S"));
            m.entry("tipo").or_insert(json!("P"));
            m.insert("_criado".into(), json!(now.to_rfc3339()));
        }
        inner.products.insert(id, product);
        id
    }

    /// Sets a product's stock on a depósito.
    pub fn set_stock(&self, product: i64, deposito: i64, balance: rust_decimal::Decimal) {
        self.inner.lock().stock.insert((product, deposito), balance);
    }

    pub fn stock(&self, product: i64, deposito: i64) -> rust_decimal::Decimal {
        self.inner.lock().stock.get(&(product, deposito)).copied().unwrap_or_default()
    }

    pub fn product(&self, id: i64) -> Option<Value> {
        self.inner.lock().products.get(&id).cloned()
    }

    pub fn orders(&self) -> Vec<Value> {
        self.inner.lock().orders.values().cloned().collect()
    }

    /// Sends a v1 webhook for a change to `resource` (`product`, `order`), signed with the
    /// client secret, to the configured URL: retried with doubling waits until a 2xx; after the
    /// last attempt the resource's hook is switched off and nothing more is sent for it.
    pub fn emit(&self, resource: &str, action: &str, data: Value) {
        let Some(url) = self.config.webhook_url.clone() else { return };
        if self.inner.lock().stats.hooks_disabled.iter().any(|r| r == resource) {
            return;
        }
        let body = json!({"eventId": uuid::Uuid::now_v7().to_string(), "date": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "version": "v1", "event": format!("{resource}.{action}"), "companyId": self.config.company_id, "data": data})
        .to_string();
        let signature = format!("sha256={}", crate::cplug::sign(&self.config.client_secret, body.as_bytes()));
        for _ in 0..self.faults.webhook_copies() {
            let (me, url, body, signature, resource) =
                (self.clone(), url.clone(), body.clone(), signature.clone(), resource.to_owned());
            let hold = self.faults.webhook_hold();
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                let http = reqwest::Client::new();
                let mut wait = me.config.webhook_backoff.div_f64(me.config.time_scale.max(1e-9));
                for _ in 0..me.config.webhook_attempts {
                    let sent = http
                        .post(&url)
                        .header(header::CONTENT_TYPE, "application/json")
                        .header("X-Bling-Signature-256", &signature)
                        .timeout(Duration::from_secs(5))
                        .body(body.clone())
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        me.inner.lock().stats.webhooks_delivered += 1;
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                let mut inner = me.inner.lock();
                if !inner.stats.hooks_disabled.contains(&resource) {
                    inner.stats.hooks_disabled.push(resource);
                }
            });
        }
    }

    /// A person changes a product in Bling's UI: the change is stored and `product.updated` sent.
    pub fn edit_product_in_ui(&self, id: i64, changes: Value) -> bool {
        let updated = {
            let mut inner = self.inner.lock();
            let Some(p) = inner.products.get_mut(&id) else { return false };
            if let (Value::Object(p), Value::Object(c)) = (p, changes) {
                p.extend(c);
            }
            public(&inner.products[&id])
        };
        self.emit("product", "updated", webhook_product(&updated));
        true
    }

    /// The router, to serve under any base (`/Api/v3` is part of its paths).
    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/Api/v3/oauth/authorize", get(authorize))
            .route("/Api/v3/oauth/token", post(token))
            .route("/Api/v3/empresas/me/dados-basicos", get(dados_basicos))
            .route("/Api/v3/produtos", get(list_produtos).post(create_produto))
            .route("/Api/v3/produtos/{id}", get(get_produto).put(put_produto))
            .route("/Api/v3/produtos/{id}/situacoes", patch(produto_situacao))
            .route("/Api/v3/pedidos/vendas", get(list_pedidos).post(create_pedido))
            .route("/Api/v3/pedidos/vendas/{id}", get(get_pedido))
            .route("/Api/v3/pedidos/vendas/{id}/situacoes/{situacao}", patch(pedido_situacao))
            .route("/Api/v3/pedidos/vendas/{id}/lancar-estoque", post(lancar_estoque))
            .route("/Api/v3/pedidos/vendas/{id}/lancar-estoque/{deposito}", post(lancar_estoque_em))
            .route("/Api/v3/pedidos/vendas/{id}/estornar-estoque", post(estornar_estoque))
            .route("/Api/v3/situacoes", post(create_situacao))
            .route("/Api/v3/situacoes/modulos", get(modulos))
            .route("/Api/v3/situacoes/modulos/{id}", get(situacoes_do_modulo))
            .route("/Api/v3/formas-pagamentos", get(formas_pagamento).post(create_forma_pagamento))
            .route("/Api/v3/depositos", get(depositos))
            .route("/Api/v3/canais-venda", get(canais_venda))
            .route("/Api/v3/contatos/consumidor-final", get(consumidor_final))
            .route("/Api/v3/estoques/saldos", get(saldos))
            .route("/__admin/stats", get(admin_stats))
            .route("/__admin/state", get(admin_state))
            .fallback(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "RESOURCE_NOT_FOUND",
                    "Recurso não encontrado",
                    "O recurso requisitado não foi encontrado. Verifique se o endpoint solicitado está correto.",
                )
            })
            .with_state(self.clone());
        self.faults.wrap(router)
    }

    /// Faults switched on at run time (also through `PUT /__admin/faults`).
    pub fn faults(&self) -> &crate::common::Faults {
        &self.faults
    }

    /// Serves the fake on `listener` (or 127.0.0.1:0) until the handle is dropped.
    pub async fn spawn(self, listener: Option<TcpListener>) -> std::io::Result<Handle> {
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await?,
        };
        let addr = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Handle { addr, base_url: format!("http://{addr}/Api/v3"), bling: self, task })
    }
}

/// A running fake.
pub struct Handle {
    pub addr: SocketAddr,
    /// The API base, e.g. `http://127.0.0.1:41234/Api/v3` (OAuth lives under it too).
    pub base_url: String,
    pub bling: Bling,
    task: JoinHandle<()>,
}

impl Handle {
    /// What a merchant's browser does: opens the authorize URL and returns the `code` Bling
    /// redirects with (or the `error` when denied), for `state`.
    pub async fn authorize(&self, authorize_url: &str) -> Result<(String, String), String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client.get(authorize_url).send().await.map_err(|e| e.to_string())?;
        let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or("no redirect")?;
        let url = url::Url::parse(location).map_err(|e| e.to_string())?;
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        match (q.get("code"), q.get("error")) {
            (Some(code), _) => Ok((code.clone(), q.get("state").cloned().unwrap_or_default())),
            (_, Some(err)) => Err(err.clone()),
            _ => Err("redirect without code or error".into()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: &str, description: &str) -> Response {
    (status, Json(json!({"error": {"type": kind, "message": message, "description": description}}))).into_response()
}

fn validation(fields: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"type": "VALIDATION_ERROR", "message": "Não foi possível salvar o registro",
            "description": "O registro não pode ser salvo, pois ocorreram problemas em sua validação.", "fields": fields}})),
    )
        .into_response()
}

fn data(status: StatusCode, value: Value) -> Response {
    (status, Json(json!({"data": value}))).into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    state: String,
}

async fn authorize(State(b): State<Bling>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id != b.config.client_id || q.response_type != "code" {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "invalid_request",
            "Aplicativo não encontrado ou parâmetros inválidos",
        );
    }
    let mut url = match url::Url::parse(&b.config.redirect_uri) {
        Ok(u) => u,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "SERVER_ERROR", "redirect", "bad redirect URI"),
    };
    let mut inner = b.inner.lock();
    if std::mem::take(&mut inner.deny_next) {
        url.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "O usuário negou o acesso")
            .append_pair("state", &q.state);
        return Redirect::to(url.as_str()).into_response();
    }
    inner.grants.push(Grant { refresh_token: String::new(), revoked: false });
    let grant = inner.grants.len() - 1;
    let code = hex::encode(rand::random::<[u8; 20]>());
    let issued = b.now(&inner);
    inner.codes.insert(code.clone(), Code { grant, issued, used: false });
    url.query_pairs_mut().append_pair("code", &code).append_pair("state", &q.state);
    Redirect::to(url.as_str()).into_response()
}

fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(raw.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn issue(b: &Bling, inner: &mut Inner, grant: usize) -> Value {
    let access = hex::encode(rand::random::<[u8; 20]>());
    let refresh = hex::encode(rand::random::<[u8; 20]>());
    let expires = b.now(inner) + chrono::Duration::from_std(b.config.access_ttl).unwrap_or_default();
    inner.access.insert(access.clone(), Access { grant, expires });
    let old = std::mem::replace(&mut inner.grants[grant].refresh_token, refresh.clone());
    if !old.is_empty() {
        inner.retired_refresh.insert(old, grant);
    }
    json!({"access_token": access, "expires_in": b.config.access_ttl.as_secs(), "token_type": "Bearer",
           "scope": "98309 318257570", "refresh_token": refresh})
}

async fn token(State(b): State<Bling>, headers: HeaderMap, body: String) -> Response {
    let mut inner = b.inner.lock();
    let now = b.now(&inner);
    inner.stats.token_calls += 1;
    if inner.blocked_until.is_some_and(|until| until > now) {
        return error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "IP bloqueado",
            "Muitas requisições ao endpoint de token; tente novamente mais tarde.",
        );
    }
    let window = chrono::Duration::milliseconds((60_000.0 / b.config.time_scale) as i64);
    inner.token_log.push_back(now);
    while inner.token_log.front().is_some_and(|t| *t + window < now) {
        inner.token_log.pop_front();
    }
    if inner.token_log.len() > b.config.token_calls_per_minute {
        inner.blocked_until = Some(now + chrono::Duration::milliseconds((3_600_000.0 / b.config.time_scale) as i64));
        return error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "IP bloqueado",
            "Muitas requisições ao endpoint de token; tente novamente mais tarde.",
        );
    }
    let ok_client =
        basic_client(&headers).is_some_and(|(id, secret)| id == b.config.client_id && secret == b.config.client_secret);
    if !ok_client {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "invalid_client",
            "The client credentials are invalid",
        );
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let invalid_grant = |d: &str| error(StatusCode::BAD_REQUEST, "invalid_grant", "invalid_grant", d);
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            inner.stats.code_exchanges += 1;
            let code_value = form.get("code").cloned().unwrap_or_default();
            let Some(code) = inner.codes.get_mut(&code_value) else {
                return invalid_grant("The authorization code is invalid");
            };
            let grant = code.grant;
            if code.used {
                // Reuse revokes the user's access.
                inner.grants[grant].revoked = true;
                inner.access.retain(|_, a| a.grant != grant);
                return error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "Invalid authorization code",
                    "This authorization code has already been used, for security reasons the user has had access revoked",
                );
            }
            code.used = true;
            if code.issued + chrono::Duration::from_std(b.config.code_ttl).unwrap_or_default() < now {
                return invalid_grant("The authorization code has expired");
            }
            let body = issue(&b, &mut inner, grant);
            (StatusCode::OK, Json(body)).into_response()
        }
        Some("refresh_token") => {
            inner.stats.refreshes += 1;
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            let grant = inner.grants.iter().position(|g| !rt.is_empty() && g.refresh_token == rt);
            let Some(grant) = grant else {
                if inner.retired_refresh.contains_key(&rt) {
                    inner.stats.stale_refresh_tokens += 1;
                }
                return invalid_grant("The refresh token is invalid");
            };
            if inner.grants[grant].revoked {
                return invalid_grant("The refresh token was revoked");
            }
            let body = issue(&b, &mut inner, grant);
            (StatusCode::OK, Json(body)).into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, "invalid_request", "invalid_request", "grant_type is required"),
    }
}

/// Bearer check plus the account's rate limits; the answer to send instead, when refused.
fn gate(b: &Bling, headers: &HeaderMap) -> Result<(), Response> {
    let mut inner = b.inner.lock();
    let now = b.now(&inner);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let valid = match inner.access.get(&token) {
        None => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "invalid_token",
                "The access token provided is invalid",
            ));
        }
        Some(a) if a.expires < now => false,
        Some(a) => !inner.grants[a.grant].revoked,
    };
    if !valid {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "invalid_token",
            "The access token provided has expired",
        ));
    }
    inner.stats.api_requests += 1;
    let day = now.timestamp().div_euclid(86_400);
    if inner.day.0 != day {
        inner.day = (day, 0);
    }
    if inner.day.1 >= b.config.daily {
        inner.stats.rate_limited += 1;
        return Err(too_many(
            b.config.daily,
            "day",
            "O limite de requisições por dia foi atingido, tente novamente amanhã.",
        ));
    }
    let window = chrono::Duration::milliseconds((1_000.0 / b.config.time_scale) as i64);
    while inner.request_log.front().is_some_and(|t| *t + window <= now) {
        inner.request_log.pop_front();
    }
    if inner.request_log.len() >= b.config.per_second {
        inner.stats.rate_limited += 1;
        return Err(too_many(
            b.config.per_second as u64,
            "second",
            "O limite de requisições por segundo foi atingido, tente novamente mais tarde.",
        ));
    }
    inner.request_log.push_back(now);
    inner.day.1 += 1;
    Ok(())
}

fn too_many(limit: u64, period: &str, description: &str) -> Response {
    // Bling sends no Retry-After.
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({"error": {"type": "TOO_MANY_REQUESTS", "message": "Limite de requisições atingido.",
            "description": description, "limit": limit, "period": period}})),
    )
        .into_response()
}

macro_rules! gated {
    ($b:expr, $h:expr) => {
        if let Err(r) = gate(&$b, &$h) {
            return r;
        }
    };
}

async fn dados_basicos(State(b): State<Bling>, h: HeaderMap) -> Response {
    gated!(b, h);
    data(
        StatusCode::OK,
        json!({"id": b.config.company_id, "nome": b.config.company_name, "cnpj": "12.345.657/8910-11",
        "email": "contato@loja.example", "dataContrato": "2024-12-31"}),
    )
}

/// Repeated `name[]=v` query values.
fn multi(raw: &Option<String>, name: &str) -> Vec<String> {
    let pairs: Vec<(String, String)> =
        raw.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    pairs.into_iter().filter(|(k, _)| k == name).map(|(_, v)| v).collect()
}

fn single(raw: &Option<String>, name: &str) -> Option<String> {
    multi(raw, name).into_iter().next()
}

fn page_of(items: Vec<Value>, raw: &Option<String>) -> Result<Vec<Value>, Response> {
    let pagina: usize = single(raw, "pagina").map(|p| p.parse().unwrap_or(0)).unwrap_or(1);
    let limite: usize = single(raw, "limite").map(|p| p.parse().unwrap_or(0)).unwrap_or(100);
    if pagina < 1 || limite < 1 {
        return Err(validation(json!([{"code": 1, "msg": "Parâmetros de paginação inválidos", "element": "pagina"}])));
    }
    let limite = limite.min(100);
    Ok(items.into_iter().skip((pagina - 1) * limite).take(limite).collect())
}

fn public(p: &Value) -> Value {
    let mut p = p.clone();
    if let Value::Object(m) = &mut p {
        m.retain(|k, _| !k.starts_with('_'));
    }
    p
}

async fn list_produtos(State(b): State<Bling>, h: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    gated!(b, h);
    let inner = b.inner.lock();
    let now = b.now(&inner);
    // criterio 1 (the default, "últimos incluídos") shows only products added in the last
    // seven days: the default that hides most of an older catalog.
    let criterio = single(&raw, "criterio").unwrap_or_else(|| "1".into());
    let ids: Vec<i64> = multi(&raw, "idsProdutos[]").iter().filter_map(|s| s.parse().ok()).collect();
    let codigos = multi(&raw, "codigos[]");
    let items: Vec<Value> = inner
        .products
        .values()
        .filter(|p| {
            let situacao = p["situacao"].as_str().unwrap_or("A");
            let recent = p["_criado"]
                .as_str()
                .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
                .is_some_and(|c| now - c.with_timezone(&Utc) < chrono::Duration::days(7));
            let by_criterio = match criterio.as_str() {
                "1" => recent && situacao != "E",
                "2" => situacao == "A",
                "3" => situacao == "I",
                "4" => situacao == "E",
                _ => true,
            };
            by_criterio
                && (ids.is_empty() || p["id"].as_i64().is_some_and(|id| ids.contains(&id)))
                && (codigos.is_empty() || p["codigo"].as_str().is_some_and(|c| codigos.iter().any(|x| x == c)))
        })
        .map(|p| {
            let mut item = json!({"id": p["id"], "nome": p["nome"], "codigo": p["codigo"].as_str().unwrap_or_default(), "preco": p["preco"],
                "tipo": p["tipo"], "situacao": p["situacao"], "formato": p["formato"]});
            if let Some(parent) = p["variacao"]["produtoPai"]["id"].as_i64() {
                item["idProdutoPai"] = json!(parent);
            }
            item
        })
        .collect();
    match page_of(items, &raw) {
        Ok(page) => data(StatusCode::OK, Value::Array(page)),
        Err(r) => r,
    }
}

async fn get_produto(State(b): State<Bling>, h: HeaderMap, Path(id): Path<String>) -> Response {
    gated!(b, h);
    let inner = b.inner.lock();
    let Some(p) = id.parse::<i64>().ok().and_then(|id| inner.products.get(&id)) else {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O produto não foi encontrado.",
        );
    };
    let mut out = public(p);
    if p["formato"] == "V" {
        let pid = p["id"].as_i64();
        let vars: Vec<Value> =
            inner.products.values().filter(|v| v["variacao"]["produtoPai"]["id"].as_i64() == pid).map(public).collect();
        out["variacoes"] = Value::Array(vars);
    }
    data(StatusCode::OK, out)
}

fn check_produto(body: &Value) -> Result<(), Response> {
    let nome = body["nome"].as_str().unwrap_or_default();
    if nome.trim().is_empty() {
        return Err(validation(
            json!([{"code": 4, "msg": "O nome do produto deve ser informado", "element": "nome", "namespace": "PRODUTOS"}]),
        ));
    }
    if nome.chars().count() > 120 {
        return Err(validation(
            json!([{"code": 5, "msg": "O nome do produto deve ter no máximo 120 caracteres", "element": "nome", "namespace": "PRODUTOS"}]),
        ));
    }
    Ok(())
}

async fn create_produto(State(b): State<Bling>, h: HeaderMap, body: Option<Json<Value>>) -> Response {
    gated!(b, h);
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD_ERROR",
            "Não foi possível executar a operação",
            "Nenhum dado foi informado na requisição.",
        );
    };
    if let Err(r) = check_produto(&body) {
        return r;
    }
    let id = b.seed_product(body);
    if let Some(p) = b.product(id) {
        b.emit("product", "created", webhook_product(&public(&p)));
    }
    data(
        StatusCode::CREATED,
        json!({"id": id, "variations": {"saved": [], "updated": [], "deleted": []}, "warnings": []}),
    )
}

async fn put_produto(State(b): State<Bling>, h: HeaderMap, Path(id): Path<i64>, body: Option<Json<Value>>) -> Response {
    gated!(b, h);
    let Some(Json(mut body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD_ERROR",
            "Não foi possível executar a operação",
            "Nenhum dado foi informado na requisição.",
        );
    };
    if let Err(r) = check_produto(&body) {
        return r;
    }
    let mut inner = b.inner.lock();
    let Some(existing) = inner.products.get(&id).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O produto não foi encontrado.",
        );
    };
    if let Value::Object(m) = &mut body {
        m.insert("id".into(), json!(id));
        m.insert("_criado".into(), existing["_criado"].clone());
        m.entry("situacao").or_insert(existing["situacao"].clone());
        m.entry("formato").or_insert(existing["formato"].clone());
    }
    inner.products.insert(id, body.clone());
    drop(inner);
    b.emit("product", "updated", webhook_product(&public(&body)));
    data(StatusCode::OK, json!({"id": id, "variations": {"saved": [], "updated": [], "deleted": []}, "warnings": []}))
}

async fn produto_situacao(
    State(b): State<Bling>,
    h: HeaderMap,
    Path(id): Path<i64>,
    body: Option<Json<Value>>,
) -> Response {
    gated!(b, h);
    let situacao = body.and_then(|Json(v)| v["situacao"].as_str().map(str::to_owned)).unwrap_or_default();
    if !["A", "I", "E"].contains(&situacao.as_str()) {
        return validation(json!([{"code": 7, "msg": "Situação inválida", "element": "situacao"}]));
    }
    let mut inner = b.inner.lock();
    match inner.products.get_mut(&id) {
        Some(p) => {
            // Changing a product to "excluído" fires updated, as in Bling.
            p["situacao"] = json!(situacao);
            let payload = webhook_product(&public(p));
            drop(inner);
            b.emit("product", "updated", payload);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O produto não foi encontrado.",
        ),
    }
}

fn dec(v: &Value) -> Option<rust_decimal::Decimal> {
    match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

async fn create_pedido(State(b): State<Bling>, h: HeaderMap, body: Option<Json<Value>>) -> Response {
    gated!(b, h);
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD_ERROR",
            "Não foi possível executar a operação",
            "Nenhum dado foi informado na requisição.",
        );
    };
    let mut fields = Vec::new();
    if body["contato"]["id"].as_i64().is_none() {
        fields.push(json!({"code": 36, "msg": "O contato da venda deve ser informado", "element": "contato", "namespace": "VENDAS"}));
    }
    let itens = body["itens"].as_array().cloned().unwrap_or_default();
    if itens.is_empty() {
        fields.push(json!({"code": 40, "msg": "A venda deve possuir ao menos um item", "element": "itens", "namespace": "VENDAS"}));
    }
    let mut total = rust_decimal::Decimal::ZERO;
    {
        let inner = b.inner.lock();
        for (i, item) in itens.iter().enumerate() {
            let (q, v) = (dec(&item["quantidade"]), dec(&item["valor"]));
            if q.is_none() || v.is_none() {
                fields.push(json!({"code": 41, "msg": "Quantidade e valor do item devem ser informados", "element": "itens", "namespace": "VENDAS", "index": i}));
                continue;
            }
            let desconto = dec(&item["desconto"]).unwrap_or_default();
            let line = q.unwrap_or_default() * v.unwrap_or_default();
            total += line - line * desconto / rust_decimal::Decimal::from(100);
            if item["produto"]["id"].as_i64().is_some_and(|id| !inner.products.contains_key(&id)) {
                fields.push(json!({"code": 42, "msg": "Produto não encontrado", "element": "produto", "namespace": "VENDAS", "index": i}));
            }
        }
    }
    if let Some(d) = body["desconto"].as_object() {
        let valor = dec(&d["valor"]).unwrap_or_default();
        total -= if d.get("unidade").and_then(Value::as_str) == Some("PERCENTUAL") {
            total * valor / rust_decimal::Decimal::from(100)
        } else {
            valor
        };
    }
    total = total.round_dp(2);
    let parcelas = body["parcelas"].as_array().cloned().unwrap_or_default();
    let sum: rust_decimal::Decimal = parcelas.iter().filter_map(|p| dec(&p["valor"])).sum();
    if !parcelas.is_empty() && sum.round_dp(2) != total {
        fields.push(json!({"code": 22, "msg": "O somatório do valor das parcelas difere do total da venda", "element": "parcelas", "namespace": "VENDAS"}));
    }
    let formas: Vec<i64> = b.inner.lock().formas.iter().filter_map(|f| f["id"].as_i64()).collect();
    let bad: Vec<Value> = parcelas
        .iter()
        .enumerate()
        .filter(|(_, p)| !p["formaPagamento"]["id"].as_i64().is_some_and(|id| formas.contains(&id)))
        .map(|(i, _)| json!({"index": i + 1, "code": 12, "msg": "Id da forma de pagamento inválido.", "element": "formaPagamento", "namespace": "VENDAS"}))
        .collect();
    if !bad.is_empty() {
        fields.push(json!({"code": 49, "msg": "Uma ou mais parcelas da venda possuem erros de validação", "element": "parcelas", "namespace": "VENDAS", "collection": bad}));
    }
    if !fields.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"type": "VALIDATION_ERROR", "message": "Não foi possível salvar a venda",
                "description": "A venda não pode ser salva, pois ocorreram problemas em sua validação.", "fields": fields}})),
        )
            .into_response();
    }
    let mut inner = b.inner.lock();
    inner.next_id += 1;
    let id = inner.next_id;
    let numero = inner.orders.len() as i64 + 1;
    let mut order = body.clone();
    order["id"] = json!(id);
    order["numero"] = json!(numero);
    order["total"] = json!(total.to_string().parse::<f64>().unwrap_or_default());
    order["situacao"] = json!({"id": 6, "valor": 0});
    order["_estoque_lancado"] = json!(false);
    // Bling answers with the contact's name and a loja, even when the order was posted without.
    let contato_id = order["contato"]["id"].as_i64().unwrap_or_default();
    order["contato"] = json!({"id": contato_id, "nome": if contato_id == CONSUMIDOR_FINAL { "Consumidor Final".to_owned() } else { format!("Contato {contato_id}") },
        "tipoPessoa": "F", "numeroDocumento": ""});
    if !order["loja"].is_object() {
        order["loja"] = json!({"id": 0});
    }
    // Stored items and parcelas get ids of their own (sending a stale one back is an error).
    for list in ["itens", "parcelas"] {
        if let Some(Value::Array(entries)) = order.get_mut(list) {
            for e in entries {
                inner.next_id += 1;
                e["id"] = json!(inner.next_id);
            }
        }
    }
    let payload = webhook_order(&order);
    inner.orders.insert(id, order);
    drop(inner);
    b.emit("order", "created", payload);
    data(StatusCode::CREATED, json!({"id": id, "alertas": [], "rastreamento": {}}))
}

async fn list_pedidos(State(b): State<Bling>, h: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    gated!(b, h);
    let inner = b.inner.lock();
    let lojas = multi(&raw, "numerosLojas[]");
    let situacoes: Vec<i64> = multi(&raw, "idsSituacoes[]").iter().filter_map(|s| s.parse().ok()).collect();
    let items: Vec<Value> = inner
        .orders
        .values()
        .filter(|o| lojas.is_empty() || o["numeroLoja"].as_str().is_some_and(|n| lojas.iter().any(|l| l == n)))
        .filter(|o| situacoes.is_empty() || o["situacao"]["id"].as_i64().is_some_and(|s| situacoes.contains(&s)))
        .map(|o| {
            json!({"id": o["id"], "numero": o["numero"], "numeroLoja": o["numeroLoja"], "data": o["data"],
            "dataSaida": o["dataSaida"], "dataPrevista": o["dataPrevista"], "totalProdutos": o["total"],
            "total": o["total"], "contato": o["contato"], "situacao": o["situacao"], "loja": o["loja"]})
        })
        .collect();
    match page_of(items, &raw) {
        Ok(page) => data(StatusCode::OK, Value::Array(page)),
        Err(r) => r,
    }
}

async fn get_pedido(State(b): State<Bling>, h: HeaderMap, Path(id): Path<i64>) -> Response {
    gated!(b, h);
    match b.inner.lock().orders.get(&id) {
        Some(o) => data(StatusCode::OK, public(o)),
        None => error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O pedido de venda não foi encontrado.",
        ),
    }
}

async fn pedido_situacao(State(b): State<Bling>, h: HeaderMap, Path((id, situacao)): Path<(i64, i64)>) -> Response {
    gated!(b, h);
    let mut inner = b.inner.lock();
    let Some(valor) = inner.situacoes.iter().find(|s| s["id"] == situacao).map(|s| s["valor"].clone()) else {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "A situação não foi encontrada.",
        );
    };
    match inner.orders.get_mut(&id) {
        Some(o) => {
            o["situacao"] = json!({"id": situacao, "valor": valor});
            let payload = webhook_order(o);
            drop(inner);
            b.emit("order", "updated", payload);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O pedido de venda não foi encontrado.",
        ),
    }
}

fn post_stock(b: &Bling, id: i64, deposito: i64, sign: i32) -> Response {
    let mut inner = b.inner.lock();
    let Some(order) = inner.orders.get(&id).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O pedido de venda não foi encontrado.",
        );
    };
    let posted = order["_estoque_lancado"].as_bool().unwrap_or(false);
    if (sign > 0) == posted {
        let msg =
            if posted { "O estoque desta venda já foi lançado" } else { "O estoque desta venda não foi lançado" };
        return validation(json!([{"code": 60, "msg": msg, "element": "estoque", "namespace": "VENDAS"}]));
    }
    let deposito = if sign > 0 { deposito } else { order["_deposito"].as_i64().unwrap_or(DEPOSITO_GERAL) };
    for item in order["itens"].as_array().cloned().unwrap_or_default() {
        if let (Some(pid), Some(q)) = (item["produto"]["id"].as_i64(), dec(&item["quantidade"])) {
            let e = inner.stock.entry((pid, deposito)).or_default();
            *e += if sign > 0 { -q } else { q };
        }
    }
    if let Some(o) = inner.orders.get_mut(&id) {
        o["_estoque_lancado"] = json!(sign > 0);
        o["_deposito"] = json!(deposito);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn lancar_estoque(State(b): State<Bling>, h: HeaderMap, Path(id): Path<i64>) -> Response {
    gated!(b, h);
    post_stock(&b, id, DEPOSITO_GERAL, 1)
}

async fn lancar_estoque_em(State(b): State<Bling>, h: HeaderMap, Path((id, deposito)): Path<(i64, i64)>) -> Response {
    gated!(b, h);
    if !DEPOSITOS.iter().any(|d| d.0 == deposito) {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O depósito não foi encontrado.",
        );
    }
    post_stock(&b, id, deposito, 1)
}

async fn estornar_estoque(State(b): State<Bling>, h: HeaderMap, Path(id): Path<i64>) -> Response {
    gated!(b, h);
    post_stock(&b, id, 0, -1)
}

async fn modulos(State(b): State<Bling>, h: HeaderMap) -> Response {
    gated!(b, h);
    data(
        StatusCode::OK,
        json!([{"id": MODULO_VENDAS, "nome": "Vendas", "descricao": "Pedidos de Venda", "criarSituacoes": true}]),
    )
}

async fn situacoes_do_modulo(State(b): State<Bling>, h: HeaderMap, Path(id): Path<i64>) -> Response {
    gated!(b, h);
    if id != MODULO_VENDAS {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O módulo não foi encontrado.",
        );
    }
    let list: Vec<Value> = b
        .inner
        .lock()
        .situacoes
        .iter()
        .map(|s| json!({"id": s["id"], "nome": s["nome"], "idHerdado": s["idHerdado"], "cor": s["cor"]}))
        .collect();
    data(StatusCode::OK, Value::Array(list))
}

/// `POST /situacoes`: a custom situação in a module, which behaves as the one it inherits from
/// (`idHerdado`, whose normalized `valor` it takes).
async fn create_situacao(State(b): State<Bling>, h: HeaderMap, body: Option<Json<Value>>) -> Response {
    gated!(b, h);
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD_ERROR",
            "Não foi possível executar a operação",
            "Nenhum dado foi informado na requisição.",
        );
    };
    if body["idModuloSistema"].as_i64() != Some(MODULO_VENDAS) {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Recurso não encontrado",
            "O módulo não foi encontrado.",
        );
    }
    let nome = body["nome"].as_str().map(str::trim).unwrap_or_default();
    if nome.is_empty() {
        return validation(json!([{"code": 2, "msg": "O nome da situação deve ser informado", "element": "nome"}]));
    }
    let mut inner = b.inner.lock();
    let herdado = body["idHerdado"].as_i64().unwrap_or_default();
    let Some(valor) = inner.situacoes.iter().find(|s| s["id"] == herdado).map(|s| s["valor"].clone()) else {
        return validation(
            json!([{"code": 3, "msg": "A situação herdada não foi encontrada", "element": "idHerdado"}]),
        );
    };
    inner.next_id += 1;
    let id = inner.next_id;
    let cor = body["cor"].as_str().unwrap_or("#E9DC40").to_owned();
    inner.situacoes.push(json!({"id": id, "nome": nome, "idHerdado": herdado, "cor": cor, "valor": valor}));
    data(StatusCode::CREATED, json!({"id": id}))
}

/// The formas de pagamento every account starts with: (id, descrição, tipoPagamento).
pub const FORMAS: [(i64, &str, i64); 4] = [
    (11_010_299, "Dinheiro", 1),
    (11_010_300, "Cartão de crédito", 3),
    (11_010_301, "Cartão de débito", 4),
    (11_010_302, "Pix", 20),
];
/// The account's depósitos: (id, descrição, padrão).
pub const DEPOSITOS: [(i64, &str, bool); 2] =
    [(DEPOSITO_GERAL, "Depósito Geral", true), (14_886_873_197, "Loja Centro", false)];

async fn formas_pagamento(State(b): State<Bling>, h: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    gated!(b, h);
    let items = b.inner.lock().formas.clone();
    match page_of(items, &raw) {
        Ok(page) => data(StatusCode::OK, Value::Array(page)),
        Err(r) => r,
    }
}

/// The payment types of NF-e (`tPag`) Bling accepts as `tipoPagamento`.
const TIPOS_PAGAMENTO: [i64; 20] = [1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 90, 99];

/// `POST /formas-pagamentos`: `descricao`, `tipoPagamento`, `finalidade` and `destino` are
/// required; the new forma is active unless `situacao` says otherwise.
async fn create_forma_pagamento(State(b): State<Bling>, h: HeaderMap, body: Option<Json<Value>>) -> Response {
    gated!(b, h);
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "MISSING_REQUIRED_FIELD_ERROR",
            "Não foi possível executar a operação",
            "Nenhum dado foi informado na requisição.",
        );
    };
    let descricao = body["descricao"].as_str().map(str::trim).unwrap_or_default();
    let tipo = body["tipoPagamento"].as_i64().filter(|t| TIPOS_PAGAMENTO.contains(t));
    let finalidade = body["finalidade"].as_i64().filter(|f| (1..=3).contains(f));
    let destino = body["destino"].as_i64().filter(|d| (1..=3).contains(d));
    let mut fields = Vec::new();
    if descricao.is_empty() {
        fields.push(json!({"code": 2, "msg": "A descrição deve ser informada", "element": "descricao"}));
    }
    if tipo.is_none() {
        fields.push(json!({"code": 4, "msg": "O tipo de pagamento é inválido", "element": "tipoPagamento"}));
    }
    if finalidade.is_none() {
        fields.push(json!({"code": 5, "msg": "A finalidade é inválida", "element": "finalidade"}));
    }
    if destino.is_none() {
        fields.push(json!({"code": 6, "msg": "O destino é inválido", "element": "destino"}));
    }
    if !fields.is_empty() {
        return validation(Value::Array(fields));
    }
    let mut inner = b.inner.lock();
    inner.next_id += 1;
    let id = inner.next_id;
    inner.formas.push(json!({"id": id, "descricao": descricao, "tipoPagamento": tipo, "situacao": body["situacao"].as_i64().unwrap_or(1),
        "fixa": false, "padrao": body["padrao"].as_i64().unwrap_or(0), "finalidade": finalidade}));
    data(StatusCode::CREATED, json!({"id": id}))
}

async fn depositos(State(b): State<Bling>, h: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    gated!(b, h);
    let items = DEPOSITOS
        .iter()
        .map(|(id, d, p)| json!({"id": id, "descricao": d, "situacao": 1, "padrao": p, "desconsiderarSaldo": false}))
        .collect();
    match page_of(items, &raw) {
        Ok(page) => data(StatusCode::OK, Value::Array(page)),
        Err(r) => r,
    }
}

async fn canais_venda(State(b): State<Bling>, h: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    gated!(b, h);
    let items = vec![json!({"id": CANAL_PDV, "descricao": "PDV Loja Centro", "tipo": "Api", "situacao": 1})];
    match page_of(items, &raw) {
        Ok(page) => data(StatusCode::OK, Value::Array(page)),
        Err(r) => r,
    }
}

async fn consumidor_final(State(b): State<Bling>, h: HeaderMap) -> Response {
    gated!(b, h);
    data(
        StatusCode::OK,
        json!({"id": CONSUMIDOR_FINAL, "nome": "Consumidor Final", "codigo": "", "situacao": "A", "numeroDocumento": "", "tipo": "F"}),
    )
}

async fn saldos(State(b): State<Bling>, h: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    gated!(b, h);
    let ids: Vec<i64> = multi(&raw, "idsProdutos[]").iter().filter_map(|s| s.parse().ok()).collect();
    if ids.is_empty() {
        return validation(
            json!([{"code": 1, "msg": "O parâmetro idsProdutos é obrigatório", "element": "idsProdutos"}]),
        );
    }
    // filtroSaldoEstoque defaults to 1: products without a positive balance are left out.
    let filtro = single(&raw, "filtroSaldoEstoque").unwrap_or_else(|| "1".into());
    let inner = b.inner.lock();
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| inner.products.get(id).map(|p| (id, p)))
        .filter_map(|(id, p)| {
            let deps: Vec<(i64, rust_decimal::Decimal)> = DEPOSITOS.iter().map(|d| (d.0, inner.stock.get(&(*id, d.0)).copied().unwrap_or_default())).collect();
            let total: rust_decimal::Decimal = deps.iter().map(|d| d.1).sum();
            let keep = match filtro.as_str() {
                "0" => total.is_zero(),
                "2" => total.is_sign_negative() && !total.is_zero(),
                _ => total.is_sign_positive() && !total.is_zero(),
            };
            let n = |d: rust_decimal::Decimal| d.to_string().parse::<f64>().unwrap_or_default();
            keep.then(|| json!({"produto": {"id": id, "codigo": p["codigo"].as_str().unwrap_or_default()}, "saldoFisicoTotal": n(total), "saldoVirtualTotal": n(total),
                "depositos": deps.iter().map(|(d, s)| json!({"id": d, "saldoFisico": n(*s), "saldoVirtual": n(*s)})).collect::<Vec<_>>()}))
        })
        .collect();
    data(StatusCode::OK, Value::Array(items))
}

async fn admin_stats(State(b): State<Bling>) -> Response {
    Json(b.stats()).into_response()
}

/// What the account holds: products, orders, stock balances and situações, as tests and
/// people inspecting a run look at them.
async fn admin_state(State(b): State<Bling>) -> Response {
    let inner = b.inner.lock();
    let stock: Vec<Value> = inner
        .stock
        .iter()
        .map(|((produto, deposito), saldo)| json!({"produto": produto, "deposito": deposito, "saldo": saldo.to_string()}))
        .collect();
    Json(json!({
        "companyId": b.config.company_id,
        "products": inner.products.values().map(public).collect::<Vec<_>>(),
        "orders": inner.orders.values().cloned().collect::<Vec<_>>(),
        "stock": stock,
        "situacoes": inner.situacoes,
    }))
    .into_response()
}

fn native_server_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "SERVER_ERROR",
        "Não foi possível executar a operação",
        "Um erro interno ocorreu.",
    )
}

fn native_rate_limited() -> Response {
    too_many(3, "second", "O limite de requisições por segundo foi atingido, tente novamente mais tarde.")
}

/// The product payload of a v1 webhook (no media, as Bling sends it).
fn webhook_product(p: &Value) -> Value {
    let mut out = json!({"id": p["id"], "nome": p["nome"], "codigo": p["codigo"].as_str().unwrap_or_default(), "tipo": p["tipo"],
        "situacao": p["situacao"], "preco": p["preco"], "unidade": p["unidade"].as_str().unwrap_or_default(), "formato": p["formato"]});
    if let Some(parent) = p["variacao"]["produtoPai"]["id"].as_i64() {
        out["idProdutoPai"] = json!(parent);
    }
    out
}

/// The order payload of a v1 webhook.
fn webhook_order(o: &Value) -> Value {
    json!({"id": o["id"], "data": o["data"], "numero": o["numero"], "numeroLoja": o["numeroLoja"], "total": o["total"],
        "contato": {"id": o["contato"]["id"]}, "vendedor": {"id": 0}, "loja": {"id": o["loja"]["id"]}, "situacao": o["situacao"]})
}
