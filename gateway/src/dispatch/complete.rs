//! Recording an attempt's result, if this replica still holds the delivery: the delivery row,
//! and the event's state once every delivery of it has finished.

use ponte_core::{
    db::{Backend, Database},
    time::now_millis,
};
use sqlx::{Any, Row, any::AnyArguments, query::Query};

use super::{claim::Claimed, lane, plan::Completion};
use crate::inbox::{DeliveryState, settle};

/// What recording an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// Another replica took the delivery over (its lease expired): this result was dropped.
    LeaseLost,
    /// Recorded, with what was learnt on the way about the delivery's lane.
    Recorded(Successor),
}

/// Whether a delivery to the same service waits behind a finished one in its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successor {
    Waiting,
    Nothing,
    /// Not looked at.
    Unknown,
}

/// Records an attempt's result: `$1` the new state, `$2` the next attempt's time, `$3` the
/// error (kept when empty), `$4` the outcome, `$5` its detail, `$6` when delivered, `$7` the
/// event, `$8` the service, `$9` the lease owner.
///
/// The delivery is found by its primary key and held by its lease owner, which only a delivery
/// in flight has (a claim sets it with `in_flight`; every way out of `in_flight` clears it). The
/// condition does not also say `state = 'in_flight'`: the planner would then take the partial
/// index of leases (believed empty while its statistics are stale) and read every lease it ever
/// held until vacuum removes them, 884 blocks after 40,000 deliveries instead of 7.
const UPDATE: &str = "UPDATE inbox_deliveries SET state = $1, next_attempt_time = $2, lease_owner = '', \
     lease_until = 0, last_error = CASE WHEN $3 = '' THEN last_error ELSE $3 END, outcome = $4, detail = $5, \
     delivered_time = $6 WHERE event_id = $7 AND subscriber = $8 AND lease_owner = $9";

/// PostgreSQL, an event that goes to one service only: records the delivery's result
/// (the parameters of `UPDATE` above), settles its event, and says whether another delivery waits in
/// the lane (1 or 0; no row when the lease was lost). The lane look-up is written as
/// [`lane::queued`] says, so that it reads the lane, not the whole queue.
pub fn complete_alone_sql() -> String {
    format!(
        "WITH done AS ({UPDATE} RETURNING event_id, lane, state, last_error), \
         settled AS (UPDATE inbox_events e SET \
           state = CASE WHEN done.state = 'dead' THEN 'dead' ELSE 'delivered' END, \
           dead_reason = CASE WHEN done.state = 'dead' THEN done.last_error ELSE '' END \
           FROM done WHERE e.event_id = done.event_id AND done.state <> 'pending') \
         SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM inbox_deliveries x WHERE x.subscriber = $8 \
           AND x.lane = done.lane AND {}) THEN 1 ELSE 0 END AS BIGINT) FROM done",
        lane::queued("x.state")
    )
}

/// Records `completion` of `c`, claimed by `owner`.
///
/// On PostgreSQL an event that goes to one service only is settled in the same statement (no
/// other delivery can finish beside it), which also says whether the lane has a successor;
/// otherwise a transaction settles the event.
pub async fn complete(
    db: &Database,
    owner: &str,
    c: &Claimed,
    completion: &Completion,
) -> Result<Completed, sqlx::Error> {
    let now = now_millis();
    let (new_state, next, error, outcome, detail, delivered) = match completion {
        Completion::Delivered { outcome, detail } => {
            (DeliveryState::Delivered, now, "", outcome.label(), detail.as_str(), Some(now))
        }
        Completion::Retry { at, error } => (DeliveryState::Pending, *at, error.as_str(), "", "", None),
        Completion::Dead { error, .. } => (DeliveryState::Dead, now, error.as_str(), "", "", None),
    };
    let bind = |q: Query<'static, Any, AnyArguments>| {
        q.bind(new_state.label())
            .bind(next)
            .bind(error.to_owned())
            .bind(outcome)
            .bind(detail.to_owned())
            .bind(delivered)
            .bind(c.event.event_id.clone())
            .bind(c.subscriber.name())
            .bind(owner.to_owned())
    };
    if db.backend() == Backend::Postgres && c.fanout == 1 {
        let waiting: Option<i64> = bind(sqlx::query(sqlx::AssertSqlSafe(complete_alone_sql())))
            .fetch_optional(db.pool())
            .await?
            .map(|r| r.get(0));
        return Ok(match waiting {
            None => Completed::LeaseLost,
            Some(1) => Completed::Recorded(Successor::Waiting),
            Some(_) => Completed::Recorded(Successor::Nothing),
        });
    }
    let mut tx = db.pool().begin().await?;
    let done = bind(sqlx::query(UPDATE)).execute(&mut *tx).await?.rows_affected() == 1;
    if done && new_state != DeliveryState::Pending {
        settle(&mut tx, db.backend(), &c.event.event_id).await?;
    }
    tx.commit().await?;
    Ok(if done { Completed::Recorded(Successor::Unknown) } else { Completed::LeaseLost })
}

/// Whether a delivery to the same service waits in `c`'s lane.
pub async fn successor_waiting(db: &Database, c: &Claimed) -> Result<bool, sqlx::Error> {
    let next: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(lane::waiting_sql()))
        .bind(c.subscriber.name())
        .bind(&c.lane)
        .fetch_optional(db.pool())
        .await?;
    Ok(next.is_some())
}
