//! The world the shipping tests and benchmark run in: the Bling and 360Envios sandboxes sending their real
//! signed webhooks through a relay to a real gateway, which stores them and delivers them over
//! gRPC to shipping-status (and catalog-sync), with auth-token and mapping, on PostgreSQL and
//! Redis. The relay passes webhooks on, or holds them so that a test can deliver them later,
//! repeated or in another order. Merchant data is made as a merchant makes it: contacts and
//! products in Bling's UI (seeded), orders through Bling's API.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::Channel;
use crate::{
    GatewayHttp, eventually,
    webhooks::{BlingWorld, TENANT},
};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use ponte_proto::v1::{
    Envios360Credentials, FlowStatus, GetAccessTokenRequest, GetAccessTokenResponse, GetShipmentRequest,
    ListShipmentsRequest, Provider, SetApiCredentialsRequest, SetUpShippingRequest, SetUpShippingResponse, Shipment,
    ShippingStatusServiceGetSyncStatusRequest, auth_token_service_client::AuthTokenServiceClient,
    set_api_credentials_request::Credentials, shipping_status_service_client::ShippingStatusServiceClient,
};
use ponte_sandbox::{bling, envios360};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const SPECS: &[&ponte_core::service::ServiceSpec] = &[
    &ponte_auth_token::SPEC,
    &ponte_mapping::SPEC,
    &ponte_catalog_sync::SPEC,
    &ponte_shipping_status::SPEC,
    &ponte_gateway::SPEC,
];

/// Bling's default situações of the Vendas module (the sandbox's ids, as Bling's).
pub const ATENDIDO: i64 = 9;
pub const CANCELADO: i64 = 12;
pub const EM_ANDAMENTO: i64 = 15;

/// A webhook as a sandbox sent it.
#[derive(Debug, Clone)]
pub struct Held {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Stands between the sandboxes and the gateway: passes webhooks on, or holds them.
#[derive(Clone)]
pub struct Relay {
    gateway: String,
    holding: Arc<Mutex<bool>>,
    held: Arc<Mutex<Vec<Held>>>,
    http: reqwest::Client,
}

impl Relay {
    /// From now on, webhooks are answered 200 and kept instead of passed on.
    pub fn hold(&self) {
        *self.holding.lock().unwrap() = true;
    }

    /// Waits until at least `n` webhooks are held (senders send after answering their caller).
    pub async fn until_held(&self, n: usize) {
        let held = eventually(Duration::from_secs(10), || async move { self.held.lock().unwrap().len() >= n }).await;
        assert!(held, "only {} webhooks held, {n} expected", self.held.lock().unwrap().len());
    }

    /// Passes webhooks on again; the held ones are returned, in the order they came.
    pub fn release(&self) -> Vec<Held> {
        *self.holding.lock().unwrap() = false;
        std::mem::take(&mut *self.held.lock().unwrap())
    }

