//! The mapping service as sales-ingest asks it: the Bling loja and depósito of a CPLUG store,
//! the Bling forma de pagamento of a CPLUG method (the store's DE-PARA, or the tenant's
//! default), and when the tenant's mapping tables last changed (so parked sales go again).
//! "No mapping" is an answer (`None`), for the sale to park; a mapping service that cannot
//! answer is a wait.

use ponte_core::{BlingId, TenantId, error::ServiceError, grpc::TracedChannel, time::from_timestamp};
use ponte_proto::v1::{
    ListAuditEntriesRequest, ResolveStoreRequest, TranslatePaymentMethodRequest,
    mapping_service_client::MappingServiceClient,
};
use tonic::{Code, Status};

#[derive(Clone)]
pub(crate) struct Mapping {
    client: MappingServiceClient<TracedChannel>,
}

/// A CPLUG store's place in Bling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StorePlace {
    pub loja: BlingId,
    pub deposito: BlingId,
}

fn down(s: Status) -> ServiceError {
    ServiceError::unavailable(format!("mapping: {}", s.message()), ponte_core::error::retry_after(&s))
}

impl Mapping {
    pub fn new(channel: TracedChannel) -> Self {
        Self { client: MappingServiceClient::new(channel) }
    }

    /// Where `store` posts; `None` when it has no map.
    pub async fn store(&self, tenant: &TenantId, store: &str) -> Result<Option<StorePlace>, ServiceError> {
        let req = ResolveStoreRequest { tenant_id: tenant.to_string(), cplug_store_id: store.to_owned() };
        match self.client.clone().resolve_store(req).await {
            Ok(r) => {
                let map = r.into_inner().map.unwrap_or_default();
                match (BlingId::new(map.bling_loja_id), BlingId::new(map.bling_deposito_id)) {
                    (Some(loja), Some(deposito)) => Ok(Some(StorePlace { loja, deposito })),
                    _ => Ok(None),
                }
            }
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(down(s)),
        }
    }

    /// The forma de pagamento of `method` at `store`; `None` when neither it nor a default is mapped.
    pub async fn forma(&self, tenant: &TenantId, method: &str, store: &str) -> Result<Option<BlingId>, ServiceError> {
        let req = TranslatePaymentMethodRequest {
            tenant_id: tenant.to_string(),
            cplug_method: method.to_owned(),
            cplug_store_id: store.to_owned(),
        };
        match self.client.clone().translate_payment_method(req).await {
            Ok(r) => Ok(BlingId::new(r.into_inner().bling_forma_pagamento_id)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(down(s)),
        }
    }

    /// When the tenant's mapping tables last changed (Unix ms), if ever.
    pub async fn last_change(&self, tenant: &TenantId) -> Result<Option<i64>, ServiceError> {
        let req = ListAuditEntriesRequest { tenant_id: tenant.to_string(), page_size: 1, page_token: String::new() };
        let entries = self.client.clone().list_audit_entries(req).await.map_err(down)?.into_inner().entries;
        Ok(entries.first().and_then(|e| e.create_time.as_ref()).map(from_timestamp))
    }
}
