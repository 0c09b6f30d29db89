//! The dispatcher's upkeep between claims: deliveries whose replica stopped answering go back to
//! the queue, events stored without a tenant (or replayed) are routed, and the soonest retry
//! time says how long the dispatcher may sleep.

use ponte_core::{TenantId, db::Database, time::now_millis};

use crate::{
    inbox::{EventState, clean, deliveries_for, insert_deliveries, lane},
    lookups::Lookups,
    metrics,
    routing::{Verdict, classify},
    sources::SourceKind,
};

/// Deliveries whose replica stopped answering for them go back to the queue.
pub async fn release_expired(db: &Database) -> Result<(), sqlx::Error> {
    let now = now_millis();
    let released = sqlx::query(
        "UPDATE inbox_deliveries SET state = 'pending', lease_owner = '', lease_until = 0, next_attempt_time = $1, \
         last_error = 'the replica delivering it stopped before it finished' \
         WHERE state = 'in_flight' AND lease_until < $1",
    )
    .bind(now)
    .execute(db.pool())
    .await?
    .rows_affected();
    if released > 0 {
        tracing::warn!(released, "took over deliveries whose lease expired");
    }
    Ok(())
}

/// Deliveries `owner` still holds go back to the queue at once, due now (a replica stopping
/// hands back what it could not finish instead of leaving it for its leases to expire). The
/// other gateways are told through `NOTIFY`. How many were handed back.
pub async fn hand_back(db: &Database, owner: &str, wake: &crate::wake::Wake) -> Result<u64, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    let handed = sqlx::query(
        "UPDATE inbox_deliveries SET state = 'pending', lease_owner = '', lease_until = 0, next_attempt_time = $1, \
         last_error = 'handed back by a gateway that was stopping' WHERE state = 'in_flight' AND lease_owner = $2",
    )
    .bind(now_millis())
    .bind(owner)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if handed > 0 {
        wake.notify_on_commit(&mut conn, db).await?;
        tracing::info!(handed, "deliveries handed back for another replica");
    }
    Ok(handed)
}

/// An event waiting to be routed.
#[derive(sqlx::FromRow)]
struct Received {
    event_id: String,
    source: String,
    /// The tenant its URL named (path sources); empty otherwise.
    tenant_id: String,
    payload: Vec<u8>,
    receive_time: i64,
}

/// Routes events stored without a tenant (auth-token was unreachable) and replayed dead
/// letters: classifies them again from the stored payload. True when deliveries were created.
pub async fn route_received(db: &Database, lookups: &Lookups) -> Result<bool, sqlx::Error> {
    let rows: Vec<Received> = sqlx::query_as(
        "SELECT event_id, source, tenant_id, payload, receive_time FROM inbox_events \
         WHERE state = 'received' ORDER BY receive_time LIMIT 200",
    )
    .fetch_all(db.pool())
    .await?;
    let mut routed = false;
    for row in rows {
        let Some(kind) = SourceKind::from_name(&row.source) else { continue };
        let ev = kind.parse(&row.payload);
        let path_tenant = TenantId::parse(&row.tenant_id).ok();
        let verdict = classify(kind, &ev, path_tenant.as_ref(), lookups).await;
        if verdict == Verdict::Unresolved {
            continue; // auth-token still unreachable
        }
        let entity_key = clean(&ev.entity_key);
        let mut tx = db.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE inbox_events SET state = $1, tenant_id = $2, account = $3, event_type = $4, entity_key = $5, \
             lane = $6, dead_reason = $7, occurred_time = $8 WHERE event_id = $9 AND state = 'received'",
        )
        .bind(verdict.state().label())
        .bind(verdict.tenant().map_or_else(String::new, ToString::to_string))
        .bind(clean(&ev.account))
        .bind(clean(&ev.event_type))
        .bind(&entity_key)
        .bind(lane(verdict.tenant(), &entity_key))
        .bind(verdict.dead_reason())
        .bind(ev.occurred)
        .bind(&row.event_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        match (&verdict, updated) {
            (Verdict::Deliver { tenant, routes }, true) => {
                let order_time = ev.occurred.unwrap_or(row.receive_time);
                let deliveries: Vec<_> =
                    deliveries_for(&row.event_id, tenant, &entity_key, order_time, routes, now_millis()).collect();
                insert_deliveries(&mut tx, &deliveries).await?;
                routed = true;
            }
            (Verdict::Ignored { .. }, true) => metrics::ignored(kind.name()),
            (_, true) => {
                debug_assert_eq!(verdict.state(), EventState::Dead);
                metrics::dead(kind.name(), metrics::DeadReason::Unusable);
            }
            (_, false) => {}
        }
        tx.commit().await?;
    }
    Ok(routed)
}

/// The soonest retry time after now, if any.
pub async fn next_due(db: &Database) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(next_attempt_time) FROM inbox_deliveries WHERE state = 'pending' AND next_attempt_time > $1",
    )
    .bind(now_millis())
    .fetch_one(db.pool())
    .await
}
