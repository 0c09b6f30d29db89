//! The `backfills` table: one row per backfill with its target, scope and state (stored as the
//! same text as ever: `bitrix24`/`cplug`, `products`/`orders`, `pending`…`cancelled`), its
//! counts, the first failures, the checkpoint (`pages_done`) and the intent of the page being
//! written; and every statement that reads or moves them.

use std::collections::BTreeMap;

use ponte_core::{
    TenantId,
    db::Database,
    error::{ServiceError, quote},
    time::now_millis,
    time::to_timestamp,
};
use ponte_proto::v1::{Backfill, BackfillFailure, BackfillScope, BackfillState, CatalogCounts, Provider, SyncTarget};
use serde::{Deserialize, Serialize};

/// Failures kept with their reason; the rest are only counted.
const MAX_FAILURES: usize = 100;

/// Names a stored enum by its text, both ways.
macro_rules! stored_text {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

/// Where a backfill writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Bitrix24,
    Cplug,
}
stored_text!(Target { Bitrix24 => "bitrix24", Cplug => "cplug" });

impl Target {
    /// The connection a backfill into it needs.
    pub fn provider(self) -> Provider {
        match self {
            Self::Bitrix24 => Provider::Bitrix24,
            Self::Cplug => Provider::Cplug,
        }
    }
}

impl From<Target> for SyncTarget {
    fn from(t: Target) -> Self {
        match t {
            Target::Bitrix24 => Self::Bitrix24,
            Target::Cplug => Self::Cplug,
        }
    }
}

/// What a backfill copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    Products,
    Orders,
}
stored_text!(Scope { Products => "products", Orders => "orders" });

impl From<Scope> for BackfillScope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Products => Self::Products,
            Scope::Orders => Self::Orders,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum State {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}
