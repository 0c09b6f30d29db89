//! Checks that a tenant exists by asking the auth-token service (which owns tenants), with a
//! short cache so a busy service does not ask on every call.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use ponte_proto::v1::{GetTenantRequest, auth_token_service_client::AuthTokenServiceClient};
use tonic::Code;

use crate::{error::ServiceError, grpc::TracedChannel};

#[derive(Clone)]
pub struct TenantCheck {
    client: AuthTokenServiceClient<TracedChannel>,
    known: Arc<Mutex<HashMap<String, Instant>>>,
    ttl: Duration,
}

impl TenantCheck {
    pub fn new(channel: TracedChannel, ttl: Duration) -> Self {
        Self { client: AuthTokenServiceClient::new(channel), known: Arc::default(), ttl }
    }

    /// `Ok` when the tenant exists; `NotFound` naming it otherwise; `Unavailable` when
    /// auth-token cannot answer.
    pub async fn require(&self, tenant_id: &str) -> Result<(), ServiceError> {
        let tenant_id = ServiceError::require("tenant_id", tenant_id)?;
        if self.known.lock().get(tenant_id).is_some_and(|at| at.elapsed() < self.ttl) {
            return Ok(());
        }
        let mut client = self.client.clone();
        match client.get_tenant(GetTenantRequest { tenant_id: tenant_id.to_owned() }).await {
            Ok(_) => {
                self.known.lock().insert(tenant_id.to_owned(), Instant::now());
                Ok(())
            }
            Err(s) if s.code() == Code::NotFound => {
                Err(ServiceError::NotFound(format!("tenant '{tenant_id}' does not exist")))
            }
            Err(s) if s.code() == Code::InvalidArgument => Err(ServiceError::invalid("tenant_id", s.message())),
            Err(s) => Err(ServiceError::unavailable(
                format!("cannot check tenant '{tenant_id}': auth-token answered {}: {}", s.code(), s.message()),
                Some(Duration::from_secs(1)),
            )),
        }
    }
}
