//! Holding a suspended tenant's deliveries (its licence, "licença ativa", is off in auth-token).
//!
//! The gateway keeps storing the tenant's webhooks and answering 2xx; only delivery waits. A
//! delivery the dispatcher claims is checked against the tenant's licence first (cached for
//! [`LICENSE_RECHECK`](crate::lookups::LICENSE_RECHECK), the bound on how late a suspension takes effect): while it is inactive
//! the delivery is put in state `held` with the attempt it was claimed for given back, the
//! tenant is recorded in `inbox_holds`, and the tenant's other queued deliveries follow it. The
//! upkeep (once a second) reviews each held tenant: still inactive, deliveries queued since are
//! held too; active again (or the tenant gone), every held delivery is queued again, due now,
//! in its original `order_time`, and the dispatcher is woken, so a reactivation takes effect
//! within that time and a second.
//!
//! Why a state and a small table rather than a filter in the claim: a held delivery leaves the
//! partial indexes the claim walks (`state = 'pending'`), so a suspended tenant's backlog, however
//! large, costs the claim of everyone else's nothing; a per-claim join against the holds would
//! scan that backlog on every claim. A held delivery still blocks its lane (the lane index covers
//! `held`), so a newer event of the same entity cannot overtake it when the licence comes back.
//! Held deliveries are neither retried nor dead letters, and their events stay `pending`, which
//! retention never deletes.

use ponte_core::{TenantId, db::Database, time::now_millis};

use super::claim::Claimed;
use crate::{
    lookups::{License, Lookup, Lookups},
    wake::Wake,
};

/// The text a held delivery and its event show.
pub fn held_reason(reason: &str) -> String {
    if reason.is_empty() { "held: licence inactive".to_owned() } else { format!("held: licence inactive ({reason})") }
}

/// The reason to hold `c`, when its tenant's licence is inactive. An unknown tenant or an
/// unreachable auth-token does not hold anything: the delivery goes on as before.
pub async fn should_hold(lookups: &Lookups, c: &Claimed) -> Option<String> {
    let tenant = TenantId::parse(&c.event.tenant_id).ok()?;
    match lookups.license(&tenant).await {
        Lookup::Found(License::Inactive(reason)) => Some(held_reason(&reason)),
        _ => None,
    }
}

/// Puts `c` (claimed by `owner`) on hold with its tenant's other queued deliveries.
pub async fn hold(db: &Database, owner: &str, c: &Claimed, reason: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO inbox_holds (tenant_id, reason, since_time) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET reason = $2",
    )
    .bind(&c.event.tenant_id)
    .bind(reason)
    .bind(now_millis())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE inbox_deliveries SET state = 'held', attempts = attempts - 1, lease_owner = '', lease_until = 0, \
         detail = $1 WHERE event_id = $2 AND subscriber = $3 AND lease_owner = $4",
    )
    .bind(reason)
    .bind(&c.event.event_id)
    .bind(c.subscriber.name())
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    hold_queued(&mut tx, &c.event.tenant_id, reason).await?;
    tx.commit().await?;
    tracing::info!(tenant_id = %c.event.tenant_id, "licence inactive: the tenant's deliveries are held");
    Ok(())
}

/// The tenant's queued deliveries (its lanes start with `tenant|`) go on hold.
async fn hold_queued(conn: &mut sqlx::AnyConnection, tenant: &str, reason: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("UPDATE inbox_deliveries SET state = 'held', detail = $1 WHERE state = 'pending' AND lane LIKE $2")
        .bind(reason)
        .bind(lanes_of(tenant))
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// The `LIKE` pattern of a tenant's lanes (a tenant id has no `%` nor `_`).
fn lanes_of(tenant: &str) -> String {
    format!("{tenant}|%")
}

/// Reviews every held tenant (see the module documentation); true when deliveries were
/// released, and the dispatcher woken (here and, through `NOTIFY`, on the other replicas).
pub async fn review(db: &Database, lookups: &Lookups, wake: &Wake) -> Result<bool, sqlx::Error> {
    let held: Vec<String> = sqlx::query_scalar("SELECT tenant_id FROM inbox_holds ORDER BY tenant_id LIMIT 1000")
        .fetch_all(db.pool())
        .await?;
    let mut released = false;
    for tenant in held {
        let license = match TenantId::parse(&tenant) {
            Ok(t) => lookups.license(&t).await,
            Err(_) => Lookup::Missing(format!("'{tenant}' is not a tenant id")),
        };
        match license {
            Lookup::Found(License::Inactive(reason)) => {
                let mut conn = db.pool().acquire().await?;
                hold_queued(&mut conn, &tenant, &held_reason(&reason)).await?;
            }
            Lookup::Found(License::Active) | Lookup::Missing(_) => {
                let mut tx = db.pool().begin().await?;
                let n = release(&mut tx, &tenant).await?;
                wake.notify_on_commit(&mut tx, db).await?;
                tx.commit().await?;
                tracing::info!(tenant_id = %tenant, deliveries = n, "licence active: held deliveries released");
                released = true;
            }
            Lookup::Unavailable { .. } => {}
        }
    }
    if released {
        wake.wake_dispatcher();
    }
    Ok(released)
}

/// Queues every held delivery of `tenant` again, due now, and forgets the hold.
async fn release(conn: &mut sqlx::AnyConnection, tenant: &str) -> Result<u64, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE inbox_deliveries SET state = 'pending', next_attempt_time = $1, detail = '' \
         WHERE state = 'held' AND lane LIKE $2",
    )
    .bind(now_millis())
    .bind(lanes_of(tenant))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM inbox_holds WHERE tenant_id = $1").bind(tenant).execute(&mut *conn).await?;
    Ok(n)
}
