//! The inbox: every accepted webhook as a row (`inbox_events`) and one delivery row per
//! subscribing service (`inbox_deliveries`), and the writer that commits them.
//!
//! The writer is a group commit: requests hand their rows to a queue, and a writer task
//! commits everything that queued up while the previous commit ran in one transaction. Each
//! request is answered only after the transaction holding its row committed, so every
//! acknowledged event is durable, while one `fsync` is shared by many events.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use ponte_core::db::{Backend, Database};
use sqlx::{AnyConnection, Row, any::AnyArguments, query::Query};
use tokio::{
    sync::{Mutex, Notify, mpsc, oneshot},
    task::JoinHandle,
};

use crate::sources::Route;

/// Where an event stands (`inbox_events.state`).
pub mod state {
    /// Stored, not yet routed: its tenant could not be resolved on arrival, or it is replayed.
    pub const RECEIVED: &str = "received";
    /// Deliveries outstanding.
    pub const PENDING: &str = "pending";
    pub const DELIVERED: &str = "delivered";
    pub const DEAD: &str = "dead";
    /// Every delivery was replaced by a newer event of the same entity.
    pub const COALESCED: &str = "coalesced";
}

/// Where one delivery stands (`inbox_deliveries.state`).
pub mod delivery {
    pub const PENDING: &str = "pending";
    pub const IN_FLIGHT: &str = "in_flight";
    pub const DELIVERED: &str = "delivered";
    pub const DEAD: &str = "dead";
    pub const COALESCED: &str = "coalesced";
}

/// The notification channel other replicas LISTEN on (PostgreSQL).
pub fn channel(db: &Database) -> String {
    format!("ponte_inbox_{}", db.schema())
}

/// This process on the notifications it sends (their payload). Its own dispatchers were
/// already woken in-process ([`crate::dispatcher::wake_local`]) and skip them: an extra wake
/// is an empty claim, a transaction and the heads query.
pub fn origin() -> &'static str {
    static ORIGIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| uuid::Uuid::new_v4().to_string());
    &ORIGIN
}

/// Deliveries of one tenant's entity to one service go one at a time, in order: the lane.
pub fn lane(tenant_id: &str, entity_key: &str) -> String {
    format!("{tenant_id}|{entity_key}")
}

/// An event about to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: String,
    pub source: &'static str,
    pub source_event_id: String,
    pub tenant_id: String,
    pub account: String,
    pub event_type: String,
    pub entity_key: String,
    pub state: &'static str,
    pub dead_reason: String,
    pub payload: Vec<u8>,
    pub headers_json: String,
    pub traceparent: String,
    pub occurred_time: Option<i64>,
    pub receive_time: i64,
    /// The deliveries to create (only when `state` is pending).
    pub routes: &'static [Route],
}

/// PostgreSQL refuses NUL in text; a sender's strings are stored without it.
pub fn clean(s: &str) -> String {
    if s.contains('\0') { s.replace('\0', "") } else { s.to_owned() }
}

/// `($1, …), (…)` for `rows` rows of `cols` parameters.
fn values(rows: usize, cols: usize) -> String {
    values_from(1, rows, cols)
}

/// `($first, …), (…)` for `rows` rows of `cols` parameters, numbered from `first`.
pub fn values_from(first: usize, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            out.push('$');
            out.push_str(&(first + r * cols + c).to_string());
        }
        out.push(')');
    }
    out
}

/// One delivery row to create.
pub struct NewDelivery<'a> {
    pub event_id: &'a str,
    pub subscriber: &'static str,
    pub lane: String,
    pub order_time: i64,
    pub coalescible: bool,
    pub now: i64,
}

/// The deliveries of a routed event.
pub fn deliveries_for<'a>(
    event_id: &'a str,
    tenant_id: &str,
    entity_key: &str,
    order_time: i64,
    routes: &'static [Route],
    now: i64,
) -> impl Iterator<Item = NewDelivery<'a>> {
    let lane = lane(tenant_id, entity_key);
    routes.iter().map(move |r| NewDelivery {
        event_id,
        subscriber: r.subscriber.name(),
        lane: lane.clone(),
        order_time,
        coalescible: r.coalesce,
        now,
    })
}

