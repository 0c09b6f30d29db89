//! The per-sale state machine, driven by whoever holds the sale's lease: received → order
//! created → stock written off (posted), and the reversals (cancelling, moving). Each step is
//! recorded before the next begins, so a crash or a timeout resumes at the step it stopped at:
//! an order POST is marked as attempted first, and a sale so marked is looked up by
//! `numeroLoja` before anything is created again; a write-off Bling already holds reads as done.
//! What cannot be posted yet parks with the reason in the merchant's words; what may pass with
//! time waits and is tried again. Every Bling call of a step runs for at most half the lease
//! ([`bounded`]): a call still hanging then is abandoned while the sale is still this worker's,
//! so no late write of it can land after another worker took the sale over (and cancelled it).

use ponte_connectors::{CallError, ConnectorError, bling::estoque::Lancamento};
use ponte_core::{BlingId, error::ServiceError, retry::RetryPolicy, time::now_millis};
use ponte_proto::v1::Provider;
use std::time::Duration;

use crate::{
    context::Context,
    settings::for_store,
    state::{Park, State},
    store::{self, Entry, Key, Row, Val},
    translate::{self, Resolved},
};

/// Why a sale stopped short of its next step.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A person must act: a mapping, a product, the connection, Bling's refusal.
    Park(Park, String),
    /// Retrying later may pass (a 429, a 5xx, a service down).
    Wait(ServiceError),
    /// Another worker took the sale over.
    Lost,
}

impl From<ServiceError> for Stop {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::FailedPrecondition(m) if m.starts_with("not connected") => {
                Stop::Park(Park::NotConnected, format!("o Bling não está conectado: conecte a conta Bling ({m})"))
            }
            ServiceError::FailedPrecondition(m) => {
                Stop::Park(Park::NotConnected, format!("a conexão com o Bling precisa ser refeita: {m}"))
            }
            other => Stop::Wait(other),
        }
    }
}

impl From<CallError> for Stop {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Outside(e @ ConnectorError::InvalidGrant { .. }) => Stop::Park(
                Park::NotConnected,
                format!("o Bling recusou a autorização da conta: conecte o Bling de novo ({})", e.message()),
            ),
            CallError::Outside(ConnectorError::Rejected { message, fields, .. }) => {
                let detail = if fields.is_empty() { message } else { format!("{message}: {}", fields.join("; ")) };
                Stop::Park(Park::RejectedByBling, format!("o Bling recusou: {detail}"))
            }
            CallError::Outside(ConnectorError::NotFound { message, .. }) => {
                Stop::Park(Park::RejectedByBling, format!("o Bling não encontrou: {message}"))
            }
            CallError::Outside(e) => Stop::Wait(e.into()),
            CallError::Service(e) => e.into(),
        }
    }
}

type Step = Result<Row, Stop>;

/// Drives the sale held with `token` as far as it goes now; the row as it stands after.
pub(crate) async fn drive(ctx: &Context, key: &Key, token: &str) -> Result<Option<Row>, ServiceError> {
    let mut row = store::require(&ctx.db, key).await?;
    for _ in 0..8 {
        if ctx.background.is_stopping() {
            // The process is stopping: the step in hand is recorded, the lease goes back now so
            // another replica goes on at once.
            break;
        }
        let cancel = row.cancel_requested == 1;
        let next = match row.state() {
            // A cancellation flagged while a step was on its way (the write-off may have landed
            // meanwhile: the sale is posted, and the reversal follows it).
            State::Received | State::OrderCreated | State::Moving | State::Posted if cancel => {
                cancel_step(ctx, &row, token).await
            }
            State::Received => post_order(ctx, &row, token).await,
            State::OrderCreated => write_off(ctx, &row, token).await,
            State::Cancelling => cancel_step(ctx, &row, token).await,
            State::Moving => move_step(ctx, &row, token).await,
            State::Posted | State::Parked | State::Failed | State::Cancelled => break,
        };
        row = match next {
            Ok(r) => r,
            Err(stop) => {
                stopped(ctx, &row, token, stop).await?;
                break;
            }
        };
    }
    store::release(&ctx.db, key, token).await?;
    store::get(&ctx.db, key).await
}

