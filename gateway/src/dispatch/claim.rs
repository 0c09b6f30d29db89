//! Claiming deliveries: each due delivery that heads its lane (the oldest outstanding one of its
//! tenant's entity for its service, with nothing of the lane in flight) is leased to this
//! replica. Where its route allows it, a run of queued updates behind it is collapsed into the
//! newest first. A held delivery (its tenant's licence is off, see `hold`) blocks its lane like
//! one in flight. On PostgreSQL the rows are locked with `FOR UPDATE SKIP LOCKED`, so replicas
//! claim side by side; on SQLite one claim runs at a time in the process.

use std::time::Duration;

use ponte_core::{
    db::{Backend, Database},
    time::{now_millis, to_timestamp},
};
use ponte_proto::v1::InboundEvent;
use sqlx::AnyConnection;
use tokio::sync::Mutex;

use ponte_core::sql::Statement;

use super::lane;
use crate::{
    inbox::settle_all,
    metrics::{self, DeliveryLabels},
    sources::SourceKind,
    subscribers::Subscriber,
};

/// A claimed delivery with what the service needs.
pub struct Claimed {
    pub subscriber: Subscriber,
    pub attempt: u32,
    pub event: InboundEvent,
    pub lane: String,
    pub traceparent: String,
    pub receive_time: i64,
    /// How many services the event goes to (its deliveries, fixed when it was routed).
    pub fanout: i64,
}

/// What a claim reads of the event (`e`) it delivers.
const CLAIMED_EVENT: &str = "e.tenant_id, e.source, e.source_event_id, e.event_type, e.entity_key, e.payload, \
     e.traceparent, e.occurred_time, e.receive_time, \
     (SELECT COUNT(*) FROM inbox_deliveries f WHERE f.event_id = e.event_id) AS fanout";

#[derive(sqlx::FromRow)]
struct EventColumns {
    tenant_id: String,
    source: String,
    source_event_id: String,
    event_type: String,
    entity_key: String,
    payload: Vec<u8>,
    traceparent: String,
    occurred_time: Option<i64>,
    receive_time: i64,
    fanout: i64,
}

/// A delivery that heads its lane.
#[derive(sqlx::FromRow)]
struct Head {
    event_id: String,
    subscriber: String,
    lane: String,
    coalescible: i64,
    /// 1 when another delivery of the lane is queued behind it.
    queued_behind: i64,
}

/// A claimed delivery's row with its event's.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    event_id: String,
    subscriber: String,
    lane: String,
    attempts: i64,
    #[sqlx(flatten)]
    event: EventColumns,
}

impl ClaimedRow {
    /// None when the subscriber is not one this build knows.
    fn into_claimed(self) -> Option<Claimed> {
        let subscriber = Subscriber::from_name(&self.subscriber)?;
        let attempt = u32::try_from(self.attempts).unwrap_or(u32::MAX);
        let e = self.event;
        Some(Claimed {
            subscriber,
            attempt,
            lane: self.lane,
            traceparent: e.traceparent,
            receive_time: e.receive_time,
            fanout: e.fanout,
            event: InboundEvent {
                event_id: self.event_id,
                tenant_id: e.tenant_id,
                source: SourceKind::from_name(&e.source).map_or(0, |k| k.provider() as i32),
                source_event_id: e.source_event_id,
                event_type: e.event_type,
                entity_key: e.entity_key,
                occurred_at: Some(to_timestamp(e.occurred_time.unwrap_or(e.receive_time))),
                received_at: Some(to_timestamp(e.receive_time)),
                payload: e.payload,
                attempt,
            },
        })
    }
}

