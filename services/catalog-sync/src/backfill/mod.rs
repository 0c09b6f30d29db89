//! Backfills: a full copy of a tenant's Bling catalog into Bitrix24, one Bling page at a time,
//! resumable from its checkpoint.
//!
//! A backfill is a row in `backfills` (state, counts, `pages_done`, the first 100 failures). A
//! runner pages Bling's `GET /produtos` with `criterio` 5 (every product, active and inactive;
//! the variations are items of the list with `idProdutoPai`), 100 a page, at
//! [`Priority::Backfill`], so the shared limiter serves live events first. For each page it:
//!
//! 1. translates every item through the tenant's field mapping (from the list item itself when
//!    the tenant's mappings read only fields the list carries, as the builtin set does; from
//!    `GET /produtos/{id}` otherwise, which makes the backfill bound by Bling's 3 requests/s);
//! 2. finds what the portal already has in one `batch` of `crm.product.list` commands filtered
//!    by `@PROPERTY_<n>` (the portal's "Bling ID" property) = the page's ids, then the link
//!    registry for the rest, so a resumed or repeated backfill never duplicates;
//! 3. records which items it means to create or update (`inflight`), then writes only what
//!    differs in `batch` calls of at most 50 `crm.product.add|update` commands, links what it
//!    created (and what it found only by the property), and
//! 4. commits the page's counts with the checkpoint in one statement.
//!
//! A page interrupted after its writes is redone from the start; the `inflight` record makes the
//! writes of the interrupted attempt count as created/updated rather than unchanged, so the
//! final counts are exact. Every item is counted once: as a product (a simple product or a
//! formato V parent) or a variation, as active or inactive, and as created, updated, unchanged
//! or failed (with the portal's or the mapping's reason). Items Bling lists as deleted
//! (situação E) are not copied and not counted. Variations go to Bitrix24 as products of their
//! own (`crm.product` has no grid), as the live sync sends them. A backfill is an explicit
//! request from the merchant: it creates and updates whatever the sync switches say.
//!
//! One replica at a time works on a backfill: each page is done under a lease
//! (`backfill:<id>`), re-reading the checkpoint after taking it, and the commit only applies
//! over the checkpoint it started from. Every replica adopts unfinished backfills when it starts
//! and every [`SCAN_PERIOD`] after, so a backfill whose runner died resumes on its own. A runner
//! stops where it is when its service is dropped (as a killed process would), retries transient
//! failures (rate limits, an unreachable dependency) with backoff, and fails the backfill on
//! anything else (e.g. Bitrix24 disconnected), with the reason.
//!
//! The same runner, checkpoints and counts serve the other two backfills: the Bling catalog
//! into CPLUG (five Bling pages to one bulk call of 500, see [`cplug`]) and Bling's sales
//! orders into Bitrix24 deals (see [`orders`]). One backfill of each target and scope runs per
//! tenant at a time.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::{StreamExt, stream};
use parking_lot::Mutex;
use ponte_connectors::{
    ConnectorError,
    bitrix24::{BatchCommand, Bitrix24Auth, client::field_values, types::as_string},
    bling::{Caller, resources::ProdutoResumo},
};
use ponte_core::{
    TenantId,
    access::AccessToken,
    db::Database,
    error::ServiceError,
    ratelimit::Priority,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{
    Backfill, BackfillFailure, BackfillScope, BackfillState, BatchLinkRequest, BatchResolveRequest, CatalogCounts,
    EntityKind, EntityLink, ListFieldMappingsRequest, MappingTarget, Provider, StartBackfillRequest, SyncTarget,
    TranslateDirection,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::{Row, any::AnyRow};
use tokio::sync::{broadcast, mpsc, watch};

use crate::products::{BLING_ID_FIELD, ProductSync, WriteError, bitrix_auth, same_fields, service_error};

mod cplug;
mod orders;

/// Items in a page of a Bling list.
const PAGE_SIZE: usize = ponte_connectors::bling::client::PAGE_SIZE as usize;

/// How often every replica looks for unfinished backfills without a runner.
pub const SCAN_PERIOD: Duration = Duration::from_secs(30);
/// How long one page may hold its backfill; a page at Bitrix24's real 2 requests/s takes a few
/// seconds.
const PAGE_LEASE: Duration = Duration::from_secs(120);
/// The longest wait between retries of a page that failed transiently.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Calls in flight to the mapping service (translations, link look-ups, links) per page.
const MAPPING_CONCURRENCY: usize = 32;
/// Failures kept with their reason; the rest are only counted.
const MAX_FAILURES: usize = 100;
/// Bling list-item fields: a tenant mapping reading anything else needs the full product.
const LIST_FIELDS: &[&str] = &["id", "idProdutoPai", "nome", "codigo", "preco", "tipo", "situacao", "formato"];
/// Batch command errors that mean "try again later", not "this item is wrong".
const TRANSIENT_CODES: &[&str] = &[
    "QUERY_LIMIT_EXCEEDED",
    "OPERATION_TIME_LIMIT",
    "OVERLOAD_LIMIT",
    "INTERNAL_SERVER_ERROR",
    "ERROR_UNEXPECTED_ANSWER",
    "EXPIRED_TOKEN",
    "INVALID_TOKEN",
];

const COLUMNS: &str = "backfill_id, tenant_id, target, scope, state, pages_done, products, variations, active, \
     inactive, created, updated, unchanged, failed, failures, inflight_page, inflight, reason, start_time, end_time";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Failure {
    source_id: String,
    reason: String,
}

/// Counts in the order of [`CatalogCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    products: i64,
    variations: i64,
    active: i64,
    inactive: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    failed: i64,
}

impl Counts {
    fn to_proto(self) -> CatalogCounts {
        let u = |v: i64| u64::try_from(v).unwrap_or_default();
        CatalogCounts {
            products: u(self.products),
            variations: u(self.variations),
            active: u(self.active),
            inactive: u(self.inactive),
            created: u(self.created),
            updated: u(self.updated),
            unchanged: u(self.unchanged),
            failed: u(self.failed),
        }
    }
}

/// A `backfills` row.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    id: String,
    tenant_id: TenantId,
    target: String,
    scope: String,
    state: String,
    pages_done: i64,
    counts: Counts,
    failures: Vec<Failure>,
    inflight_page: i64,
    inflight: BTreeMap<String, String>,
    reason: String,
    start_time: i64,
    end_time: i64,
}