/// Writes `set` and `entry` if the lease is still ours.
async fn record(ctx: &Context, row: &Row, token: &str, set: Vec<(&'static str, Val)>, entry: Entry<'_>) -> Step {
    store::step(&ctx.db, &row.key(), token, set, entry).await?.ok_or(Stop::Lost)
}

/// Runs `call` (Bling calls of a step) for at most half the lease: one still hanging then is
/// abandoned, its connection closed, and the step waits to be tried again under the lease rules
/// (by this worker or, once the lease lapsed, by another).
async fn bounded<T, E>(ctx: &Context, call: impl Future<Output = Result<T, E>>) -> Result<Result<T, E>, Stop> {
    let limit = ctx.tuning.lease / 2;
    tokio::time::timeout(limit, call).await.map_err(|_| {
        Stop::Wait(ServiceError::unavailable(
            format!("Bling did not answer within {} ms: the call was abandoned and is tried again", limit.as_millis()),
            None,
        ))
    })
}

/// Extends the lease before a call whose effect must not be doubled; stops when it was lost.
async fn hold(ctx: &Context, row: &Row, token: &str) -> Result<(), Stop> {
    if store::renew(&ctx.db, &row.key(), token, ctx.tuning.lease_ms()).await? { Ok(()) } else { Err(Stop::Lost) }
}

async fn stopped(ctx: &Context, row: &Row, token: &str, stop: Stop) -> Result<(), ServiceError> {
    let attempts = row.attempts + 1;
    let (set, entry) = match stop {
        Stop::Lost => return Ok(()),
        // A reversal is not parked (the sale stays where it is): it waits for the cause to pass.
        Stop::Park(park, why) if matches!(row.state(), State::Cancelling | State::Moving) => {
            let wait = recheck_after(ctx, attempts);
            (
                vec![
                    ("attempts", attempts.into()),
                    ("next_attempt_time", (now_millis() + wait).into()),
                    ("last_error", why.clone().into()),
                ],
                Entry::new("retry", "retry", format!("{}: {why}", park.label())),
            )
        }
        Stop::Park(park, why) => (
            vec![
                ("state", State::Parked.label().into()),
                ("park_reason", park.label().into()),
                ("reason", why.clone().into()),
                ("attempts", attempts.into()),
                ("next_attempt_time", (now_millis() + recheck_after(ctx, attempts)).into()),
            ],
            Entry::new("parked", "parked", why),
        ),
        Stop::Wait(e) => {
            let wait = match &e {
                ServiceError::Unavailable { retry_after: Some(w), .. } => *w,
                // A sale is a customer's purchase: tried again within half a minute at most.
                _ => RetryPolicy {
                    max_attempts: u32::MAX,
                    base_delay: Duration::from_millis(500),
                    max_delay: Duration::from_secs(30),
                }
                .backoff(u32::try_from(attempts).unwrap_or(u32::MAX)),
            };
            let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX).max(100);
            let why = e.to_string();
            (
                vec![
                    ("attempts", attempts.into()),
                    ("next_attempt_time", (now_millis() + wait_ms).into()),
                    ("last_error", why.clone().into()),
                ],
                Entry::new("retry", "retry", why),
            )
        }
    };
    store::step(&ctx.db, &row.key(), token, set, entry).await?;
    Ok(())
}

/// The wait before a parked sale is tried again by itself: the recheck time, doubling, at most
/// six hours.
fn recheck_after(ctx: &Context, attempts: i64) -> i64 {
    let base = i64::try_from(ctx.tuning.recheck.as_millis()).unwrap_or(i64::MAX);
    let doubled = base.saturating_mul(1_i64 << attempts.clamp(1, 16).saturating_sub(1));
    doubled.min(6 * 3600 * 1000)
}

/// What posting needs, or why the sale parks.
async fn resolve(ctx: &Context, row: &Row, sale: &crate::sale::Sale) -> Result<Resolved, Stop> {
    let tenant = &row.key().tenant;
    let store = &row.store_id;
    let Some(place) = ctx.mapping.store(tenant, store).await? else {
        return Err(Stop::Park(
            Park::UnmappedStore,
            format!("a loja '{store}' não tem mapeamento no Bling (loja e depósito)"),
        ));
    };
    let mut formas = Vec::with_capacity(sale.payments.len());
    for p in &sale.payments {
        match ctx.mapping.forma(tenant, &p.method, store).await? {
            Some(f) => formas.push(f),
            None => {
                return Err(Stop::Park(
                    Park::UnmappedPaymentMethod,
                    format!("forma de pagamento '{}' da loja '{store}' não tem mapeamento no Bling", p.method),
                ));
            }
        }
    }
    if ctx.tokens.get_if_connected(tenant, Provider::Bling).await?.is_none() {
        return Err(Stop::Park(Park::NotConnected, "o Bling não está conectado: conecte a conta Bling da loja".into()));
    }
    let products = ctx.products(tenant, &sale.skus()).await?;
    let missing: Vec<String> = sale.skus().into_iter().filter(|s| !products.contains_key(s)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(5).map(|s| format!("'{s}'")).collect();
        let what = if missing.len() == 1 { "o SKU" } else { "os SKUs" };
        let verb = if missing.len() == 1 { "não existe" } else { "não existem" };
        return Err(Stop::Park(Park::UnknownSku, format!("{what} {} {verb} no Bling", shown.join(", "))));
    }
    let contato = ctx.contact(tenant, sale.customer.as_ref()).await?;
    let settings = ctx.settings.get(&ctx.db, tenant).await?;
    let s = for_store(&settings, store);
    Ok(Resolved {
        loja: place.loja,
        deposito: place.deposito,
        formas,
        products,
        contato,
        situacao: s.situacao,
        offset: s.offset,
    })
}