/// The deliveries that are due and head their lanes, the oldest due first: `$1` is now (epoch
/// milliseconds), `$2` how many. On PostgreSQL the rows are locked `FOR UPDATE OF d SKIP LOCKED`.
///
/// The candidates are read in the order of the due index (`inbox_deliveries_due_order`, over
/// `(next_attempt_time, order_time, event_id)`), which is the claim's own order, so the scan
/// stops once `$2` heads are found: a claim reads a few blocks per delivery it claims, not the
/// whole queue (a backlog of 140,000 had each claim read 706,879 blocks in 0.6 s; now 1,475).
///
/// The lane check is a subquery kept out of the join (`OFFSET 0` on PostgreSQL), so that it runs once per
/// candidate as a look-up of the lane index by `(subscriber, lane)`. As an anti-join, the
/// planner chose by the table's statistics; on a large table those still say "no delivery is
/// pending" long after a burst arrived (autoanalyze waits for a share of the whole table to
/// change), and it then scanned the whole lane index for each candidate: a claim over 30,000
/// queued deliveries took 172 s instead of 0.1 s (docs/capacity.md, "A claim that does not
/// depend on the statistics"). For the same reason the look-up of what is queued behind a head
/// is written as [`lane::queued`] says.
pub fn heads_sql(backend: Backend) -> String {
    let (fence, lock) = match backend {
        Backend::Postgres => (" OFFSET 0", " FOR UPDATE OF d SKIP LOCKED"),
        Backend::Sqlite => ("", ""),
    };
    let queued = lane::queued("y.state");
    format!(
        "SELECT d.event_id, d.subscriber, d.lane, d.coalescible, CAST(CASE WHEN EXISTS ( \
           SELECT 1 FROM inbox_deliveries y WHERE y.subscriber = d.subscriber AND y.lane = d.lane \
           AND {queued} AND y.event_id <> d.event_id) THEN 1 ELSE 0 END AS BIGINT) AS queued_behind \
         FROM inbox_deliveries d \
         WHERE d.state = 'pending' AND d.next_attempt_time <= $1 AND NOT EXISTS ( \
           SELECT 1 FROM inbox_deliveries x WHERE x.subscriber = d.subscriber AND x.lane = d.lane \
           AND x.state IN ('pending', 'in_flight', 'held') AND (x.state <> 'pending' OR x.order_time < d.order_time \
           OR (x.order_time = d.order_time AND x.event_id < d.event_id)){fence}) \
         ORDER BY d.next_attempt_time, d.order_time, d.event_id LIMIT $2{lock}"
    )
}

/// One replica's claims.
pub struct Claims {
    db: Database,
    /// This replica's name on the leases it holds.
    owner: String,
    lease: Duration,
    /// SQLite: one claim at a time in this process (there is no row locking to share it).
    one_at_a_time: Mutex<()>,
}

impl Claims {
    pub fn new(db: Database, lease: Duration) -> Self {
        Self { db, owner: uuid::Uuid::new_v4().to_string(), lease, one_at_a_time: Mutex::new(()) }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Claims up to `limit` deliveries that are due and head their lanes.
    ///
    /// On PostgreSQL the heads that need no coalescing (the common case: nothing else queued in
    /// their lane) are claimed and read with their events in one statement; a transaction of a
    /// claim is then four round trips however many it claims.
    pub async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, sqlx::Error> {
        let backend = self.db.backend();
        let _one = match backend {
            Backend::Sqlite => Some(self.one_at_a_time.lock().await),
            Backend::Postgres => None,
        };
        let now = now_millis();
        let sql = heads_sql(backend);
        let mut tx = self.db.pool().begin().await?;
        let heads: Vec<Head> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit as i64).fetch_all(&mut *tx).await?;
        if heads.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let lease_until = now + self.lease.as_millis() as i64;
        let mut chosen = Vec::with_capacity(heads.len());
        let mut replaced = Vec::new();
        for head in heads {
            let mut event_id = head.event_id;
            if head.coalescible == 1
                && head.queued_behind == 1
                && let Some((newest, run)) = coalesce(&mut tx, &head.subscriber, &head.lane, &event_id).await?
            {
                if let Some(sub) = Subscriber::from_name(&head.subscriber) {
                    metrics::get()
                        .deliveries
                        .get_or_create(&DeliveryLabels { subscriber: sub.name(), outcome: "coalesced" })
                        .inc_by(run.len() as u64);
                }
                replaced.extend(run);
                event_id = newest;
            }
            chosen.push((event_id, head.subscriber, head.lane));
        }
        settle_all(&mut tx, backend, &mut replaced).await?;
        let rows = match backend {
            Backend::Postgres => self.lease_together(&mut tx, &chosen, lease_until).await?,
            Backend::Sqlite => self.lease_one_by_one(&mut tx, chosen, lease_until).await?,
        };
        tx.commit().await?;
        Ok(rows.into_iter().filter_map(ClaimedRow::into_claimed).collect())
    }

