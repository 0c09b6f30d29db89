//! The Bling catalog into CPLUG (the point of sale): a product or price change in Bling is
//! upserted in CPLUG by its Bling id (`external_id`), from the webhook's copy of the product
//! (a variation is read from Bling again for its attributes).
//!
//! Upserts that arrive together share one bulk call: the first change of a tenant waits a
//! moment ([`GATHER`]) for others (the gateway delivers many entities at once), then sends up
//! to [`BULK_LIMIT`] in one `PUT /bulks/products` and hands each caller its own item's result.
//! Each caller still answers only after its own product was written.
//!
//! Variations: with the store's grid module ("grade", the tenant's `cplug_grid_enabled`) a
//! variation carries its parent's Bling id and its attributes; without it, each variation is a
//! product of its own whose name carries the attributes, as CPLUG's contract says.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use ponte_connectors::{
    ConnectorError,
    bling::resources::Produto,
    cplug::{
        BULK_LIMIT, CplugClient,
        types::{Product, Variation},
    },
};
use ponte_core::{TenantId, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::{Provider, SyncSettings, TranslateDirection};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::products::{Change, ProductSync, service_error};

/// How long the first change of a tenant waits for others to share its bulk call.
pub const GATHER: Duration = Duration::from_millis(25);

type Reply = oneshot::Sender<Result<(), ConnectorError>>;
/// A tenant's upserts waiting for the next bulk call, each with whom to tell.
type Queue = Vec<(Product, Reply)>;

/// Upserts waiting to share a bulk call, per tenant.
#[derive(Clone, Default)]
pub struct CplugBulks {
    pending: Arc<Mutex<HashMap<TenantId, Queue>>>,
}

/// A Bling variation's attributes: `"Cor:Azul;Tamanho:M"` → {cor: Azul, tamanho: M}.
fn attributes(nome: &str) -> BTreeMap<String, String> {
    nome.split(';')
        .filter_map(|pair| pair.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect()
}

/// CPLUG's product for Bling's `p`, with the tenant's mapped fields (`name`, `sku`, `price`,
/// `unit`) over the defaults.
///
/// ```
/// # use ponte_catalog_sync::cplug_sync::cplug_product;
/// let p: ponte_connectors::bling::resources::Produto = serde_json::from_value(serde_json::json!({
///     "id": 7, "nome": "Camiseta", "codigo": "CAM", "preco": 59.9, "situacao": "A",
///     "variacao": {"nome": "Cor:Azul;Tamanho:M", "produtoPai": {"id": 6}}})).unwrap();
/// let alone = cplug_product(&p, &Default::default(), false);
/// assert_eq!((alone.name.as_str(), alone.unit.as_str()), ("Camiseta (Azul, M)", "UN"));
/// let in_grid = cplug_product(&p, &Default::default(), true);
/// assert_eq!(in_grid.parent_external_id.as_deref(), Some("6"));
/// assert_eq!(in_grid.variation.unwrap().attributes["cor"], "Azul");
/// ```
pub fn cplug_product(p: &Produto, mapped: &serde_json::Map<String, Value>, grid: bool) -> Product {
    let text = |k: &str, default: &str| mapped.get(k).and_then(Value::as_str).unwrap_or(default).to_owned();
    let price = match mapped.get("price") {
        Some(Value::Number(n)) => n.to_string().parse().ok(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .or(p.preco)
    .unwrap_or(Decimal::ZERO)
    .round_dp(2);
    let mut product = Product {
        external_id: p.id.to_string(),
        sku: text("sku", &p.codigo),
        name: text("name", &p.nome),
        price,
        active: p.is_active(),
        // CPLUG requires a unit; a Bling product without one (a variation often has none of
        // its own) is sold by the unit, Bling's own default.
        unit: Some(text("unit", &p.unidade)).filter(|u| !u.trim().is_empty()).unwrap_or_else(|| "UN".into()),
        parent_external_id: None,
        variation: None,
    };
    if let Some(v) = p.variacao.as_ref().filter(|v| v.produto_pai.is_some()) {
        let attrs = attributes(&v.nome);
        if grid {
            product.parent_external_id = v.produto_pai.map(|pai| pai.id.to_string());
            product.variation = Some(Variation { name: v.nome.clone(), attributes: attrs });
        } else if !attrs.is_empty() && !mapped.contains_key("name") {
            let label: Vec<String> = attrs.values().cloned().collect();
            product.name = format!("{} ({})", product.name, label.join(", "));
        }
    }
    product
}

impl CplugBulks {
    /// Upserts `product` for `tenant_id`, sharing a bulk call with whatever arrives meanwhile.
    async fn upsert(
        &self,
        client: &CplugClient,
        token: &str,
        tenant_id: &TenantId,
        product: Product,
    ) -> Result<(), ConnectorError> {
        let (reply, answer) = oneshot::channel();
        let leader = {
            let mut pending = self.pending.lock();
            let queue = pending.entry(tenant_id.clone()).or_default();
            queue.push((product, reply));
            queue.len() == 1
        };
        if leader {
            tokio::time::sleep(GATHER).await;
            loop {
                let batch: Vec<(Product, Reply)> = {
                    let mut pending = self.pending.lock();
                    let Some(queue) = pending.get_mut(tenant_id) else { break };
                    let n = queue.len().min(BULK_LIMIT);
                    let batch: Vec<_> = queue.drain(..n).collect();
                    if queue.is_empty() {
                        pending.remove(tenant_id);
                    }
                    batch
                };
                if batch.is_empty() {
                    break;
                }
                send(client, token, batch).await;
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(ConnectorError::Unavailable { system: "CPLUG", message: "the bulk call was dropped".into() })
        })
    }
}

/// One bulk call (a plain upsert for one product); every caller gets its own item's answer.
async fn send(client: &CplugClient, token: &str, batch: Vec<(Product, Reply)>) {
    let (products, replies): (Vec<Product>, Vec<Reply>) = batch.into_iter().unzip();
    if products.len() == 1 {
        let r = client.upsert(token, &products[0]).await.map(|_| ());
        let _ = replies.into_iter().next().map(|reply| reply.send(r));
        return;
    }
    match client.upsert_bulk(token, &products).await {
        Ok(results) => {
            let by_id: HashMap<&str, &Option<String>> =
                results.iter().map(|r| (r.external_id.as_str(), &r.error)).collect();
            for (p, reply) in products.iter().zip(replies) {
                let r = match by_id.get(p.external_id.as_str()) {
                    Some(None) => Ok(()),
                    Some(Some(error)) => Err(ConnectorError::Rejected {
                        system: "CPLUG",
                        status: 422,
                        message: format!("product {}: {error}", p.external_id),
                        fields: Vec::new(),
                    }),
                    None => Err(ConnectorError::Protocol {
                        system: "CPLUG",
                        message: format!("the bulk answer left out product {}", p.external_id),
                    }),
                };
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

impl ProductSync {
    /// Upserts Bling product `bling_id` of `tenant_id` into CPLUG. `sent` is the product as the
    /// webhook carried it: it holds everything CPLUG takes but a variation's attributes, so
    /// only variations are read from Bling again, sparing the account's 3 requests a second
    /// (the gateway hands over an entity's events in order and stale ones never get here).
    pub async fn bling_to_cplug(
        &self,
        tenant_id: &TenantId,
        bling_id: i64,
        sent: Option<&Value>,
        settings: &SyncSettings,
        priority: Priority,
    ) -> Result<Change, ServiceError> {
        let Some(token) = self.tokens.get_if_connected(tenant_id, Provider::Cplug).await? else {
            return Ok(Change::Skipped("CPLUG is not connected"));
        };
        let sent = sent
            .filter(|v| v.get("idProdutoPai").is_none_or(Value::is_null))
            .and_then(|v| serde_json::from_value::<Produto>(v.clone()).ok())
            .filter(|p| p.id == bling_id && !p.nome.is_empty() && !p.situacao.is_empty());
        let product = match sent {
            Some(p) => p,
            None => match self.read_bling(tenant_id, bling_id, priority).await? {
                Some(p) => p,
                None => return Ok(Change::Skipped("deleted in Bling; CPLUG keeps its sales history")),
            },
        };
        let source = serde_json::to_value(&product).map_err(|e| ServiceError::Internal(e.into()))?;
        let mapped =
            self.translate_fields(tenant_id, TranslateDirection::BlingToCplug, &bling_id.to_string(), &source).await?;
        let item = cplug_product(&product, &mapped, settings.cplug_grid_enabled);
        let client = CplugClient::new(self.http.clone(), token.base_url());
        match self.cplug.upsert(&client, token.secret(), tenant_id, item.clone()).await {
            Err(ConnectorError::InvalidToken { .. }) => {
                // CPLUG's token ran out: auth-token gets a new one, and the write goes once more.
                let renewed = self.tokens.refused(tenant_id, Provider::Cplug, &token).await?;
                self.cplug.upsert(&client, renewed.secret(), tenant_id, item).await.map_err(service_error)?;
            }
            other => other.map_err(service_error)?,
        }
        Ok(Change::Updated(bling_id.to_string()))
    }
}
