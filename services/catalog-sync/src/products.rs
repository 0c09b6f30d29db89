//! One Bling product into Bitrix24: re-read from Bling (events are notifications; Bling is the
//! truth), translated through the tenant's field mapping, found through the link registry and
//! then the portal's "Bling ID" property before anything is created (so a retry never
//! duplicates), written only when something changed (so Bitrix24 echoing ponte's own write back
//! does not loop), and linked.
//!
//! The merchant-facing fixed mapping puts the SKU in "ID Externo" (`XML_ID`) and the Bling id in
//! a "Bling ID" string property (code `BLING_ID`) whose `PROPERTY_<n>` differs per portal: the
//! mapping service names it `PROPERTY_BLING_ID`, and this module swaps in the portal's key,
//! discovered (or created, by one replica at a time) and cached per portal.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use ponte_connectors::{
    ConnectorError,
    bitrix24::{Bitrix24Auth, Bitrix24Client, client::field_values},
    bling::{BlingApi, Caller, resources::Produto},
};
use ponte_core::{
    TenantId,
    access::{AccessToken, AccessTokens},
    error::ServiceError,
    grpc::TracedChannel,
    lock::Locks,
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
    e.into()
}

/// The builtin mapping's name for the "Bling ID" property, before the portal's key is known.
pub const BLING_ID_FIELD: &str = "PROPERTY_BLING_ID";
/// The symbolic code and name of the "Bling ID" property on a portal.
pub const BLING_ID_CODE: &str = "BLING_ID";
pub const BLING_ID_NAME: &str = "Bling ID";

#[derive(Clone)]
pub struct ProductSync {
    pub tokens: AccessTokens,
    pub mapping: MappingServiceClient<TracedChannel>,
    pub bling: BlingApi,
    pub bitrix: Bitrix24Client,
    pub locks: Arc<dyn Locks>,
    pub http: reqwest::Client,
    /// CPLUG upserts waiting to share a bulk call.
    pub(crate) cplug: crate::cplug_sync::CplugBulks,
    /// The tenants' sync settings as live events read them.
    pub(crate) settings: crate::settings::SettingsCache,
    /// Portal → the `PROPERTY_<n>` key of its "Bling ID" property.
    properties: Arc<Mutex<HashMap<String, String>>>,
}

pub(crate) fn bitrix_auth(t: &AccessToken) -> Bitrix24Auth {
    if t.secret().is_empty() {
        Bitrix24Auth::Webhook { base: t.base_url().to_owned() }
    } else {
        Bitrix24Auth::OAuth { client_endpoint: t.base_url().to_owned(), access_token: t.secret().to_owned() }
    }
}

/// Whether `current` (as Bitrix24 returns it: strings for numbers, properties as
/// `{"valueId", "value"}`) already holds `wanted`.
pub(crate) fn same_fields(wanted: &Map<String, Value>, current: &Map<String, Value>) -> bool {
    let text = |v: &Value| match v {
        Value::Bool(b) => (if *b { "Y" } else { "N" }).to_owned(),
        other => field_values(Some(other)).join("\u{1f}").trim().to_owned(),
    };
    let number_eq =
        |a: &str, b: &str| matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if (x - y).abs() < 1e-9);
    wanted.iter().all(|(k, w)| {
        let (w, c) = (text(w), current.get(k).map(text).unwrap_or_default());
        w == c || number_eq(&w, &c)
    })
}

/// A failure on the Bitrix24 side of a sync: the portal's answer (a refused token is renewed
/// and the write tried once more) or ponte's own.
pub(crate) enum WriteError {
    Portal(ConnectorError),
    Service(ServiceError),
}

impl From<ConnectorError> for WriteError {
    fn from(e: ConnectorError) -> Self {
        Self::Portal(e)
    }
}

impl From<ServiceError> for WriteError {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

impl From<WriteError> for ServiceError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Portal(e) => service_error(e),
            WriteError::Service(e) => e,
        }
    }
}

