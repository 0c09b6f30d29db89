//! The merchant's side of the chaos run: products renamed in Bling's UI (each change sent as
//! Bling's `product.updated`), sales rung up at the CPLUG till and some cancelled (each sent as
//! CPLUG's `sale.completed` / `sale.cancelled`), sales orders made through Bling's API (each a
//! Bitrix24 deal; most moved to Em andamento, which releases them to 360Envios), the hub moving
//! released orders along (each `order.status_changed` moves the Bling situação), and what each
//! implies.

use std::{collections::BTreeMap, time::Duration};

use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, CreateStoreMapRequest, GetAccessTokenRequest, PaymentMethodMap, Provider,
    SetUpShippingRequest, StoreMap, auth_token_service_client::AuthTokenServiceClient,
    mapping_service_client::MappingServiceClient, shipping_status_service_client::ShippingStatusServiceClient,
};
use ponte_sandbox::bling::{CANAL_PDV, DEPOSITOS, MODULO_VENDAS};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Config, Rng};
use crate::{procs::ProcessMesh, webhooks::TENANT};

/// The depósito the till's store writes off from.
pub const DEPOSITO: i64 = DEPOSITOS[0].0;
/// Each product's stock before the run.
pub const STOCK: i64 = 100_000;
const STORE: &str = "loja-centro";
/// Bling's default situações of the sales module.
pub const EM_ABERTO: i64 = 6;
pub const EM_ANDAMENTO: i64 = 15;
pub const ATENDIDO: i64 = 9;

/// A sales order made through Bling's API.
#[derive(Debug, Clone)]
pub struct OrderMade {
    pub id: i64,
    /// Moved to Em andamento: released to 360Envios.
    pub released: bool,
    /// The hub's status after its last move (`received` until the hub moves it).
    pub hub_status: &'static str,
}

/// Bling's API as the merchant's other channels call it, with the tenant's token (fetched
/// again when Bling refuses it); a 429 or a 5xx (answered before anything is done) is tried
/// again.
pub struct BlingApi {
    auth: crate::Channel,
    http: reqwest::Client,
    token: Option<(String, String)>,
}

impl BlingApi {
    pub async fn call(&mut self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        for _ in 0..200 {
            let (base, token) = match &self.token {
                Some(t) => t.clone(),
                None => {
                    let req = GetAccessTokenRequest {
                        tenant_id: TENANT.into(),
                        provider: Provider::Bling as i32,
                        ..Default::default()
                    };
                    let t = retry(|| {
                        let (mut a, req) = (AuthTokenServiceClient::new(self.auth.clone()), req.clone());
                        async move { a.get_access_token(req).await }
                    })
                    .await?
                    .into_inner();
                    let t = (t.base_url.trim_end_matches('/').to_owned(), t.access_token);
                    self.token = Some(t.clone());
                    t
                }
            };
            let mut req = self.http.request(method.clone(), format!("{base}{path}")).bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let status = resp.status();
            if status == 401 {
                self.token = None;
                continue;
            }
            if status == 429 || status.is_server_error() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let text = resp.text().await?;
            anyhow::ensure!(status.is_success(), "{method} {path}: {status} {text}");
            return Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? });
        }
        anyhow::bail!("{method} {path}: Bling kept refusing")
    }
}

/// The Bling situação a released order is at once the hub's `status` reached it.
pub fn situacao_of(status: &str, made: &[i64; 3]) -> i64 {
    match status {
        "in_packing_list" => made[0],
        "awaiting_shipment" => made[1],
        "in_transit" => made[2],
        "delivered" => ATENDIDO,
        _ => EM_ANDAMENTO,
    }
}

/// One sale as rung up.
#[derive(Debug, Clone)]
pub struct SaleMade {
    /// (product index, quantity), one per item line.
    pub lines: Vec<(usize, i64)>,
    pub cancelled: bool,
}

pub struct Workload {
    /// Bling ids of the products, by index.
    pub products: Vec<i64>,
    /// Each product's name after its last change; `None` while it has not changed (nothing
    /// goes to Bitrix24 then).
    pub names: Vec<Option<String>>,
    /// Sales by id.
    pub sales: BTreeMap<String, SaleMade>,
    pub changes: usize,
    pub cancellations: usize,
    /// Sales orders made through Bling's API, in order.
    pub orders: Vec<OrderMade>,
    /// The hub's moves of released orders.
    pub hub_moves: usize,
    /// The situações setup made: Em romaneio, Aguardando coleta, Em rota de entrega.
    pub situacoes: [i64; 3],
    contato: i64,
    api: BlingApi,
}

