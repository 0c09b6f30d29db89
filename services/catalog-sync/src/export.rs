//! One Bitrix24 product into Bling ("exportação", when the tenant turns it on): read from the
//! portal, translated through the inverse of the tenant's two-way mappings, matched to its Bling
//! product through the link registry or the "Bling ID" property, and written to Bling only when
//! Bling holds something else.
//!
//! No loops: every write ponte makes comes back as an event from the system it wrote (Bling's
//! `product.updated` after an export, Bitrix24's `ONCRMPRODUCTUPDATE` after a sync). Both
//! directions re-read the source and compare it with the target before writing, so the echo of
//! ponte's own write finds the two systems equal and stops there.

use ponte_connectors::{
    ConnectorError,
    bitrix24::{client::field_values, types::Envelope},
    bling::{Caller, resources::produto_numbers},
};
use ponte_core::{TenantId, access::AccessToken, error::ServiceError, ratelimit::Priority};
use ponte_proto::v1::{EntityKind, Provider, TranslateDirection};
use serde_json::{Map, Value, json};

use crate::products::{BLING_ID_FIELD, Change, ProductSync, WriteError, bitrix_auth, same_fields, service_error};

impl ProductSync {
    /// Exports Bitrix24 product `bitrix_id` of `tenant_id` into Bling.
    pub async fn bitrix24_to_bling(
        &self,
        tenant_id: &TenantId,
        bitrix_id: &str,
        priority: Priority,
    ) -> Result<Change, ServiceError> {
        let Some(token) = self.tokens.get_if_connected(tenant_id, Provider::Bitrix24).await? else {
            return Ok(Change::Skipped("Bitrix24 is not connected"));
        };
        match self.export(tenant_id, &token, bitrix_id, priority).await {
            Err(WriteError::Portal(ConnectorError::InvalidToken { .. })) => {
                let renewed = self.tokens.refused(tenant_id, Provider::Bitrix24, &token).await?;
                Ok(self.export(tenant_id, &renewed, bitrix_id, priority).await?)
            }
            other => Ok(other?),
        }
    }

    async fn export(
        &self,
        tenant_id: &TenantId,
        token: &AccessToken,
        bitrix_id: &str,
        priority: Priority,
    ) -> Result<Change, WriteError> {
        let auth = bitrix_auth(token);
        let portal = token.account.as_str();
        let property = self.bling_id_key(&auth, portal, priority).await?;
        let read: Result<Envelope<Map<String, Value>>, _> =
            self.bitrix.call(&auth, portal, priority, "crm.product.get", &json!({"id": bitrix_id})).await;
        let mut product = match read {
            Ok(p) => p.result,
            // Bling keeps its product when the CRM's copy is deleted.
            Err(ConnectorError::NotFound { .. }) => return Ok(Change::Skipped("deleted in Bitrix24; Bling keeps it")),
            Err(e) => return Err(e.into()),
        };
        let marked = field_values(product.get(&property)).into_iter().next().filter(|v| !v.is_empty());
        let registered =
            self.resolve_link(tenant_id, EntityKind::Product, Provider::Bitrix24, bitrix_id, Provider::Bling).await?;
        let in_registry = registered.is_some();
        let bling_id = registered.or(marked);
        // The mapping knows the property by its portal-independent name.
        if let Some(v) = product.remove(&property) {
            let plain = field_values(Some(&v)).into_iter().next().unwrap_or_default();
            product.insert(BLING_ID_FIELD.into(), Value::String(plain));
        }
        let mut fields = self
            .translate_fields(tenant_id, TranslateDirection::Bitrix24ToBling, bitrix_id, &Value::Object(product))
            .await?;
        fields.remove("id");
        produto_numbers(&mut fields);

        let bling = self.tokens.get(tenant_id, Provider::Bling).await?;
        let caller = || Caller { account: &bling.account, priority, token: bling.secret() };
        let Some(bling_id) = bling_id.and_then(|id| id.parse::<i64>().ok()) else {
            // New in the CRM: create it in Bling, link it, and mark the CRM product so another
            // replica (or a retry) finds it before the link registry answers.
            let mut body = fields;
            body.entry("tipo").or_insert(json!("P"));
            body.entry("formato").or_insert(json!("S"));
            let id = self.bling.create_produto(caller(), &Value::Object(body)).await?;
            self.link(tenant_id, &id.to_string(), bitrix_id).await?;
            self.bitrix
                .update_product(&auth, portal, priority, bitrix_id, &json!({ property: id.to_string() }))
                .await?;
            return Ok(Change::Created(id.to_string()));
        };
        if !in_registry {
            self.link(tenant_id, &bling_id.to_string(), bitrix_id).await?;
        }
        let current = match self.bling.produto(caller(), bling_id).await {
            Ok(p) => p,
            Err(ConnectorError::NotFound { .. }) => return Ok(Change::Skipped("deleted in Bling; not created again")),
            Err(e) => return Err(e.into()),
        };
        let Value::Object(mut merged) = serde_json::to_value(&current).map_err(|e| ServiceError::Internal(e.into()))?
        else {
            return Err(ServiceError::Internal(anyhow::anyhow!("a Bling product is not a JSON object")).into());
        };
        if same_fields(&fields, &merged) {
            return Ok(Change::Unchanged(bling_id.to_string()));
        }
        // Bling's PUT replaces the whole product: send what it has with the mapped fields over it.
        merged.extend(fields);
        self.bling.update_produto(caller(), bling_id, &Value::Object(merged)).await.map_err(service_error)?;
        Ok(Change::Updated(bling_id.to_string()))
    }
}