fn from_row(row: &AnyRow) -> Result<Stored, ServiceError> {
    let failures: String = row.try_get("failures")?;
    let inflight: String = row.try_get("inflight")?;
    Ok(Stored {
        id: row.try_get("backfill_id")?,
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        target: row.try_get("target")?,
        scope: row.try_get("scope")?,
        state: row.try_get("state")?,
        pages_done: row.try_get("pages_done")?,
        counts: Counts {
            products: row.try_get("products")?,
            variations: row.try_get("variations")?,
            active: row.try_get("active")?,
            inactive: row.try_get("inactive")?,
            created: row.try_get("created")?,
            updated: row.try_get("updated")?,
            unchanged: row.try_get("unchanged")?,
            failed: row.try_get("failed")?,
        },
        failures: serde_json::from_str(&failures).unwrap_or_default(),
        inflight_page: row.try_get("inflight_page")?,
        inflight: serde_json::from_str(&inflight).unwrap_or_default(),
        reason: row.try_get("reason")?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
    })
}

fn is_terminal(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

impl Stored {
    fn to_proto(&self) -> Backfill {
        let target = match self.target.as_str() {
            "bitrix24" => SyncTarget::Bitrix24,
            "cplug" => SyncTarget::Cplug,
            _ => SyncTarget::Unspecified,
        };
        let scope = match self.scope.as_str() {
            "products" => BackfillScope::Products,
            "orders" => BackfillScope::Orders,
            _ => BackfillScope::Unspecified,
        };
        let state = match self.state.as_str() {
            "pending" => BackfillState::Pending,
            "running" => BackfillState::Running,
            "succeeded" => BackfillState::Succeeded,
            "failed" => BackfillState::Failed,
            "cancelled" => BackfillState::Cancelled,
            _ => BackfillState::Unspecified,
        };
        Backfill {
            backfill_id: self.id.clone(),
            tenant_id: self.tenant_id.to_string(),
            target: target as i32,
            scope: scope as i32,
            state: state as i32,
            counts: Some(self.counts.to_proto()),
            pages_done: u32::try_from(self.pages_done).unwrap_or(u32::MAX),
            failures: self
                .failures
                .iter()
                .map(|f| BackfillFailure { source_id: f.source_id.clone(), reason: f.reason.clone() })
                .collect(),
            start_time: Some(to_timestamp(self.start_time)),
            end_time: (self.end_time > 0).then(|| to_timestamp(self.end_time)),
            reason: self.reason.clone(),
        }
    }
}

/// What one item of a page came to.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
    Failed(String),
}

/// What a runner's step left.
enum Step {
    /// A page was committed; more may follow.
    More,
    /// Another replica holds the page lease.
    Busy,
    /// The backfill has ended.
    Done,
}

/// Held by the service; dropping the last copy stops this process's runners where they are.
pub(crate) struct Lifeline {
    _alive: watch::Sender<()>,
}

/// The backfills of this service: start, read, watch, cancel, and the runners.
#[derive(Clone)]
pub(crate) struct Backfills {
    db: Database,
    sync: ProductSync,
    /// Backfills this process runs.
    running: Arc<Mutex<HashSet<String>>>,
    /// Page commits and state changes in this process, by backfill id.
    commits: broadcast::Sender<String>,
    /// Closed when the service is dropped.
    alive: watch::Receiver<()>,
    /// CPLUG's catalog as each CPLUG backfill's runner in this process knows it.
    catalogs: Arc<Mutex<HashMap<String, Arc<Mutex<cplug::Catalog>>>>>,
    /// The next page of each Bitrix24 products backfill, being read.
    prefetched: Arc<Mutex<HashMap<String, Prefetch>>>,
}

impl Backfills {
    /// The backfills, and the lifeline that keeps their runners going.
    pub fn new(db: Database, sync: ProductSync) -> (Self, Lifeline) {
        let (tx, alive) = watch::channel(());
        let (commits, _) = broadcast::channel(256);
        (
            Self {
                db,
                sync,
                running: Arc::default(),
                commits,
                alive,
                catalogs: Arc::default(),
                prefetched: Arc::default(),
            },
            Lifeline { _alive: tx },
        )
    }

