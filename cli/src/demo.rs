//! `ponte dev --sandbox --demo`: a merchant set up end to end against the sandboxes, through
//! ponte's own gRPC API, so that a newcomer watches each sync happen with a handful of commands.
//! Tenant [`TENANT`] is created (or found), Bling and Bitrix24 are connected through their OAuth
//! flows, CPLUG and 360Envios by credentials, the catalog reaches Bitrix24 and CPLUG, the payment
//! DE-PARA, the store and the shipping setup are in place, a small catalog is added in Bling's
//! UI and one online order is released for shipping. Run again on the same data directory, the
//! demo begins afresh: the sandboxes live in memory, so the tenant left by the previous start
//! (whose links, remembered SKUs and shipments name records they no longer hold) is erased
//! through `DeleteTenant` and made again; the sandboxes' ids never repeat an earlier start's.

use std::{path::Path, time::Duration};

use anyhow::Context;
use ponte_core::grpc::MeshInterceptor;
use ponte_proto::v1::{
    CompleteAuthorizationRequest, CplugCredentials, CreatePaymentMethodMapRequest, CreateStoreMapRequest,
    CreateTenantRequest, DeleteTenantRequest, Envios360Credentials, GetAccessTokenRequest, GetSyncSettingsRequest,
    PaymentMethodMap, Provider, SetApiCredentialsRequest, SetUpShippingRequest, StartAuthorizationRequest, StoreMap,
    UpdateSyncSettingsRequest, auth_token_service_client::AuthTokenServiceClient,
    catalog_sync_service_client::CatalogSyncServiceClient, mapping_service_client::MappingServiceClient,
    set_api_credentials_request::Credentials, shipping_status_service_client::ShippingStatusServiceClient,
};
use ponte_sandbox::{bitrix24, bling, cplug, envios360};
use serde_json::{Value, json};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

/// The demo's merchant.
pub const TENANT: &str = "demo";

/// The catalog added in Bling: (SKU, name, price, stock).
pub const CATALOG: [(&str, &str, &str, &str); 4] = [
    ("DEMO-CAMISETA", "Camiseta ponte", "59.90", "20"),
    ("DEMO-CANECA", "Caneca ponte", "39.90", "15"),
    ("DEMO-BONE", "Boné ponte", "49.90", "10"),
    ("DEMO-ADESIVO", "Adesivos ponte (5 un)", "9.90", "100"),
];

/// The CPLUG point of sale's payment methods and the Bling formas de pagamento they post as.
const PAYMENTS: [(&str, i64); 4] =
    [("DINHEIRO", 11_010_299), ("CREDITO", 11_010_300), ("DEBITO", 11_010_301), ("PIX", 11_010_302)];

/// The Vendas situação that releases an order to 360Envios.
const EM_ANDAMENTO: i64 = 15;

/// The first id the sandboxes of this start hand out: later starts give later ids, so records
/// kept in the data directory from an earlier start never meet a reused id. A thousand ids a
/// second of wall time between two starts.
pub fn first_sandbox_id() -> u64 {
    let since_2026 = chrono::Utc::now().timestamp().saturating_sub(1_767_225_600).max(0) as u64;
    since_2026.saturating_mul(1000)
}

/// The running sandboxes the demo sets up.
pub struct Sandboxes<'a> {
    pub bling: &'a bling::Handle,
    pub portal: &'a bitrix24::Handle,
    pub hub: &'a envios360::Handle,
    pub pos: &'a cplug::Handle,
}

type Mesh = InterceptedService<Channel, MeshInterceptor>;

async fn channel(url: &str, token: &ponte_core::identity::BearerToken) -> anyhow::Result<Mesh> {
    let ch = tonic::transport::Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    Ok(InterceptedService::new(ch, MeshInterceptor(token.clone())))
}

/// What the demo made, for the lines it prints.
pub struct Made {
    /// The Bling order released to 360Envios.
    pub order: i64,
    /// Whether the catalog reached Bitrix24 and the order 360Envios within the wait.
    pub catalog_in_crm: bool,
    pub order_at_hub: bool,
}

/// Calls `f` again while the answer is UNAVAILABLE (Bling busy, a service still starting), up
/// to 30 times; ALREADY_EXISTS counts as done.
async fn call<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    for _ in 0..30 {
        match f().await {
            Ok(r) => return Ok(Some(r.into_inner())),
            Err(s) if s.code() == Code::AlreadyExists => return Ok(None),
            Err(s) if s.code() == Code::Unavailable => {
                let wait = ponte_core::error::retry_after(&s).unwrap_or(Duration::from_millis(500));
                tokio::time::sleep(wait.min(Duration::from_secs(3))).await;
            }
            Err(s) => anyhow::bail!("{what}: {}", s.message()),
        }
    }
    anyhow::bail!("{what}: still unavailable after 30 tries")
}

