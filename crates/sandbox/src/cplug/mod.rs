//! A fake CPLUG (ConnectPlug) point of sale, as ponte's contract defines it
//! (`contracts/cplug.md`). [`Cplug`] ([`pdv`]) owns each account's catalog and sales ([`store`]) and
//! serves the product API ([`api`]), the till that rings up and cancels sales and pushes them
//! as signed webhooks ([`till`]), and the admin routes ([`admin`]).

// Handlers short-circuit with the response to send; its size does not matter in a fake.
#![allow(clippy::result_large_err)]

mod admin;
mod api;
mod errors;
mod pdv;
mod store;
mod till;

use std::{net::SocketAddr, ops::Deref};

use axum::{
    Router,
    http::StatusCode,
    routing::{get, post, put},
};
use tokio::net::TcpListener;

pub use crate::common::sign;
pub use pdv::{BULK_LIMIT, Config, Cplug, Delivery, MAX_PER_PAGE, Stats};
pub use store::{Errors, Payment, Sale, SaleItem};

use crate::common::{self, Served};

impl Cplug {
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/v3/oauth/token", post(api::token))
            .route("/api/v3/products", get(api::list))
            .route("/api/v3/products/{external_id}", put(api::upsert).delete(api::delete))
            .route("/api/v3/bulks/products", put(api::bulk))
            .merge(admin::routes())
            .fallback(|| async { errors::plain(StatusCode::NOT_FOUND, "Not Found.") })
            .with_state(self.clone());
        self.rt.wrap(api)
    }

    /// Serves the PDV on `listener` (or 127.0.0.1 on a free port) until the handle drops.
    pub async fn spawn(self, listener: Option<TcpListener>) -> std::io::Result<Handle> {
        let c = self.config();
        common::scan::record([&c.client_secret, &c.password, &c.webhook_secret]);
        let served = common::server::serve(self.router(), listener).await?;
        let addr = served.addr;
        Ok(Handle {
            addr,
            base_url: format!("http://{addr}/api/v3"),
            admin_url: format!("http://{addr}/__admin"),
            cplug: self,
            _served: served,
        })
    }
}

/// Starts a PDV with `config` on 127.0.0.1 and a free port.
pub async fn spawn(config: Config) -> std::io::Result<Handle> {
    Cplug::new(config).spawn(None).await
}

/// A running PDV; it serves until dropped. Derefs to the [`Cplug`] admin helpers.
pub struct Handle {
    pub addr: SocketAddr,
    /// The API base, e.g. `http://127.0.0.1:41234/api/v3`.
    pub base_url: String,
    /// `http://127.0.0.1:41234/__admin`.
    pub admin_url: String,
    pub cplug: Cplug,
    /// Serves until the handle is dropped.
    _served: Served,
}

impl Deref for Handle {
    type Target = Cplug;

    fn deref(&self) -> &Cplug {
        &self.cplug
    }
}
