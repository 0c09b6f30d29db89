//! The gRPC surface of auth-token.

use ponte_core::{TenantId, error::ServiceError};
use ponte_proto::v1::{
    CompleteAuthorizationRequest, CompleteAuthorizationResponse, ConnectionState, CreateTenantRequest,
    CreateTenantResponse, DeleteTenantRequest, DeleteTenantResponse, GetAccessTokenRequest, GetAccessTokenResponse,
    GetConnectionRequest, GetConnectionResponse, GetTenantRequest, GetTenantResponse, GetWebhookSecretRequest,
    GetWebhookSecretResponse, InstallBitrix24AppRequest, InstallBitrix24AppResponse, ListConnectionsRequest,
    ListConnectionsResponse, ListTenantsRequest, ListTenantsResponse, Provider, ResolveTenantRequest,
    ResolveTenantResponse, RevokeConnectionRequest, RevokeConnectionResponse, SetApiCredentialsRequest,
    SetApiCredentialsResponse, SetTenantLicenseRequest, SetTenantLicenseResponse, StartAuthorizationRequest,
    StartAuthorizationResponse, auth_token_service_server::AuthTokenService,
};
use tonic::{Request, Response, Status};

use crate::{
    AuthToken,
    connections::{self, Field, provider_from, provider_name},
    credentials, oauth, tenants,
    tenants::validate_tenant_id,
};

impl AuthToken {
    /// The request's tenant, checked and known to exist.
    async fn require_tenant(&self, raw: &str) -> Result<TenantId, ServiceError> {
        let tenant = validate_tenant_id("tenant_id", raw)?;
        match tenants::get(&self.db, &tenant).await? {
            Some(_) => Ok(tenant),
            None => Err(ServiceError::NotFound(format!("tenant '{tenant}' does not exist"))),
        }
    }
}

