//! The inbox's SQL: a batch of new events committed with their deliveries (one statement on
//! PostgreSQL, one transaction on SQLite), deliveries added to an event routed later, and an
//! event's state settled from its deliveries'.

use std::collections::{HashMap, HashSet};

use ponte_core::db::{Backend, Database};
use sqlx::AnyConnection;

use super::{
    rows::{NewDelivery, NewEvent},
    state::{DeliveryState, EventState},
};
use ponte_core::sql::{Statement, Tuple};

/// What storing an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// This request's row is committed.
    Inserted,
    /// A row with the same (source, event id) was already committed.
    Duplicate,
}

const EVENT_COLUMNS: &str = "event_id, source, source_event_id, tenant_id, account, event_type, entity_key, lane, \
                             state, dead_reason, payload, headers_json, traceparent, occurred_time, receive_time";

/// Stores a batch; an event whose (source, event id) is already stored is skipped, and the
/// deliveries of those inserted are created with them, atomically. Returns each event's result.
pub async fn commit(db: &Database, events: &[&NewEvent]) -> Result<Vec<Stored>, sqlx::Error> {
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
    let deliveries: Vec<NewDelivery<'_>> = unique.iter().flat_map(|e| e.deliveries()).collect();
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

/// Binds an event's columns in [`EVENT_COLUMNS`] order, each cast to its type when `typed`
/// (PostgreSQL needs the types of a `VALUES` list that does not go straight into a table).
fn bind_event(row: &mut Tuple<'_>, e: &NewEvent, typed: bool) {
    let (text, bytea, bigint) = if typed { ("::text", "::bytea", "::bigint") } else { ("", "", "") };
    row.bind(e.event_id.clone()).cast(text);
    row.bind(e.source).cast(text);
    row.bind(e.source_event_id.clone()).cast(text);
    row.bind(e.tenant.as_ref().map_or_else(String::new, ToString::to_string)).cast(text);
    row.bind(e.account.clone()).cast(text);
    row.bind(e.event_type.clone()).cast(text);
    row.bind(e.entity_key.clone()).cast(text);
    row.bind(e.lane()).cast(text);
    row.bind(e.state.label()).cast(text);
    row.bind(e.dead_reason.clone()).cast(text);
    row.bind(e.payload.clone()).cast(bytea);
    row.bind(e.headers_json.clone()).cast(text);
    row.bind(e.traceparent.clone()).cast(text);
    row.bind(e.occurred_time).cast(bigint);
    row.bind(e.receive_time).cast(bigint);
}

/// PostgreSQL: one statement, committed on its own (one round trip, one WAL flush shared by
/// the whole batch): the events, then the deliveries of the events actually inserted.
async fn commit_postgres(
    db: &Database,
    events: &[&NewEvent],
    deliveries: &[NewDelivery<'_>],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut q = Statement::new(format!("WITH v ({EVENT_COLUMNS}) AS ("));
    q.values(events, |row, e| bind_event(row, e, true));
    q.push(&format!(
        "), ins AS (INSERT INTO inbox_events ({EVENT_COLUMNS}) SELECT * FROM v \
         ON CONFLICT (source, source_event_id) DO NOTHING RETURNING event_id)"
    ));
    if !deliveries.is_empty() {
        q.push(
            ", d AS (INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, \
             attempts, next_attempt_time, create_time) \
             SELECT x.event_id, x.subscriber, x.lane, x.order_time, x.coalescible, 'pending', 0, x.now, x.now \
             FROM (",
        );
        q.values(deliveries, |row, d| {
            row.bind(d.event_id.to_owned()).cast("::text");
            row.bind(d.subscriber.name()).cast("::text");
            row.bind(d.lane.clone()).cast("::text");
            row.bind(d.order_time).cast("::bigint");
            row.bind(i64::from(d.coalescible)).cast("::bigint");
            row.bind(d.now).cast("::bigint");
        });
        q.push(
            ") AS x (event_id, subscriber, lane, order_time, coalescible, now) \
             JOIN ins ON ins.event_id = x.event_id ON CONFLICT (event_id, subscriber) DO NOTHING)",
        );
    }
    q.push(" SELECT event_id FROM ins");
    Ok(q.query_scalar::<String>().fetch_all(db.pool()).await?.into_iter().collect())
}

/// SQLite (`ponte dev`): the same in one transaction.
async fn commit_sqlite(
    db: &Database,
    events: &[&NewEvent],
    deliveries: &[NewDelivery<'_>],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut q = Statement::new(format!("INSERT INTO inbox_events ({EVENT_COLUMNS}) "));
    q.values(events, |row, e| bind_event(row, e, false));
    q.push(" ON CONFLICT (source, source_event_id) DO NOTHING RETURNING event_id");
    let mut tx = db.pool().begin().await?;
    let inserted: HashSet<String> = q.query_scalar::<String>().fetch_all(&mut *tx).await?.into_iter().collect();
    let kept: Vec<NewDelivery<'_>> = deliveries.iter().filter(|d| inserted.contains(d.event_id)).cloned().collect();
    insert_deliveries(&mut tx, &kept).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// Inserts delivery rows (an event delivered twice to one service is refused by the key).
pub async fn insert_deliveries(conn: &mut AnyConnection, rows: &[NewDelivery<'_>]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(200) {
        let mut q = Statement::new(
            "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, attempts, \
             next_attempt_time, create_time) ",
        );
        q.values(chunk, |row, d| {
            row.bind(d.event_id.to_owned())
                .bind(d.subscriber.name())
                .bind(d.lane.clone())
                .bind(d.order_time)
                .bind(i64::from(d.coalescible))
                .bind(DeliveryState::Pending.label())
                .bind(0_i64)
                .bind(d.now)
                .bind(d.now);
        });
        q.push(" ON CONFLICT (event_id, subscriber) DO NOTHING");
        q.query().execute(&mut *conn).await?;
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
pub async fn settle(conn: &mut AnyConnection, backend: Backend, event_id: &str) -> Result<EventState, sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT event_id FROM inbox_events WHERE event_id = $1 FOR UPDATE")
            .bind(event_id)
            .fetch_optional(&mut *conn)
            .await?;
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT state, last_error FROM inbox_deliveries WHERE event_id = $1 ORDER BY subscriber")
            .bind(event_id)
            .fetch_all(&mut *conn)
            .await?;
    let states: Vec<Option<DeliveryState>> = rows.iter().map(|(s, _)| DeliveryState::from_label(s)).collect();
    let reasons: Vec<&str> = rows
        .iter()
        .zip(&states)
        .filter(|(_, s)| **s == Some(DeliveryState::Dead))
        .map(|((_, error), _)| error.as_str())
        .collect();
    let new_state = if states.iter().flatten().any(|s| s.outstanding()) {
        EventState::Pending
    } else if !reasons.is_empty() {
        EventState::Dead
    } else if !states.is_empty() && states.iter().all(|s| *s == Some(DeliveryState::Coalesced)) {
        EventState::Coalesced
    } else {
        EventState::Delivered
    };
    sqlx::query("UPDATE inbox_events SET state = $1, dead_reason = $2 WHERE event_id = $3")
        .bind(new_state.label())
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