/// Inserts delivery rows (an event delivered twice to one service is refused by the key).
pub async fn insert_deliveries(conn: &mut AnyConnection, rows: &[NewDelivery<'_>]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(200) {
        let sql = format!(
            "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, attempts, \
             next_attempt_time, create_time) VALUES {} ON CONFLICT (event_id, subscriber) DO NOTHING",
            values(chunk.len(), 9)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in chunk {
            q = q
                .bind(d.event_id.to_owned())
                .bind(d.subscriber)
                .bind(d.lane.clone())
                .bind(d.order_time)
                .bind(i64::from(d.coalescible))
                .bind(delivery::PENDING)
                .bind(0_i64)
                .bind(d.now)
                .bind(d.now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Tells the other replicas (PostgreSQL) that there is work; delivered on commit.
pub async fn notify(conn: &mut AnyConnection, db: &Database) -> Result<(), sqlx::Error> {
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)").bind(channel(db)).bind(origin()).execute(conn).await?;
    }
    Ok(())
}

/// Sets an event's state from its deliveries: pending while any is outstanding, then dead if
/// any died (with their reasons), coalesced if every one was replaced, delivered otherwise.
///
/// Two deliveries of one event can finish in concurrent transactions (catalog-sync and
/// shipping-status each get order events). On PostgreSQL the event row is locked before its
/// deliveries are read, so the second transaction waits for the first to commit and then sees
/// both results; without it each would see the other still outstanding and leave the event
/// pending for good. A transaction settling several events must settle them in one order (see
/// [`settle_all`]) so that two of them never wait on each other. SQLite has one writer at a time.
pub async fn settle(conn: &mut AnyConnection, backend: Backend, event_id: &str) -> Result<&'static str, sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT event_id FROM inbox_events WHERE event_id = $1 FOR UPDATE")
            .bind(event_id)
            .fetch_optional(&mut *conn)
            .await?;
    }
    let rows = sqlx::query("SELECT subscriber, state, last_error FROM inbox_deliveries WHERE event_id = $1")
        .bind(event_id)
        .fetch_all(&mut *conn)
        .await?;
    let states: Vec<String> = rows.iter().map(|r| r.try_get(1)).collect::<Result<_, _>>()?;
    let outstanding = states.iter().any(|s| s == delivery::PENDING || s == delivery::IN_FLIGHT);
    let mut reasons = Vec::new();
    for r in &rows {
        if r.try_get::<String, _>(1)? == delivery::DEAD {
            reasons.push(r.try_get::<String, _>(2)?);
        }
    }
    let new_state = if outstanding {
        state::PENDING
    } else if !reasons.is_empty() {
        state::DEAD
    } else if !states.is_empty() && states.iter().all(|s| s == delivery::COALESCED) {
        state::COALESCED
    } else {
        state::DELIVERED
    };
    sqlx::query("UPDATE inbox_events SET state = $1, dead_reason = $2 WHERE event_id = $3")
        .bind(new_state)
        .bind(reasons.join("; "))
        .bind(event_id)
        .execute(&mut *conn)
        .await?;
    Ok(new_state)
}

/// Settles several events, in event id order.
pub async fn settle_all(
    conn: &mut AnyConnection,
    backend: Backend,
    event_ids: &mut Vec<String>,
) -> Result<(), sqlx::Error> {
    event_ids.sort_unstable();
    event_ids.dedup();
    for id in event_ids.iter() {
        settle(conn, backend, id).await?;
    }
    Ok(())
}

/// What storing an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// This request's row is committed.
    Inserted,
    /// A row with the same (source, event id) was already committed.
    Duplicate,
}

/// Storing failed; nothing of this request is committed (or, if the commit's answer was
/// lost, the sender's retry finds the row and is answered as a duplicate).
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

/// Hands rows to the writer tasks; clone freely.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

/// The most events one transaction commits.
const MAX_BATCH: usize = 64;

impl Writer {
    /// Starts `tasks` writer tasks. While one commits, the next collects what arrives, so
    /// commits overlap with the next batch's collection.
    pub fn spawn(db: Database, tasks: usize, handles: &mut Vec<JoinHandle<()>>) -> Self {
        let (queue, rx) = mpsc::channel::<Job>(MAX_BATCH * 64);
        let rx = Arc::new(Mutex::new(rx));
        let poke = Arc::new(Notify::new());
        if db.backend() == Backend::Postgres {
            handles.push(tokio::spawn(notifier(db.clone(), poke.clone())));
        }
        for _ in 0..tasks.max(1) {
            let (db, rx, poke) = (db.clone(), rx.clone(), poke.clone());
            handles.push(tokio::spawn(async move { run(db, rx, poke).await }));
        }
        Self { queue }
    }

