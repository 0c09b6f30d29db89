//! Checks that a tenant exists by asking the auth-token service (which owns tenants), with a
//! short cache so a busy service does not ask on every call; concurrent checks of one tenant
//! share one call (moka's single-flight load). Only "exists" is cached: a tenant created a
//! moment ago is found at once.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;
use ponte_proto::v1::{GetTenantRequest, auth_token_service_client::AuthTokenServiceClient};
use tonic::Code;

use crate::{
    error::{ServiceError, is_retriable},
    grpc::TracedChannel,
    ids::TenantId,
};

/// Tenants remembered at most.
const CAPACITY: u64 = 100_000;

#[derive(Clone)]
pub struct TenantCheck {
    client: AuthTokenServiceClient<TracedChannel>,
    known: Cache<TenantId, ()>,
}

impl TenantCheck {
    pub fn new(channel: TracedChannel, ttl: Duration) -> Self {
        let known = Cache::builder().max_capacity(CAPACITY).time_to_live(ttl).build();
        Self { client: AuthTokenServiceClient::new(channel), known }
    }

    /// `Ok` when the tenant exists; `NotFound` naming it otherwise; `Unavailable` when
    /// auth-token cannot answer.
    pub async fn require(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        self.known.try_get_with(tenant.clone(), self.ask(tenant)).await.map_err(|e: Arc<ServiceError>| e.cloned())
    }

    /// Checks the request field `field` as a tenant id, then that the tenant exists.
    pub async fn require_field(&self, field: &str, raw: &str) -> Result<TenantId, ServiceError> {
        let tenant = TenantId::field(field, raw)?;
        self.require(&tenant).await?;
        Ok(tenant)
    }

    async fn ask(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        let mut client = self.client.clone();
        match client.get_tenant(GetTenantRequest { tenant_id: tenant.to_string() }).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => {
                Err(ServiceError::NotFound(format!("tenant '{tenant}' does not exist")))
            }
            Err(s) if is_retriable(&s) => Err(ServiceError::unavailable(
                format!("cannot check tenant '{tenant}': auth-token answered {}: {}", s.code(), s.message()),
                Some(Duration::from_secs(1)),
            )),
            Err(s) => Err(ServiceError::Internal(anyhow::anyhow!(
                "auth-token refused to look up tenant '{tenant}': {}: {}",
                s.code(),
                s.message()
            ))),
        }
    }
}
