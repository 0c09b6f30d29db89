//! The installation of ponte's Bitrix24 app on a portal: the only moment the portal hands over
//! the application token its events carry (Bitrix24 events have no HMAC; comparing that token
//! is how the gateway knows an event comes from the portal). An installation is an unsigned
//! POST, so it proves itself first, as Bitrix24 recommends: its access token must work for
//! ponte's app (`app.info` names ponte's client id) at the REST address of the portal the
//! tenant connected, the stored one, never the one in the request; and its member id must be
//! that portal's. Only then is the application token sealed and stored. A re-install replaces
//! it; every installation, accepted or refused, is logged.

use std::time::Duration;

use ponte_connectors::bitrix24::Bitrix24Auth;
use ponte_core::{
    error::ServiceError,
    ratelimit::Priority,
    retry::{Class, Classify, RetryPolicy},
};
use ponte_proto::v1::{InstallBitrix24AppRequest, Provider};

use crate::{
    AuthToken,
    connections::{self, ConnectionRow, Field, aad},
    credentials::secret,
    oauth::portal_domain,
};

impl AuthToken {
    /// Stores the application token of a genuine installation on a connected portal.
    pub(crate) async fn install_bitrix24(
        &self,
        req: &InstallBitrix24AppRequest,
    ) -> Result<ConnectionRow, ServiceError> {
        let app = self.bitrix24()?;
        let portal = portal_domain("domain", &req.domain)?;
        let member_id = ServiceError::require("member_id", &req.member_id)?;
        let endpoint = ServiceError::require("client_endpoint", &req.client_endpoint)?;
        let access_token = ServiceError::require("access_token", &req.access_token)?;
        let application_token = secret("application_token", &req.application_token)?;
        let refused = |why: String| {
            tracing::warn!(portal, member_id, reason = %why, "Bitrix24 app installation refused; nothing stored");
            ServiceError::PermissionDenied(why)
        };

        let Some(tenant) = connections::resolve(&self.db, Provider::Bitrix24, &portal).await? else {
            return Err(refused(format!(
                "no tenant has connected Bitrix24 portal '{portal}': connect it (StartAuthorization) before installing \
                 the app"
            )));
        };
        let row = connections::require(&self.db, &tenant, Provider::Bitrix24).await?;
        let creds = self.credentials(&row)?;
        let known = |k: &str| creds[k].as_str().filter(|v| !v.is_empty());
        let (Some(known_member), Some(known_endpoint)) = (known("member_id"), known("client_endpoint")) else {
            return Err(refused(format!(
                "tenant '{tenant}' connected portal '{portal}' without ponte's app (an incoming webhook): its \
                 application token is set with SetApiCredentials"
            )));
        };
        if member_id != known_member {
            return Err(refused(format!(
                "member_id '{member_id}' is not the member id of portal '{portal}' that tenant '{tenant}' connected"
            )));
        }
        if endpoint.trim_end_matches('/') != known_endpoint.trim_end_matches('/') {
            return Err(refused(format!(
                "client_endpoint '{endpoint}' is not the REST address of portal '{portal}' that tenant '{tenant}' \
                 connected"
            )));
        }

        let auth =
            Bitrix24Auth::OAuth { client_endpoint: known_endpoint.to_owned(), access_token: access_token.into() };
        // Reading app.info is safe to retry; the installer waits on the answer, so briefly.
        let info = RetryPolicy { max_attempts: 3, ..Default::default() }
            .run(|_| self.bitrix24_api.app_info(&auth, &portal, Priority::Live))
            .await
            .map_err(|e| match e.class() {
                Class::Permanent => refused(format!("portal '{portal}' refused the installation's access token ({e})")),
                Class::Retriable | Class::RateLimited(_) => ServiceError::unavailable(
                    format!("checking the installation with portal '{portal}' failed ({e}): install the app again"),
                    Some(Duration::from_secs(5)),
                ),
            })?;
        if info.code != app.config().client_id {
            return Err(refused(format!(
                "the installation's access token belongs to app '{}', not to ponte's app",
                info.code
            )));
        }

        let previous = row.open(&self.sealer, Field::WebhookSecret)?;
        let sealed =
            self.sealer.seal(application_token.as_bytes(), &aad(&tenant, Provider::Bitrix24, Field::WebhookSecret));
        connections::set_webhook_secret(&self.db, &row, &sealed).await?;
        let action = match previous {
            None => "stored",
            Some(p) if p == application_token => "unchanged",
            Some(_) => "replaced",
        };
        tracing::info!(
            tenant_id = %tenant,
            portal,
            member_id,
            action,
            "Bitrix24 app installed: application token {action}"
        );
        connections::require(&self.db, &tenant, Provider::Bitrix24).await
    }
}