    /// Adopts unfinished backfills now and every [`SCAN_PERIOD`] until the service is dropped.
    pub fn spawn_scanner(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut alive = me.alive.clone();
            loop {
                if let Err(e) = me.adopt_unfinished().await {
                    tracing::warn!(error = %e, "could not look for unfinished backfills");
                }
                tokio::select! {
                    _ = alive.changed() => return,
                    _ = tokio::time::sleep(SCAN_PERIOD) => {}
                }
            }
        });
    }

    async fn adopt_unfinished(&self) -> Result<(), ServiceError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT backfill_id FROM backfills WHERE state IN ('pending', 'running')")
                .fetch_all(self.db.pool())
                .await?;
        for id in ids {
            self.spawn_runner(id);
        }
        Ok(())
    }

    fn spawn_runner(&self, id: String) {
        if !self.running.lock().insert(id.clone()) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut alive = me.alive.clone();
            tokio::select! {
                _ = alive.changed() => tracing::info!(backfill = %id, "service stopping: backfill left at its checkpoint"),
                _ = me.drive(&id) => {}
            }
            me.catalogs.lock().remove(&id);
            if let Some(ahead) = me.prefetched.lock().remove(&id) {
                ahead.task.abort();
            }
            me.running.lock().remove(&id);
        });
    }

    pub async fn start(&self, tenant_id: &TenantId, req: StartBackfillRequest) -> Result<Backfill, ServiceError> {
        let (target, provider) = match SyncTarget::try_from(req.target) {
            Ok(SyncTarget::Bitrix24) => ("bitrix24", Provider::Bitrix24),
            Ok(SyncTarget::Cplug) => ("cplug", Provider::Cplug),
            Ok(SyncTarget::Unspecified) => {
                return Err(ServiceError::invalid("target", "is required (SYNC_TARGET_BITRIX24 or SYNC_TARGET_CPLUG)"));
            }
            Err(_) => return Err(ServiceError::invalid("target", format!("unknown target {}", req.target))),
        };
        let scope = match BackfillScope::try_from(req.scope) {
            Ok(BackfillScope::Products) => "products",
            Ok(BackfillScope::Orders) if provider == Provider::Cplug => {
                return Err(ServiceError::invalid(
                    "scope",
                    "BACKFILL_SCOPE_ORDERS goes only to SYNC_TARGET_BITRIX24: sales flow from CPLUG to Bling, \
                     never back",
                ));
            }
            Ok(BackfillScope::Orders) => "orders",
            Ok(BackfillScope::Unspecified) => {
                return Err(ServiceError::invalid(
                    "scope",
                    "is required (BACKFILL_SCOPE_PRODUCTS or BACKFILL_SCOPE_ORDERS)",
                ));
            }
            Err(_) => return Err(ServiceError::invalid("scope", format!("unknown scope {}", req.scope))),
        };
        if self.sync.tokens.get_if_connected(tenant_id, provider).await?.is_none() {
            return Err(ServiceError::FailedPrecondition(format!("tenant '{tenant_id}' has not connected {target}")));
        }
        self.sync.tokens.get(tenant_id, Provider::Bling).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_millis();
        let inserted = sqlx::query(
            "INSERT INTO backfills (backfill_id, tenant_id, target, scope, state, pages_done, products, variations, \
             active, inactive, created, updated, unchanged, failed, failures, inflight_page, inflight, reason, \
             start_time, end_time, update_time) \
             VALUES ($1, $2, $3, $4, 'pending', 0, 0, 0, 0, 0, 0, 0, 0, 0, '[]', 0, '{}', '', $5, 0, $5)",
        )
        .bind(&id)
        .bind(tenant_id.as_str())
        .bind(target)
        .bind(scope)
        .bind(now)
        .execute(self.db.pool())
        .await;
        if let Err(e) = inserted {
            if Database::is_unique_violation(&e) {
                let running: Option<String> = sqlx::query_scalar(
                    "SELECT backfill_id FROM backfills WHERE tenant_id = $1 AND target = $2 AND scope = $3 \
                     AND state IN ('pending', 'running')",
                )
                .bind(tenant_id.as_str())
                .bind(target)
                .bind(scope)
                .fetch_optional(self.db.pool())
                .await?;
                return Err(ServiceError::AlreadyExists(format!(
                    "backfill {} of {scope} into {target} is already running for tenant '{tenant_id}'",
                    running.unwrap_or_default()
                )));
            }
            return Err(e.into());
        }
        self.spawn_runner(id.clone());
        Ok(self.load(&id).await?.to_proto())
    }

    async fn load(&self, id: &str) -> Result<Stored, ServiceError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM backfills WHERE backfill_id = $1")))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("backfill '{id}' not found")))?;
        from_row(&row)
    }

    pub async fn get(&self, id: &str) -> Result<Backfill, ServiceError> {
        let id = ServiceError::require("backfill_id", id)?;
        Ok(self.load(id).await?.to_proto())
    }

    /// Marks it cancelled; its runner stops at its next checkpoint. Cancelling a cancelled
    /// backfill answers it as it is.
    pub async fn cancel(&self, id: &str) -> Result<Backfill, ServiceError> {
        let id = ServiceError::require("backfill_id", id)?;
        let now = now_millis();
        sqlx::query(
            "UPDATE backfills SET state = 'cancelled', reason = 'cancelled on request', end_time = $2, \
             update_time = $2 WHERE backfill_id = $1 AND state IN ('pending', 'running')",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        let stored = self.load(id).await?;
        if stored.state != "cancelled" {
            return Err(ServiceError::FailedPrecondition(format!(
                "backfill '{id}' has already ended ({}); only a running backfill can be cancelled",
                stored.state
            )));
        }
        let _ = self.commits.send(id.to_owned());
        Ok(stored.to_proto())
    }

    /// The backfill now, then again after every change, until it ends or the receiver goes.
    pub async fn watch(&self, id: &str) -> Result<mpsc::Receiver<Backfill>, ServiceError> {
        let id = ServiceError::require("backfill_id", id)?.to_owned();
        let mut last = self.load(&id).await?;
        let (tx, rx) = mpsc::channel(16);
        let mut commits = self.commits.subscribe();
        let me = self.clone();
        tokio::spawn(async move {
            if tx.send(last.to_proto()).await.is_err() {
                return;
            }
            while !is_terminal(&last.state) {
                // Commits in this process wake the watcher at once; those of other replicas
                // are seen by polling.
                tokio::select! {
                    r = commits.recv() => match r {
                        Ok(changed) if changed != id => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                        _ => {}
                    },
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = tx.closed() => return,
                }
                let Ok(now) = me.load(&id).await else { continue };
                if now != last {
                    if tx.send(now.to_proto()).await.is_err() {
                        return;
                    }
                    last = now;
                }
            }
        });
        Ok(rx)
    }

    /// Runs the backfill's pages until it ends.
    async fn drive(&self, id: &str) {
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.step(id).await {
                Ok(Step::More) => backoff = Duration::from_millis(250),
                Ok(Step::Done) => return,
                Ok(Step::Busy) => tokio::time::sleep(Duration::from_secs(1)).await,
                Err(ServiceError::Unavailable { message, retry_after }) => {
                    tracing::warn!(backfill = %id, error = %message, "backfill page will be retried");
                    self.note(id, &message).await;
                    tokio::time::sleep(retry_after.unwrap_or(backoff).max(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    tracing::warn!(backfill = %id, error = %e, "backfill failed");
                    self.fail(id, &e.to_string()).await;
                    return;
                }
            }
        }
    }

    /// Records a transient error as the running backfill's reason.
    async fn note(&self, id: &str, reason: &str) {
        let _ = sqlx::query("UPDATE backfills SET reason = $2, update_time = $3 WHERE backfill_id = $1")
            .bind(id)
            .bind(reason)
            .bind(now_millis())
            .execute(self.db.pool())
            .await;
    }

    async fn fail(&self, id: &str, reason: &str) {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE backfills SET state = 'failed', reason = $2, end_time = $3, update_time = $3 \
             WHERE backfill_id = $1 AND state IN ('pending', 'running')",
        )
        .bind(id)
        .bind(reason)
        .bind(now)
        .execute(self.db.pool())
        .await;
        if let Err(e) = done {
            tracing::warn!(backfill = %id, error = %e, "could not record a failed backfill");
        }
        let _ = self.commits.send(id.to_owned());
    }

    /// One page under the backfill's lease.
    async fn step(&self, id: &str) -> Result<Step, ServiceError> {
        let lease = match self.sync.locks.try_acquire(&format!("backfill:{id}"), PAGE_LEASE).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Ok(Step::Busy),
            Err(e) => return Err(ServiceError::unavailable(e.to_string(), None)),
        };
        let result = self.page_under_lease(id).await;
        let _ = self.sync.locks.release(lease).await;
        result
    }

    async fn page_under_lease(&self, id: &str) -> Result<Step, ServiceError> {
        let stored = self.load(id).await?;
        if is_terminal(&stored.state) {
            return Ok(Step::Done);
        }
        if stored.state == "pending" {
            sqlx::query("UPDATE backfills SET state = 'running' WHERE backfill_id = $1 AND state = 'pending'")
                .bind(id)
                .execute(self.db.pool())
                .await?;
            let _ = self.commits.send(id.to_owned());
        }
        let page = u32::try_from(stored.pages_done + 1)
            .map_err(|_| ServiceError::Internal(anyhow::anyhow!("backfill {id} has an impossible checkpoint")))?;
        let (through, result, last) = match (stored.target.as_str(), stored.scope.as_str()) {
            ("cplug", _) => self.cplug_chunk(&stored, page).await?,
            (_, "orders") => self.orders_page(&stored, page).await?,
            _ => self.bitrix24_products_page(&stored, page).await?,
        };
        let state = self.commit(&stored, through, &result, last).await?;
        Ok(if last || is_terminal(&state) { Step::Done } else { Step::More })
    }

    /// One page of products into Bitrix24: the last page read, what it added, whether it was
    /// the last. The next page is read and translated meanwhile (see [`Prefetch`]).
    async fn bitrix24_products_page(
        &self,
        stored: &Stored,
        page: u32,
    ) -> Result<(u32, PageResult, bool), ServiceError> {
        let tenant_id = &stored.tenant_id;
        let ahead = self.prefetched.lock().remove(&stored.id);
        let read = match ahead {
            Some(ahead) if ahead.page == page => match ahead.task.await {
                Ok(read) => read,
                Err(_) => self.read_page(tenant_id, page).await,
            },
            Some(stale) => {
                stale.task.abort();
                self.read_page(tenant_id, page).await
            }
            None => self.read_page(tenant_id, page).await,
        }?;
        if read.listed == 0 {
            return Ok((page - 1, PageResult::default(), true));
        }
        let last = read.listed < PAGE_SIZE;
        if !last {
            self.prefetch(stored, page + 1);
        }
        let Some(token) = self.sync.tokens.get_if_connected(tenant_id, Provider::Bitrix24).await? else {
            return Err(ServiceError::FailedPrecondition(format!("tenant '{tenant_id}' has not connected Bitrix24")));
        };
        let outcomes = self.write_bitrix24(stored, page, &token, &read.items, read.translated).await?;
        Ok((page, tally(&read.items, outcomes), last))
    }

    /// A page of Bling's product list, without the deleted items, and their translations.
    async fn read_page(&self, tenant_id: &TenantId, page: u32) -> Result<ReadPage, ServiceError> {
        let listed = self.list_page(tenant_id, page).await?;
        let count = listed.len();
        let items: Vec<ProdutoResumo> = listed.into_iter().filter(|i| i.situacao != "E").collect();
        let translated = self.translate_page(tenant_id, &items).await?;
        Ok(ReadPage { listed: count, items, translated })
    }

    /// Starts reading `page` of `stored`'s backfill, to be taken by the step that writes it.
    fn prefetch(&self, stored: &Stored, page: u32) {
        let me = self.clone();
        let tenant_id = stored.tenant_id.clone();
        let task = tokio::spawn(async move { me.read_page(&tenant_id, page).await });
        if let Some(old) = self.prefetched.lock().insert(stored.id.clone(), Prefetch { page, task }) {
            old.task.abort();
        }
    }

    /// One page of Bling's product list, every product included.
    async fn list_page(&self, tenant_id: &TenantId, page: u32) -> Result<Vec<ProdutoResumo>, ServiceError> {
        let token = self.sync.tokens.get(tenant_id, Provider::Bling).await?;
        let caller = Caller { account: &token.account, priority: Priority::Backfill, token: token.secret() };
        match self.sync.bling.produtos_page(caller, page, &[]).await {
            Err(ConnectorError::InvalidToken { .. }) => {
                let renewed = self.sync.tokens.refused(tenant_id, Provider::Bling, &token).await?;
                let caller =
                    Caller { account: &renewed.account, priority: Priority::Backfill, token: renewed.secret() };
                self.sync.bling.produtos_page(caller, page, &[]).await.map_err(service_error)
            }
            other => other.map_err(service_error),
        }
    }

    /// Whether the tenant's Bitrix24 mappings read a Bling field the list items lack.
    async fn needs_full_products(&self, tenant_id: &TenantId) -> Result<bool, ServiceError> {
        let mut mapping = self.sync.mapping.clone();
        let mappings = mapping
            .list_field_mappings(ListFieldMappingsRequest {
                tenant_id: tenant_id.to_string(),
                target: MappingTarget::Bitrix24 as i32,
            })
            .await
            .map_err(|s| ServiceError::unavailable(format!("mapping: {}", s.message()), None))?
            .into_inner()
            .mappings;
        Ok(mappings.iter().any(|m| {
            let top = m.bling_field.split(['.', '[']).next().unwrap_or_default();
            !LIST_FIELDS.contains(&top)
        }))
    }

    /// The Bitrix24 fields of every item (the "Bling ID" property still under
    /// [`BLING_ID_FIELD`]), or why the item cannot be translated. `None`: gone from Bling since
    /// it was listed.
    async fn translate_page(
        &self,
        tenant_id: &TenantId,
        items: &[ProdutoResumo],
    ) -> Result<Vec<Option<Result<Map<String, Value>, String>>>, ServiceError> {
        let full = self.needs_full_products(tenant_id).await?;
        let translations: Vec<_> = items.iter().map(|item| self.translate_item(tenant_id, item, full)).collect();
        let results: Vec<_> = stream::iter(translations).buffered(MAPPING_CONCURRENCY).collect().await;
        results.into_iter().collect()
    }

    async fn translate_item(
        &self,
        tenant_id: &TenantId,
        item: &ProdutoResumo,
        full: bool,
    ) -> Result<Option<Result<Map<String, Value>, String>>, ServiceError> {
        let translated = if full {
            match self.sync.read_bling(tenant_id, item.id, Priority::Backfill).await? {
                Some(p) => self.sync.translate(tenant_id, &p).await,
                None => return Ok(None),
            }
        } else {
            let source = serde_json::to_value(item).map_err(|e| ServiceError::Internal(e.into()))?;
            self.sync
                .translate_fields(tenant_id, TranslateDirection::BlingToBitrix24, &item.id.to_string(), &source)
                .await
        };
        match translated {
            Ok(fields) => Ok(Some(Ok(fields))),
            Err(ServiceError::FailedPrecondition(why)) => Ok(Some(Err(why))),
            Err(e) => Err(e),
        }
    }

    /// The Bitrix24 side of a page: look up, record intent, batch-write, link.
    async fn write_bitrix24(
        &self,
        stored: &Stored,
        page: u32,
        token: &AccessToken,
        items: &[ProdutoResumo],
        translated: Vec<Option<Result<Map<String, Value>, String>>>,
    ) -> Result<Vec<Option<Outcome>>, ServiceError> {
        let tenant_id = &stored.tenant_id;
        let auth = bitrix_auth(token);
        let portal = token.account.as_str();
        let property = match self.sync.bling_id_key(&auth, portal, Priority::Backfill).await {
            Ok(key) => key,
            Err(WriteError::Portal(e)) => return Err(self.portal_error(tenant_id, token, e).await),
            Err(WriteError::Service(e)) => return Err(e),
        };
        let ids: Vec<String> = items.iter().map(|i| i.id.to_string()).collect();
        let found = match self.find_by_property(&auth, portal, &property, &ids).await {
            Ok(found) => found,
            Err(e) => return Err(self.portal_error(tenant_id, token, e).await),
        };
        let unfound: Vec<String> = ids.iter().filter(|id| !found.contains_key(*id)).cloned().collect();
        let linked = self.linked(tenant_id, unfound).await?;

        // What each item needs.
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
        let mut commands = Vec::new();
        let mut intent =
            if stored.inflight_page == i64::from(page) { stored.inflight.clone() } else { BTreeMap::new() };
        for (id, t) in ids.iter().zip(translated) {
            let Some(mut fields) = usable(t, &mut outcomes) else { continue };
            fields.remove(BLING_ID_FIELD);
            fields.insert(property.clone(), Value::String(id.clone()));
            match (found.get(id), linked.get(id)) {
                (Some((_, current)), _) if same_fields(&fields, current) => outcomes.push(Some(Outcome::Unchanged)),
                (Some((bitrix_id, _)), _) | (None, Some(bitrix_id)) => {
                    commands.push(BatchCommand::new(
                        format!("u{id}"),
                        "crm.product.update",
                        json!({"id": bitrix_id, "fields": fields}),
                    ));
                    intent.entry(id.clone()).or_insert_with(|| "updated".into());
                    outcomes.push(Some(Outcome::Updated));
                }
                (None, None) => {
                    commands.push(BatchCommand::new(format!("c{id}"), "crm.product.add", json!({"fields": fields})));
                    intent.entry(id.clone()).or_insert_with(|| "created".into());
                    outcomes.push(Some(Outcome::Created));
                }
            }
        }
        self.record_intent(&stored.id, page, &intent).await?;

        let done = if commands.is_empty() {
            Default::default()
        } else {
            match self.sync.bitrix.batch(&auth, portal, Priority::Backfill, &commands, false).await {
                Ok(done) => done,
                Err(e) => return Err(self.portal_error(tenant_id, token, e).await),
            }
        };
        for (key, err) in &done.result_error {
            if TRANSIENT_CODES.iter().any(|c| c.eq_ignore_ascii_case(&err.code())) {
                return Err(ServiceError::unavailable(
                    format!("Bitrix24 refused part of a batch for now: {}: {}", err.code(), err.error_description),
                    None,
                ));
            }
            let id = &key[1..];
            if let Some(i) = ids.iter().position(|x| x == id) {
                let code = err.code();
                let what = if code.is_empty() { String::new() } else { format!("{code}: ") };
                outcomes[i] = Some(Outcome::Failed(format!(
                    "Bitrix24 refused the product: {what}{}",
                    err.error_description.trim()
                )));
            }
        }

        // Link what was created, and what only the property found.
        let mut to_link = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if matches!(outcomes[i], Some(Outcome::Failed(_)) | None) || linked.contains_key(id) {
                continue;
            }
            let bitrix_id = match found.get(id) {
                Some((b, _)) => Some(b.clone()),
                None => done.result.get(&format!("c{id}")).and_then(as_string),
            };
            match bitrix_id {
                Some(b) => to_link.push((i, id.clone(), b)),
                None => outcomes[i] = Some(Outcome::Failed("Bitrix24 returned no id for the new product".into())),
            }
        }
        let conflicts = self.link(tenant_id, &to_link).await?;
        for ((i, _, _), conflict) in to_link.iter().zip(conflicts) {
            if !conflict.is_empty() {
                outcomes[*i] = Some(Outcome::Failed(format!("linked to another product: {conflict}")));
            }
        }

        // A write the interrupted attempt of this page made counts as that write.
        for (id, outcome) in ids.iter().zip(outcomes.iter_mut()) {
            if let (Some(o @ (Outcome::Unchanged | Outcome::Updated)), Some(meant)) = (outcome.as_mut(), intent.get(id))
            {
                *o = if meant == "created" { Outcome::Created } else { Outcome::Updated };
            }
        }
        Ok(outcomes)
    }

    /// The portal's products carrying any of `ids` in their "Bling ID" property, by Bling id:
    /// (Bitrix24 id, fields), in one `batch` of list calls (a list answers 50 at a time).
    async fn find_by_property(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        property: &str,
        ids: &[String],
    ) -> Result<HashMap<String, (String, Map<String, Value>)>, ConnectorError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let lists: Vec<BatchCommand> = (0..ids.len().div_ceil(50))
            .map(|k| {
                BatchCommand::new(
                    format!("l{k}"),
                    "crm.product.list",
                    json!({"order": {"ID": "ASC"}, "filter": {format!("@{property}"): ids},
                           "select": ["*", "PROPERTY_*"], "start": k * 50}),
                )
            })
            .collect();
        let got = self.sync.bitrix.batch(auth, portal, Priority::Backfill, &lists, false).await?;
        if let Some((_, err)) = got.result_error.iter().next() {
            return Err(ConnectorError::Unavailable {
                system: "Bitrix24",
                message: format!("product lookup failed: {}: {}", err.code(), err.error_description),
            });
        }
        let mut found = HashMap::new();
        for rows in got.result.values() {
            for row in rows.as_array().into_iter().flatten() {
                let Some(p) = row.as_object() else { continue };
                let Some(bitrix_id) = p.get("ID").and_then(as_string) else { continue };
                for v in field_values(p.get(property)) {
                    if ids.contains(&v) {
                        found.entry(v).or_insert_with(|| (bitrix_id.clone(), p.clone()));
                    }
                }
            }
        }
        Ok(found)
    }

    /// A Bitrix24 failure as the runner treats it: a refused token is renewed (auth-token renews
    /// it once) and the page tried again; the rest as the live sync classifies them.
    async fn portal_error(&self, tenant_id: &TenantId, token: &AccessToken, e: ConnectorError) -> ServiceError {
        match e {
            ConnectorError::InvalidToken { .. } => {
                match self.sync.tokens.refused(tenant_id, Provider::Bitrix24, token).await {
                    Ok(_) => ServiceError::unavailable(format!("{e}; token renewed"), None),
                    Err(renew) => renew,
                }
            }
            other => service_error(other),
        }
    }

    /// The Bitrix24 products the link registry holds for Bling products `ids`, in one call.
    async fn linked(&self, tenant_id: &TenantId, ids: Vec<String>) -> Result<HashMap<String, String>, ServiceError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut mapping = self.sync.mapping.clone();
        let req = BatchResolveRequest {
            tenant_id: tenant_id.to_string(),
            kind: EntityKind::Product as i32,
            from_system: Provider::Bling as i32,
            from_ids: ids,
            to_system: Provider::Bitrix24 as i32,
        };
        match mapping.batch_resolve(req).await {
            Ok(r) => Ok(r.into_inner().ids),
            Err(s) => Err(ServiceError::unavailable(format!("link registry: {}", s.message()), None)),
        }
    }

    /// Links Bling products to their Bitrix24 products `(_, bling id, bitrix id)` in one call;
    /// per link, empty or why it was refused (either side is linked to another product).
    async fn link(&self, tenant_id: &TenantId, pairs: &[(usize, String, String)]) -> Result<Vec<String>, ServiceError> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut mapping = self.sync.mapping.clone();
        let links = pairs
            .iter()
            .map(|(_, bling_id, bitrix_id)| EntityLink {
                tenant_id: tenant_id.to_string(),
                kind: EntityKind::Product as i32,
                system_a: Provider::Bling as i32,
                id_a: bling_id.clone(),
                system_b: Provider::Bitrix24 as i32,
                id_b: bitrix_id.clone(),
                create_time: None,
            })
            .collect();
        match mapping.batch_link(BatchLinkRequest { links }).await {
            Ok(r) => Ok(r.into_inner().results.into_iter().map(|r| r.conflict).collect()),
            Err(s) => Err(ServiceError::unavailable(format!("link registry: {}", s.message()), None)),
        }
    }

    async fn record_intent(&self, id: &str, page: u32, intent: &BTreeMap<String, String>) -> Result<(), ServiceError> {
        let text = serde_json::to_string(intent).map_err(|e| ServiceError::Internal(e.into()))?;
        sqlx::query("UPDATE backfills SET inflight_page = $2, inflight = $3, update_time = $4 WHERE backfill_id = $1")
            .bind(id)
            .bind(i64::from(page))
            .bind(text)
            .bind(now_millis())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Adds a page's counts and moves the checkpoint to `page`, only over the checkpoint the page
    /// started from; `last` ends the backfill. A backfill cancelled meanwhile keeps its state.
    /// Answers the state after the commit.
    async fn commit(
        &self,
        stored: &Stored,
        page: u32,
        result: &PageResult,
        last: bool,
    ) -> Result<String, ServiceError> {
        let mut failures = stored.failures.clone();
        failures.extend(result.failures.iter().take(MAX_FAILURES.saturating_sub(failures.len())).cloned());
        let failures = serde_json::to_string(&failures).map_err(|e| ServiceError::Internal(e.into()))?;
        let c = result.counts;
        let now = now_millis();
        let (state, end_time) = if last { ("succeeded", now) } else { ("running", 0) };
        let done = sqlx::query(
            "UPDATE backfills SET pages_done = $2, products = products + $3, variations = variations + $4, \
             active = active + $5, inactive = inactive + $6, created = created + $7, updated = updated + $8, \
             unchanged = unchanged + $9, failed = failed + $10, failures = $11, inflight_page = 0, inflight = '{}', \
             reason = CASE WHEN state = 'cancelled' THEN reason ELSE '' END, \
             state = CASE WHEN state = 'cancelled' THEN state ELSE $12 END, \
             end_time = CASE WHEN state = 'cancelled' THEN end_time ELSE $13 END, update_time = $14 \
             WHERE backfill_id = $1 AND pages_done = $15",
        )
        .bind(&stored.id)
        .bind(i64::from(page))
        .bind(c.products)
        .bind(c.variations)
        .bind(c.active)
        .bind(c.inactive)
        .bind(c.created)
        .bind(c.updated)
        .bind(c.unchanged)
        .bind(c.failed)
        .bind(failures)
        .bind(state)
        .bind(end_time)
        .bind(now)
        .bind(stored.pages_done)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            tracing::warn!(backfill = %stored.id, page, "checkpoint moved under the page's lease; page not counted");
        }
        let _ = self.commits.send(stored.id.clone());
        Ok(self.load(&stored.id).await?.state)
    }
}