#[tonic::async_trait]
impl AuthTokenService for AuthToken {
    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id))]
    async fn create_tenant(&self, req: Request<CreateTenantRequest>) -> Result<Response<CreateTenantResponse>, Status> {
        let req = req.into_inner();
        let tenant = validate_tenant_id("tenant_id", &req.tenant_id)?;
        let tenant = tenants::create(&self.db, &tenant, &req.display_name).await?;
        Ok(Response::new(CreateTenantResponse { tenant: Some(tenant) }))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id))]
    async fn get_tenant(&self, req: Request<GetTenantRequest>) -> Result<Response<GetTenantResponse>, Status> {
        let tenant_id = validate_tenant_id("tenant_id", &req.into_inner().tenant_id)?;
        match tenants::get(&self.db, &tenant_id).await? {
            Some(tenant) => Ok(Response::new(GetTenantResponse { tenant: Some(tenant) })),
            None => Err(ServiceError::NotFound(format!("tenant '{tenant_id}' does not exist")).into()),
        }
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id))]
    async fn delete_tenant(&self, req: Request<DeleteTenantRequest>) -> Result<Response<DeleteTenantResponse>, Status> {
        let req = req.into_inner();
        let deletion = self.delete_tenant(&req.tenant_id, &req.requested_by).await?;
        Ok(Response::new(DeleteTenantResponse { deletion: Some(deletion) }))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id))]
    async fn set_tenant_license(
        &self,
        req: Request<SetTenantLicenseRequest>,
    ) -> Result<Response<SetTenantLicenseResponse>, Status> {
        let req = req.into_inner();
        let tenant_id = validate_tenant_id("tenant_id", &req.tenant_id)?;
        match tenants::set_license(&self.db, &tenant_id, req.active, &req.reason).await? {
            Some(tenant) => Ok(Response::new(SetTenantLicenseResponse { tenant: Some(tenant) })),
            None => Err(ServiceError::NotFound(format!("tenant '{tenant_id}' does not exist")).into()),
        }
    }

    async fn list_tenants(&self, req: Request<ListTenantsRequest>) -> Result<Response<ListTenantsResponse>, Status> {
        let req = req.into_inner();
        Ok(Response::new(tenants::list(&self.db, req.page_size, &req.page_token).await?))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id))]
    async fn start_authorization(
        &self,
        req: Request<StartAuthorizationRequest>,
    ) -> Result<Response<StartAuthorizationResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.require_tenant(&req.tenant_id).await?;
        let provider = provider_from("provider", req.provider)?;
        let authorize = match provider {
            Provider::Bling => {
                let bling = self.bling()?;
                let (state, expire) = oauth::new_state(&self.db, &tenant, provider).await?;
                (bling.oauth.authorize_url(&state), state, expire)
            }
            Provider::Bitrix24 => {
                let app = self.bitrix24()?;
                let portal = oauth::portal_domain("bitrix24_domain", &req.bitrix24_domain)?;
                let (state, expire) = oauth::new_state(&self.db, &tenant, provider).await?;
                (app.authorize_url(&portal, &state), state, expire)
            }
            other => {
                return Err(ServiceError::invalid(
                    "provider",
                    format!("{} connects with API credentials (SetApiCredentials), not OAuth", provider_name(other)),
                )
                .into());
            }
        };
        let (authorize_url, state, expire) = authorize;
        Ok(Response::new(StartAuthorizationResponse {
            authorize_url,
            state,
            expire_time: Some(ponte_core::time::to_timestamp(expire)),
        }))
    }

    async fn complete_authorization(
        &self,
        req: Request<CompleteAuthorizationRequest>,
    ) -> Result<Response<CompleteAuthorizationResponse>, Status> {
        let req = req.into_inner();
        let provider = provider_from("provider", req.provider)?;
        let row = match provider {
            Provider::Bling => self.complete_bling(&req.code, &req.state, &req.error).await?,
            Provider::Bitrix24 => self.complete_bitrix24(&req).await?,
            other => {
                return Err(ServiceError::invalid(
                    "provider",
                    format!("{} connects with API credentials, not OAuth", provider_name(other)),
                )
                .into());
            }
        };
        Ok(Response::new(CompleteAuthorizationResponse { connection: Some(row.to_proto()) }))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id))]
    async fn set_api_credentials(
        &self,
        req: Request<SetApiCredentialsRequest>,
    ) -> Result<Response<SetApiCredentialsResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.require_tenant(&req.tenant_id).await?;
        let row = credentials::store(self, &tenant, req.credentials).await?;
        Ok(Response::new(SetApiCredentialsResponse { connection: Some(row.to_proto()) }))
    }

    async fn revoke_connection(
        &self,
        req: Request<RevokeConnectionRequest>,
    ) -> Result<Response<RevokeConnectionResponse>, Status> {
        let req = req.into_inner();
        let provider = provider_from("provider", req.provider)?;
        let tenant = validate_tenant_id("tenant_id", &req.tenant_id)?;
        connections::require(&self.db, &tenant, provider).await?;
        connections::set_state(&self.db, &tenant, provider, ConnectionState::Revoked, "revoked by an operator", true)
            .await?;
        tracing::info!(tenant_id = %tenant, provider = provider_name(provider), "connection revoked");
        let row = connections::require(&self.db, &tenant, provider).await?;
        Ok(Response::new(RevokeConnectionResponse { connection: Some(row.to_proto()) }))
    }

    async fn get_connection(
        &self,
        req: Request<GetConnectionRequest>,
    ) -> Result<Response<GetConnectionResponse>, Status> {
        let req = req.into_inner();
        let provider = provider_from("provider", req.provider)?;
        let tenant = validate_tenant_id("tenant_id", &req.tenant_id)?;
        let row = connections::require(&self.db, &tenant, provider).await?;
        Ok(Response::new(GetConnectionResponse { connection: Some(row.to_proto()) }))
    }

    async fn list_connections(
        &self,
        req: Request<ListConnectionsRequest>,
    ) -> Result<Response<ListConnectionsResponse>, Status> {
        let tenant = self.require_tenant(&req.into_inner().tenant_id).await?;
        let rows = connections::list(&self.db, &tenant).await?;
        Ok(Response::new(ListConnectionsResponse { connections: rows.iter().map(|r| r.to_proto()).collect() }))
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %req.get_ref().tenant_id, provider = req.get_ref().provider))]
    async fn get_access_token(
        &self,
        req: Request<GetAccessTokenRequest>,
    ) -> Result<Response<GetAccessTokenResponse>, Status> {
        let req = req.into_inner();
        let provider = provider_from("provider", req.provider)?;
        let tenant = validate_tenant_id("tenant_id", &req.tenant_id)?;
        Ok(Response::new(self.access_token(&tenant, provider, req.rejected_token_version).await?))
    }

    async fn resolve_tenant(
        &self,
        req: Request<ResolveTenantRequest>,
    ) -> Result<Response<ResolveTenantResponse>, Status> {
        let req = req.into_inner();
        let provider = provider_from("provider", req.provider)?;
        let account = ServiceError::require("external_account_id", &req.external_account_id)?;
        match connections::resolve(&self.db, provider, account).await? {
            Some(tenant) => Ok(Response::new(ResolveTenantResponse { tenant_id: tenant.into() })),
            None => Err(ServiceError::NotFound(format!(
                "no tenant has connected {} account '{account}'",
                provider_name(provider)
            ))
            .into()),
        }
    }

    async fn get_webhook_secret(
        &self,
        req: Request<GetWebhookSecretRequest>,
    ) -> Result<Response<GetWebhookSecretResponse>, Status> {
        let req = req.into_inner();
        let provider = provider_from("provider", req.provider)?;
        let tenant = validate_tenant_id("tenant_id", &req.tenant_id)?;
        if provider == Provider::Bling {
            return Err(ServiceError::invalid(
                "provider",
                "Bling signs webhooks with the app's client secret, not a per-tenant one",
            )
            .into());
        }
        let row = connections::require(&self.db, &tenant, provider).await?;
        let secret = row.open(&self.sealer, Field::WebhookSecret)?.ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "the {} connection of tenant '{tenant}' has no webhook secret",
                provider_name(provider)
            ))
        })?;
        Ok(Response::new(GetWebhookSecretResponse { secret }))
    }

    #[tracing::instrument(skip_all, fields(portal = %req.get_ref().domain))]
    async fn install_bitrix24_app(
        &self,
        req: Request<InstallBitrix24AppRequest>,
    ) -> Result<Response<InstallBitrix24AppResponse>, Status> {
        let row = self.install_bitrix24(req.get_ref()).await?;
        Ok(Response::new(InstallBitrix24AppResponse { connection: Some(row.to_proto()) }))
    }
}
