//! What a person or the point of sale asks of a stored sale besides posting it: a cancellation
//! (local when Bling never saw the sale, a reversal when it did, remembered when it comes before
//! the sale), a move to another store, and a replay of parked sales. Each is recorded in the
//! sale's history and handed to the worker.

use ponte_core::{TenantId, error::ServiceError, time::now_millis};

use crate::{
    context::Context,
    state::State,
    store::{self, Entry, Key, Row},
    worker::Worker,
};

fn states(list: &[State]) -> String {
    let labels: Vec<String> = list.iter().map(|s| format!("'{}'", s.label())).collect();
    format!("state IN ({})", labels.join(", "))
}

/// Cancels sale `key`; the sale as it stands after.
pub(crate) async fn cancel(ctx: &Context, worker: &Worker, key: &Key, why: &str) -> Result<Row, ServiceError> {
    if let Some(row) = store::cancel_unknown(&ctx.db, key, why).await? {
        return Ok(row);
    }
    // Each attempt is a conditional write per state the sale may be in; a worker may move the
    // sale between two of them (its write-off landing: order created → posted), so a sale that
    // none of them matched and that is not cancelled is looked at again.
    for _ in 0..5 {
        if let Some(done) = cancel_once(ctx, key, why).await? {
            return match done {
                Cancel::Done(row) => Ok(*row),
                Cancel::Drive => worker.run_now(key).await,
            };
        }
        let row = store::require(&ctx.db, key).await?;
        if matches!(row.state(), State::Cancelled | State::Cancelling) || row.cancel_requested == 1 {
            let detail = if row.state() == State::Cancelled {
                "a venda já está cancelada"
            } else {
                "o cancelamento já foi pedido"
            };
            store::note(&ctx.db, key, Entry::new("cancel requested", "skipped", detail)).await?;
            return store::require(&ctx.db, key).await;
        }
    }
    Err(ServiceError::unavailable(
        format!("sale '{}' kept changing while being cancelled; try again", key.sale_id),
        Some(std::time::Duration::from_secs(1)),
    ))
}

enum Cancel {
    /// Cancelled here, without Bling.
    Done(Box<Row>),
    /// Flagged: the worker reverses it.
    Drive,
}

/// One pass over the states a cancellation acts on; `None` when the sale was in none of them.
async fn cancel_once(ctx: &Context, key: &Key, why: &str) -> Result<Option<Cancel>, ServiceError> {
    let now = now_millis();
    let never_in_bling =
        format!("{} AND bling_order_id = 0 AND order_attempted = 0", states(&[State::Parked, State::Failed]));
    let local = vec![("state", State::Cancelled.label().into()), ("reason", why.into())];
    let detail = format!("venda cancelada sem tocar no Bling: não havia pedido ({why})");
    if let Some(row) =
        store::update_if(&ctx.db, key, &never_in_bling, local, Entry::new("cancelled", "ok", detail)).await?
    {
        return Ok(Some(Cancel::Done(Box::new(row))));
    }
    // Parked (or failed) after its order was made, before its write-off was confirmed: the
    // write-off may be in Bling all the same (its answer lost before the sale parked). The sale
    // goes back to where it stopped, order created, with the cancellation flagged, so the
    // reversal returns whatever stock Bling took (a no-op when it took none) and then cancels
    // the order.
    let unconfirmed =
        format!("{} AND bling_order_id <> 0 AND stock_deposito_id = 0", states(&[State::Parked, State::Failed]));
    let back = vec![
        ("state", State::OrderCreated.label().into()),
        ("cancel_requested", 1.into()),
        ("next_attempt_time", now.into()),
        ("park_reason", "".into()),
        ("reason", why.into()),
    ];
    let detail = format!("cancelamento pedido ({why}): estorno do estoque, se houver, e pedido cancelado no Bling");
    if store::update_if(&ctx.db, key, &unconfirmed, back, Entry::new("cancel requested", "ok", detail)).await?.is_some()
    {
        return Ok(Some(Cancel::Drive));
    }
    let reverse = vec![
        ("state", State::Cancelling.label().into()),
        ("cancel_requested", 1.into()),
        ("next_attempt_time", now.into()),
        ("reason", why.into()),
    ];
    let detail = format!("cancelamento pedido ({why}): estorno do estoque e pedido cancelado no Bling");
    let posted = states(&[State::Posted, State::Parked, State::Failed]);
    if store::update_if(&ctx.db, key, &posted, reverse, Entry::new("cancel requested", "ok", detail)).await?.is_some() {
        return Ok(Some(Cancel::Drive));
    }
    let flag = vec![("cancel_requested", 1.into()), ("next_attempt_time", now.into()), ("reason", why.into())];
    let detail = format!("cancelamento pedido ({why}) enquanto a venda era lançada");
    let active = states(&[State::Received, State::OrderCreated, State::Moving]);
    if store::update_if(&ctx.db, key, &active, flag, Entry::new("cancel requested", "ok", detail)).await?.is_some() {
        return Ok(Some(Cancel::Drive));
    }
    Ok(None)
}