/// An item's translation, or `None` with its outcome pushed: gone from Bling (not counted) or
/// failed with its reason.
fn usable<T>(translated: Option<Result<T, String>>, outcomes: &mut Vec<Option<Outcome>>) -> Option<T> {
    match translated {
        None => {
            outcomes.push(None);
            None
        }
        Some(Err(why)) => {
            outcomes.push(Some(Outcome::Failed(why)));
            None
        }
        Some(Ok(t)) => Some(t),
    }
}

/// A page of Bling's product list as read: how many items it listed (deleted ones included),
/// the rest, and their translations.
struct ReadPage {
    listed: usize,
    items: Vec<ProdutoResumo>,
    translated: Vec<Option<Result<Map<String, Value>, String>>>,
}

/// The next page of a backfill, read and translated while the current one is written to
/// Bitrix24, so the Bling read and the mapping calls of one page overlap the Bitrix24 calls of
/// the one before. Reading writes nothing: a prefetch for a page that is not the next one to
/// write (the checkpoint moved, a step failed) is dropped.
struct Prefetch {
    page: u32,
    task: tokio::task::JoinHandle<Result<ReadPage, ServiceError>>,
}

/// What one page added.
#[derive(Debug, Default)]
struct PageResult {
    counts: Counts,
    failures: Vec<Failure>,
}