async fn retry<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    for _ in 0..40 {
        match f().await {
            Ok(t) => return Ok(t),
            Err(s) if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(s) => anyhow::bail!("{s:?}"),
        }
    }
    anyhow::bail!("the mesh stayed unavailable")
}

/// The name of product `i` after change `n` (`#0`: as seeded).
pub fn product_name(i: usize, n: usize) -> String {
    format!("P{i} #{n}")
}

impl Workload {
    /// Seeds the products (with stock) and maps the till's store and payment methods.
    pub async fn set_up(mesh: &ProcessMesh, cfg: &Config) -> anyhow::Result<Self> {
        let b = &mesh.bling.bling;
        let mut products = Vec::new();
        let mut names = Vec::new();
        for i in 0..cfg.products {
            let name = product_name(i, 0);
            let id = b.seed_product(json!({"nome": name, "codigo": format!("SKU-{i}"), "preco": 10.0}));
            b.set_stock(id, DEPOSITO, Decimal::from(STOCK));
            products.push(id);
            names.push(None);
        }
        let mapping = MappingServiceClient::new(mesh.channel("mapping").await);
        let store = StoreMap {
            tenant_id: TENANT.into(),
            cplug_store_id: STORE.into(),
            bling_loja_id: CANAL_PDV,
            bling_deposito_id: DEPOSITO,
            create_time: None,
        };
        retry(|| {
            let (mut m, map) = (mapping.clone(), store.clone());
            async move { m.create_store_map(CreateStoreMapRequest { map: Some(map), validate_only: false }).await }
        })
        .await?;
        for (method, forma) in [("DINHEIRO", 11_010_299), ("PIX", 11_010_302)] {
            let map = PaymentMethodMap {
                tenant_id: TENANT.into(),
                cplug_method: method.into(),
                bling_forma_pagamento_id: forma,
                ..Default::default()
            };
            retry(|| {
                let (mut m, map) = (mapping.clone(), map.clone());
                async move {
                    m.create_payment_method_map(CreatePaymentMethodMapRequest { map: Some(map), validate_only: false })
                        .await
                }
            })
            .await?;
        }
        // Shipping: the situações and their map, made once by setup.
        let shipping = mesh.channel("shipping-status").await;
        retry(|| {
            let mut c = ShippingStatusServiceClient::new(shipping.clone());
            async move {
                c.set_up_shipping(SetUpShippingRequest { tenant_id: TENANT.into(), ..Default::default() }).await
            }
        })
        .await?;
        let mut api = BlingApi { auth: mesh.channel("auth-token").await, http: reqwest::Client::new(), token: None };
        let list = api.call(reqwest::Method::GET, &format!("/situacoes/modulos/{MODULO_VENDAS}"), None).await?;
        let id_of = |name: &str| -> anyhow::Result<i64> {
            list["data"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["nome"] == name)
                .and_then(|s| s["id"].as_i64())
                .ok_or_else(|| anyhow::anyhow!("setup made no situação '{name}': {list}"))
        };
        let situacoes = [id_of("Em romaneio")?, id_of("Aguardando coleta")?, id_of("Em rota de entrega")?];
        let contato = b.seed_contact(json!({"nome": "Maria Souza", "numeroDocumento": "123.456.789-09", "tipo": "F"}));
        Ok(Self {
            products,
            names,
            sales: BTreeMap::new(),
            changes: 0,
            cancellations: 0,
            orders: Vec::new(),
            hub_moves: 0,
            situacoes,
            contato,
            api,
        })
    }

    /// A sales order made through Bling's API (at Em aberto), moved to Em andamento three
    /// times in four.
    async fn make_order(&mut self, mesh: &ProcessMesh, rng: &mut Rng) -> anyhow::Result<()> {
        let mut itens = Vec::new();
        for _ in 0..1 + rng.below(2) {
            let i = rng.below(self.products.len());
            let product = mesh.bling.bling.product(self.products[i]).unwrap_or_default();
            itens.push(json!({"produto": {"id": self.products[i]}, "quantidade": 1 + rng.below(3), "valor": 10.0,
                "codigo": product["codigo"], "descricao": product["nome"]}));
        }
        let etiqueta = json!({"nome": "Maria Souza", "endereco": "Rua Augusta", "numero": "1500",
            "municipio": "São Paulo", "uf": "SP", "cep": "01304-001", "bairro": "Consolação"});
        let body = json!({"contato": {"id": self.contato}, "data": "2026-03-02", "dataSaida": "2026-03-02",
            "dataPrevista": "2026-03-05", "itens": itens,
            "transporte": {"fretePorConta": 0, "frete": 15, "etiqueta": etiqueta}});
        let created = self.api.call(reqwest::Method::POST, "/pedidos/vendas", Some(&body)).await?;
        let id = created["data"]["id"].as_i64().ok_or_else(|| anyhow::anyhow!("no order id: {created}"))?;
        let released = rng.chance(0.75);
        if released {
            let path = format!("/pedidos/vendas/{id}/situacoes/{EM_ANDAMENTO}");
            self.api.call(reqwest::Method::PATCH, &path, None).await?;
        }
        self.orders.push(OrderMade { id, released, hub_status: "received" });
        Ok(())
    }