    /// Stores `event`; answers once its transaction committed (or failed).
    pub async fn store(&self, event: NewEvent) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { event, reply }).await.map_err(|_| StoreError("the inbox writer stopped".into()))?;
        answer.await.unwrap_or_else(|_| Err(StoreError("the inbox writer stopped".into())))
    }
}

/// Tells the other replicas (PostgreSQL `NOTIFY`) that rows were committed: outside the
/// writers' statements, because a transaction that notifies holds a global lock through its
/// commit (which would stop commits from sharing a flush), and at most once per few
/// milliseconds however many batches committed meanwhile.
async fn notifier(db: Database, poke: Arc<Notify>) {
    let channel = channel(&db);
    loop {
        poke.notified().await;
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)").bind(&channel).bind(origin()).execute(db.pool()).await {
            tracing::warn!(error = %e, "could not notify the other replicas; their poll will find the work");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(db: Database, rx: Arc<Mutex<mpsc::Receiver<Job>>>, poke: Arc<Notify>) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        crate::metrics::get().commit_batch.observe(batch.len() as f64);
        let events: Vec<&NewEvent> = batch.iter().map(|j| &j.event).collect();
        let started = std::time::Instant::now();
        let committed = commit(&db, &events).await;
        crate::metrics::get().commit_seconds.observe(started.elapsed().as_secs_f64());
        let results = match committed {
            Ok(r) => r.into_iter().map(Ok).collect(),
            // A row the database refuses must not fail the others that shared its batch:
            // each is tried alone before anyone is told it failed.
            Err(e) if batch.len() > 1 && matches!(e, sqlx::Error::Database(_)) => {
                tracing::warn!(error = %e, size = batch.len(), "inbox batch refused; committing its events one by one");
                let mut out = Vec::with_capacity(batch.len());
                for ev in &events {
                    out.push(commit(&db, &[*ev]).await.map(|r| r[0]).map_err(store_error));
                }
                out
            }
            Err(e) => {
                let err = store_error(e);
                batch.iter().map(|_| Err(err.clone())).collect::<Vec<_>>()
            }
        };
        let wake =
            events.iter().zip(&results).any(|(e, r)| matches!(r, Ok(Stored::Inserted)) && e.state != state::DEAD);
        for (job, r) in batch.into_iter().zip(results) {
            let _ = job.reply.send(r);
        }
        if wake {
            crate::dispatcher::wake_local();
            poke.notify_one();
        }
    }
}

fn store_error(e: sqlx::Error) -> StoreError {
    tracing::error!(error = %e, "storing webhook events failed");
    StoreError("the inbox could not store the event".into())
}

fn bind_event<'q>(q: Query<'q, sqlx::Any, AnyArguments>, e: &NewEvent) -> Query<'q, sqlx::Any, AnyArguments> {
    q.bind(e.event_id.clone())
        .bind(e.source)
        .bind(e.source_event_id.clone())
        .bind(e.tenant_id.clone())
        .bind(e.account.clone())
        .bind(e.event_type.clone())
        .bind(e.entity_key.clone())
        .bind(lane(&e.tenant_id, &e.entity_key))
        .bind(e.state)
        .bind(e.dead_reason.clone())
        .bind(e.payload.clone())
        .bind(e.headers_json.clone())
        .bind(e.traceparent.clone())
        .bind(e.occurred_time)
        .bind(e.receive_time)
}

/// `($1::t1, …), (…)` for `rows` rows typed `types`, numbered from `$first`.
fn typed_values(rows: usize, types: &[&str], first: usize) -> String {
    let mut out = String::with_capacity(rows * types.len() * 12);
    let mut n = first;
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ",(" });
        for (c, t) in types.iter().enumerate() {
            if c > 0 {
                out.push(',');
            }
            out.push_str(&format!("${n}::{t}"));
            n += 1;
        }
        out.push(')');
    }
    out
}

const EVENT_COLUMNS: &str = "event_id, source, source_event_id, tenant_id, account, event_type, entity_key, lane, \
                             state, dead_reason, payload, headers_json, traceparent, occurred_time, receive_time";
const EVENT_TYPES: [&str; 15] = [
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "bytea", "text", "text", "bigint",
    "bigint",
];

