//! `GetSyncStatus`: the merchant's "data sync" tab, per flow, from catalog-sync's own records:
//! the event ledger (`event_log`, see [`crate::events`]) and the backfills.
//!
//! - Last success: the newest event applied or skipped (an up-to-date product is a success) or
//!   backfill that succeeded. Last error: the newest event that failed (its detail) or backfill
//!   that failed (its reason), whichever is newer.
//! - Counts: products vs variations and active vs inactive are what the newest backfill saw in
//!   Bling (the live sync sees one product at a time, not the catalog), which is what explains
//!   why Bling's list and the target's differ; created, updated, unchanged and failed are the
//!   newest backfill's plus the live events handled since it started (all of them when there was
//!   none), read from the details [`crate::events`] records ("created …", "updated …",
//!   "deactivated …", "… already up to date"). An entity counts as failed once, while its
//!   newest event is a failure.
//!
//! Every flow is listed, even one the tenant has never used, so the tab's rows are stable.

use ponte_core::{
    TenantId,
    db::Database,
    error::ServiceError,
    time::{from_timestamp, to_timestamp},
};
use ponte_proto::v1::{Backfill, CatalogCounts, EventOutcome, Flow, FlowStatus};

use crate::{
    backfill::store::{self, Scope, Target},
    ledger::Entry,
};

/// A flow's events in the ledger, and its backfill target.
struct FlowSource {
    flow: Flow,
    /// `event_log.source` and the `entity_key` pattern of its events, when it has live events.
    events: Option<(&'static str, &'static str)>,
    /// Its backfills' target and scope, when it has backfills.
    backfills: Option<(Target, Scope)>,
}

const FLOWS: &[FlowSource] = &[
    FlowSource {
        flow: Flow::BlingToBitrix24Products,
        events: Some(("bling", "product:%")),
        backfills: Some((Target::Bitrix24, Scope::Products)),
    },
    FlowSource {
        flow: Flow::BlingToBitrix24Orders,
        events: Some(("bling", "order:%")),
        backfills: Some((Target::Bitrix24, Scope::Orders)),
    },
    FlowSource { flow: Flow::Bitrix24ToBlingProducts, events: Some(("bitrix24", "%")), backfills: None },
    FlowSource { flow: Flow::BlingToCplugProducts, events: None, backfills: Some((Target::Cplug, Scope::Products)) },
];

/// What the ledger holds for one flow since a time.
#[derive(Default, sqlx::FromRow)]
struct EventSummary {
    last_success: Option<i64>,
    created: i64,
    updated: i64,
    unchanged: i64,
    #[sqlx(skip)]
    failed: i64,
    #[sqlx(skip)]
    last_error: Option<(i64, String)>,
}

async fn events(
    db: &Database,
    tenant_id: &TenantId,
    source: &str,
    pattern: &str,
    since: i64,
) -> Result<EventSummary, ServiceError> {
    let (applied, skipped, failed) = (
        Entry::Handled(EventOutcome::Applied).label(),
        Entry::Handled(EventOutcome::Skipped).label(),
        Entry::Failed.label(),
    );
    let mut summary: EventSummary = sqlx::query_as(
        "SELECT MAX(CASE WHEN outcome IN ($5, $6) THEN handle_time END) AS last_success, \
         COUNT(CASE WHEN handle_time >= $4 AND outcome = $5 AND detail LIKE 'created %' THEN 1 END) AS created, \
         COUNT(CASE WHEN handle_time >= $4 AND outcome = $5 \
                    AND (detail LIKE 'updated %' OR detail LIKE 'deactivated %') THEN 1 END) AS updated, \
         COUNT(CASE WHEN handle_time >= $4 AND outcome = $6 AND detail LIKE '%already up to date' THEN 1 END) \
         AS unchanged FROM event_log WHERE tenant_id = $1 AND source = $2 AND entity_key LIKE $3",
    )
    .bind(tenant_id.as_str())
    .bind(source)
    .bind(pattern)
    .bind(since)
    .bind(applied)
    .bind(skipped)
    .fetch_one(db.pool())
    .await?;
    summary.failed = sqlx::query_scalar(
        "SELECT COUNT(*) FROM event_log e WHERE e.tenant_id = $1 AND e.source = $2 AND e.entity_key LIKE $3 \
         AND e.handle_time >= $4 AND e.outcome = $5 AND e.seq = \
         (SELECT MAX(x.seq) FROM event_log x WHERE x.tenant_id = e.tenant_id AND x.entity_key = e.entity_key)",
    )
    .bind(tenant_id.as_str())
    .bind(source)
    .bind(pattern)
    .bind(since)
    .bind(failed)
    .fetch_one(db.pool())
    .await?;
    summary.last_error = sqlx::query_as(
        "SELECT handle_time, detail FROM event_log WHERE tenant_id = $1 AND source = $2 AND entity_key LIKE $3 \
         AND outcome = $4 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant_id.as_str())
    .bind(source)
    .bind(pattern)
    .bind(failed)
    .fetch_optional(db.pool())
    .await?;
    Ok(summary)
}

async fn flow_status(db: &Database, tenant_id: &TenantId, f: &FlowSource) -> Result<FlowStatus, ServiceError> {
    let latest: Option<Backfill> = match f.backfills {
        Some(of) => store::latest(db, tenant_id, of).await?,
        None => None,
    };
    let since = latest.as_ref().and_then(|b| b.start_time.as_ref()).map(from_timestamp).unwrap_or(0);
    let ev = match f.events {
        Some((source, pattern)) => events(db, tenant_id, source, pattern, since).await?,
        None => EventSummary::default(),
    };
    let (backfill_success, backfill_error) = match f.backfills {
        Some(of) => store::last_outcomes(db, tenant_id, of).await?,
        None => (None, None),
    };
    let last_success = ev.last_success.max(backfill_success);
    let last_error = match (ev.last_error, backfill_error.map(|(t, r)| (t, format!("backfill: {r}")))) {
        (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    let base = latest.and_then(|b| b.counts).unwrap_or_default();
    let u = |v: i64| u64::try_from(v).unwrap_or_default();
    Ok(FlowStatus {
        flow: f.flow as i32,
        last_success_time: last_success.map(to_timestamp),
        last_error: last_error.as_ref().map(|(_, e)| e.clone()).unwrap_or_default(),
        last_error_time: last_error.map(|(t, _)| to_timestamp(t)),
        counts: Some(CatalogCounts {
            created: base.created + u(ev.created),
            updated: base.updated + u(ev.updated),
            unchanged: base.unchanged + u(ev.unchanged),
            failed: base.failed + u(ev.failed),
            ..base
        }),
        ..FlowStatus::default()
    })
}

/// Every flow's status for `tenant_id`.
pub(crate) async fn sync_status(db: &Database, tenant_id: &TenantId) -> Result<Vec<FlowStatus>, ServiceError> {
    let mut flows = Vec::with_capacity(FLOWS.len());
    for f in FLOWS {
        flows.push(flow_status(db, tenant_id, f).await?);
    }
    Ok(flows)
}