    /// The hub moves a released order it holds one step along; false when it holds none that
    /// can move.
    fn move_at_hub(&mut self, mesh: &ProcessMesh, rng: &mut Rng) -> bool {
        let hub = &mesh.hub;
        let at_hub: std::collections::HashMap<String, String> = hub
            .hub
            .orders()
            .into_iter()
            .filter_map(|o| Some((o["external_id"].as_str()?.to_owned(), o["id"].as_str()?.to_owned())))
            .collect();
        let movable: Vec<usize> = (0..self.orders.len())
            .filter(|i| {
                let o = &self.orders[*i];
                o.released && o.hub_status != "delivered" && at_hub.contains_key(&o.id.to_string())
            })
            .collect();
        if movable.is_empty() {
            return false;
        }
        let o = &mut self.orders[movable[rng.below(movable.len())]];
        let Ok((status, _)) = hub.hub.advance(&at_hub[&o.id.to_string()]) else { return false };
        o.hub_status = ponte_sandbox::envios360::STATUSES.iter().find(|s| **s == status).copied().unwrap_or("received");
        self.hub_moves += 1;
        true
    }

    /// The Bling situação the workload's order `o` must end at.
    pub fn expected_situacao(&self, o: &OrderMade) -> i64 {
        if o.released { situacao_of(o.hub_status, &self.situacoes) } else { EM_ABERTO }
    }

    /// Event `n`: 30% a product renamed, 35% a sale, 10% a cancellation of an earlier sale,
    /// 12% a Bling order made, 13% a released order moved along by the hub (an order made when
    /// none can move).
    pub async fn step(&mut self, mesh: &ProcessMesh, rng: &mut Rng, n: usize) -> anyhow::Result<()> {
        let roll = rng.below(100);
        if roll >= 75 {
            if roll >= 87 && self.move_at_hub(mesh, rng) {
                return Ok(());
            }
            return self.make_order(mesh, rng).await;
        }
        let roll = roll * 100 / 75;
        let open: Vec<String> = if roll >= 85 {
            self.sales.iter().filter(|(_, s)| !s.cancelled).map(|(id, _)| id.clone()).collect()
        } else {
            Vec::new()
        };
        if roll < 40 {
            let i = rng.below(self.products.len());
            let name = product_name(i, n + 1);
            assert!(mesh.bling.bling.edit_product_in_ui(self.products[i], json!({"nome": name})));
            self.names[i] = Some(name);
            self.changes += 1;
        } else if roll < 85 || open.is_empty() {
            let id = format!("CH-{n:06}");
            let count = 1 + rng.below(2);
            let mut lines: Vec<(usize, i64)> = Vec::new();
            for _ in 0..count {
                let i = rng.below(self.products.len());
                if lines.iter().all(|(p, _)| *p != i) {
                    lines.push((i, 1 + rng.below(3) as i64));
                }
            }
            let total: i64 = lines.iter().map(|(_, q)| q * 1000).sum();
            let items: Vec<_> = lines
                .iter()
                .map(|(i, q)| json!({"sku": format!("SKU-{i}"), "quantity": q, "unit_price": 10.0}))
                .collect();
            let method = if rng.chance(0.5) { "PIX" } else { "DINHEIRO" };
            let sale = json!({"id": id, "store_id": STORE, "items": items,
                "payments": [{"method": method, "amount": total as f64 / 100.0}]});
            mesh.pos.cplug.ring_up(sale).expect("the till takes the sale");
            self.sales.insert(id, SaleMade { lines, cancelled: false });
        } else {
            let id = &open[rng.below(open.len())];
            mesh.pos.cplug.cancel_sale(id).expect("the till cancels the sale");
            self.sales.get_mut(id).expect("sale").cancelled = true;
            self.cancellations += 1;
        }
        Ok(())
    }

    /// Each product's stock in [`DEPOSITO`] once every sale not cancelled is written off.
    pub fn expected_stock(&self) -> Vec<Decimal> {
        let mut stock = vec![Decimal::from(STOCK); self.products.len()];
        for s in self.sales.values().filter(|s| !s.cancelled) {
            for (i, q) in &s.lines {
                stock[*i] -= Decimal::from(*q);
            }
        }
        stock
    }
}
