//! What shipping calls at 360Envios, with the tenant's API token (asked of auth-token, renewed
//! once when the hub refuses it) on the token's shared budget: products sent for approval,
//! orders created (safe to retry), looked up, replaced and cancelled.

use ponte_connectors::{
    CallError,
    envios360::{
        client::Created,
        types::{NewProduct, Order, OrderBody, OrderRef},
    },
};
use ponte_core::{TenantId, error::ServiceError};
use ponte_proto::v1::Provider;

use crate::context::Context;

impl Context {
    /// Whether the tenant has connected 360Envios.
    pub async fn hub_connected(&self, tenant: &TenantId) -> Result<bool, ServiceError> {
        Ok(self.tokens.get_if_connected(tenant, Provider::Envios360).await?.is_some())
    }

    pub async fn hub_create_product(&self, tenant: &TenantId, p: &NewProduct) -> Result<Created, CallError> {
        let hub = &self.hub;
        self.tokens
            .with_token(tenant, Provider::Envios360, |t| async move {
                Ok::<_, CallError>(hub.create_product(t.secret(), p).await?)
            })
            .await
    }

    pub async fn hub_create_order(&self, tenant: &TenantId, o: &OrderBody) -> Result<Created, CallError> {
        let hub = &self.hub;
        self.tokens
            .with_token(tenant, Provider::Envios360, |t| async move {
                Ok::<_, CallError>(hub.create_order(t.secret(), o).await?)
            })
            .await
    }

    pub async fn hub_order(&self, tenant: &TenantId, id: &str) -> Result<Order, CallError> {
        let hub = &self.hub;
        self.tokens
            .with_token(
                tenant,
                Provider::Envios360,
                |t| async move { Ok::<_, CallError>(hub.order(t.secret(), id).await?) },
            )
            .await
    }

    /// The order made for Bling order `external_id`, if any.
    pub async fn hub_find_order(&self, tenant: &TenantId, external_id: &str) -> Result<Option<Order>, CallError> {
        let hub = &self.hub;
        self.tokens
            .with_token(tenant, Provider::Envios360, |t| async move {
                Ok::<_, CallError>(hub.find_order(t.secret(), external_id).await?)
            })
            .await
    }

    pub async fn hub_update_order(&self, tenant: &TenantId, id: &str, o: &OrderBody) -> Result<(), CallError> {
        let hub = &self.hub;
        self.tokens
            .with_token(tenant, Provider::Envios360, |t| async move {
                Ok::<_, CallError>(hub.update_order(t.secret(), id, o).await?)
            })
            .await
    }

    pub async fn hub_cancel_order(&self, tenant: &TenantId, id: &str) -> Result<OrderRef, CallError> {
        let hub = &self.hub;
        self.tokens
            .with_token(tenant, Provider::Envios360, |t| async move {
                Ok::<_, CallError>(hub.cancel_order(t.secret(), id).await?)
            })
            .await
    }
}
