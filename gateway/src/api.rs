//! The inbox's operator API (`InboxService`): list dead letters, read one event with its
//! deliveries, and replay dead letters (each dead delivery is queued again with fresh
//! attempts; an event that was unusable on arrival is classified again from its payload).

use ponte_core::{
    db::{Backend, Database, page},
    error::ServiceError,
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::{
    DeadLetterFilter, Delivery, EventOutcome, EventState, GetEventRequest, GetEventResponse, InboxEvent,
    ListDeadLettersRequest, ListDeadLettersResponse, Provider, ReplayRequest, ReplayResponse,
    inbox_service_server::InboxService, replay_request::Target,
};
use sqlx::{Row, any::AnyRow};
use tonic::{Request, Response, Status};

use crate::{
    inbox::{self, delivery, state},
    sources::SourceKind,
};

/// The most events one `Replay` with a filter queues.
const MAX_REPLAY: i64 = 10_000;

#[derive(Clone)]
pub struct Inbox {
    db: Database,
}

impl Inbox {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn event_state(s: &str) -> EventState {
    match s {
        state::RECEIVED | state::PENDING => EventState::Pending,
        state::DELIVERED => EventState::Delivered,
        state::DEAD => EventState::Dead,
        state::COALESCED => EventState::Coalesced,
        _ => EventState::Unspecified,
    }
}

fn delivery_state(s: &str) -> EventState {
    match s {
        delivery::PENDING | delivery::IN_FLIGHT => EventState::Pending,
        delivery::DELIVERED => EventState::Delivered,
        delivery::DEAD => EventState::Dead,
        delivery::COALESCED => EventState::Coalesced,
        _ => EventState::Unspecified,
    }
}

fn outcome(s: &str) -> EventOutcome {
    match s {
        "applied" => EventOutcome::Applied,
        "skipped" => EventOutcome::Skipped,
        "stale" => EventOutcome::Stale,
        "parked" => EventOutcome::Parked,
        _ => EventOutcome::Unspecified,
    }
}

const EVENT_COLUMNS: &str =
    "event_id, tenant_id, source, source_event_id, event_type, entity_key, state, dead_reason, receive_time";

fn event_from(row: &AnyRow) -> Result<InboxEvent, sqlx::Error> {
    let source: String = row.try_get(2)?;
    let st: String = row.try_get(6)?;
    Ok(InboxEvent {
        event_id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        source: SourceKind::from_name(&source).map_or(Provider::Unspecified, |k| k.provider()) as i32,
        source_event_id: row.try_get(3)?,
        event_type: row.try_get(4)?,
        entity_key: row.try_get(5)?,
        state: event_state(&st) as i32,
        dead_reason: row.try_get(7)?,
        receive_time: Some(to_timestamp(row.try_get(8)?)),
        payload: Vec::new(),
        deliveries: Vec::new(),
    })
}

/// The WHERE clause (after `state = 'dead'`) and its values for a filter; values start at `$first`.
fn filter_clause(db: &Database, f: &DeadLetterFilter, first: usize) -> Result<(String, Vec<String>), ServiceError> {
    let mut sql = String::new();
    let mut args = Vec::new();
    if !f.tenant_id.is_empty() {
        args.push(f.tenant_id.clone());
        sql.push_str(&format!(" AND tenant_id = ${}", first + args.len() - 1));
    }
    if f.source != 0 {
        let kind = Provider::try_from(f.source)
            .ok()
            .and_then(SourceKind::from_provider)
            .ok_or_else(|| ServiceError::invalid("filter.source", "is not a provider that sends webhooks"))?;
        args.push(kind.name().to_owned());
        sql.push_str(&format!(" AND source = ${}", first + args.len() - 1));
    }
    if !f.reason_contains.is_empty() {
        args.push(f.reason_contains.clone());
        let n = first + args.len() - 1;
        // A plain substring test: LIKE would read '%' and '_' in the operator's text as wildcards.
        sql.push_str(&match db.backend() {
            Backend::Postgres => format!(" AND strpos(dead_reason, ${n}) > 0"),
            Backend::Sqlite => format!(" AND instr(dead_reason, ${n}) > 0"),
        });
    }
    Ok((sql, args))
}

impl Inbox {
    async fn list(&self, req: ListDeadLettersRequest) -> Result<ListDeadLettersResponse, ServiceError> {
        let size = page::size(req.page_size);
        let after = page::decode(&req.page_token)?;
        let filter = req.filter.unwrap_or_default();
        let (mut clause, mut args) = filter_clause(&self.db, &filter, 1)?;
        let mut cursor: Option<(i64, String)> = None;
        if !after.is_empty() {
            let (t, id) = after
                .split_once('/')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| ServiceError::invalid("page_token", "is not a token this service issued"))?;
            let n = args.len() + 1;
            clause.push_str(&format!(" AND (receive_time < ${n} OR (receive_time = ${n} AND event_id < ${}))", n + 1));
            cursor = Some((t, id));
        }
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM inbox_events WHERE state = 'dead'{clause} \
             ORDER BY receive_time DESC, event_id DESC LIMIT {}",
            size + 1
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args.drain(..) {
            q = q.bind(a);
        }
        if let Some((t, id)) = cursor {
            q = q.bind(t).bind(id);
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        let mut events = rows.iter().take(size as usize).map(event_from).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = if rows.len() as i64 > size {
            events
                .last()
                .map(|e| {
                    page::encode(&format!(
                        "{}/{}",
                        e.receive_time.as_ref().map_or(0, ponte_core::time::from_timestamp),
                        e.event_id
                    ))
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        for e in &mut events {
            e.deliveries = self.deliveries(&e.event_id).await?;
        }
        Ok(ListDeadLettersResponse { events, next_page_token })
    }

    async fn deliveries(&self, event_id: &str) -> Result<Vec<Delivery>, ServiceError> {
        let rows = sqlx::query(
            "SELECT subscriber, state, attempts, last_error, next_attempt_time, delivered_time, outcome \
             FROM inbox_deliveries WHERE event_id = $1 ORDER BY subscriber",
        )
        .bind(event_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let st: String = r.try_get(1)?;
                let delivered: Option<i64> = r.try_get(5)?;
                let pending = st == delivery::PENDING;
                Ok(Delivery {
                    subscriber: r.try_get(0)?,
                    state: delivery_state(&st) as i32,
                    attempts: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                    last_error: r.try_get(3)?,
                    next_attempt_time: if pending { Some(to_timestamp(r.try_get(4)?)) } else { None },
                    delivered_time: delivered.map(to_timestamp),
                    outcome: outcome(&r.try_get::<String, _>(6)?) as i32,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(ServiceError::from)
    }

    async fn get(&self, req: GetEventRequest) -> Result<GetEventResponse, ServiceError> {
        let id = ServiceError::require("event_id", &req.event_id)?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS}, payload FROM inbox_events WHERE event_id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("the inbox has no event '{id}'")))?;
        let mut event = event_from(&row)?;
        event.payload = row.try_get(9)?;
        event.deliveries = self.deliveries(id).await?;
        Ok(GetEventResponse { event: Some(event) })
    }

    /// Queues one dead event again; false when it is not dead (any more).
    async fn requeue(&self, event_id: &str) -> Result<bool, ServiceError> {
        let now = now_millis();
        let mut tx = self.db.pool().begin().await?;
        let revived = sqlx::query(
            "UPDATE inbox_deliveries SET state = 'pending', attempts = 0, next_attempt_time = $1, lease_owner = '', \
             lease_until = 0, outcome = '', detail = '' WHERE event_id = $2 AND state = 'dead'",
        )
        .bind(now)
        .bind(event_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Without dead deliveries the event died on arrival: it is classified again.
        let next = if revived > 0 { state::PENDING } else { state::RECEIVED };
        let updated =
            sqlx::query("UPDATE inbox_events SET state = $1, dead_reason = '' WHERE event_id = $2 AND state = 'dead'")
                .bind(next)
                .bind(event_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !updated {
            tx.rollback().await?;
            return Ok(false);
        }
        inbox::notify(&mut tx, &self.db).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn replay(&self, req: ReplayRequest) -> Result<ReplayResponse, ServiceError> {
        let ids: Vec<String> = match req.target {
            None => return Err(ServiceError::invalid("target", "name an event_id or a filter")),
            Some(Target::EventId(id)) => {
                let id = ServiceError::require("event_id", &id)?.to_owned();
                let st: Option<String> = sqlx::query_scalar("SELECT state FROM inbox_events WHERE event_id = $1")
                    .bind(&id)
                    .fetch_optional(self.db.pool())
                    .await?;
                match st.as_deref() {
                    None => return Err(ServiceError::NotFound(format!("the inbox has no event '{id}'"))),
                    Some(state::DEAD) => vec![id],
                    Some(other) => {
                        return Err(ServiceError::FailedPrecondition(format!(
                            "event '{id}' is {other}, not dead: only dead letters are replayed"
                        )));
                    }
                }
            }
            Some(Target::Filter(f)) => {
                let (clause, args) = filter_clause(&self.db, &f, 1)?;
                let sql = format!(
                    "SELECT event_id FROM inbox_events WHERE state = 'dead'{clause} ORDER BY receive_time LIMIT {MAX_REPLAY}"
                );
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
                for a in args {
                    q = q.bind(a);
                }
                q.fetch_all(self.db.pool()).await?
            }
        };
        let mut queued = Vec::with_capacity(ids.len());
        for id in ids {
            if self.requeue(&id).await? {
                queued.push(id);
            }
        }
        if !queued.is_empty() {
            tracing::info!(count = queued.len(), "dead letters queued again");
            crate::dispatcher::wake_local();
        }
        Ok(ReplayResponse { event_ids: queued })
    }
}

#[tonic::async_trait]
impl InboxService for Inbox {
    async fn list_dead_letters(
        &self,
        req: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        Ok(Response::new(self.list(req.into_inner()).await?))
    }

    async fn get_event(&self, req: Request<GetEventRequest>) -> Result<Response<GetEventResponse>, Status> {
        Ok(Response::new(self.get(req.into_inner()).await?))
    }

    async fn replay(&self, req: Request<ReplayRequest>) -> Result<Response<ReplayResponse>, Status> {
        Ok(Response::new(Inbox::replay(self, req.into_inner()).await?))
    }
}
