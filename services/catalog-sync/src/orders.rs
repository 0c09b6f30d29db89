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
    ConnectorError,
    bitrix24::{client::field_values, types::Envelope},
    bling::{Caller, resources::PedidoVenda},
};
use ponte_core::{TenantId, access::AccessToken, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::{DealStageMap, EntityKind, Provider};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::products::{Change, ProductSync, WriteError, bitrix_auth, same_fields, service_error};

/// Who created the deal, as Bitrix24's `ORIGINATOR_ID` says it.
pub const ORIGINATOR: &str = "bling";

/// The default pipeline's stage for a default situação of Bling's sales module.
pub fn stage_for(situacao_id: i64) -> Option<&'static str> {
    match situacao_id {
        6 => Some("NEW"),
        15 => Some("EXECUTING"),
        9 => Some("WON"),
        12 => Some("LOSE"),
        _ => None,
    }
}

/// The stage a deal at `situacao_id` moves to: the tenant's entry for the situação in `stages`,
/// else the default stage of a default situação ([`stage_for`]), else none (the deal keeps its
/// stage).
pub fn deal_stage(stages: &[DealStageMap], situacao_id: i64) -> Option<&str> {
    stages
        .iter()
        .find(|m| m.bling_situacao_id == situacao_id)
        .map(|m| m.stage_id.as_str())
        .or_else(|| stage_for(situacao_id))
}

/// The pipeline (`CATEGORY_ID`) a stage id belongs to when it is not the default one: `C3:WON`
/// → 3.
fn pipeline_of(stage: &str) -> Option<i64> {
    let (prefix, _) = stage.split_once(':')?;
    prefix.strip_prefix('C')?.parse().ok()
}

/// A product row as compared: Bitrix24 product id (0 for free text), unit price, quantity.
fn row_key(row: &Value) -> (String, String, String) {
    let text = |k: &str| field_values(row.get(k)).into_iter().next().unwrap_or_default();
    let number = |k: &str| text(k).parse::<Decimal>().map(|d| d.normalize().to_string()).unwrap_or_else(|_| text(k));
    (number("PRODUCT_ID"), number("PRICE"), number("QUANTITY"))
}

impl ProductSync {
    /// Syncs Bling order `order_id` of `tenant_id` into a Bitrix24 deal, its stage following
    /// the tenant's situação → stage map `stages` (`SyncSettings.deal_stages`), then the
    /// defaults.
    pub async fn order_to_bitrix24(
        &self,
        tenant_id: &TenantId,
        order_id: i64,
        stages: &[DealStageMap],
        priority: Priority,
    ) -> Result<Change, ServiceError> {
        let Some(token) = self.tokens.get_if_connected(tenant_id, Provider::Bitrix24).await? else {
            return Ok(Change::Skipped("Bitrix24 is not connected"));
        };
        let bling = self.tokens.get(tenant_id, Provider::Bling).await?;
        let caller = Caller { account: &bling.account, priority, token: bling.secret() };
        let order = match self.bling.pedido(caller, order_id).await {
            Ok(o) => o,
            Err(ConnectorError::NotFound { .. }) => return Ok(Change::Skipped("deleted in Bling")),
            Err(ConnectorError::InvalidToken { .. }) => {
                let renewed = self.tokens.refused(tenant_id, Provider::Bling, &bling).await?;
                let caller = Caller { account: &renewed.account, priority, token: renewed.secret() };
                self.bling.pedido(caller, order_id).await.map_err(service_error)?
            }
            Err(e) => return Err(service_error(e)),
        };
        let rows = self.deal_rows(tenant_id, &order).await?;
        let stage = deal_stage(stages, order.situacao.id);
        match self.write_deal(tenant_id, &token, &order, &rows, stage, priority).await {
            Err(WriteError::Portal(ConnectorError::InvalidToken { .. })) => {
                let renewed = self.tokens.refused(tenant_id, Provider::Bitrix24, &token).await?;
                Ok(self.write_deal(tenant_id, &renewed, &order, &rows, stage, priority).await?)
            }
            other => Ok(other?),
        }
    }

    /// The deal's product rows: each item at its net unit price, naming the linked Bitrix24
    /// product where there is one.
    async fn deal_rows(&self, tenant_id: &TenantId, order: &PedidoVenda) -> Result<Vec<Value>, ServiceError> {
        let mut rows = Vec::with_capacity(order.itens.len());
        for item in &order.itens {
            let linked = self.linked(tenant_id, &item.produto.id.to_string()).await?;
            let discount = item.desconto.unwrap_or_default();
            let price = (item.valor * (Decimal::ONE_HUNDRED - discount) / Decimal::ONE_HUNDRED).round_dp(2);
            let name = if item.descricao.is_empty() { item.codigo.clone() } else { item.descricao.clone() };
            rows.push(json!({
                "PRODUCT_ID": linked.and_then(|id| id.parse::<i64>().ok()).unwrap_or(0),
                "PRODUCT_NAME": name,
                "PRICE": price.to_string(),
                "QUANTITY": item.quantidade.normalize().to_string(),
            }));
        }
        Ok(rows)
    }