/// Sets the demo up; see the module's documentation.
pub async fn set_up(peers: &ponte_core::config::Peers, s: &Sandboxes<'_>) -> anyhow::Result<Made> {
    let auth = AuthTokenServiceClient::new(channel(&peers.auth_token, &peers.token).await?);
    let create = || {
        let mut c = auth.clone();
        let r = CreateTenantRequest { tenant_id: TENANT.into(), display_name: "Loja Demo".into() };
        async move { c.create_tenant(r).await }
    };
    if call("creating the demo tenant", create).await?.is_none() {
        // A start before this one left the tenant: what ponte kept of it names records the
        // sandboxes (in memory) no longer hold, so the demo begins afresh.
        call("erasing the previous demo", || {
            let mut c = auth.clone();
            let r = DeleteTenantRequest { tenant_id: TENANT.into(), requested_by: "ponte dev --demo".into() };
            async move { c.delete_tenant(r).await }
        })
        .await?;
        call("creating the demo tenant", create).await?.context("the demo tenant is still there after its erasure")?;
    }

    // Bling: the merchant's consent, as the browser would give it.
    let url = call("starting Bling's authorization", || {
        let mut c = auth.clone();
        let r = StartAuthorizationRequest {
            tenant_id: TENANT.into(),
            provider: Provider::Bling as i32,
            ..Default::default()
        };
        async move { c.start_authorization(r).await }
    })
    .await?
    .context("starting Bling's authorization")?
    .authorize_url;
    let (code, state) = s.bling.authorize(&url).await.map_err(|e| anyhow::anyhow!("Bling's consent page: {e}"))?;
    call("completing Bling's authorization", || {
        let mut c = auth.clone();
        let r = CompleteAuthorizationRequest {
            provider: Provider::Bling as i32,
            code: code.clone(),
            state: state.clone(),
            ..Default::default()
        };
        async move { c.complete_authorization(r).await }
    })
    .await?;

    // Bitrix24: the app's OAuth consent, then its installation (the application token).
    let portal = s.portal.portal.config().clone();
    let state = call("starting Bitrix24's authorization", || {
        let mut c = auth.clone();
        let r = StartAuthorizationRequest {
            tenant_id: TENANT.into(),
            provider: Provider::Bitrix24 as i32,
            bitrix24_domain: portal.domain.clone(),
        };
        async move { c.start_authorization(r).await }
    })
    .await?
    .context("starting Bitrix24's authorization")?
    .state;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let admin = format!("http://{}", s.portal.addr);
    let code: Value = http.post(format!("{admin}/__admin/oauth/code")).send().await?.error_for_status()?.json().await?;
    let code = code["code"].as_str().context("the Bitrix24 sandbox gave no authorization code")?.to_owned();
    call("completing Bitrix24's authorization", || {
        let mut c = auth.clone();
        let r = CompleteAuthorizationRequest {
            provider: Provider::Bitrix24 as i32,
            code: code.clone(),
            state: state.clone(),
            bitrix24_domain: portal.domain.clone(),
            ..Default::default()
        };
        async move { c.complete_authorization(r).await }
    })
    .await?;
    let installed = http.post(format!("{admin}/__admin/install")).send().await?;
    anyhow::ensure!(installed.status().is_success(), "installing the Bitrix24 app: {}", installed.text().await?);

    // CPLUG and 360Envios: credentials, as the merchant copies them from each system.
    let pos = s.pos.cplug.config().clone();
    call("connecting CPLUG", || {
        let mut c = auth.clone();
        let r = SetApiCredentialsRequest {
            tenant_id: TENANT.into(),
            credentials: Some(Credentials::Cplug(CplugCredentials {
                client_id: pos.client_id.clone(),
                client_secret: pos.client_secret.clone(),
                username: pos.username.clone(),
                password: pos.password.clone(),
                webhook_secret: pos.webhook_secret.clone(),
            })),
        };
        async move { c.set_api_credentials(r).await }
    })
    .await?;
    let hub = s.hub.hub.config().clone();
    call("connecting 360Envios", || {
        let mut c = auth.clone();
        let r = SetApiCredentialsRequest {
            tenant_id: TENANT.into(),
            credentials: Some(Credentials::Envios360(Envios360Credentials {
                api_token: hub.api_token.clone(),
                webhook_secret: hub.webhook_secret.clone(),
            })),
        };
        async move { c.set_api_credentials(r).await }
    })
    .await?;

    // The switches: the catalog goes to CPLUG too (Bitrix24 is on by default).
    let catalog = CatalogSyncServiceClient::new(channel(&peers.catalog_sync, &peers.token).await?);
    let settings = call("reading the sync settings", || {
        let mut c = catalog.clone();
        let r = GetSyncSettingsRequest { tenant_id: TENANT.into() };
        async move { c.get_sync_settings(r).await }
    })
    .await?
    .and_then(|r| r.settings)
    .unwrap_or_default();
    let settings = ponte_proto::v1::SyncSettings {
        tenant_id: TENANT.into(),
        bling_create_creates_in_bitrix24: true,
        bling_update_updates_bitrix24: true,
        catalog_to_cplug: true,
        ..settings
    };
    call("turning the catalog sync on", || {
        let mut c = catalog.clone();
        let r = UpdateSyncSettingsRequest { settings: Some(settings.clone()) };
        async move { c.update_sync_settings(r).await }
    })
    .await?;

    // The store's loja and depósito, and the payment DE-PARA.
    let mapping = MappingServiceClient::new(channel(&peers.mapping, &peers.token).await?);
    let store = StoreMap {
        tenant_id: TENANT.into(),
        cplug_store_id: pos.store_id.clone(),
        bling_loja_id: bling::CANAL_PDV,
        bling_deposito_id: bling::DEPOSITO_GERAL,
        create_time: None,
    };
    call("mapping the CPLUG store", || {
        let mut c = mapping.clone();
        let r = CreateStoreMapRequest { map: Some(store.clone()), validate_only: false };
        async move { c.create_store_map(r).await }
    })
    .await?;
    for (method, forma) in PAYMENTS {
        let map = PaymentMethodMap {
            tenant_id: TENANT.into(),
            cplug_method: method.into(),
            bling_forma_pagamento_id: forma,
            ..Default::default()
        };
        call(&format!("mapping payment method {method}"), || {
            let mut c = mapping.clone();
            let r = CreatePaymentMethodMapRequest { map: Some(map.clone()), validate_only: false };
            async move { c.create_payment_method_map(r).await }
        })
        .await?;
    }

    // The shipping cycle's situações in Bling and their map.
    let shipping = ShippingStatusServiceClient::new(channel(&peers.shipping_status, &peers.token).await?);
    call("setting up shipping", || {
        let mut c = shipping.clone();
        let r = SetUpShippingRequest { tenant_id: TENANT.into(), ..Default::default() };
        async move { c.set_up_shipping(r).await }
    })
    .await?;

    // The catalog, added in Bling's UI (each product's webhook carries it on).
    let bling_admin = format!("http://{}", s.bling.addr);
    let mut ids = Vec::new();
    for (sku, name, price, stock) in CATALOG {
        let body = json!({"nome": name, "codigo": sku, "preco": price, "estoque": stock});
        let resp = http.post(format!("{bling_admin}/__admin/products")).json(&body).send().await?;
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "adding {sku} in the Bling sandbox: {answer}");
        ids.push(answer["data"]["id"].as_i64().context("the Bling sandbox gave no product id")?);
    }

    // One online order, from a customer with an address, released for shipping.
    let contato = s.bling.bling.seed_contact(json!({"nome": "Maria Souza", "numeroDocumento": "123.456.789-09",
        "tipo": "F"}));
    let token = call("reading the Bling token", || {
        let mut c = auth.clone();
        let r =
            GetAccessTokenRequest { tenant_id: TENANT.into(), provider: Provider::Bling as i32, ..Default::default() };
        async move { c.get_access_token(r).await }
    })
    .await?
    .context("reading the Bling token")?;
    let (camiseta, preco) = (ids[0], 59.9);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let order = json!({"contato": {"id": contato}, "data": today, "dataSaida": today, "dataPrevista": today,
        "itens": [{"produto": {"id": camiseta}, "quantidade": 1, "valor": preco, "codigo": CATALOG[0].0,
                   "descricao": CATALOG[0].1}],
        "transporte": {"fretePorConta": 0, "frete": 15, "etiqueta": {"nome": "Maria Souza",
            "endereco": "Rua Augusta", "numero": "1500", "complemento": "ap 12", "municipio": "São Paulo",
            "uf": "SP", "cep": "01304-001", "bairro": "Consolação"}}});
    let api = token.base_url.trim_end_matches('/').to_owned();
    let created =
        bling_api(&http, &token.access_token, reqwest::Method::POST, &format!("{api}/pedidos/vendas"), Some(order))
            .await
            .context("creating the demo's online order in Bling")?;
    let order = created["data"]["id"].as_i64().context("Bling gave no order id")?;
    bling_api(
        &http,
        &token.access_token,
        reqwest::Method::PATCH,
        &format!("{api}/pedidos/vendas/{order}/situacoes/{EM_ANDAMENTO}"),
        None,
    )
    .await
    .context("releasing the demo's order")?;

    // The catalog reaching Bitrix24, and the order 360Envios (bounded waits).
    let names: Vec<&str> = CATALOG.iter().map(|c| c.1).collect();
    let catalog_in_crm = until(Duration::from_secs(60), || {
        let products = s.portal.portal.products();
        names.iter().all(|n| products.iter().any(|p| p.get("NAME").and_then(Value::as_str) == Some(n)))
    })
    .await;
    let external = order.to_string();
    let order_at_hub = until(Duration::from_secs(60), || {
        s.hub.hub.orders().iter().any(|o| o["external_id"].as_str() == Some(external.as_str()))
    })
    .await;
    Ok(Made { order, catalog_in_crm, order_at_hub })
}