/// A page's counts: every listed item once as a product or a variation, as active or inactive,
/// and by what it came to (`None`: gone from Bling since it was listed, not counted).
fn tally(items: &[ProdutoResumo], outcomes: Vec<Option<Outcome>>) -> PageResult {
    let mut result = PageResult::default();
    for (item, outcome) in items.iter().zip(outcomes) {
        let Some(outcome) = outcome else { continue };
        let c = &mut result.counts;
        if item.id_produto_pai.is_some() {
            c.variations += 1;
        } else {
            c.products += 1;
        }
        if item.situacao == "A" {
            c.active += 1;
        } else {
            c.inactive += 1;
        }
        result.record(&item.id.to_string(), outcome);
    }
    result
}

impl PageResult {
    /// Counts one item's outcome (not whether it is a product or active).
    fn record(&mut self, source_id: &str, outcome: Outcome) {
        let c = &mut self.counts;
        match outcome {
            Outcome::Created => c.created += 1,
            Outcome::Updated => c.updated += 1,
            Outcome::Unchanged => c.unchanged += 1,
            Outcome::Failed(reason) => {
                c.failed += 1;
                self.failures.push(Failure { source_id: source_id.to_owned(), reason });
            }
        }
    }
}

/// The newest backfill of `tenant_id`'s `scope` into `target`, for the sync status.
pub(crate) async fn latest(
    db: &Database,
    tenant_id: &TenantId,
    (target, scope): (&str, &str),
) -> Result<Option<Backfill>, ServiceError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backfills WHERE tenant_id = $1 AND target = $2 AND scope = $3 \
         ORDER BY start_time DESC LIMIT 1"
    )))
    .bind(tenant_id.as_str())
    .bind(target)
    .bind(scope)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose().map(|s| s.map(|s| s.to_proto()))
}

