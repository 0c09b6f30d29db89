//! Backfills of the Bling catalog into CPLUG.
//!
//! A step lists up to [`PAGES_PER_BULK`] Bling pages (500 items, one bulk call's worth), reads
//! the products in full (Bling's list carries no unit, and a variation's attributes are only in
//! its parent's `variacoes`: a formato V parent is read once for itself and all its variations,
//! a simple product once), translates them through the tenant's Bling → CPLUG mapping into the
//! product the live sync would send ([`cplug_product`]), and upserts in one
//! `PUT /bulks/products` only those CPLUG does not already hold as they are.
//!
//! What CPLUG holds comes from its own list (`GET /products`, 100 a page), read once when a
//! runner first needs it and kept up to date with the runner's own writes, so created, updated
//! and unchanged are told apart without a read per product. As for Bitrix24, the items a step
//! means to write are recorded before the bulk call, so a step redone after a crash counts the
//! writes of its interrupted attempt as what they were.

use std::{collections::HashMap, sync::Arc};

use futures::{StreamExt, stream};
use parking_lot::Mutex;
use ponte_connectors::{
    CallError,
    bling::{
        resources::{Produto, ProdutoResumo},
        transformers::ProductState,
    },
    cplug::{BULK_LIMIT, CplugClient, client::bulk_outcomes, types::Product},
};
use ponte_core::{BlingId, TenantId, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::Provider;

use super::{
    page::{Done, MAPPING_CONCURRENCY, Outcome, PAGE_SIZE, count_interrupted, tally, usable},
    store::{Meant, Store, Stored},
};
use crate::{context::Context, cplug_sync::cplug_product, settings};

/// Bling pages behind one CPLUG bulk call: 5 pages of 100 fill its 500.
const PAGES_PER_BULK: u32 = (BULK_LIMIT / PAGE_SIZE) as u32;
/// Bling reads in flight; the shared limiter spaces them at the account's 3 requests/s.
const READ_CONCURRENCY: usize = 8;

/// CPLUG's catalog as a runner knows it: external id → product.
type Catalog = HashMap<String, Product>;

#[derive(Clone)]
pub(super) struct CplugProducts {
    ctx: Context,
    store: Store,
    /// CPLUG's catalog as each backfill's runner in this process knows it.
    catalogs: Arc<Mutex<HashMap<String, Arc<Mutex<Catalog>>>>>,
}

impl CplugProducts {
    pub fn new(ctx: Context, store: Store) -> Self {
        Self { ctx, store, catalogs: Arc::default() }
    }

    /// Drops what this target keeps for backfill `id`.
    pub fn forget(&self, id: &str) {
        self.catalogs.lock().remove(id);
    }

    /// Up to [`PAGES_PER_BULK`] pages from `first` into CPLUG.
    pub async fn step(&self, stored: &Stored, first: u32) -> Result<Done, ServiceError> {
        let ctx = &self.ctx;
        let tenant_id = &stored.tenant_id;
        let mut listed = Vec::new();
        let mut through = first - 1;
        let mut last = false;
        while through < first - 1 + PAGES_PER_BULK {
            let page = ctx.produtos_page(tenant_id, through + 1).await?;
            if page.is_empty() {
                last = true;
                break;
            }
            through += 1;
            let short = page.len() < PAGE_SIZE;
            listed.extend(page);
            if short {
                last = true;
                break;
            }
        }
        let items: Vec<ProdutoResumo> =
            listed.into_iter().filter(|i| i.state() != Some(ProductState::Deleted)).collect();
        if items.is_empty() {
            return Ok(Done { through, result: Default::default(), last });
        }
        if ctx.tokens.get_if_connected(tenant_id, Provider::Cplug).await?.is_none() {
            return Err(ServiceError::FailedPrecondition(format!("tenant '{tenant_id}' has not connected CPLUG")));
        }
        let grid = settings::load(&ctx.db, tenant_id).await?.cplug_grid_enabled;
        let full = self.full_products(tenant_id, &items).await?;
        let translations: Vec<_> = full
            .into_iter()
            .map(|p| async move {
                let Some(p) = p else { return Ok(None) };
                match cplug_product(ctx, tenant_id, &p, grid).await {
                    Ok(product) => Ok(Some(Ok(product))),
                    Err(ServiceError::FailedPrecondition(why)) => Ok(Some(Err(why))),
                    Err(e) => Err(e),
                }
            })
            .collect();
        let translated: Vec<Result<Option<Result<Product, String>>, ServiceError>> =
            stream::iter(translations).buffered(MAPPING_CONCURRENCY).collect().await;
        let translated = &translated.into_iter().collect::<Result<Vec<_>, _>>()?;
        let keys = &items.iter().map(|i| i.id.to_string()).collect::<Vec<_>>();

        let outcomes = ctx
            .tokens
            .with_token(tenant_id, Provider::Cplug, |token| async move {
                let client = CplugClient::new(ctx.http.clone(), token.base_url());
                self.write(stored, first, &client, token.secret(), keys, translated).await
            })
            .await?;
        Ok(Done { through, result: tally(&items, outcomes), last })
    }

    /// Compares with CPLUG's catalog, records intent, and upserts what differs in one call.
    async fn write(
        &self,
        stored: &Stored,
        first: u32,
        client: &CplugClient,
        token: &str,
        keys: &[String],
        translated: &[Option<Result<Product, String>>],
    ) -> Result<Vec<Option<Outcome>>, CallError> {
        let catalog = self.catalog(stored, client, token).await?;
        let mut intent = stored.intent_of(first);
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(translated.len());
        let mut writes: Vec<(usize, Product)> = Vec::new();
        {
            let catalog = catalog.lock();
            for (i, t) in translated.iter().enumerate() {
                let Some(product) = usable(t.clone(), &mut outcomes) else { continue };
                let outcome = match catalog.get(&product.external_id) {
                    Some(current) if *current == product => Outcome::Unchanged,
                    Some(_) => Outcome::Updated,
                    None => Outcome::Created,
                };
                if outcome != Outcome::Unchanged {
                    let meant = if outcome == Outcome::Created { Meant::Created } else { Meant::Updated };
                    intent.entry(product.external_id.clone()).or_insert(meant);
                    writes.push((i, product));
                }
                outcomes.push(Some(outcome));
            }
        }
        self.store.record_intent(&stored.id, first, &intent).await?;

        if !writes.is_empty() {
            let products: Vec<Product> = writes.iter().map(|(_, p)| p.clone()).collect();
            let results = client.upsert_bulk(token, &products).await?;
            let mut catalog = catalog.lock();
            for ((i, product), outcome) in writes.into_iter().zip(bulk_outcomes(&products, &results)) {
                match outcome {
                    Ok(()) => {
                        catalog.insert(product.external_id.clone(), product);
                    }
                    Err(e) => outcomes[i] = Some(Outcome::Failed(e.to_string())),
                }
            }
        }
        count_interrupted(keys.iter().cloned(), &mut outcomes, &intent);
        Ok(outcomes)
    }

    /// Every item as Bling has it now (`None`: gone since it was listed). A variation comes
    /// from its parent's `variacoes`, so a parent is read once for all of them.
    async fn full_products(
        &self,
        tenant_id: &TenantId,
        items: &[ProdutoResumo],
    ) -> Result<Vec<Option<Produto>>, ServiceError> {
        let ctx = &self.ctx;
        let mut reads: Vec<BlingId> = Vec::new();
        for item in items {
            let id = item.id_produto_pai.unwrap_or(item.id);
            if !reads.contains(&id) {
                reads.push(id);
            }
        }
        let reads: Vec<_> = reads
            .into_iter()
            .map(|id| async move { (id, ctx.produto(tenant_id, id, Priority::Backfill).await) })
            .collect();
        let fetched: Vec<(BlingId, Result<Option<Produto>, ServiceError>)> =
            stream::iter(reads).buffer_unordered(READ_CONCURRENCY).collect().await;
        let mut by_id: HashMap<BlingId, Option<Produto>> = HashMap::with_capacity(fetched.len());
        for (id, r) in fetched {
            by_id.insert(id, r?);
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let found = match item.id_produto_pai {
                None => by_id.get(&item.id).cloned().flatten(),
                Some(pai) => {
                    let from_parent = by_id
                        .get(&pai)
                        .and_then(Option::as_ref)
                        .and_then(|p| p.variacoes.iter().find(|v| v.id == item.id).cloned());
                    match from_parent {
                        Some(v) => Some(v),
                        // The parent no longer lists it: ask for the variation itself.
                        None => ctx.produto(tenant_id, item.id, Priority::Backfill).await?,
                    }
                }
            };
            out.push(found);
        }
        Ok(out)
    }

    /// CPLUG's catalog for this backfill's runner: read in full the first time, then kept up
    /// to date with the runner's writes.
    async fn catalog(
        &self,
        stored: &Stored,
        client: &CplugClient,
        token: &str,
    ) -> Result<Arc<Mutex<Catalog>>, CallError> {
        if let Some(known) = self.catalogs.lock().get(&stored.id) {
            return Ok(known.clone());
        }
        let mut catalog = Catalog::new();
        for page in 1.. {
            let got = client.list(token, page).await?;
            let short = got.data.len() < usize::try_from(got.per_page.max(1)).unwrap_or(PAGE_SIZE);
            for p in got.data {
                catalog.insert(p.external_id.clone(), p);
            }
            if short || u64::from(page) * u64::from(got.per_page.max(1)) >= got.total {
                break;
            }
        }
        let catalog = Arc::new(Mutex::new(catalog));
        self.catalogs.lock().insert(stored.id.clone(), catalog.clone());
        Ok(catalog)
    }
}