stored_text!(State {
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl State {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl From<State> for BackfillState {
    fn from(s: State) -> Self {
        match s {
            State::Pending => Self::Pending,
            State::Running => Self::Running,
            State::Succeeded => Self::Succeeded,
            State::Failed => Self::Failed,
            State::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Failure {
    pub source_id: String,
    pub reason: String,
}

/// Counts in the order of [`CatalogCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, sqlx::FromRow)]
pub(crate) struct Counts {
    pub products: i64,
    pub variations: i64,
    pub active: i64,
    pub inactive: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
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

/// What a write of a page was meant to do, recorded before the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Meant {
    Created,
    Updated,
}

/// Source id → what its write meant, for the page being written.
pub(crate) type Intent = BTreeMap<String, Meant>;

/// What one page added.
#[derive(Debug, Default)]
pub(crate) struct PageResult {
    pub counts: Counts,
    pub failures: Vec<Failure>,
}

/// A `backfills` row as stored.
#[derive(sqlx::FromRow)]
struct Row {
    backfill_id: String,
    tenant_id: String,
    target: String,
    scope: String,
    state: String,
    pages_done: i64,
    #[sqlx(flatten)]
    counts: Counts,
    failures: String,
    inflight_page: i64,
    inflight: String,
    reason: String,
    start_time: i64,
    end_time: i64,
}

const COLUMNS: &str = "backfill_id, tenant_id, target, scope, state, pages_done, products, variations, active, \
     inactive, created, updated, unchanged, failed, failures, inflight_page, inflight, reason, start_time, end_time";

/// A backfill as read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stored {
    pub id: String,
    pub tenant_id: TenantId,
    pub target: Target,
    pub scope: Scope,
    pub state: State,
    pub pages_done: i64,
    pub counts: Counts,
    pub failures: Vec<Failure>,
    pub inflight_page: i64,
    pub inflight: Intent,
    pub reason: String,
    pub start_time: i64,
    pub end_time: i64,
}

impl TryFrom<Row> for Stored {
    type Error = ServiceError;

    fn try_from(r: Row) -> Result<Self, Self::Error> {
        let bad = |what: &str, text: &str| {
            ServiceError::Internal(anyhow::anyhow!("backfill {} has an unknown {what} '{text}'", r.backfill_id))
        };
        Ok(Stored {
            target: Target::parse(&r.target).ok_or_else(|| bad("target", &r.target))?,
            scope: Scope::parse(&r.scope).ok_or_else(|| bad("scope", &r.scope))?,
            state: State::parse(&r.state).ok_or_else(|| bad("state", &r.state))?,
            tenant_id: TenantId::from_stored(r.tenant_id),
            pages_done: r.pages_done,
            counts: r.counts,
            failures: serde_json::from_str(&r.failures).unwrap_or_default(),
            inflight_page: r.inflight_page,
            inflight: serde_json::from_str(&r.inflight).unwrap_or_default(),
            reason: r.reason,
            start_time: r.start_time,
            end_time: r.end_time,
            id: r.backfill_id,
        })
    }
}

impl Stored {
    pub fn to_proto(&self) -> Backfill {
        Backfill {
            backfill_id: self.id.clone(),
            tenant_id: self.tenant_id.to_string(),
            target: SyncTarget::from(self.target) as i32,
            scope: BackfillScope::from(self.scope) as i32,
            state: BackfillState::from(self.state) as i32,
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

    /// What the interrupted attempt of `page` meant to write (nothing for another page).
    pub fn intent_of(&self, page: u32) -> Intent {
        if self.inflight_page == i64::from(page) { self.inflight.clone() } else { Intent::new() }
    }
}

/// The backfills of a database.
#[derive(Clone)]
pub(crate) struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// A new pending backfill; its id. One of each target and scope runs per tenant at a time.
    pub async fn insert(&self, tenant_id: &TenantId, target: Target, scope: Scope) -> Result<String, ServiceError> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_millis();
        let inserted = sqlx::query(
            "INSERT INTO backfills (backfill_id, tenant_id, target, scope, state, pages_done, products, variations, \
             active, inactive, created, updated, unchanged, failed, failures, inflight_page, inflight, reason, \
             start_time, end_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0, 0, 0, 0, 0, '[]', 0, '{}', '', $6, 0, $6)",
        )
        .bind(&id)
        .bind(tenant_id.as_str())
        .bind(target.label())
        .bind(scope.label())
        .bind(State::Pending.label())
        .bind(now)
        .execute(self.db.pool())
        .await;
        match inserted {
            Ok(_) => Ok(id),
            Err(e) if Database::is_unique_violation(&e) => {
                let running: Option<String> = sqlx::query_scalar(
                    "SELECT backfill_id FROM backfills WHERE tenant_id = $1 AND target = $2 AND scope = $3 \
                     AND state IN ($4, $5)",
                )
                .bind(tenant_id.as_str())
                .bind(target.label())
                .bind(scope.label())
                .bind(State::Pending.label())
                .bind(State::Running.label())
                .fetch_optional(self.db.pool())
                .await?;
                Err(ServiceError::AlreadyExists(format!(
                    "backfill {} of {} into {} is already running for tenant '{tenant_id}'",
                    running.unwrap_or_default(),
                    scope.label(),
                    target.label()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn load(&self, id: &str) -> Result<Stored, ServiceError> {
        let row: Row =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM backfills WHERE backfill_id = $1")))
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("backfill {} not found", quote(id))))?;
        row.try_into()
    }

    /// The ids of the backfills not ended yet.
    pub async fn unfinished(&self) -> Result<Vec<String>, ServiceError> {
        let ids = sqlx::query_scalar("SELECT backfill_id FROM backfills WHERE state IN ($1, $2)")
            .bind(State::Pending.label())
            .bind(State::Running.label())
            .fetch_all(self.db.pool())
            .await?;
        Ok(ids)
    }

    /// Moves it from either state of `from` to `to` with `reason` (unchanged when `None`),
    /// ending it when `to` is terminal; `false` when it was in neither.
    async fn transition(
        &self,
        id: &str,
        from: [State; 2],
        to: State,
        reason: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE backfills SET state = $2, reason = COALESCE($3, reason), \
             end_time = CASE WHEN $4 THEN $5 ELSE end_time END, update_time = $5 \
             WHERE backfill_id = $1 AND state IN ($6, $7)",
        )
        .bind(id)
        .bind(to.label())
        .bind(reason)
        .bind(to.is_terminal())
        .bind(now)
        .bind(from[0].label())
        .bind(from[1].label())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A pending backfill starts running.
    pub async fn mark_running(&self, id: &str) -> Result<bool, ServiceError> {
        self.transition(id, [State::Pending; 2], State::Running, None).await
    }

    pub async fn cancel(&self, id: &str) -> Result<bool, ServiceError> {
        self.transition(id, [State::Pending, State::Running], State::Cancelled, Some("cancelled on request")).await
    }

    pub async fn fail(&self, id: &str, reason: &str) -> Result<bool, ServiceError> {
        self.transition(id, [State::Pending, State::Running], State::Failed, Some(reason)).await
    }

    /// Records a transient error as the running backfill's reason.
    pub async fn note(&self, id: &str, reason: &str) -> Result<(), ServiceError> {
        sqlx::query("UPDATE backfills SET reason = $2, update_time = $3 WHERE backfill_id = $1")
            .bind(id)
            .bind(reason)
            .bind(now_millis())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Records what the writes of `page` mean to do, before they are made.
    pub async fn record_intent(&self, id: &str, page: u32, intent: &Intent) -> Result<(), ServiceError> {
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
    /// `false` when the checkpoint had moved (the page is not counted).
    pub async fn commit(
        &self,
        stored: &Stored,
        page: u32,
        result: &PageResult,
        last: bool,
    ) -> Result<bool, ServiceError> {
        let mut failures = stored.failures.clone();
        failures.extend(result.failures.iter().take(MAX_FAILURES.saturating_sub(failures.len())).cloned());
        let failures = serde_json::to_string(&failures).map_err(|e| ServiceError::Internal(e.into()))?;
        let c = result.counts;
        let now = now_millis();
        let (state, end_time) = if last { (State::Succeeded, now) } else { (State::Running, 0) };
        let cancelled = State::Cancelled.label();
        let done = sqlx::query(
            "UPDATE backfills SET pages_done = $2, products = products + $3, variations = variations + $4, \
             active = active + $5, inactive = inactive + $6, created = created + $7, updated = updated + $8, \
             unchanged = unchanged + $9, failed = failed + $10, failures = $11, inflight_page = 0, inflight = '{}', \
             reason = CASE WHEN state = $16 THEN reason ELSE '' END, \
             state = CASE WHEN state = $16 THEN state ELSE $12 END, \
             end_time = CASE WHEN state = $16 THEN end_time ELSE $13 END, update_time = $14 \
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
        .bind(state.label())
        .bind(end_time)
        .bind(now)
        .bind(stored.pages_done)
        .bind(cancelled)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// The newest backfill of `tenant_id`'s `scope` into `target`, for the sync status.
pub(crate) async fn latest(
    db: &Database,
    tenant_id: &TenantId,
    (target, scope): (Target, Scope),
) -> Result<Option<Backfill>, ServiceError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backfills WHERE tenant_id = $1 AND target = $2 AND scope = $3 \
         ORDER BY start_time DESC LIMIT 1"
    )))
    .bind(tenant_id.as_str())
    .bind(target.label())
    .bind(scope.label())
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Stored::try_from(r).map(|s| s.to_proto())).transpose()
}

/// When the tenant's newest backfill of `scope` into `target` that succeeded ended, and the
/// newest failed one's (end, reason).
pub(crate) async fn last_outcomes(
    db: &Database,
    tenant_id: &TenantId,
    (target, scope): (Target, Scope),
) -> Result<(Option<i64>, Option<(i64, String)>), ServiceError> {
    let ended = |state: State| {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT end_time, reason FROM backfills WHERE tenant_id = $1 AND target = $2 AND scope = $3 \
             AND state = $4 ORDER BY end_time DESC LIMIT 1",
        )
        .bind(tenant_id.as_str())
        .bind(target.label())
        .bind(scope.label())
        .bind(state.label())
        .fetch_optional(db.pool())
    };
    let success = ended(State::Succeeded).await?.map(|(end, _)| end);
    let failure = ended(State::Failed).await?;
    Ok((success, failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_row_becomes_its_message() {
        let row = Row {
            backfill_id: "b1".into(),
            tenant_id: "loja".into(),
            target: "bitrix24".into(),
            scope: "products".into(),
            state: "running".into(),
            pages_done: 3,
            counts: Counts { products: 2, variations: 1, active: 3, failed: 1, ..Counts::default() },
            failures: r#"[{"source_id":"7","reason":"no"}]"#.into(),
            inflight_page: 4,
            inflight: r#"{"7":"created","8":"updated"}"#.into(),
            reason: String::new(),
            start_time: 1_700_000_000_000,
            end_time: 0,
        };
        let stored = Stored::try_from(row).unwrap();
        assert_eq!((stored.target, stored.scope, stored.state), (Target::Bitrix24, Scope::Products, State::Running));
        assert_eq!(stored.intent_of(4)["7"], Meant::Created);
        assert!(stored.intent_of(5).is_empty());
        let b = stored.to_proto();
        assert_eq!((b.state, b.target, b.scope, b.pages_done), (2, 1, 1, 3));
        assert_eq!(b.counts.unwrap().variations, 1);
        assert!(b.end_time.is_none());
        assert_eq!(b.failures[0].source_id, "7");
    }

    #[test]
    fn stored_texts_stay_what_they_were() {
        for s in [State::Pending, State::Running, State::Succeeded, State::Failed, State::Cancelled] {
            assert_eq!(State::parse(s.label()), Some(s));
        }
        assert_eq!([State::Succeeded, State::Running].map(State::is_terminal), [true, false]);
        assert_eq!((Target::Cplug.label(), Scope::Orders.label()), ("cplug", "orders"));
        assert_eq!(Target::parse("bitrix24"), Some(Target::Bitrix24));
        assert_eq!(State::parse("paused"), None);
        assert_eq!(serde_json::to_string(&Intent::from([("7".into(), Meant::Updated)])).unwrap(), r#"{"7":"updated"}"#);
    }
}
