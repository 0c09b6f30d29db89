//! The inbox's operator API (`InboxService`): list dead letters, read one event with its
//! deliveries, and replay dead letters (each dead delivery is queued again with fresh
//! attempts; an event that was unusable on arrival is classified again from its payload).

use ponte_core::{
    TenantId,
    db::{Backend, Database, page},
    error::{ServiceError, quote},
    identity::{Caller, Scope},
    time::{from_timestamp, now_millis, to_timestamp},
};
use ponte_proto::v1::{
    DeadLetterFilter, Delivery, EventOutcome, EventState as EventApiState, GetEventRequest, GetEventResponse,
    GetRecordHistoryRequest, GetRecordHistoryResponse, InboxEvent, ListDeadLettersRequest, ListDeadLettersResponse,
    Provider, ReplayRequest, ReplayResponse, inbox_service_server::InboxService, replay_request::Target,
};
use tonic::{Request, Response, Status};

use ponte_core::sql::Statement;

use crate::{
    history::Histories,
    inbox::{DeliveryState, EventState},
    sources::SourceKind,
    wake::Wake,
};

/// The most events one `Replay` with a filter queues.
const MAX_REPLAY: i64 = 10_000;

/// The operator API of one gateway, whose dispatcher its replays wake.
#[derive(Clone)]
pub struct Inbox {
    db: Database,
    wake: Wake,
    histories: Histories,
}

impl Inbox {
    pub fn new(db: Database, wake: Wake, histories: Histories) -> Self {
        Self { db, wake, histories }
    }
}

const EVENT_COLUMNS: &str =
    "event_id, tenant_id, source, source_event_id, event_type, entity_key, state, dead_reason, receive_time";

#[derive(sqlx::FromRow)]
struct EventRow {
    event_id: String,
    tenant_id: String,
    source: String,
    source_event_id: String,
    event_type: String,
    entity_key: String,
    state: String,
    dead_reason: String,
    receive_time: i64,
}

impl From<EventRow> for InboxEvent {
    fn from(r: EventRow) -> Self {
        InboxEvent {
            event_id: r.event_id,
            tenant_id: r.tenant_id,
            source: SourceKind::from_name(&r.source).map_or(Provider::Unspecified, |k| k.provider()) as i32,
            source_event_id: r.source_event_id,
            event_type: r.event_type,
            entity_key: r.entity_key,
            state: EventState::from_label(&r.state).map_or(Default::default(), EventState::api) as i32,
            dead_reason: r.dead_reason,
            receive_time: Some(to_timestamp(r.receive_time)),
            payload: Vec::new(),
            deliveries: Vec::new(),
            held_reason: String::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    subscriber: String,
    state: String,
    attempts: i64,
    last_error: String,
    next_attempt_time: i64,
    delivered_time: Option<i64>,
    outcome: String,
    detail: String,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        let state = DeliveryState::from_label(&r.state);
        Delivery {
            subscriber: r.subscriber,
            state: state.map_or(Default::default(), DeliveryState::api) as i32,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            last_error: r.last_error,
            next_attempt_time: (state == Some(DeliveryState::Pending)).then(|| to_timestamp(r.next_attempt_time)),
            delivered_time: r.delivered_time.map(to_timestamp),
            outcome: EventOutcome::from_label(&r.outcome).unwrap_or(EventOutcome::Unspecified) as i32,
        }
    }
}

/// `SELECT {columns} FROM inbox_events WHERE state = 'dead'` narrowed by `f`.
fn dead_letters(db: &Database, columns: &str, f: &DeadLetterFilter) -> Result<Statement, ServiceError> {
    let mut q = Statement::new(format!("SELECT {columns} FROM inbox_events WHERE state = 'dead'"));
    if !f.tenant_id.is_empty() {
        let tenant = TenantId::field("filter.tenant_id", &f.tenant_id)?;
        q.push(" AND tenant_id = ").bind(tenant.as_str().to_owned());
    }
    if f.source != 0 {
        let kind = Provider::try_from(f.source)
            .ok()
            .and_then(SourceKind::from_provider)
            .ok_or_else(|| ServiceError::invalid("filter.source", "is not a provider that sends webhooks"))?;
        q.push(" AND source = ").bind(kind.name());
    }
    if !f.reason_contains.is_empty() {
        // A plain substring test: LIKE would read '%' and '_' in the operator's text as wildcards.
        q.push(match db.backend() {
            Backend::Postgres => " AND strpos(dead_reason, ",
            Backend::Sqlite => " AND instr(dead_reason, ",
        });
        q.bind(f.reason_contains.clone()).push(") > 0");
    }
    Ok(q)
}

impl Inbox {
    async fn list(&self, req: ListDeadLettersRequest) -> Result<ListDeadLettersResponse, ServiceError> {
        let size = page::size(req.page_size);
        let after = page::decode(&req.page_token)?;
        let mut q = dead_letters(&self.db, EVENT_COLUMNS, &req.filter.unwrap_or_default())?;
        if !after.is_empty() {
            let (t, id) = after
                .split_once('/')
                .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| ServiceError::invalid("page_token", "is not a token this service issued"))?;
            q.push(" AND (receive_time < ").bind(t);
            q.push(" OR (receive_time = ").bind(t);
            q.push(" AND event_id < ").bind(id).push("))");
        }
        q.push(&format!(" ORDER BY receive_time DESC, event_id DESC LIMIT {}", size + 1));
        let rows: Vec<EventRow> = q.query_as().fetch_all(self.db.pool()).await?;
        let more = rows.len() as i64 > size;
        let mut events: Vec<InboxEvent> = rows.into_iter().take(size as usize).map(InboxEvent::from).collect();
        let next_page_token = match events.last() {
            Some(e) if more => {
                page::encode(&format!("{}/{}", e.receive_time.as_ref().map_or(0, from_timestamp), e.event_id))
            }
            _ => String::new(),
        };
        for e in &mut events {
            self.add_deliveries(e).await?;
        }
        Ok(ListDeadLettersResponse { events, next_page_token })
    }