impl ProductSync {
    pub fn new(
        tokens: AccessTokens,
        mapping: MappingServiceClient<TracedChannel>,
        bling: BlingApi,
        bitrix: Bitrix24Client,
        locks: Arc<dyn Locks>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            tokens,
            mapping,
            bling,
            bitrix,
            locks,
            http,
            cplug: Default::default(),
            settings: Default::default(),
            properties: Arc::default(),
        }
    }

    /// Syncs Bling product `bling_id` of `tenant_id` into Bitrix24 as `settings` allow.
    pub async fn bling_to_bitrix24(
        &self,
        tenant_id: &TenantId,
        bling_id: i64,
        settings: &SyncSettings,
        priority: Priority,
    ) -> Result<Change, ServiceError> {
        // A merchant who has not connected Bitrix24 does not use this flow.
        let Some(token) = self.tokens.get_if_connected(tenant_id, Provider::Bitrix24).await? else {
            return Ok(Change::Skipped("Bitrix24 is not connected"));
        };
        let product = self.read_bling(tenant_id, bling_id, priority).await?;
        let fields = match product.filter(|p| p.situacao != "E") {
            Some(p) => Some(self.translate(tenant_id, &p).await?),
            None => None,
        };
        match self.write_bitrix24(tenant_id, &token, bling_id, fields.clone(), settings, priority).await {
            Err(WriteError::Portal(ConnectorError::InvalidToken { .. })) => {
                let renewed = self.tokens.refused(tenant_id, Provider::Bitrix24, &token).await?;
                Ok(self.write_bitrix24(tenant_id, &renewed, bling_id, fields, settings, priority).await?)
            }
            other => Ok(other?),
        }
    }

    /// The product as Bling has it now; `None` when Bling no longer has it.
    pub(crate) async fn read_bling(
        &self,
        tenant_id: &TenantId,
        bling_id: i64,
        priority: Priority,
    ) -> Result<Option<Produto>, ServiceError> {
        let token = self.tokens.get(tenant_id, Provider::Bling).await?;
        let caller = Caller { account: &token.account, priority, token: token.secret() };
        let first = self.bling.produto(caller, bling_id).await;
        let result = match first {
            Err(ConnectorError::InvalidToken { .. }) => {
                // Refused: report it once, take the renewed token, try once more.
                let renewed = self.tokens.refused(tenant_id, Provider::Bling, &token).await?;
                let caller = Caller { account: &renewed.account, priority, token: renewed.secret() };
                self.bling.produto(caller, bling_id).await
            }
            other => other,
        };
        match result {
            Ok(p) => Ok(Some(p)),
            Err(ConnectorError::NotFound { .. }) => Ok(None),
            Err(e) => Err(service_error(e)),
        }
    }

    /// The Bitrix24 fields of `product` under the tenant's mapping (the "Bling ID" property
    /// still under [`BLING_ID_FIELD`]).
    pub(crate) async fn translate(
        &self,
        tenant_id: &TenantId,
        product: &Produto,
    ) -> Result<Map<String, Value>, ServiceError> {
        let source = serde_json::to_value(product).map_err(|e| ServiceError::Internal(e.into()))?;
        self.translate_fields(tenant_id, TranslateDirection::BlingToBitrix24, &product.id.to_string(), &source).await
    }

    /// `source` translated in `direction` through the tenant's mapping; `what` names the
    /// product in errors.
    pub(crate) async fn translate_fields(
        &self,
        tenant_id: &TenantId,
        direction: TranslateDirection,
        what: &str,
        source: &Value,
    ) -> Result<Map<String, Value>, ServiceError> {
        let bling_id = what;
        let mut mapping = self.mapping.clone();
        let translated = mapping
            .translate_product(TranslateProductRequest {
                tenant_id: tenant_id.to_string(),
                direction: direction as i32,
                fields: Some(to_struct(source)),
            })
            .await
            .map_err(|s| match s.code() {
                Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => {
                    ServiceError::FailedPrecondition(format!("mapping product {bling_id}: {}", s.message()))
                }
                _ => ServiceError::unavailable(format!("mapping: {}", s.message()), None),
            })?
            .into_inner();
        match translated.fields.as_ref().map(from_struct) {
            Some(Value::Object(fields)) => Ok(fields),
            _ => Err(ServiceError::FailedPrecondition(format!("mapping product {bling_id} produced no fields"))),
        }
    }

    /// The portal's `PROPERTY_<n>` for "Bling ID": cached, else discovered or created while
    /// holding a lease, so two replicas never create it twice.
    pub(crate) async fn bling_id_key(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
    ) -> Result<String, WriteError> {
        if let Some(key) = self.properties.lock().get(portal) {
            return Ok(key.clone());
        }
        let lock_key = format!("bitrix24-property:{portal}:{BLING_ID_CODE}");
        let mut waited = Duration::ZERO;
        let lease = loop {
            match self.locks.try_acquire(&lock_key, Duration::from_secs(30)).await {
                Ok(Some(lease)) => break Some(lease),
                Ok(None) if waited < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    waited += Duration::from_millis(100);
                }
                Ok(None) => {
                    return Err(ServiceError::unavailable(
                        format!("another replica is setting up the {BLING_ID_NAME} property of {portal}"),
                        Some(Duration::from_secs(1)),
                    )
                    .into());
                }
                Err(e) => return Err(ServiceError::unavailable(e.to_string(), None).into()),
            }
        };
        let found = self.bitrix.product_property_key(auth, portal, priority, BLING_ID_CODE, BLING_ID_NAME).await;
        if let Some(lease) = lease {
            let _ = self.locks.release(lease).await;
        }
        let key = found?;
        self.properties.lock().insert(portal.to_owned(), key.clone());
        Ok(key)
    }

    pub(crate) async fn write_bitrix24(
        &self,
        tenant_id: &TenantId,
        token: &AccessToken,
        bling_id: i64,
        fields: Option<Map<String, Value>>,
        settings: &SyncSettings,
        priority: Priority,
    ) -> Result<Change, WriteError> {
        let auth = bitrix_auth(token);
        let portal = token.account.as_str();
        let bling_key = bling_id.to_string();
        let property = self.bling_id_key(&auth, portal, priority).await?;
        let linked = self.linked(tenant_id, &bling_key).await?;
        let existing = match &linked {
            Some(id) => Some(id.clone()),
            None => self
                .bitrix
                .find_product_by(&auth, portal, priority, &property, &bling_key)
                .await?
                .and_then(|p| p.get("ID").and_then(ponte_connectors::bitrix24::types::as_string)),
        };

        let Some(mut fields) = fields else {
            let Some(id) = existing else { return Ok(Change::Skipped("deleted in Bling and never synced")) };
            self.bitrix.update_product(&auth, portal, priority, &id, &json!({"ACTIVE": "N"})).await?;
            return Ok(Change::Deactivated(id));
        };
        // The link property carries the Bling id whatever the mapping says: it is how a retry
        // (or another replica) finds the product before the link registry knows it.
        fields.remove(BLING_ID_FIELD);
        fields.insert(property, Value::String(bling_key.clone()));

        match existing {
            Some(id) => {
                if linked.is_none() {
                    self.link(tenant_id, &bling_key, &id).await?;
                }
                if !settings.bling_update_updates_bitrix24 {
                    return Ok(Change::Skipped("changes in Bling do not update Bitrix24 (switch off)"));
                }
                let current: ponte_connectors::bitrix24::types::Envelope<Map<String, Value>> =
                    self.bitrix.call(&auth, portal, priority, "crm.product.get", &json!({"id": id})).await?;
                if same_fields(&fields, &current.result) {
                    return Ok(Change::Unchanged(id));
                }
                self.bitrix.update_product(&auth, portal, priority, &id, &Value::Object(fields)).await?;
                Ok(Change::Updated(id))
            }
            None => {
                if !settings.bling_create_creates_in_bitrix24 {
                    return Ok(Change::Skipped("creation in Bling does not create in Bitrix24 (switch off)"));
                }
                let id = self.bitrix.add_product(&auth, portal, priority, &Value::Object(fields)).await?;
                self.link(tenant_id, &bling_key, &id).await?;
                Ok(Change::Created(id))
            }
        }
    }

    pub(crate) async fn linked(&self, tenant_id: &TenantId, bling_id: &str) -> Result<Option<String>, ServiceError> {
        self.resolve_link(tenant_id, EntityKind::Product, Provider::Bling, bling_id, Provider::Bitrix24).await
    }

    /// The `kind` entity's id in `to` behind `from`'s `id`, from the link registry.
    pub(crate) async fn resolve_link(
        &self,
        tenant_id: &TenantId,
        kind: EntityKind,
        from: Provider,
        id: &str,
        to: Provider,
    ) -> Result<Option<String>, ServiceError> {
        let mut mapping = self.mapping.clone();
        match mapping
            .resolve(ResolveRequest {
                tenant_id: tenant_id.to_string(),
                kind: kind as i32,
                from_system: from as i32,
                from_id: id.to_owned(),
                to_system: to as i32,
            })
            .await
        {
            Ok(r) => Ok(Some(r.into_inner().id)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(ServiceError::unavailable(format!("link registry: {}", s.message()), None)),
        }
    }

    pub(crate) async fn link(&self, tenant_id: &TenantId, bling_id: &str, bitrix_id: &str) -> Result<(), ServiceError> {
        self.link_entity(tenant_id, EntityKind::Product, bling_id, bitrix_id).await
    }

    /// Records that Bling's `kind` `bling_id` is Bitrix24's `bitrix_id`.
    pub(crate) async fn link_entity(
        &self,
        tenant_id: &TenantId,
        kind: EntityKind,
        bling_id: &str,
        bitrix_id: &str,
    ) -> Result<(), ServiceError> {
        let mut mapping = self.mapping.clone();
        mapping
            .link(LinkRequest {
                link: Some(EntityLink {
                    tenant_id: tenant_id.to_string(),
                    kind: kind as i32,
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
        let wanted = json!({"NAME": "Camiseta", "PRICE": 59.9, "ACTIVE": "Y", "XML_ID": "123", "PROPERTY_7": "99"});
        let current = json!({"ID": "410", "NAME": "Camiseta", "PRICE": "59.90", "ACTIVE": "Y", "XML_ID": "123",
                             "SORT": "500", "PROPERTY_7": {"valueId": "3", "value": "99"}});
        assert!(same_fields(wanted.as_object().unwrap(), current.as_object().unwrap()));
        let changed = json!({"NAME": "Camiseta", "PRICE": "60.00", "ACTIVE": "Y", "XML_ID": "123", "PROPERTY_7": "99"});
        assert!(!same_fields(wanted.as_object().unwrap(), changed.as_object().unwrap()));
    }
}
