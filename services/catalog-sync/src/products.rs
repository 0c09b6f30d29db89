//! One Bling product into Bitrix24: re-read from Bling (events are notifications; Bling is the
//! truth), translated through the tenant's field mapping, found through the link registry and
//! then `XML_ID` before anything is created (so a retry never duplicates), written only when
//! something changed (so Bitrix24 echoing ponte's own write back does not loop), and linked.
//!
//! Not wired to events yet. Known gap: the merchant-facing fixed mapping puts the SKU in
//! "ID Externo" (`XML_ID`) and the Bling id in a "Bling ID" link property whose `PROPERTY_n`
//! differs per portal; this module still keeps the Bling id in `XML_ID` for its fallback
//! lookup. Discovering (or creating) the portal's "Bling ID" property and looking products up
//! by it replaces that before this is wired.

use ponte_connectors::{
    ConnectorError,
    bitrix24::{Bitrix24Auth, Bitrix24Client},
    bling::{BlingApi, Caller},
};
use ponte_core::{
    access::{AccessToken, AccessTokens},
    error::ServiceError,
    grpc::TracedChannel,
    ratelimit::Priority,
    structs::{from_struct, to_struct},
};
use ponte_proto::v1::{
    EntityKind, EntityLink, LinkRequest, Provider, ResolveRequest, SyncSettings, TranslateDirection,
    TranslateProductRequest, mapping_service_client::MappingServiceClient,
};
use serde_json::{Map, Value, json};
use tonic::Code;

/// What syncing one product did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Updated(String),
    /// Bitrix24 already held exactly these fields.
    Unchanged(String),
    /// Deleted or excluded in Bling: deactivated in Bitrix24.
    Deactivated(String),
    /// A switch is off, or there was nothing to do; the reason says which.
    Skipped(&'static str),
}

/// Turns a connector failure into the service's answer: wait-and-retry, park, or fail.
pub fn service_error(e: ConnectorError) -> ServiceError {
    match e {
        ConnectorError::RateLimited { ref retry_after, .. } => {
            ServiceError::unavailable(e.to_string(), Some(retry_after.unwrap_or(std::time::Duration::from_secs(1))))
        }
        ConnectorError::Unavailable { .. } => ServiceError::unavailable(e.to_string(), None),
        ConnectorError::BudgetExhausted { renews_in, .. } => ServiceError::unavailable(e.to_string(), renews_in),
        ConnectorError::InvalidGrant { .. } | ConnectorError::InvalidToken { .. } => {
            ServiceError::FailedPrecondition(e.to_string())
        }
        ConnectorError::NotFound { .. } => ServiceError::NotFound(e.to_string()),
        ConnectorError::Rejected { ref fields, .. } if !fields.is_empty() => {
            ServiceError::FailedPrecondition(format!("{e}: {}", fields.join("; ")))
        }
        ConnectorError::Rejected { .. } | ConnectorError::Protocol { .. } => {
            ServiceError::FailedPrecondition(e.to_string())
        }
    }
}

#[derive(Clone)]
pub struct ProductSync {
    pub tokens: AccessTokens,
    pub mapping: MappingServiceClient<TracedChannel>,
    pub bling: BlingApi,
    pub bitrix: Bitrix24Client,
}

fn bitrix_auth(t: &AccessToken) -> Bitrix24Auth {
    if t.token.is_empty() {
        Bitrix24Auth::Webhook { base: t.base_url.clone() }
    } else {
        Bitrix24Auth::OAuth { client_endpoint: t.base_url.clone(), access_token: t.token.clone() }
    }
}

/// Whether `current` (as Bitrix24 returns it: strings for numbers) already holds `wanted`.
fn same_fields(wanted: &Map<String, Value>, current: &Map<String, Value>) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.as_f64().map(|f| format!("{f}")).unwrap_or_default(),
        Value::Bool(b) => (if *b { "Y" } else { "N" }).to_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let number_eq =
        |a: &str, b: &str| matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if (x - y).abs() < 1e-9);
    wanted.iter().all(|(k, w)| {
        let (w, c) = (text(w), current.get(k).map(text).unwrap_or_default());
        w == c || number_eq(&w, &c)
    })
}