    /// Delivers a webhook to the gateway as its sender did; the gateway's status.
    pub async fn deliver(&self, h: &Held) -> StatusCode {
        let mut req = self.http.post(format!("{}{}", self.gateway, h.path)).body(h.body.clone());
        for (k, v) in &h.headers {
            req = req.header(k, v);
        }
        req.send().await.map(|r| r.status()).unwrap_or(StatusCode::BAD_GATEWAY)
    }
}

async fn pass_or_hold(State(r): State<Relay>, Path(path): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let kept = ["content-type", "x-bling-signature-256", "x-360-signature"];
    let held = Held {
        path: format!("/webhooks/{path}"),
        headers: headers
            .iter()
            .filter(|(k, _)| kept.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
    };
    if *r.holding.lock().unwrap() {
        r.held.lock().unwrap().push(held);
        return StatusCode::OK;
    }
    r.deliver(&held).await
}

/// The sandboxes, the relay, the mesh and a gateway, with tenant [`TENANT`] connected to both.
pub struct ShippingWorld {
    pub w: BlingWorld,
    pub hub: envios360::Handle,
    pub gateway: GatewayHttp,
    pub relay: Relay,
    /// Where shipping-status listens.
    pub shipping_url: String,
}

impl ShippingWorld {
    pub async fn start() -> Self {
        Self::start_with(|_| {}, |_| {}).await
    }

    /// With the sandboxes' settings changed by `bling` and `hub`.
    pub async fn start_with(bling: impl FnOnce(&mut bling::Config), hub: impl FnOnce(&mut envios360::Config)) -> Self {
        Self::start_layout(SPECS, None, ponte_core::config::Env::default(), bling, hub).await
    }

    /// With shipping-status out of this process, listening at `shipping_url` (the mesh runs the
    /// other services).
    pub async fn start_without_shipping(shipping_url: String) -> Self {
        let specs: &[&ponte_core::service::ServiceSpec] =
            &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];
        Self::start_layout(specs, Some(shipping_url), ponte_core::config::Env::default(), |_| {}, |_| {}).await
    }

    /// `specs` in this process (shipping-status elsewhere, at `shipping_url`, when given),
    /// configured by `env`, with the sandboxes' settings changed by `bling` and `hub`.
    pub async fn start_layout(
        specs: &[&'static ponte_core::service::ServiceSpec],
        shipping_url: Option<String>,
        env: ponte_core::config::Env,
        bling: impl FnOnce(&mut bling::Config),
        hub: impl FnOnce(&mut envios360::Config),
    ) -> Self {
        let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_url = format!("http://{}", relay_listener.local_addr().unwrap());
        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            gateway: format!("http://{}", gateway_listener.local_addr().unwrap()),
            holding: Arc::default(),
            held: Arc::default(),
            http: reqwest::Client::new(),
        };
        let app = Router::new().route("/webhooks/{*path}", post(pass_or_hold)).with_state(relay.clone());
        tokio::spawn(async move { axum::serve(relay_listener, app).await });

        let mut hub_config = envios360::Config {
            webhook_url: Some(format!("{relay_url}/webhooks/envios360/{TENANT}")),
            ..envios360::Config::for_tests()
        };
        hub(&mut hub_config);
        let hub = envios360::Envios360::new(hub_config).spawn(None).await.unwrap();
        let mut bling_config = bling::Config {
            webhook_url: Some(format!("{relay_url}/webhooks/bling")),
            webhook_backoff: Duration::from_millis(100),
            ..bling::Config::default()
        };
        bling(&mut bling_config);
        let env = env.with("PONTE_ENVIOS360_API_URL", &hub.base_url);
        let w = BlingWorld::start_with_env(specs, bling_config, &crate::redis_url(), env).await;
        let cfg = hub.hub.config().clone();
        AuthTokenServiceClient::new(w.mesh.channel("auth-token").await)
            .set_api_credentials(SetApiCredentialsRequest {
                tenant_id: TENANT.into(),
                credentials: Some(Credentials::Envios360(Envios360Credentials {
                    api_token: cfg.api_token,
                    webhook_secret: cfg.webhook_secret,
                })),
            })
            .await
            .expect("connect 360Envios");
        let env = w
            .mesh
            .env
            .clone()
            .with("PONTE_DISPATCH_BACKOFF_MS", "50")
            .with("PONTE_DISPATCH_MAX_BACKOFF_SECONDS", "1")
            .with("PONTE_DISPATCH_MAX_ATTEMPTS", "60")
            .with("PONTE_DISPATCH_POLL_MS", "200");
        let mut peers = w.mesh.peers.clone();
        if let Some(url) = shipping_url {
            peers.shipping_status = url;
        }
        let gateway = w.mesh.start_gateway_http_with(env, peers.clone(), Some(gateway_listener)).await;
        Self { w, hub, gateway, relay, shipping_url: peers.shipping_status }
    }

    /// Whether shipping-status accepts connections.
    pub async fn shipping_reachable(&self) -> bool {
        self.try_shipping().await.is_ok()
    }

    pub async fn shipping(&self) -> ShippingStatusServiceClient<Channel> {
        self.try_shipping().await.expect("shipping-status answers")
    }

    async fn try_shipping(&self) -> Result<ShippingStatusServiceClient<Channel>, tonic::transport::Error> {
        let endpoint = tonic::transport::Endpoint::from_shared(self.shipping_url.clone()).expect("a URL");
        Ok(ShippingStatusServiceClient::new(crate::with_token(&self.w.mesh.env, endpoint.connect().await?)))
    }

    /// Runs setup, again after the wait asked for while Bling is busy (setup is idempotent).
    pub async fn set_up(&self, dry_run: bool) -> SetUpShippingResponse {
        let req = SetUpShippingRequest { tenant_id: TENANT.into(), dry_run, ..Default::default() };
        self.try_set_up(req).await.unwrap_or_else(|s| panic!("set up shipping: {s:?}"))
    }

    /// Runs `req`, again after the wait asked for while Bling is busy; any other answer as it is.
    pub async fn try_set_up(&self, req: SetUpShippingRequest) -> Result<SetUpShippingResponse, tonic::Status> {
        for _ in 0..20 {
            match self.shipping().await.set_up_shipping(req.clone()).await {
                Err(s) if s.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(ponte_core::error::retry_after(&s).unwrap_or(Duration::from_millis(500))).await;
                }
                answer => return answer.map(tonic::Response::into_inner),
            }
        }
        Err(tonic::Status::unavailable("Bling stayed busy"))
    }

