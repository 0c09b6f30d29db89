//! Each shipment's history: every event (or person) that touched it, what ponte did, how it
//! ended, and the trace of the handling. Events that concern shipping without a known order (a
//! 360 webhook for an order ponte never sent, a status ponte does not know) are kept the same
//! way under order 0, with the problem a person should see; the flows' sync status reads it.

use ponte_core::{
    BlingId, TenantId, db::Database, error::ServiceError, telemetry, time::now_millis, time::to_timestamp,
};
use ponte_proto::v1::{EventOutcome, ShipmentHistoryEntry};

/// The two shipping flows, as the history labels them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Bling orders → 360Envios (and setup).
    Orders,
    /// 360Envios statuses and approvals → Bling.
    Status,
}

impl Flow {
    pub const fn label(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Status => "status",
        }
    }
}

/// How an event ended: handled with an outcome, or failed (the gateway retries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Handled(EventOutcome),
    Failed,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Handled(o) => o.label(),
            Self::Failed => "failed",
        }
    }
}

/// One line of history.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub tenant: &'a TenantId,
    pub order: Option<BlingId>,
    pub flow: Flow,
    /// "Bling order.updated", "360Envios order.status_changed", "setup".
    pub trigger: String,
    pub event_id: &'a str,
    pub action: String,
    pub outcome: Outcome,
    /// Non-empty when a person should look: a failure, an unknown order or status, a refusal.
    pub problem: String,
}

pub(crate) async fn record(db: &Database, e: &Entry<'_>) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO history (tenant_id, bling_order_id, flow, at, trigger_name, event_id, action, outcome, detail, \
         problem, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(e.tenant.as_str())
    .bind(e.order.map_or(0, BlingId::get))
    .bind(e.flow.label())
    .bind(now_millis())
    .bind(e.trigger.clone())
    .bind(e.event_id)
    .bind(e.action.clone())
    .bind(e.outcome.label())
    .bind(e.problem.clone())
    .bind(e.problem.clone())
    .bind(telemetry::current_trace_id().unwrap_or_default())
    .execute(db.pool())
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    at: i64,
    trigger_name: String,
    event_id: String,
    action: String,
    outcome: String,
    detail: String,
    trace_id: String,
}

/// The history of the shipment of `order`, oldest first.
pub(crate) async fn of(
    db: &Database,
    tenant: &TenantId,
    order: BlingId,
) -> Result<Vec<ShipmentHistoryEntry>, ServiceError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, trigger_name, event_id, action, outcome, detail, trace_id FROM history \
         WHERE tenant_id = $1 AND bling_order_id = $2 ORDER BY id",
    )
    .bind(tenant.as_str())
    .bind(order.get())
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ShipmentHistoryEntry {
            time: Some(to_timestamp(r.at)),
            trigger: r.trigger_name,
            event_id: r.event_id,
            action: r.action,
            // A failure is retried by the gateway: it has no outcome yet.
            outcome: EventOutcome::from_label(&r.outcome).unwrap_or(EventOutcome::Unspecified) as i32,
            detail: r.detail,
            trace_id: r.trace_id,
        })
        .collect())
}

/// What the merchant's "data sync" tab shows of a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FlowSummary {
    pub last_success: Option<i64>,
    pub last_error: Option<(i64, String)>,
}

#[derive(sqlx::FromRow)]
struct Problem {
    at: i64,
    problem: String,
}

/// The newest success (an event applied) and the newest problem of a flow.
pub(crate) async fn summary(db: &Database, tenant: &TenantId, flow: Flow) -> Result<FlowSummary, ServiceError> {
    let last_success: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(at) FROM history WHERE tenant_id = $1 AND flow = $2 AND outcome = $3 AND problem = ''",
    )
    .bind(tenant.as_str())
    .bind(flow.label())
    .bind(EventOutcome::Applied.label())
    .fetch_one(db.pool())
    .await?;
    let problem: Option<Problem> = sqlx::query_as(
        "SELECT at, problem FROM history WHERE tenant_id = $1 AND flow = $2 AND problem <> '' ORDER BY id DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .bind(flow.label())
    .fetch_optional(db.pool())
    .await?;
    Ok(FlowSummary { last_success, last_error: problem.map(|p| (p.at, p.problem)) })
}

/// What a flow did with one event, as its history line says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Done {
    pub outcome: EventOutcome,
    /// What ponte did, or why it did nothing.
    pub action: String,
    /// What a person should look at, if anything.
    pub problem: String,
    /// The shipments it touched when they are not the event's own order (a product's verdict
    /// touches every shipment holding the product).
    pub orders: Option<Vec<BlingId>>,
}

impl Done {
    fn of(outcome: EventOutcome, action: impl Into<String>) -> Self {
        Self { outcome, action: action.into(), problem: String::new(), orders: None }
    }

    pub fn applied(action: impl Into<String>) -> Self {
        Self::of(EventOutcome::Applied, action)
    }

    pub fn skipped(why: impl Into<String>) -> Self {
        Self::of(EventOutcome::Skipped, why)
    }

    pub fn stale(why: impl Into<String>) -> Self {
        Self::of(EventOutcome::Stale, why)
    }

    /// Kept for a person: `problem` says what they must do.
    pub fn parked(action: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { problem: problem.into(), ..Self::of(EventOutcome::Parked, action) }
    }

    /// Nothing could be done, and a person should know why (an event about an order or status
    /// ponte does not know).
    pub fn reported(problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self { action: problem.clone(), problem, ..Self::of(EventOutcome::Skipped, "") }
    }

    pub fn touching(mut self, orders: Vec<BlingId>) -> Self {
        self.orders = Some(orders);
        self
    }
}
