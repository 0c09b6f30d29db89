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

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, stream};
use ponte_connectors::{
    ConnectorError,
    bling::resources::{Produto, ProdutoResumo},
    cplug::{BULK_LIMIT, CplugClient, types::Product},
};
use ponte_core::{TenantId, access::AccessToken, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::{Provider, TranslateDirection};

use super::{Backfills, MAPPING_CONCURRENCY, Outcome, PAGE_SIZE, PageResult, Stored, tally, usable};
use crate::{cplug_sync::cplug_product, products::service_error, settings};

/// Bling pages behind one CPLUG bulk call: 5 pages of 100 fill its 500.
pub(super) const PAGES_PER_BULK: u32 = (BULK_LIMIT / PAGE_SIZE) as u32;
/// Bling reads in flight; the shared limiter spaces them at the account's 3 requests/s.
const READ_CONCURRENCY: usize = 8;

/// CPLUG's catalog as a runner knows it: external id → product.
pub(super) type Catalog = HashMap<String, Product>;

impl Backfills {
    /// Up to [`PAGES_PER_BULK`] pages from `first` into CPLUG: the last page read, what the
    /// pages added, and whether they were the last.
    pub(super) async fn cplug_chunk(
        &self,
        stored: &Stored,
        first: u32,
    ) -> Result<(u32, PageResult, bool), ServiceError> {
        let tenant_id = &stored.tenant_id;
        let mut listed = Vec::new();
        let mut through = first - 1;
        let mut last = false;
        while through < first - 1 + PAGES_PER_BULK {
            let page = self.list_page(tenant_id, through + 1).await?;
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
        let items: Vec<ProdutoResumo> = listed.into_iter().filter(|i| i.situacao != "E").collect();
        if items.is_empty() {
            return Ok((through, PageResult::default(), last));
        }
        let Some(token) = self.sync.tokens.get_if_connected(tenant_id, Provider::Cplug).await? else {
            return Err(ServiceError::FailedPrecondition(format!("tenant '{tenant_id}' has not connected CPLUG")));
        };
        let grid = settings::load(&self.db, tenant_id).await?.cplug_grid_enabled;
        let full = self.full_products(tenant_id, &items).await?;
        let translations: Vec<_> = full
            .into_iter()
            .map(|p| async move {
                let Some(p) = p else { return Ok(None) };
                let source = serde_json::to_value(&p).map_err(|e| ServiceError::Internal(e.into()))?;
                match self
                    .sync
                    .translate_fields(tenant_id, TranslateDirection::BlingToCplug, &p.id.to_string(), &source)
                    .await
                {
                    Ok(mapped) => Ok(Some(Ok(cplug_product(&p, &mapped, grid)))),
                    Err(ServiceError::FailedPrecondition(why)) => Ok(Some(Err(why))),
                    Err(e) => Err(e),
                }
            })
            .collect();
        let translated: Vec<Result<Option<Result<Product, String>>, ServiceError>> =
            stream::iter(translations).buffered(MAPPING_CONCURRENCY).collect().await;

        let client = CplugClient::new(self.sync.http.clone(), token.base_url());
        let catalog = self.cplug_catalog(stored, &client, &token).await?;
        let mut intent =
            if stored.inflight_page == i64::from(first) { stored.inflight.clone() } else { BTreeMap::new() };
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
        let mut writes: Vec<(usize, Product)> = Vec::new();
        {
            let catalog = catalog.lock();
            for (i, t) in translated.into_iter().enumerate() {
                let Some(product) = usable(t?, &mut outcomes) else { continue };
                let outcome = match catalog.get(&product.external_id) {
                    Some(current) if *current == product => Outcome::Unchanged,
                    Some(_) => Outcome::Updated,
                    None => Outcome::Created,
                };
                if outcome != Outcome::Unchanged {
                    let meant = if outcome == Outcome::Created { "created" } else { "updated" };
                    intent.entry(product.external_id.clone()).or_insert_with(|| meant.into());
                    writes.push((i, product));
                }
                outcomes.push(Some(outcome));
            }
        }
        self.record_intent(&stored.id, first, &intent).await?;

        if !writes.is_empty() {
            let products: Vec<Product> = writes.iter().map(|(_, p)| p.clone()).collect();
            let results = match client.upsert_bulk(token.secret(), &products).await {
                Ok(results) => results,
                Err(ConnectorError::InvalidToken { .. }) => {
                    self.sync.tokens.refused(tenant_id, Provider::Cplug, &token).await?;
                    return Err(ServiceError::unavailable("CPLUG refused its token; token renewed", None));
                }
                Err(e) => return Err(service_error(e)),
            };
            let errors: HashMap<&str, &Option<String>> =
                results.iter().map(|r| (r.external_id.as_str(), &r.error)).collect();
            let mut catalog = catalog.lock();
            for (i, product) in writes {
                match errors.get(product.external_id.as_str()) {
                    Some(None) => {
                        catalog.insert(product.external_id.clone(), product);
                    }
                    Some(Some(error)) => {
                        outcomes[i] = Some(Outcome::Failed(format!("CPLUG refused the product: {error}")));
                    }
                    None => {
                        outcomes[i] = Some(Outcome::Failed("the CPLUG bulk answer left the product out".into()));
                    }
                }
            }
        }

        // A write the interrupted attempt of these pages made counts as that write.
        for (item, outcome) in items.iter().zip(outcomes.iter_mut()) {
            if let (Some(o @ (Outcome::Unchanged | Outcome::Updated)), Some(meant)) =
                (outcome.as_mut(), intent.get(&item.id.to_string()))
            {
                *o = if meant == "created" { Outcome::Created } else { Outcome::Updated };
            }
        }
        Ok((through, tally(&items, outcomes), last))
    }

    /// Every item as Bling has it now (`None`: gone since it was listed). A variation comes
    /// from its parent's `variacoes`, so a parent is read once for all of them.
    async fn full_products(
        &self,
        tenant_id: &TenantId,
        items: &[ProdutoResumo],
    ) -> Result<Vec<Option<Produto>>, ServiceError> {
        let mut reads: Vec<i64> = Vec::new();
        for item in items {
            let id = item.id_produto_pai.unwrap_or(item.id);
            if !reads.contains(&id) {
                reads.push(id);
            }
        }
        let reads: Vec<_> = reads
            .into_iter()
            .map(|id| async move { (id, self.sync.read_bling(tenant_id, id, Priority::Backfill).await) })
            .collect();
        let fetched: Vec<(i64, Result<Option<Produto>, ServiceError>)> =
            stream::iter(reads).buffer_unordered(READ_CONCURRENCY).collect().await;
        let mut by_id: HashMap<i64, Option<Produto>> = HashMap::with_capacity(fetched.len());
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
                        None => self.sync.read_bling(tenant_id, item.id, Priority::Backfill).await?,
                    }
                }
            };
            out.push(found);
        }
        Ok(out)
    }

    /// CPLUG's catalog for this backfill's runner: read in full the first time, then kept up
    /// to date with the runner's writes.
    async fn cplug_catalog(
        &self,
        stored: &Stored,
        client: &CplugClient,
        token: &AccessToken,
    ) -> Result<std::sync::Arc<parking_lot::Mutex<Catalog>>, ServiceError> {
        if let Some(known) = self.catalogs.lock().get(&stored.id) {
            return Ok(known.clone());
        }
        let mut catalog = Catalog::new();
        for page in 1.. {
            let got = match client.list(token.secret(), page).await {
                Ok(got) => got,
                Err(ConnectorError::InvalidToken { .. }) => {
                    self.sync.tokens.refused(&stored.tenant_id, Provider::Cplug, token).await?;
                    return Err(ServiceError::unavailable("CPLUG refused its token; token renewed", None));
                }
                Err(e) => return Err(service_error(e)),
            };
            let short = got.data.len() < usize::try_from(got.per_page.max(1)).unwrap_or(PAGE_SIZE);
            for p in got.data {
                catalog.insert(p.external_id.clone(), p);
            }
            if short || u64::from(page) * u64::from(got.per_page.max(1)) >= got.total {
                break;
            }
        }
        let catalog = std::sync::Arc::new(parking_lot::Mutex::new(catalog));
        self.catalogs.lock().insert(stored.id.clone(), catalog.clone());
        Ok(catalog)
    }
}
