//! One Bling sales order into a Bitrix24 deal: re-read from Bling, found through the link
//! registry and then `ORIGINATOR_ID`/`ORIGIN_ID` (= "bling" and the order id) before anything
//! is created, its stage following the order's situação, its product rows naming the Bitrix24
//! products ponte linked (free-text rows for products never synced), and written only when the
//! deal or its rows differ.
//!
//! Stages ([`deal_stage`]): the tenant's own map first (`SyncSettings.deal_stages`, a Bitrix24
//! stage per Bling situação, e.g. a merchant's "Em separação" → `PREPARATION`, or Atendido →
//! `C3:WON` of another pipeline); else Bling's default situações of the sales module map to the
//! default pipeline — Em aberto → `NEW`, Em andamento → `EXECUTING`, Atendido → `WON`,
//! Cancelado → `LOSE`. A deal at any other situação (a merchant's own, unmapped) keeps the stage
//! it has (a new deal starts at `NEW`), so a stage a salesperson set in the CRM is not
//! overwritten by a situação ponte cannot place. A new deal whose stage belongs to another
//! pipeline (`C<n>:…`) is created in that pipeline (`CATEGORY_ID` n); an existing deal is only
//! given the stage.

use ponte_connectors::{
    CallError,
    bitrix24::{DealFields, DealRow, Portal, StageId, transformers::same_rows},
    bling::{resources::PedidoVenda, transformers::SituacaoVenda},
};
use std::time::Duration;

use ponte_core::{BlingId, TenantId, error::ServiceError, lock::acquire_within, ratelimit::Priority};
use ponte_proto::v1::{DealStageMap, Provider};
use rust_decimal::Decimal;

use crate::{change::Change, context::Context};

/// How long one delivery may hold an order's deal while writing it.
const DEAL_LEASE: Duration = Duration::from_secs(60);
/// How long a delivery waits for another that is writing the same order's deal.
const DEAL_WAIT: Duration = Duration::from_secs(10);

/// Who created the deal, as Bitrix24's `ORIGINATOR_ID` says it.
const ORIGINATOR: &str = "bling";

/// The stage a deal at `situacao_id` moves to: the tenant's entry for the situação in `stages`,
/// else the default stage of a default situação, else none (the deal keeps its stage).
pub(crate) fn deal_stage(stages: &[DealStageMap], situacao_id: i64) -> Option<StageId> {
    stages
        .iter()
        .find(|m| m.bling_situacao_id == situacao_id)
        .map(|m| StageId(m.stage_id.clone()))
        .or_else(|| SituacaoVenda::try_from(situacao_id).ok().map(StageId::from))
}

/// Syncs Bling order `order_id` of `tenant_id` into a Bitrix24 deal, its stage following the
/// tenant's situação → stage map `stages` (`SyncSettings.deal_stages`), then the defaults.
pub(crate) async fn sync(
    ctx: &Context,
    tenant_id: &TenantId,
    order_id: BlingId,
    stages: &[DealStageMap],
    priority: Priority,
) -> Result<Change, ServiceError> {
    if ctx.tokens.get_if_connected(tenant_id, Provider::Bitrix24).await?.is_none() {
        return Ok(Change::Skipped("Bitrix24 is not connected"));
    }
    let Some(order) = ctx.pedido(tenant_id, order_id, priority).await? else {
        return Ok(Change::Skipped("deleted in Bling"));
    };
    let rows = &deal_rows(ctx, tenant_id, &order).await?;
    let stage = &deal_stage(stages, order.situacao.id);
    let order = &order;
    // One writer per order: two deliveries of it running at once (a retry while the first
    // attempt is still at work, two replicas after a lease ran out) would each find no deal
    // and create one.
    let key = format!("bitrix24-deal:{tenant_id}:{order_id}");
    let lease = match acquire_within(&*ctx.locks, &key, DEAL_LEASE, DEAL_WAIT).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            return Err(ServiceError::unavailable(
                format!("another delivery of order {order_id} is writing its deal"),
                Some(Duration::from_secs(1)),
            ));
        }
        Err(e) => return Err(ServiceError::unavailable(e.to_string(), None)),
    };
    let written = ctx
        .tokens
        .with_token(tenant_id, Provider::Bitrix24, |token| async move {
            write_deal(ctx, tenant_id, &ctx.bitrix24.portal_for(&token, priority), order, rows, stage.as_ref()).await
        })
        .await;
    let _ = ctx.locks.release(lease).await;
    Ok(written?)
}