    /// Fills `e`'s deliveries; an event with a held delivery shows as held, saying why.
    async fn add_deliveries(&self, e: &mut InboxEvent) -> Result<(), ServiceError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT subscriber, state, attempts, last_error, next_attempt_time, delivered_time, outcome, detail \
             FROM inbox_deliveries WHERE event_id = $1 ORDER BY subscriber",
        )
        .bind(&e.event_id)
        .fetch_all(self.db.pool())
        .await?;
        if let Some(held) = rows.iter().find(|r| DeliveryState::from_label(&r.state) == Some(DeliveryState::Held)) {
            e.set_state(EventApiState::Held);
            e.held_reason = held.detail.clone();
        }
        e.deliveries = rows.into_iter().map(Delivery::from).collect();
        Ok(())
    }

    /// `caller`: a tenant's token sees its own tenant's events only (another's are not found).
    async fn get(&self, req: GetEventRequest, caller: Option<&Caller>) -> Result<GetEventResponse, ServiceError> {
        #[derive(sqlx::FromRow)]
        struct WithPayload {
            #[sqlx(flatten)]
            event: EventRow,
            payload: Vec<u8>,
        }
        let id = ServiceError::require("event_id", &req.event_id)?;
        let row: WithPayload = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS}, payload FROM inbox_events WHERE event_id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("event_id: the inbox has no event {}", quote(id))))?;
        let mut event = InboxEvent::from(row.event);
        if !Caller::may_see(caller, &event.tenant_id) {
            return Err(ServiceError::NotFound(format!("event_id: the inbox has no event {}", quote(id))));
        }
        event.payload = row.payload;
        self.add_deliveries(&mut event).await?;
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
        let next = if revived > 0 { EventState::Pending } else { EventState::Received };
        let updated =
            sqlx::query("UPDATE inbox_events SET state = $1, dead_reason = '' WHERE event_id = $2 AND state = 'dead'")
                .bind(next.label())
                .bind(event_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !updated {
            tx.rollback().await?;
            return Ok(false);
        }
        self.wake.notify_on_commit(&mut tx, &self.db).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn replay(&self, req: ReplayRequest, caller: Option<&Caller>) -> Result<ReplayResponse, ServiceError> {
        let ids: Vec<String> = match req.target {
            None => return Err(ServiceError::invalid("target", "name an event_id or a filter")),
            Some(Target::EventId(id)) => {
                let id = ServiceError::require("event_id", &id)?.to_owned();
                let st: Option<(String, String)> =
                    sqlx::query_as("SELECT state, tenant_id FROM inbox_events WHERE event_id = $1")
                        .bind(&id)
                        .fetch_optional(self.db.pool())
                        .await?;
                let st = st.filter(|(_, tenant)| Caller::may_see(caller, tenant)).map(|(s, _)| s);
                match st.as_deref().map(|s| (s, EventState::from_label(s))) {
                    None => {
                        return Err(ServiceError::NotFound(format!("event_id: the inbox has no event {}", quote(&id))));
                    }
                    Some((_, Some(EventState::Dead))) => vec![id],
                    Some((other, _)) => {
                        return Err(ServiceError::FailedPrecondition(format!(
                            "event_id: event {} is {other}, not dead: only dead letters are replayed",
                            quote(&id)
                        )));
                    }
                }
            }
            Some(Target::Filter(mut f)) => {
                // A tenant's token replays its own tenant's dead letters only.
                if let Some(Caller { scope: Scope::Tenant(t), .. }) = caller {
                    f.tenant_id = t.to_string();
                }
                let mut q = dead_letters(&self.db, "event_id", &f)?;
                q.push(&format!(" ORDER BY receive_time LIMIT {MAX_REPLAY}"));
                q.query_scalar().fetch_all(self.db.pool()).await?
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
            self.wake.wake_dispatcher();
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
        let caller = req.extensions().get::<Caller>().cloned();
        Ok(Response::new(self.get(req.into_inner(), caller.as_ref()).await?))
    }

    async fn replay(&self, req: Request<ReplayRequest>) -> Result<Response<ReplayResponse>, Status> {
        let caller = req.extensions().get::<Caller>().cloned();
        Ok(Response::new(Inbox::replay(self, req.into_inner(), caller.as_ref()).await?))
    }

    async fn get_record_history(
        &self,
        req: Request<GetRecordHistoryRequest>,
    ) -> Result<Response<GetRecordHistoryResponse>, Status> {
        let req = req.into_inner();
        let entries = self.histories.of(&self.db, &req.tenant_id, &req.entity).await?;
        Ok(Response::new(GetRecordHistoryResponse { entries }))
    }
}