impl ProductSync {
    /// Syncs Bling product `bling_id` of `tenant_id` into Bitrix24 as `settings` allow.
    pub async fn bling_to_bitrix24(
        &self,
        tenant_id: &str,
        bling_id: i64,
        settings: &SyncSettings,
        priority: Priority,
    ) -> Result<Change, ServiceError> {
        let bling_token = self.tokens.get(tenant_id, Provider::Bling).await?;
        let caller = Caller { account: &bling_token.account, priority, token: &bling_token.token };
        let product = match self.bling.produto(caller, bling_id).await {
            Ok(p) => Some(p),
            Err(ConnectorError::NotFound { .. }) => None,
            Err(ConnectorError::InvalidToken { .. }) => {
                // Refused: report it once, take the renewed token, try once more.
                let renewed = self.tokens.refused(tenant_id, Provider::Bling, &bling_token).await?;
                let caller = Caller { account: &renewed.account, priority, token: &renewed.token };
                match self.bling.produto(caller, bling_id).await {
                    Ok(p) => Some(p),
                    Err(ConnectorError::NotFound { .. }) => None,
                    Err(e) => return Err(service_error(e)),
                }
            }
            Err(e) => return Err(service_error(e)),
        };
        let bitrix_token = self.tokens.get(tenant_id, Provider::Bitrix24).await?;
        let auth = bitrix_auth(&bitrix_token);
        let portal = bitrix_token.account.as_str();
        let bling_key = bling_id.to_string();
        let linked = self.linked(tenant_id, &bling_key).await?;
        let existing = match &linked {
            Some(id) => Some(id.clone()),
            None => self
                .bitrix
                .find_product_by_xml_id(&auth, portal, priority, &bling_key)
                .await
                .map_err(service_error)?
                .and_then(|p| p.get("ID").and_then(ponte_connectors::bitrix24::types::as_string)),
        };

        let Some(product) = product.filter(|p| p.situacao != "E") else {
            let Some(id) = existing else { return Ok(Change::Skipped("deleted in Bling and never synced")) };
            self.bitrix
                .update_product(&auth, portal, priority, &id, &json!({"ACTIVE": "N"}))
                .await
                .map_err(service_error)?;
            return Ok(Change::Deactivated(id));
        };

        let source = serde_json::to_value(&product).map_err(|e| ServiceError::Internal(e.into()))?;
        let mut mapping = self.mapping.clone();
        let translated = mapping
            .translate_product(TranslateProductRequest {
                tenant_id: tenant_id.to_owned(),
                direction: TranslateDirection::BlingToBitrix24 as i32,
                fields: Some(to_struct(&source)),
            })
            .await
            .map_err(|s| match s.code() {
                Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => {
                    ServiceError::FailedPrecondition(format!("mapping product {bling_id}: {}", s.message()))
                }
                _ => ServiceError::unavailable(format!("mapping: {}", s.message()), None),
            })?
            .into_inner();
        let Value::Object(mut fields) = translated.fields.as_ref().map(from_struct).unwrap_or(Value::Null) else {
            return Err(ServiceError::FailedPrecondition(format!("mapping product {bling_id} produced no fields")));
        };
        // XML_ID carries the Bling id whatever the mapping says: it is how a retry finds the product.
        fields.insert("XML_ID".into(), Value::String(bling_key.clone()));

        match existing {
            Some(id) => {
                if linked.is_none() {
                    self.link(tenant_id, &bling_key, &id).await?;
                }
                if !settings.bling_update_updates_bitrix24 {
                    return Ok(Change::Skipped("changes in Bling do not update Bitrix24 (switch off)"));
                }
                let current: ponte_connectors::bitrix24::types::Envelope<Map<String, Value>> = self
                    .bitrix
                    .call(&auth, portal, priority, "crm.product.get", &json!({"id": id}))
                    .await
                    .map_err(service_error)?;
                if same_fields(&fields, &current.result) {
                    return Ok(Change::Unchanged(id));
                }
                self.bitrix
                    .update_product(&auth, portal, priority, &id, &Value::Object(fields))
                    .await
                    .map_err(service_error)?;
                Ok(Change::Updated(id))
            }
            None => {
                if !settings.bling_create_creates_in_bitrix24 {
                    return Ok(Change::Skipped("creation in Bling does not create in Bitrix24 (switch off)"));
                }
                let id = self
                    .bitrix
                    .add_product(&auth, portal, priority, &Value::Object(fields))
                    .await
                    .map_err(service_error)?;
                self.link(tenant_id, &bling_key, &id).await?;
                Ok(Change::Created(id))
            }
        }
    }

    async fn linked(&self, tenant_id: &str, bling_id: &str) -> Result<Option<String>, ServiceError> {
        let mut mapping = self.mapping.clone();
        match mapping
            .resolve(ResolveRequest {
                tenant_id: tenant_id.to_owned(),
                kind: EntityKind::Product as i32,
                from_system: Provider::Bling as i32,
                from_id: bling_id.to_owned(),
                to_system: Provider::Bitrix24 as i32,
            })
            .await
        {
            Ok(r) => Ok(Some(r.into_inner().id)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ServiceError::unavailable(format!("link registry: {}", s.message()), None)),
        }
    }

    async fn link(&self, tenant_id: &str, bling_id: &str, bitrix_id: &str) -> Result<(), ServiceError> {
        let mut mapping = self.mapping.clone();
        mapping
            .link(LinkRequest {
                link: Some(EntityLink {
                    tenant_id: tenant_id.to_owned(),
                    kind: EntityKind::Product as i32,
                    system_a: Provider::Bling as i32,
                    id_a: bling_id.to_owned(),
                    system_b: Provider::Bitrix24 as i32,
                    id_b: bitrix_id.to_owned(),
                    create_time: None,
                }),
            })
            .await
            .map_err(|s| ServiceError::unavailable(format!("link registry: {}", s.message()), None))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrix24_string_numbers_compare_equal_to_mapped_values() {
        let wanted = json!({"NAME": "Camiseta", "PRICE": 59.9, "ACTIVE": "Y", "XML_ID": "123"});
        let current =
            json!({"ID": "410", "NAME": "Camiseta", "PRICE": "59.90", "ACTIVE": "Y", "XML_ID": "123", "SORT": "500"});
        assert!(same_fields(wanted.as_object().unwrap(), current.as_object().unwrap()));
        let changed = json!({"NAME": "Camiseta", "PRICE": "60.00", "ACTIVE": "Y", "XML_ID": "123"});
        assert!(!same_fields(wanted.as_object().unwrap(), changed.as_object().unwrap()));
    }
}
