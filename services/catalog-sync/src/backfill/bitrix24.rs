//! Backfills of the Bling catalog into Bitrix24 products. For each page of Bling's product list
//! (deleted items left out) a step:
//!
//! 1. translates every item through the tenant's field mapping (from the list item itself when
//!    the tenant's mappings read only fields the list carries, as the builtin set does; from
//!    `GET /produtos/{id}` otherwise, which makes the backfill bound by Bling's 3 requests/s);
//! 2. finds what the portal already has by its "Bling ID" property (one `batch` of look-ups
//!    for the page), then the link registry for the rest, so a resumed or repeated backfill
//!    never duplicates;
//! 3. records which items it means to create or update, then writes only what differs in
//!    `batch` calls of at most 50 commands, and links what it created (and what it found only
//!    by the property).
//!
//! The next page is read and translated while the current one is written ([`Prefetch`]).
//! Variations go to Bitrix24 as products of their own (its CRM products have no grid), as the
//! live sync sends them.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use futures::{StreamExt, stream};
use parking_lot::Mutex;
use ponte_connectors::{
    CallError,
    bitrix24::{Batch, Portal, ProductFields, ProductId, Slot},
    bling::{resources::ProdutoResumo, transformers::ProductState},
};
use ponte_core::{BlingId, TenantId, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::Provider;

use super::{
    page::{Done, MAPPING_CONCURRENCY, Outcome, PAGE_SIZE, count_interrupted, tally, usable},
    store::{Intent, Meant, Store, Stored},
};
use crate::{context::Context, portal::BLING_ID_CODE, products::bitrix24_fields};

/// Bling list-item fields: a tenant mapping reading anything else needs the full product.
const LIST_FIELDS: &[&str] = &["id", "idProdutoPai", "nome", "codigo", "preco", "tipo", "situacao", "formato"];

/// An item's Bitrix24 fields, or why it cannot be translated; `None`: gone from Bling since
/// it was listed.
type Translated = Option<Result<ProductFields, String>>;

/// A page of Bling's product list as read: how many items it listed (deleted ones included),
/// the rest, and their translations.
struct ReadPage {
    listed: usize,
    items: Vec<ProdutoResumo>,
    translated: Vec<Translated>,
}

/// The next page of a backfill, read and translated while the current one is written to
/// Bitrix24, so the Bling read and the mapping calls of one page overlap the Bitrix24 calls of
/// the one before. Reading writes nothing: a prefetch for a page that is not the next one to
/// write (the checkpoint moved, a step failed) is dropped.
struct Prefetch {
    page: u32,
    task: tokio::task::JoinHandle<Result<ReadPage, ServiceError>>,
}

/// A write a page sends.
enum Write {
    Add(Slot<ProductId>),
    Update(Slot<bool>),
}

#[derive(Clone)]
pub(super) struct Bitrix24Products {
    ctx: Context,
    store: Store,
    /// The next page of each backfill, being read.
    prefetched: Arc<Mutex<HashMap<String, Prefetch>>>,
}

impl Bitrix24Products {
    pub fn new(ctx: Context, store: Store) -> Self {
        Self { ctx, store, prefetched: Arc::default() }
    }

    /// Drops what this target keeps for backfill `id`.
    pub fn forget(&self, id: &str) {
        if let Some(ahead) = self.prefetched.lock().remove(id) {
            ahead.task.abort();
        }
    }

    /// One page of products into Bitrix24.
    pub async fn step(&self, stored: &Stored, page: u32) -> Result<Done, ServiceError> {
        let tenant_id = &stored.tenant_id;
        let ahead = self.prefetched.lock().remove(&stored.id);
        let read = match ahead {
            Some(ahead) if ahead.page == page => match ahead.task.await {
                Ok(read) => read,
                Err(_) => read_page(&self.ctx, tenant_id, page).await,
            },
            Some(stale) => {
                stale.task.abort();
                read_page(&self.ctx, tenant_id, page).await
            }
            None => read_page(&self.ctx, tenant_id, page).await,
        }?;
        if read.listed == 0 {
            return Ok(Done { through: page - 1, result: Default::default(), last: true });
        }
        let last = read.listed < PAGE_SIZE;
        if !last {
            self.prefetch(stored, page + 1);
        }
        // Kept across a retry with a renewed token: what the first try meant still counts.
        let intent = &Mutex::new(stored.intent_of(page));
        let (ctx, store, read_ref) = (&self.ctx, &self.store, &read);
        let outcomes = ctx
            .tokens
            .with_token_if_connected(tenant_id, Provider::Bitrix24, |token| async move {
                let portal = ctx.bitrix24.portal_for(&token, Priority::Backfill);
                write(ctx, store, stored, page, &portal, read_ref, intent).await
            })
            .await?
            .ok_or_else(|| {
                ServiceError::FailedPrecondition(format!("tenant '{tenant_id}' has not connected Bitrix24"))
            })?;
        Ok(Done { through: page, result: tally(&read.items, outcomes), last })
    }

    /// Starts reading `page` of `stored`'s backfill, to be taken by the step that writes it.
    fn prefetch(&self, stored: &Stored, page: u32) {
        let ctx = self.ctx.clone();
        let tenant_id = stored.tenant_id.clone();
        let task = tokio::spawn(async move { read_page(&ctx, &tenant_id, page).await });
        if let Some(old) = self.prefetched.lock().insert(stored.id.clone(), Prefetch { page, task }) {
            old.task.abort();
        }
    }
}

/// A page of Bling's product list, without the deleted items, and their translations.
async fn read_page(ctx: &Context, tenant_id: &TenantId, page: u32) -> Result<ReadPage, ServiceError> {
    let listed = ctx.produtos_page(tenant_id, page).await?;
    let count = listed.len();
    let items: Vec<ProdutoResumo> = listed.into_iter().filter(|i| i.state() != Some(ProductState::Deleted)).collect();
    let mapped = ctx.mapping.bling_fields_for_bitrix24(tenant_id).await?;
    let full = mapped.iter().any(|f| !LIST_FIELDS.contains(&f.as_str()));
    let translations: Vec<_> = items.iter().map(|item| translate(ctx, tenant_id, item, full)).collect();
    let results: Vec<_> = stream::iter(translations).buffered(MAPPING_CONCURRENCY).collect().await;
    let translated = results.into_iter().collect::<Result<_, _>>()?;
    Ok(ReadPage { listed: count, items, translated })
}

async fn translate(
    ctx: &Context,
    tenant_id: &TenantId,
    item: &ProdutoResumo,
    full: bool,
) -> Result<Translated, ServiceError> {
    let translated = if full {
        match ctx.produto(tenant_id, item.id, Priority::Backfill).await? {
            Some(p) => bitrix24_fields(ctx, tenant_id, item.id, &p).await,
            None => return Ok(None),
        }
    } else {
        bitrix24_fields(ctx, tenant_id, item.id, item).await
    };
    match translated {
        Ok(fields) => Ok(Some(Ok(fields))),
        Err(ServiceError::FailedPrecondition(why)) => Ok(Some(Err(why))),
        Err(e) => Err(e),
    }
}

/// The Bitrix24 side of a page: look up, record intent, batch-write, link.
async fn write(
    ctx: &Context,
    store: &Store,
    stored: &Stored,
    page: u32,
    portal: &Portal,
    read: &ReadPage,
    intent: &Mutex<Intent>,
) -> Result<Vec<Option<Outcome>>, CallError> {
    let tenant_id = &stored.tenant_id;
    let property = ctx.bling_id_keys.get(portal).await?;
    let ids: Vec<BlingId> = read.items.iter().map(|i| i.id).collect();
    let keys: Vec<String> = ids.iter().map(BlingId::to_string).collect();
    let found = portal.find_products_by_property(&property, &keys).await?;
    let unfound: Vec<BlingId> =
        ids.iter().zip(&keys).filter(|(_, k)| !found.contains_key(*k)).map(|(id, _)| *id).collect();
    let linked = ctx.mapping.products_of(tenant_id, &unfound).await?;

    // What each item needs.
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(ids.len());
    let mut batch = Batch::new();
    let mut writes: BTreeMap<usize, Write> = BTreeMap::new();
    let meant = {
        let mut meant = intent.lock();
        for ((id, key), t) in ids.iter().zip(&keys).zip(&read.translated) {
            let Some(mut fields) = usable(t.clone(), &mut outcomes) else { continue };
            fields.set_property(BLING_ID_CODE, property.clone(), key.clone());
            let i = outcomes.len();
            let current = found.get(key);
            if current.is_some_and(|p| fields.held_by(p)) {
                outcomes.push(Some(Outcome::Unchanged));
                continue;
            }
            match current.map(|p| p.id).or_else(|| linked.get(id).copied()) {
                Some(bitrix_id) => {
                    writes.insert(i, Write::Update(batch.update_product(bitrix_id, &fields)));
                    meant.entry(key.clone()).or_insert(Meant::Updated);
                    outcomes.push(Some(Outcome::Updated));
                }
                None => {
                    writes.insert(i, Write::Add(batch.add_product(&fields)));
                    meant.entry(key.clone()).or_insert(Meant::Created);
                    outcomes.push(Some(Outcome::Created));
                }
            }
        }
        meant.clone()
    };
    store.record_intent(&stored.id, page, &meant).await?;

    let mut created: HashMap<usize, ProductId> = HashMap::new();
    if !batch.is_empty() {
        let answers = portal.batch(&batch, false).await?;
        for (i, write) in &writes {
            let answer = match write {
                Write::Add(slot) => answers.take(slot).map(|r| r.map(Some)),
                Write::Update(slot) => answers.take(slot).map(|r| r.map(|_| None)),
            };
            match answer {
                Some(Err(e)) if e.is_transient() => {
                    let why = format!("Bitrix24 refused part of a batch for now: {}", e.message());
                    return Err(ServiceError::unavailable(why, None).into());
                }
                Some(Err(e)) => {
                    outcomes[*i] = Some(Outcome::Failed(format!("Bitrix24 refused the product: {}", e.message())))
                }
                Some(Ok(Some(id))) => {
                    created.insert(*i, id);
                }
                Some(Ok(None)) | None => {}
            }
        }
    }

    // Link what was created, and what only the property found.
    let mut to_link = Vec::new();
    for (i, (id, key)) in ids.iter().zip(&keys).enumerate() {
        if matches!(outcomes[i], Some(Outcome::Failed(_)) | None) || linked.contains_key(id) {
            continue;
        }
        match found.get(key).map(|p| p.id).or_else(|| created.get(&i).copied()) {
            Some(bitrix_id) => to_link.push((i, (*id, bitrix_id))),
            None => outcomes[i] = Some(Outcome::Failed("Bitrix24 returned no id for the new product".into())),
        }
    }
    let pairs: Vec<_> = to_link.iter().map(|(_, pair)| *pair).collect();
    let conflicts = ctx.mapping.link_products(tenant_id, &pairs).await?;
    for ((i, _), conflict) in to_link.iter().zip(conflicts) {
        if !conflict.is_empty() {
            outcomes[*i] = Some(Outcome::Failed(format!("linked to another product: {conflict}")));
        }
    }
    count_interrupted(keys, &mut outcomes, &meant);
    Ok(outcomes)
}