    async fn write_deal(
        &self,
        tenant_id: &TenantId,
        token: &AccessToken,
        order: &PedidoVenda,
        rows: &[Value],
        stage: Option<&str>,
        priority: Priority,
    ) -> Result<Change, WriteError> {
        let auth = bitrix_auth(token);
        let portal = token.account.as_str();
        let order_key = order.id.to_string();
        let linked =
            self.resolve_link(tenant_id, EntityKind::Order, Provider::Bling, &order_key, Provider::Bitrix24).await?;
        let existing = match &linked {
            Some(id) => Some(id.clone()),
            None => self.bitrix.find_deal_by_origin(&auth, portal, priority, ORIGINATOR, &order_key).await?,
        };
        let mut fields = Map::new();
        let numero = if order.numero > 0 { order.numero.to_string() } else { order_key.clone() };
        fields.insert("TITLE".into(), json!(format!("Pedido {numero} (Bling)")));
        fields.insert("ORIGINATOR_ID".into(), json!(ORIGINATOR));
        fields.insert("ORIGIN_ID".into(), json!(order_key));
        fields.insert("OPPORTUNITY".into(), json!(order.total.unwrap_or_default().to_string()));
        fields.insert("CURRENCY_ID".into(), json!("BRL"));

        let Some(id) = existing else {
            let stage = stage.unwrap_or("NEW");
            if let Some(pipeline) = pipeline_of(stage) {
                fields.insert("CATEGORY_ID".into(), json!(pipeline));
            }
            fields.insert("STAGE_ID".into(), json!(stage));
            let created: Envelope<Value> =
                self.bitrix.call(&auth, portal, priority, "crm.deal.add", &json!({"fields": fields})).await?;
            let id = ponte_connectors::bitrix24::types::as_string(&created.result).ok_or_else(|| {
                WriteError::Portal(ConnectorError::Protocol {
                    system: "Bitrix24",
                    message: "crm.deal.add returned no id".into(),
                })
            })?;
            self.link_entity(tenant_id, EntityKind::Order, &order_key, &id).await?;
            self.bitrix.set_deal_rows(&auth, portal, priority, &id, rows).await?;
            return Ok(Change::Created(id));
        };
        if linked.is_none() {
            self.link_entity(tenant_id, EntityKind::Order, &order_key, &id).await?;
        }
        if let Some(stage) = stage {
            fields.insert("STAGE_ID".into(), json!(stage));
        }
        let current: Envelope<Map<String, Value>> =
            self.bitrix.call(&auth, portal, priority, "crm.deal.get", &json!({"id": id})).await?;
        let current_rows: Envelope<Vec<Value>> =
            self.bitrix.call(&auth, portal, priority, "crm.deal.productrows.get", &json!({"id": id})).await?;
        let fields_same = same_fields(&fields, &current.result);
        let rows_same = current_rows.result.iter().map(row_key).eq(rows.iter().map(row_key));
        if fields_same && rows_same {
            return Ok(Change::Unchanged(id));
        }
        if !fields_same {
            self.bitrix
                .call::<Value>(&auth, portal, priority, "crm.deal.update", &json!({"id": id, "fields": fields}))
                .await?;
        }
        if !rows_same {
            self.bitrix.set_deal_rows(&auth, portal, priority, &id, rows).await?;
        }
        Ok(Change::Updated(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_compare_by_product_price_and_quantity_whatever_the_number_format() {
        let ours = json!({"PRODUCT_ID": 12, "PRODUCT_NAME": "Copo", "PRICE": "59.90", "QUANTITY": "2"});
        let theirs = json!({"ID": "7", "OWNER_ID": "3", "PRODUCT_ID": "12", "PRODUCT_NAME": "Copo", "PRICE": 59.9,
                            "QUANTITY": "2.00", "DISCOUNT_SUM": 0});
        assert_eq!(row_key(&ours), row_key(&theirs));
        let other = json!({"PRODUCT_ID": "12", "PRICE": "59.9", "QUANTITY": "3"});
        assert_ne!(row_key(&ours), row_key(&other));
    }

    #[test]
    fn only_the_default_situacoes_move_the_stage() {
        assert_eq!([6, 15, 9, 12].map(stage_for), [Some("NEW"), Some("EXECUTING"), Some("WON"), Some("LOSE")]);
        assert_eq!(stage_for(24), None, "a merchant's own situação leaves the stage alone");
    }

    #[test]
    fn the_tenant_map_comes_before_the_defaults() {
        let stages = [
            DealStageMap { bling_situacao_id: 24, stage_id: "PREPARATION".into() },
            DealStageMap { bling_situacao_id: 9, stage_id: "C3:WON".into() },
        ];
        assert_eq!(deal_stage(&stages, 24), Some("PREPARATION"), "a merchant's own situação, mapped");
        assert_eq!(deal_stage(&stages, 9), Some("C3:WON"), "the tenant's entry overrides the default");
        assert_eq!(deal_stage(&stages, 12), Some("LOSE"), "an unmapped default situação keeps its default");
        assert_eq!(deal_stage(&stages, 18), None, "unmapped and not default: the deal keeps its stage");
        assert_eq!(deal_stage(&[], 15), Some("EXECUTING"));
    }

    #[test]
    fn a_stage_of_another_pipeline_names_it() {
        assert_eq!(pipeline_of("C3:WON"), Some(3));
        assert_eq!(pipeline_of("C12:UC_A1B2"), Some(12));
        assert_eq!(pipeline_of("PREPARATION"), None);
        assert_eq!(pipeline_of("UC_X:Y"), None);
    }
}