    /// PostgreSQL: leases every chosen delivery and reads its event in one statement.
    async fn lease_together(
        &self,
        conn: &mut AnyConnection,
        chosen: &[(String, String, String)],
        lease_until: i64,
    ) -> Result<Vec<ClaimedRow>, sqlx::Error> {
        let mut q = Statement::new("UPDATE inbox_deliveries d SET state = 'in_flight', lease_owner = ");
        q.bind(self.owner.clone()).push(", lease_until = ").bind(lease_until);
        q.push(
            ", attempts = d.attempts + 1 FROM inbox_events e \
             WHERE e.event_id = d.event_id AND (d.event_id, d.subscriber) IN (",
        );
        q.values(chosen, |row, (event_id, subscriber, _)| {
            row.bind(event_id.clone()).bind(subscriber.clone());
        });
        q.push(&format!(") RETURNING d.event_id, d.subscriber, d.lane, d.attempts, {CLAIMED_EVENT}"));
        q.query_as::<ClaimedRow>().fetch_all(&mut *conn).await
    }

    /// SQLite: leases the chosen deliveries one by one, then reads their events.
    async fn lease_one_by_one(
        &self,
        conn: &mut AnyConnection,
        chosen: Vec<(String, String, String)>,
        lease_until: i64,
    ) -> Result<Vec<ClaimedRow>, sqlx::Error> {
        let mut rows = Vec::with_capacity(chosen.len());
        for (event_id, subscriber, lane) in chosen {
            let attempts: i64 = sqlx::query_scalar(
                "UPDATE inbox_deliveries SET state = 'in_flight', lease_owner = $1, lease_until = $2, \
                 attempts = attempts + 1 WHERE event_id = $3 AND subscriber = $4 RETURNING attempts",
            )
            .bind(&self.owner)
            .bind(lease_until)
            .bind(&event_id)
            .bind(&subscriber)
            .fetch_one(&mut *conn)
            .await?;
            let event: EventColumns = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {CLAIMED_EVENT} FROM inbox_events e WHERE e.event_id = $1"
            )))
            .bind(&event_id)
            .fetch_one(&mut *conn)
            .await?;
            rows.push(ClaimedRow { event_id, subscriber, lane, attempts, event });
        }
        Ok(rows)
    }
}

/// Collapses a run of queued updates after `head` in its lane into the newest one. Returns the
/// delivery to make instead of `head` and the events replaced, when there is a run.
///
/// The run is marked replaced in one statement that finds it by the lane index (by the primary
/// key one by one, the planner took the due index for each and read the whole queue).
async fn coalesce(
    conn: &mut AnyConnection,
    subscriber: &str,
    lane: &str,
    head: &str,
) -> Result<Option<(String, Vec<String>)>, sqlx::Error> {
    let queued: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(lane::queue_sql()))
        .bind(subscriber)
        .bind(lane)
        .fetch_all(&mut *conn)
        .await?;
    let mut run = Vec::new();
    for (id, coalescible) in queued {
        if run.is_empty() && id != head {
            return Ok(None); // the lane changed under us; deliver the head as it is
        }
        if coalescible != 1 {
            break;
        }
        run.push(id);
    }
    let Some(newest) = run.pop() else { return Ok(None) };
    if run.is_empty() {
        return Ok(None);
    }
    let mut q = Statement::new("UPDATE inbox_deliveries SET state = 'coalesced', detail = ");
    q.bind(format!("replaced by the newer event {newest}"));
    q.push(", lease_owner = '', lease_until = 0 WHERE subscriber = ").bind(subscriber.to_owned());
    q.push(" AND lane = ").bind(lane.to_owned());
    q.push(&format!(" AND {} AND event_id IN (", lane::queued("state")));
    for (i, id) in run.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind(id.clone());
    }
    q.push(")");
    q.query().execute(&mut *conn).await?;
    Ok(Some((newest, run)))
}