/// Stores a batch; an event whose (source, event id) is already stored is skipped, and the
/// deliveries of those inserted are created with them, atomically. Returns each event's result.
async fn commit(db: &Database, events: &[&NewEvent]) -> Result<Vec<Stored>, sqlx::Error> {
    // Two requests for one event in the same batch: the first is inserted, the second is its
    // duplicate.
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    let mut unique = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if let std::collections::hash_map::Entry::Vacant(v) = first.entry((e.source, e.source_event_id.as_str())) {
            v.insert(i);
            unique.push(*e);
        }
    }
    let deliveries: Vec<NewDelivery<'_>> = unique
        .iter()
        .filter(|e| e.state == state::PENDING)
        .flat_map(|e| {
            let order_time = e.occurred_time.unwrap_or(e.receive_time);
            deliveries_for(&e.event_id, &e.tenant_id, &e.entity_key, order_time, e.routes, e.receive_time)
        })
        .collect();
    let inserted = match db.backend() {
        Backend::Postgres => commit_postgres(db, &unique, &deliveries).await?,
        Backend::Sqlite => commit_sqlite(db, &unique, &deliveries).await?,
    };
    Ok(events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let is_first = first.get(&(e.source, e.source_event_id.as_str())) == Some(&i);
            if is_first && inserted.contains(&e.event_id) { Stored::Inserted } else { Stored::Duplicate }
        })
        .collect())
}

/// PostgreSQL: one statement, committed on its own (one round trip, one WAL flush shared by
/// the whole batch): the events, then the deliveries of the events actually inserted.
async fn commit_postgres(
    db: &Database,
    events: &[&NewEvent],
    deliveries: &[NewDelivery<'_>],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut sql = format!(
        "WITH v ({EVENT_COLUMNS}) AS (VALUES {}), \
         ins AS (INSERT INTO inbox_events ({EVENT_COLUMNS}) SELECT * FROM v \
         ON CONFLICT (source, source_event_id) DO NOTHING RETURNING event_id)",
        typed_values(events.len(), &EVENT_TYPES, 1)
    );
    if !deliveries.is_empty() {
        sql.push_str(&format!(
            ", d AS (INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, \
             attempts, next_attempt_time, create_time) \
             SELECT x.event_id, x.subscriber, x.lane, x.order_time, x.coalescible, 'pending', 0, x.now, x.now \
             FROM (VALUES {}) AS x (event_id, subscriber, lane, order_time, coalescible, now) \
             JOIN ins ON ins.event_id = x.event_id ON CONFLICT (event_id, subscriber) DO NOTHING)",
            typed_values(
                deliveries.len(),
                &["text", "text", "text", "bigint", "bigint", "bigint"],
                events.len() * 15 + 1
            )
        ));
    }
    sql.push_str(" SELECT event_id FROM ins");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in events {
        q = bind_event(q, e);
    }
    for d in deliveries {
        q = q
            .bind(d.event_id.to_owned())
            .bind(d.subscriber)
            .bind(d.lane.clone())
            .bind(d.order_time)
            .bind(i64::from(d.coalescible))
            .bind(d.now);
    }
    q.fetch_all(db.pool()).await?.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// SQLite (`ponte dev`): the same in one transaction.
async fn commit_sqlite(
    db: &Database,
    events: &[&NewEvent],
    deliveries: &[NewDelivery<'_>],
) -> Result<HashSet<String>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO inbox_events ({EVENT_COLUMNS}) VALUES {} \
         ON CONFLICT (source, source_event_id) DO NOTHING RETURNING event_id",
        values(events.len(), 15)
    );
    let mut tx = db.pool().begin().await?;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in events {
        q = bind_event(q, e);
    }
    let inserted: HashSet<String> =
        q.fetch_all(&mut *tx).await?.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?;
    let kept: Vec<NewDelivery<'_>> = deliveries
        .iter()
        .filter(|d| inserted.contains(d.event_id))
        .map(|d| NewDelivery { lane: d.lane.clone(), ..*d })
        .collect();
    insert_deliveries(&mut tx, &kept).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// How long a request waits for its commit before answering 503 (Bling gives up at 5 s).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_number_every_parameter() {
        assert_eq!(values(2, 3), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(values_from(3, 2, 2), "($3,$4),($5,$6)");
        assert_eq!(clean("a\0b"), "ab");
    }
}
