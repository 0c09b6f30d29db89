//! Methods about the app itself rather than the CRM: `app.info`, which tells which app an
//! access token was issued to. Any OAuth token may call it (no scope needed); it is how an
//! installation's token is checked before anything it says is trusted.

use ponte_core::ratelimit::Priority;
use serde::Deserialize;
use serde_json::json;

use super::{Bitrix24Auth, Bitrix24Client, Portal, types::Envelope};
use crate::error::ConnectorError;

/// `app.info`'s answer, as far as ponte reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct AppInfo {
    /// The app's code: its `client_id` (`local.56017020f07e17.98523769` for a local app).
    #[serde(rename = "CODE")]
    pub code: String,
}

impl Portal {
    /// The app this portal's token belongs to.
    pub async fn app_info(&self) -> Result<AppInfo, ConnectorError> {
        let env: Envelope<AppInfo> = self.call("app.info", &json!({})).await?;
        Ok(env.result)
    }
}

impl Bitrix24Client {
    /// The app `auth`'s token belongs to, on `portal`.
    pub async fn app_info(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
    ) -> Result<AppInfo, ConnectorError> {
        self.portal(auth.clone(), portal, priority).app_info().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_parses() {
        // The example of the official app.info page.
        let body = r#"{"result":{"ID":"7","CODE":"local.56017020f07e17.98523769","VERSION":1,"STATUS":"L",
            "INSTALLED":true,"PAYMENT_EXPIRED":"N","DAYS":null,"LICENSE":"ru_project"}}"#;
        let env: Envelope<AppInfo> = serde_json::from_str(body).unwrap();
        assert_eq!(env.result.code, "local.56017020f07e17.98523769");
    }
}