/// When the tenant's newest backfill of `scope` into `target` that succeeded ended, and the
/// newest failed one's (end, reason).
pub(crate) async fn last_outcomes(
    db: &Database,
    tenant_id: &TenantId,
    (target, scope): (&str, &str),
) -> Result<(Option<i64>, Option<(i64, String)>), ServiceError> {
    let success: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(end_time) FROM backfills WHERE tenant_id = $1 AND target = $2 AND scope = $3 \
         AND state = 'succeeded'",
    )
    .bind(tenant_id.as_str())
    .bind(target)
    .bind(scope)
    .fetch_one(db.pool())
    .await?;
    let failure = sqlx::query(
        "SELECT end_time, reason FROM backfills WHERE tenant_id = $1 AND target = $2 AND scope = $3 \
         AND state = 'failed' ORDER BY end_time DESC LIMIT 1",
    )
    .bind(tenant_id.as_str())
    .bind(target)
    .bind(scope)
    .fetch_optional(db.pool())
    .await?
    .map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
    .transpose()?;
    Ok((success, failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_row_becomes_its_message() {
        let stored = Stored {
            id: "b1".into(),
            tenant_id: TenantId::from_stored("loja".into()),
            target: "bitrix24".into(),
            scope: "products".into(),
            state: "running".into(),
            pages_done: 3,
            counts: Counts { products: 2, variations: 1, active: 3, failed: 1, ..Counts::default() },
            failures: vec![Failure { source_id: "7".into(), reason: "no".into() }],
            inflight_page: 0,
            inflight: BTreeMap::new(),
            reason: String::new(),
            start_time: 1_700_000_000_000,
            end_time: 0,
        };
        let b = stored.to_proto();
        assert_eq!((b.state, b.target, b.scope, b.pages_done), (2, 1, 1, 3));
        assert_eq!(b.counts.unwrap().variations, 1);
        assert!(b.end_time.is_none());
        assert_eq!(b.failures[0].source_id, "7");
    }
}