async fn post_order(ctx: &Context, row: &Row, token: &str) -> Step {
    let Some(sale) = row.sale()? else {
        return record(
            ctx,
            row,
            token,
            vec![("state", State::Cancelled.label().into())],
            Entry::new("cancelled", "ok", "no sale to post"),
        )
        .await;
    };
    let tenant = row.key().tenant;
    if row.order_attempted == 1 {
        // The last POST may have reached Bling without its answer reaching ponte.
        hold(ctx, row, token).await?;
        if let Some(id) = bounded(ctx, ctx.order_by_numero_loja(&tenant, &sale.sale_id)).await?? {
            return order_created(
                ctx,
                row,
                token,
                id,
                "found",
                format!("o pedido {id} já existia no Bling (numeroLoja {}): não foi criado de novo", sale.sale_id),
            )
            .await;
        }
    }
    let resolved = bounded(ctx, resolve(ctx, row, &sale)).await??;
    let order = translate::order(&sale, &resolved);
    let lease_until = now_millis() + ctx.tuning.lease_ms();
    let row = record(
        ctx,
        row,
        token,
        vec![("order_attempted", 1.into()), ("lease_until", lease_until.into())],
        Entry::new(
            "order post",
            "ok",
            format!("criando o pedido no Bling (loja {}, depósito {})", resolved.loja, resolved.deposito),
        ),
    )
    .await?;
    let id = bounded(ctx, ctx.create_order(&tenant, &order)).await??;
    order_created(ctx, &row, token, id, "created", format!("pedido {id} criado no Bling")).await
}

async fn order_created(ctx: &Context, row: &Row, token: &str, id: i64, how: &'static str, detail: String) -> Step {
    let action = if how == "found" { "order found" } else { "order created" };
    record(
        ctx,
        row,
        token,
        vec![
            ("state", State::OrderCreated.label().into()),
            ("bling_order_id", id.into()),
            ("park_reason", "".into()),
            ("reason", "".into()),
            ("attempts", 0.into()),
        ],
        Entry::new(action, "ok", detail),
    )
    .await
}

fn order_id(row: &Row) -> Result<BlingId, Stop> {
    BlingId::new(row.bling_order_id)
        .ok_or_else(|| Stop::Wait(ServiceError::Internal(anyhow::anyhow!("sale {} has no Bling order", row.sale_id))))
}

async fn write_off(ctx: &Context, row: &Row, token: &str) -> Step {
    let tenant = row.key().tenant;
    let order = order_id(row)?;
    let Some(place) = ctx.mapping.store(&tenant, &row.store_id).await? else {
        return Err(Stop::Park(
            Park::UnmappedStore,
            format!(
                "a loja '{}' não tem mapeamento no Bling: o pedido {order} existe, falta baixar o estoque",
                row.store_id
            ),
        ));
    };
    hold(ctx, row, token).await?;
    let detail = match bounded(ctx, ctx.write_off(&tenant, order, place.deposito)).await?? {
        Lancamento::Lancado => format!("estoque do pedido {order} baixado no depósito {}", place.deposito),
        Lancamento::JaLancado => {
            format!("o estoque do pedido {order} já estava baixado no Bling: não foi baixado de novo")
        }
    };
    let posted = record(
        ctx,
        row,
        token,
        vec![
            ("state", State::Posted.label().into()),
            ("stock_deposito_id", place.deposito.get().into()),
            ("posted_time", now_millis().into()),
            ("park_reason", "".into()),
            ("reason", "".into()),
            ("attempts", 0.into()),
            ("last_error", "".into()),
        ],
        Entry::new("stock written off", "ok", detail),
    )
    .await?;
    // The sale is in Bling: the flow's latency runs from its receipt (at the gateway, for a
    // webhook) to this write.
    ponte_core::metrics::record_sync(ponte_proto::v1::Flow::CplugSalesToBling, row.receive_time);
    Ok(posted)
}

