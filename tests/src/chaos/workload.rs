//! The merchant's side of the chaos run: products renamed in Bling's UI (each change sent as
//! Bling's `product.updated`), sales rung up at the CPLUG till and some cancelled (each sent as
//! CPLUG's `sale.completed` / `sale.cancelled`), and what each implies.

use std::{collections::BTreeMap, time::Duration};

use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, CreateStoreMapRequest, PaymentMethodMap, StoreMap,
    mapping_service_client::MappingServiceClient,
};
use ponte_sandbox::bling::{CANAL_PDV, DEPOSITOS};
use rust_decimal::Decimal;
use serde_json::json;

use super::{Config, Rng};
use crate::{procs::ProcessMesh, webhooks::TENANT};

/// The depósito the till's store writes off from.
pub const DEPOSITO: i64 = DEPOSITOS[0].0;
/// Each product's stock before the run.
pub const STOCK: i64 = 100_000;
const STORE: &str = "loja-centro";

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
    anyhow::bail!("mapping stayed unavailable")
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
        Ok(Self { products, names, sales: BTreeMap::new(), changes: 0, cancellations: 0 })
    }

    /// Event `n`: 40% a product renamed, 45% a sale, 15% a cancellation of an earlier sale.
    pub fn step(&mut self, mesh: &ProcessMesh, rng: &mut Rng, n: usize) {
        let roll = rng.below(100);
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