    /// The id of situação `name` of the Vendas module.
    pub async fn situacao(&self, name: &str) -> i64 {
        let path = format!("/situacoes/modulos/{}", bling::MODULO_VENDAS);
        let list = self.bling_api(Method::GET, &path, None).await;
        let found = list["data"].as_array().into_iter().flatten().find(|s| s["nome"] == name);
        found.and_then(|s| s["id"].as_i64()).unwrap_or_else(|| panic!("no situação '{name}': {list}"))
    }

    /// The tenant's Bling token and API base, as auth-token hands them out.
    pub async fn bling_token(&self) -> GetAccessTokenResponse {
        let req =
            GetAccessTokenRequest { tenant_id: TENANT.into(), provider: Provider::Bling as i32, ..Default::default() };
        let mut auth = AuthTokenServiceClient::new(self.w.mesh.channel("auth-token").await);
        auth.get_access_token(req).await.expect("the tenant's Bling token").into_inner()
    }

    /// One call to Bling's API with the tenant's token; the JSON answer (null when empty).
    pub async fn bling_api(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        BlingWorld::bling_api(&self.w.mesh, method, path, body).await
    }

    /// A customer with a CPF, added in Bling's UI.
    pub fn customer(&self) -> i64 {
        self.w
            .bling
            .bling
            .seed_contact(json!({"nome": "Maria Souza", "numeroDocumento": "123.456.789-09", "tipo": "F"}))
    }

    /// A product added in Bling's UI, with `images` image links.
    pub fn product(&self, codigo: &str, preco: f64, images: usize) -> i64 {
        let internas: Vec<Value> =
            (0..images).map(|i| json!({"link": format!("https://cdn.loja.example/{codigo}-{i}.jpg")})).collect();
        self.w.bling.bling.seed_product(json!({"nome": format!("Produto {codigo}"), "codigo": codigo, "preco": preco,
            "pesoBruto": 0.4, "midia": {"imagens": {"internas": internas, "externas": []}}}))
    }

    /// Creates a sales order through Bling's API (at Em aberto); its id. `lines`: (product, quantity, unit price).
    pub async fn order(&self, contato: i64, lines: &[(i64, i64, f64)], address: bool) -> i64 {
        let itens: Vec<Value> = lines
            .iter()
            .map(|(p, q, v)| {
                let product = self.w.bling.bling.product(*p).unwrap_or_default();
                json!({"produto": {"id": p}, "quantidade": q, "valor": v, "codigo": product["codigo"],
                       "descricao": product["nome"]})
            })
            .collect();
        let etiqueta = if address {
            json!({"nome": "Maria Souza", "endereco": "Rua Augusta", "numero": "1500", "complemento": "ap 12",
                   "municipio": "São Paulo", "uf": "SP", "cep": "01304-001", "bairro": "Consolação"})
        } else {
            json!({"nome": "Maria Souza"})
        };
        let body = json!({"contato": {"id": contato}, "data": "2026-03-02", "dataSaida": "2026-03-02",
            "dataPrevista": "2026-03-05", "itens": itens, "transporte": {"fretePorConta": 0, "frete": 15, "etiqueta": etiqueta}});
        let created = self.bling_api(Method::POST, "/pedidos/vendas", Some(body)).await;
        created["data"]["id"].as_i64().expect("order id")
    }