/// Moves posted sale `key` to store `to`, whose mapping must exist.
pub(crate) async fn move_sale(ctx: &Context, worker: &Worker, key: &Key, to: &str) -> Result<Row, ServiceError> {
    let row = store::require(&ctx.db, key).await?;
    if row.state() != State::Posted || row.cancel_requested == 1 {
        return Err(ServiceError::FailedPrecondition(format!(
            "sale '{}' is {}: only a posted sale can be moved",
            key.sale_id,
            row.state().label()
        )));
    }
    if row.store_id == to {
        return Err(ServiceError::FailedPrecondition(format!(
            "sale '{}' is already posted for store '{to}'",
            key.sale_id
        )));
    }
    if ctx.mapping.store(&key.tenant, to).await?.is_none() {
        return Err(ServiceError::FailedPrecondition(format!("store '{to}' has no Bling mapping (loja and depósito)")));
    }
    let set = vec![
        ("state", State::Moving.label().into()),
        ("move_to_store", to.into()),
        ("next_attempt_time", now_millis().into()),
    ];
    let detail = format!("mudança pedida da loja '{}' para '{to}'", row.store_id);
    let cond = format!("{} AND cancel_requested = 0", states(&[State::Posted]));
    if store::update_if(&ctx.db, key, &cond, set, Entry::new("move requested", "ok", detail)).await?.is_none() {
        return Err(ServiceError::FailedPrecondition(format!("sale '{}' changed meanwhile; try again", key.sale_id)));
    }
    worker.run_now(key).await
}

/// Tries the tenant's parked sales again (`ids`, or all of them); the sales as they stand after.
pub(crate) async fn replay(
    ctx: &Context,
    worker: &Worker,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<Row>, ServiceError> {
    let keys: Vec<Key> = if ids.is_empty() {
        store::list(&ctx.db, tenant, &[State::Parked], None, "", 1000, true).await?.iter().map(Row::key).collect()
    } else {
        ids.iter().map(|id| Key { tenant: tenant.clone(), sale_id: id.clone() }).collect()
    };
    for key in &keys {
        store::note(&ctx.db, key, Entry::new("replay", "ok", "tentar de novo (pedido por uma pessoa)")).await?;
    }
    let ids: Vec<String> = keys.iter().map(|k| k.sale_id.clone()).collect();
    store::wake_parked(&ctx.db, tenant, &ids).await?;
    store::requeue_due_parked(&ctx.db).await?;
    let runs = keys.iter().map(|k| worker.run_now(k));
    let mut out = Vec::with_capacity(keys.len());
    for r in futures::future::join_all(runs).await {
        match r {
            Ok(row) => out.push(row),
            Err(ServiceError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