async fn cancel_step(ctx: &Context, row: &Row, token: &str) -> Step {
    let tenant = row.key().tenant;
    if row.bling_order_id == 0 {
        if row.order_attempted == 1 {
            hold(ctx, row, token).await?;
            if let Some(id) = bounded(ctx, ctx.order_by_numero_loja(&tenant, &row.sale_id)).await?? {
                let set = vec![("bling_order_id", id.into()), ("state", State::Cancelling.label().into())];
                return record(
                    ctx,
                    row,
                    token,
                    set,
                    Entry::new("order found", "ok", format!("o pedido {id} existe no Bling: será cancelado")),
                )
                .await;
            }
        }
        let set = vec![
            ("state", State::Cancelled.label().into()),
            ("cancel_requested", 0.into()),
            ("park_reason", "".into()),
        ];
        return record(
            ctx,
            row,
            token,
            set,
            Entry::new("cancelled", "ok", "venda cancelada sem tocar no Bling: não havia pedido"),
        )
        .await;
    }
    let order = order_id(row)?;
    // A write-off whose answer never came (the process died, the call timed out) may be in
    // Bling all the same: returning what was not written off is a no-op there.
    let may_be_written_off = matches!(row.state(), State::OrderCreated | State::Moving);
    if row.stock_deposito_id != 0 || may_be_written_off {
        hold(ctx, row, token).await?;
        bounded(ctx, ctx.return_stock(&tenant, order)).await??;
        let set = vec![("stock_deposito_id", 0.into()), ("state", State::Cancelling.label().into())];
        let detail = if row.stock_deposito_id != 0 {
            format!("estoque do pedido {order} estornado ao depósito {}", row.stock_deposito_id)
        } else {
            format!("estoque do pedido {order} estornado (a baixa pode ter chegado ao Bling sem resposta)")
        };
        return record(ctx, row, token, set, Entry::new("stock returned", "ok", detail)).await;
    }
    let settings = ctx.settings.get(&ctx.db, &tenant).await?;
    let situacao = for_store(&settings, &row.store_id).cancel_situacao;
    hold(ctx, row, token).await?;
    let detail = match bounded(ctx, ctx.set_situacao(&tenant, order, situacao)).await? {
        Ok(()) => format!("pedido {order} passado para a situação {situacao} (cancelado)"),
        Err(CallError::Outside(e)) if e.is_not_found() => format!("o pedido {order} não existe mais no Bling"),
        Err(e) => return Err(e.into()),
    };
    let set =
        vec![("state", State::Cancelled.label().into()), ("cancel_requested", 0.into()), ("last_error", "".into())];
    record(ctx, row, token, set, Entry::new("order cancelled", "ok", detail)).await
}

async fn move_step(ctx: &Context, row: &Row, token: &str) -> Step {
    let tenant = row.key().tenant;
    let order = order_id(row)?;
    let to = row.move_to_store.clone();
    let Some(place) = ctx.mapping.store(&tenant, &to).await? else {
        let set = vec![("state", State::Posted.label().into()), ("move_to_store", "".into())];
        let detail = format!("mudança abandonada: a loja '{to}' não tem mapeamento no Bling");
        return record(ctx, row, token, set, Entry::new("move", "failed", detail)).await;
    };
    if row.stock_deposito_id != 0 && row.stock_deposito_id != place.deposito.get() {
        hold(ctx, row, token).await?;
        bounded(ctx, ctx.return_stock(&tenant, order)).await??;
        let detail = format!(
            "estoque do pedido {order} estornado ao depósito {} (loja '{}')",
            row.stock_deposito_id, row.store_id
        );
        return record(
            ctx,
            row,
            token,
            vec![("stock_deposito_id", 0.into())],
            Entry::new("stock returned", "ok", detail),
        )
        .await;
    }
    if row.stock_deposito_id == 0 {
        hold(ctx, row, token).await?;
        bounded(ctx, ctx.write_off(&tenant, order, place.deposito)).await??;
    }
    let set = vec![
        ("state", State::Posted.label().into()),
        ("store_id", to.clone().into()),
        ("move_to_store", "".into()),
        ("stock_deposito_id", place.deposito.get().into()),
        ("last_error", "".into()),
    ];
    let detail =
        format!("venda movida da loja '{}' para '{to}': estoque baixado no depósito {}", row.store_id, place.deposito);
    record(ctx, row, token, set, Entry::new("moved", "ok", detail)).await
}