    /// Moves an order to `situacao` through Bling's API, as the merchant does.
    pub async fn move_order(&self, order: i64, situacao: i64) {
        self.bling_api(Method::PATCH, &format!("/pedidos/vendas/{order}/situacoes/{situacao}"), None).await;
    }

    /// The order's body as a PUT sends it back: without what Bling computes.
    pub fn order_body(&self, order: i64) -> Value {
        let mut body = self.bling_order(order);
        for k in ["id", "numero", "total", "totalProdutos", "situacao"] {
            body.as_object_mut().unwrap().remove(k);
        }
        body
    }

    /// Replaces the order through Bling's API, as the merchant's edit does.
    pub async fn put_order(&self, order: i64, body: Value) {
        self.bling_api(Method::PUT, &format!("/pedidos/vendas/{order}"), Some(body)).await;
    }

    /// The shipping flows' status.
    pub async fn sync_status(&self) -> Vec<FlowStatus> {
        let req = ShippingStatusServiceGetSyncStatusRequest { tenant_id: TENANT.into() };
        self.shipping().await.get_sync_status(req).await.expect("sync status").into_inner().flows
    }

    /// The order as Bling has it.
    pub fn bling_order(&self, order: i64) -> Value {
        self.w.bling.bling.order(order).expect("the Bling order")
    }

    /// Waits until the Bling order is at `situacao`.
    pub async fn until_situacao(&self, order: i64, situacao: i64) {
        let reached = eventually(Duration::from_secs(40), || async move {
            self.w.bling.bling.order(order).is_some_and(|o| o["situacao"]["id"] == situacao)
        })
        .await;
        assert!(
            reached,
            "Bling order {order} never reached situação {situacao}: {}",
            self.bling_order(order)["situacao"]
        );
    }

    /// The 360 orders made for Bling order `order`.
    pub fn hub_orders(&self, order: i64) -> Vec<Value> {
        let external_id = order.to_string();
        self.hub.hub.orders().into_iter().filter(|o| o["external_id"].as_str() == Some(&*external_id)).collect()
    }

    /// Waits until the hub has an order for `order`; it.
    pub async fn until_at_hub(&self, order: i64) -> Value {
        let there = eventually(Duration::from_secs(40), || async move { !self.hub_orders(order).is_empty() }).await;
        assert!(there, "Bling order {order} never reached 360Envios: {:?}", self.shipment(order).await);
        self.hub_orders(order).remove(0)
    }

    /// The shipment of `order`, if it has one (and shipping-status answers).
    pub async fn shipment(&self, order: i64) -> Option<Shipment> {
        let req = GetShipmentRequest { tenant_id: TENANT.into(), bling_order_id: order };
        self.try_shipping().await.ok()?.get_shipment(req).await.ok().and_then(|r| r.into_inner().shipment)
    }

    /// Waits until the shipment of `order` satisfies `f`; it.
    pub async fn until_shipment(&self, order: i64, what: &str, f: impl Fn(&Shipment) -> bool) -> Shipment {
        let f = &f;
        let ok =
            eventually(Duration::from_secs(40), || async move { self.shipment(order).await.is_some_and(|s| f(&s)) })
                .await;
        assert!(ok, "the shipment of {order} never got {what}: {:?}", self.shipment(order).await);
        self.shipment(order).await.unwrap()
    }

    /// Every shipment of the tenant.
    pub async fn shipments(&self, req: ListShipmentsRequest) -> Vec<Shipment> {
        let req = ListShipmentsRequest { tenant_id: TENANT.into(), ..req };
        self.shipping().await.list_shipments(req).await.expect("list shipments").into_inner().shipments
    }

    /// Waits until the gateway has delivered every stored event (none pending or in flight).
    pub async fn until_quiet(&self) {
        let quiet = eventually(Duration::from_secs(30), || async move {
            crate::count(
                &self.gateway.db,
                "SELECT COUNT(*) FROM inbox_deliveries WHERE state IN ('pending', 'in_flight')",
            )
            .await
                == 0
        })
        .await;
        assert!(quiet, "the gateway still has deliveries to make");
    }
}