/// One call to Bling's API with the tenant's token, a busy second waited out; the JSON answer.
async fn bling_api(
    http: &reqwest::Client,
    token: &str,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    for _ in 0..30 {
        let mut req = http.request(method.clone(), url).bearer_auth(token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            tokio::time::sleep(Duration::from_millis(400)).await;
            continue;
        }
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "{status}: {text}");
        return Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? });
    }
    anyhow::bail!("Bling kept answering 429")
}

/// Polls `f` every 200 ms until it holds or `limit` passes; whether it held.
async fn until(limit: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How a person runs this binary from where they are: its path relative to the working
/// directory when it is under it (`target/release/ponte`), else its full path; prefixed with
/// `PONTE_DATA_DIR=…` when the data directory is not the default `.ponte`.
pub fn command_prefix(data_dir: &Path) -> String {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    let bin = match (&exe, &cwd) {
        (Some(e), Some(c)) => e.strip_prefix(c).map(Path::to_path_buf).unwrap_or_else(|_| e.clone()),
        (Some(e), None) => e.clone(),
        _ => "ponte".into(),
    };
    let bin = bin.display().to_string();
    if data_dir == Path::new(".ponte") { bin } else { format!("PONTE_DATA_DIR={} {bin}", data_dir.display()) }
}

/// What the demo prints once it is set up: what it made and what to try.
/// `flags` are the `--gateway-url` and `--catalog-sync-url` flags the commands need (empty where
/// `ponte dev` runs on its default ports).
pub fn lines(made: &Made, prefix: &str, flags: &Flags) -> Vec<String> {
    let Flags { gateway: gateway_flag, catalog_sync: catalog_flag } = flags;
    let p = prefix;
    let mut out = vec![format!(
        "ponte dev: demo tenant '{TENANT}' set up: Bling and Bitrix24 connected by OAuth, CPLUG and 360Envios by \
         credentials; {} products added in Bling{}; Bling order {} released to 360Envios{}",
        CATALOG.len(),
        if made.catalog_in_crm { " and synced to Bitrix24 and CPLUG" } else { " (still syncing to Bitrix24)" },
        made.order,
        if made.order_at_hub { "" } else { " (not there yet)" },
    )];
    out.push("Try, from another terminal:".into());
    out.push("  # 1. a product created in Bling appears in Bitrix24".into());
    out.push(format!(
        "  {p} sandbox bling product create --name \"Chaveiro ponte\" --sku DEMO-CHAVEIRO --price 14.90 --stock 30"
    ));
    out.push(format!("  {p} sandbox bitrix24 products"));
    out.push("  # 2. a CPLUG sale becomes a Bling order, its stock written off".into());
    out.push(format!("  {p} sandbox cplug sale --sku DEMO-CAMISETA --quantity 2"));
    out.push(format!("  {p} sandbox bling orders && {p} sandbox bling products"));
    out.push("  # 3. 360Envios moves the shipment along, and the Bling order's situação follows".into());
    out.push(format!("  {p} sandbox envios360 advance --order {}", made.order));
    out.push(format!("  {p} sandbox bling orders"));
    out.push("  # 4. a catalog Bling held before ponte came, copied to Bitrix24 with a live progress bar".into());
    out.push(format!(
        "  {p} sandbox bling product import --count 10000 && \
         {p} backfill start --tenant {TENANT} --watch --expected 10000{catalog_flag}"
    ));
    out.push(format!(
        "  # every step that touched a record: {p} history --tenant {TENANT} --entity order:{}{gateway_flag}",
        made.order
    ));
    out
}

/// The address flags of the printed commands.
#[derive(Debug, Default)]
pub struct Flags {
    pub gateway: String,
    pub catalog_sync: String,
}
