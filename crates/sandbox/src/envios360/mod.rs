//! A fake 360Envios hub, as ponte's contract defines it (`contracts/envios360.md`, with ponte's
//! product-image extension in `docs/contracts/envios360.md`). [`Envios360`] ([`hub`]) owns each
//! merchant's products and orders ([`store`]) and serves the HTTP API ([`api`], answering in
//! the contract's error envelope, [`errors`]), the hub's own status moves and approval decisions
//! pushed as signed webhooks ([`lifecycle`]), and the admin routes that drive them ([`admin`]).

// Handlers short-circuit with the response to send; its size does not matter in a fake.
#![allow(clippy::result_large_err)]

mod admin;
mod api;
mod errors;
mod hub;
mod lifecycle;
mod store;

use std::{net::SocketAddr, ops::Deref};

use axum::{
    Router,
    http::StatusCode,
    routing::{get, post},
};
use tokio::net::TcpListener;

pub use crate::common::sign;
pub use hub::{Config, Delivery, Envios360, Stats};
pub use store::{CANCELLED, FieldError, MAX_IMAGES, STATUSES, Transition};

use crate::common::{self, Served};

impl Envios360 {
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/products", post(api::create_product))
            .route("/v1/products/{id}", get(api::get_product))
            .route("/v1/orders", post(api::create_order).get(api::find_orders))
            .route("/v1/orders/{id}", get(api::get_order).put(api::update_order))
            .route("/v1/orders/{id}/cancel", post(api::cancel_order))
            .merge(admin::routes())
            .fallback(|| async { errors::error(StatusCode::NOT_FOUND, "not_found", "Not found") })
            .with_state(self.clone());
        self.rt.wrap(api)
    }

    /// Serves the hub on `listener` (or 127.0.0.1 on a free port) until the handle drops.
    pub async fn spawn(self, listener: Option<TcpListener>) -> std::io::Result<Handle> {
        common::scan::record([&self.config.api_token, &self.config.webhook_secret]);
        let served = common::server::serve(self.router(), listener).await?;
        let addr = served.addr;
        Ok(Handle {
            addr,
            base_url: format!("http://{addr}/v1"),
            admin_url: format!("http://{addr}/__admin"),
            hub: self,
            _served: served,
        })
    }
}

/// Starts a hub with `config` on 127.0.0.1 and a free port.
pub async fn spawn(config: Config) -> std::io::Result<Handle> {
    Envios360::new(config).spawn(None).await
}

/// A running hub; it serves until dropped. Derefs to the [`Envios360`] admin helpers.
pub struct Handle {
    pub addr: SocketAddr,
    /// The API base, e.g. `http://127.0.0.1:41234/v1`.
    pub base_url: String,
    /// `http://127.0.0.1:41234/__admin`.
    pub admin_url: String,
    pub hub: Envios360,
    /// Serves until the handle is dropped.
    _served: Served,
}

impl Deref for Handle {
    type Target = Envios360;

    fn deref(&self) -> &Envios360 {
        &self.hub
    }
}