/// The deal's product rows: each item at its net unit price, naming the linked Bitrix24
/// product where there is one.
async fn deal_rows(ctx: &Context, tenant_id: &TenantId, order: &PedidoVenda) -> Result<Vec<DealRow>, ServiceError> {
    let mut rows = Vec::with_capacity(order.itens.len());
    for item in &order.itens {
        let linked = match BlingId::new(item.produto.id) {
            Some(id) => ctx.mapping.product_of(tenant_id, id).await?,
            None => None,
        };
        let discount = item.desconto.unwrap_or_default();
        let price = (item.valor * (Decimal::ONE_HUNDRED - discount) / Decimal::ONE_HUNDRED).round_dp(2);
        let name = if item.descricao.is_empty() { item.codigo.clone() } else { item.descricao.clone() };
        rows.push(DealRow { product_id: linked, product_name: name, price, quantity: item.quantidade.normalize() });
    }
    Ok(rows)
}

async fn write_deal(
    ctx: &Context,
    tenant_id: &TenantId,
    portal: &Portal,
    order: &PedidoVenda,
    rows: &[DealRow],
    stage: Option<&StageId>,
) -> Result<Change, CallError> {
    let linked = ctx.mapping.deal_of(tenant_id, order.id).await?;
    let existing = match linked {
        Some(id) => Some(id),
        None => portal.find_deal_by_origin(ORIGINATOR, &order.id.to_string()).await?,
    };
    let numero = if order.numero > 0 { order.numero.to_string() } else { order.id.to_string() };
    let mut fields = DealFields {
        title: Some(format!("Pedido {numero} (Bling)")),
        originator_id: Some(ORIGINATOR.into()),
        origin_id: Some(order.id.to_string()),
        opportunity: Some(order.total.unwrap_or_default()),
        currency_id: Some("BRL".into()),
        ..Default::default()
    };

    let Some(id) = existing else {
        let stage = stage.cloned().unwrap_or_else(|| StageId("NEW".into()));
        fields.category_id = stage.pipeline();
        fields.stage_id = Some(stage);
        let id = portal.add_deal(&fields).await?;
        ctx.mapping.link_deal(tenant_id, order.id, id).await?;
        portal.set_deal_rows(id, rows).await?;
        return Ok(Change::Created(id.to_string()));
    };
    if linked.is_none() {
        ctx.mapping.link_deal(tenant_id, order.id, id).await?;
    }
    fields.stage_id = stage.cloned();
    let fields_same = fields.held_by(&portal.deal(id).await?);
    let rows_same = same_rows(rows, &portal.deal_rows(id).await?);
    if fields_same && rows_same {
        return Ok(Change::Unchanged(id.to_string()));
    }
    if !fields_same {
        portal.update_deal(id, &fields).await?;
    }
    if !rows_same {
        portal.set_deal_rows(id, rows).await?;
    }
    Ok(Change::Updated(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_map_comes_before_the_defaults() {
        let stages = [
            DealStageMap { bling_situacao_id: 24, stage_id: "PREPARATION".into() },
            DealStageMap { bling_situacao_id: 9, stage_id: "C3:WON".into() },
        ];
        let stage = |stages: &[DealStageMap], id| deal_stage(stages, id).map(|s| s.0);
        assert_eq!(stage(&stages, 24).as_deref(), Some("PREPARATION"), "a merchant's own situação, mapped");
        assert_eq!(stage(&stages, 9).as_deref(), Some("C3:WON"), "the tenant's entry overrides the default");
        assert_eq!(stage(&stages, 12).as_deref(), Some("LOSE"), "an unmapped default situação keeps its default");
        assert_eq!(stage(&stages, 18), None, "unmapped and not default: the deal keeps its stage");
        assert_eq!(stage(&[], 15).as_deref(), Some("EXECUTING"));
    }
}
