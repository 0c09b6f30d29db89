//! A fake Bitrix24 portal as `contracts/bitrix24.md` describes it. [`Bitrix24`] ([`portal`]) owns the
//! portal's CRM data ([`crm`]: products with numbers as strings, `XML_ID` and `PROPERTY_<n>`,
//! deals and their product rows) and its tokens ([`tokens`]), and serves the REST calls through
//! both ways in, incoming-webhook URLs and OAuth apps ([`oauth`]), with their limits ([`rest`], [`batch`],
//! [`params`]), the outbound events and the app's installation ([`events`]), and the admin
//! routes that seed data and act "as a person in the CRM" ([`admin`]);
//! [`Bitrix24::product_writes`] reports each product write as it is applied.

// Handlers short-circuit with the response to send; its size does not matter in a fake.
#![allow(clippy::result_large_err)]

mod admin;
mod batch;
mod crm;
mod events;
mod oauth;
mod params;
mod portal;
mod rest;
mod tokens;

use std::{net::SocketAddr, ops::Deref};

use axum::{
    Router,
    http::StatusCode,
    routing::{any, get},
};
use tokio::net::TcpListener;

pub use crate::common::{Clock, Reorder, ReorderSettings};
pub use crm::{MethodError, Property, STAGES};
pub use params::parse_php_query;
pub use portal::{Binding, Bitrix24, Config, EventDelivery, ProductWrite, Stats};

use crate::common::{self, Served};
use portal::error;

impl Bitrix24 {
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/rest/{user}/{code}/{method}", any(rest::webhook_call))
            .route("/rest/{method}", any(rest::oauth_call))
            .route("/oauth/token/", any(oauth::token))
            .route("/oauth/token", any(oauth::token))
            .route("/oauth/authorize/", get(oauth::authorize))
            .route("/oauth/authorize", get(oauth::authorize))
            .merge(admin::routes())
            .fallback(|| async { error(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!") })
            .with_state(self.clone());
        self.rt.wrap(api)
    }

    /// Serves the portal on `listener` (or 127.0.0.1 on a free port) until the handle drops.
    pub async fn spawn(self, listener: Option<TcpListener>) -> std::io::Result<Handle> {
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await?,
        };
        let addr = listener.local_addr()?;
        // Tokens and events name the portal's REST base, known once it listens.
        self.inner.lock().client_endpoint = format!("http://{addr}/rest/");
        common::scan::record([&self.config.client_secret, &self.config.application_token, &self.config.webhook_code]);
        let served = common::server::serve(self.router(), Some(listener)).await?;
        let webhook_url = format!("http://{addr}/rest/{}/{}/", self.config.webhook_user, self.config.webhook_code);
        Ok(Handle {
            addr,
            base_url: format!("http://{addr}"),
            webhook_url,
            token_url: format!("http://{addr}/oauth/token/"),
            portal: self,
            _served: served,
        })
    }
}

/// Starts a portal with `config` on 127.0.0.1 and a free port.
pub async fn spawn(config: Config) -> std::io::Result<Handle> {
    Bitrix24::new(config).spawn(None).await
}

/// A running portal; it serves until dropped. Derefs to the [`Bitrix24`] admin helpers.
pub struct Handle {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`: admin routes hang off it.
    pub base_url: String,
    /// The incoming-webhook base URL, e.g. `http://127.0.0.1:41234/rest/1/abc123def456ghi7/`.
    pub webhook_url: String,
    /// The OAuth token endpoint.
    pub token_url: String,
    pub portal: Bitrix24,
    /// Serves until the handle is dropped.
    _served: Served,
}

impl Handle {
    /// The REST base OAuth calls use (`client_endpoint`).
    pub fn client_endpoint(&self) -> String {
        format!("http://{}/rest/", self.addr)
    }
}

impl Deref for Handle {
    type Target = Bitrix24;

    fn deref(&self) -> &Bitrix24 {
        &self.portal
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{Value, json};

    use super::*;

    #[tokio::test]
    async fn product_writes_are_reported_as_they_are_applied() {
        let portal = spawn(Config::for_tests()).await.unwrap();
        portal.seed_product(json!({"NAME": "Seeded"})).unwrap();
        let mut writes = portal.product_writes();
        let call = |method: &str, body: Value| {
            reqwest::Client::new().post(format!("{}{method}.json", portal.webhook_url)).json(&body).send()
        };
        let before = Instant::now();
        let added = call("crm.product.add", json!({"fields": {"NAME": "Copo"}})).await.unwrap();
        let id = added.json::<Value>().await.unwrap()["result"].as_u64().unwrap();
        let batch = json!({"halt": 1, "cmd": {"u": format!("crm.product.update?id={id}&fields[NAME]=Caneca"),
                                             "g": format!("crm.product.get?id={id}")}});
        assert_eq!(call("batch", batch).await.unwrap().status(), 200);
        portal.edit_product_in_ui(id, json!({"NAME": "Caneca grande"})).unwrap();
        call("crm.product.delete", json!({"id": id})).await.unwrap();

        let mut seen = Vec::new();
        while let Ok(w) = writes.try_recv() {
            assert!(w.at >= before);
            seen.push((w.event, w.id, w.product.map(|p| p["NAME"].clone())));
        }
        assert_eq!(
            seen,
            [
                ("ONCRMPRODUCTADD", id, Some(json!("Copo"))),
                ("ONCRMPRODUCTUPDATE", id, Some(json!("Caneca"))),
                ("ONCRMPRODUCTUPDATE", id, Some(json!("Caneca grande"))),
                ("ONCRMPRODUCTDELETE", id, None),
            ]
        );
    }
}
