//! A fake Bling v3 account, served over HTTP as `contracts/bling-v3.md` and the official
//! OpenAPI spec describe it. [`Bling`] owns the account's state ([`store`], starting from
//! [`seed`]) and answers every route the way Bling does: OAuth ([`oauth`], [`tokens`]), the
//! bearer gate and rate limits ([`access`]), the error envelope for every refusal
//! ([`errors`]), query strings ([`query`]), products, contacts, sales orders ([`orders`],
//! checked by [`order_body`]), stock per depósito, situações and the account's set-up (one
//! module each), the signed v1 webhooks that echo every change ([`webhooks`]) and the admin
//! routes tests read ([`admin`]).

// Handlers short-circuit with the response to send; its size does not matter in a fake.
#![allow(clippy::result_large_err)]

mod access;
mod account;
mod admin;
mod contacts;
mod errors;
mod oauth;
mod order_body;
mod orders;
mod products;
mod query;
mod seed;
mod situacoes;
mod stock;
mod store;
mod tokens;
mod webhooks;

use std::{collections::HashMap, net::SocketAddr};

use axum::{
    Router,
    http::header,
    middleware,
    routing::{get, patch, post},
};
use tokio::net::TcpListener;

use crate::common::{self, Served};

pub use seed::{
    CANAIS, CANAL_PDV, CONSUMIDOR_FINAL, DEPOSITO_GERAL, DEPOSITOS, FORMAS, MODULO_COMPRAS, MODULO_VENDAS,
    SITUACOES_VENDAS,
};
pub use store::{Bling, Config, Movement, Operacao, SituacaoMove, Stats};

impl Bling {
    /// The router, to serve under any base (`/Api/v3` is part of its paths).
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/Api/v3/empresas/me/dados-basicos", get(account::dados_basicos))
            .route("/Api/v3/produtos", get(products::list).post(products::create))
            .route("/Api/v3/produtos/{id}", get(products::get_one).put(products::replace))
            .route("/Api/v3/produtos/{id}/situacoes", patch(products::situacao))
            .route("/Api/v3/contatos", get(contacts::list).post(contacts::create))
            .route("/Api/v3/contatos/consumidor-final", get(contacts::consumidor_final))
            .route("/Api/v3/contatos/{id}", get(contacts::get_one))
            .route("/Api/v3/pedidos/vendas", get(orders::list).post(orders::create))
            .route("/Api/v3/pedidos/vendas/{id}", get(orders::get_one).put(orders::replace).delete(orders::delete))
            .route("/Api/v3/pedidos/vendas/{id}/situacoes/{situacao}", patch(orders::situacao))
            .route("/Api/v3/pedidos/vendas/{id}/lancar-estoque", post(stock::lancar))
            .route("/Api/v3/pedidos/vendas/{id}/lancar-estoque/{deposito}", post(stock::lancar_em))
            .route("/Api/v3/pedidos/vendas/{id}/estornar-estoque", post(stock::estornar))
            .route("/Api/v3/pedidos/vendas/{id}/lancar-contas", post(orders::lancar_contas))
            .route("/Api/v3/pedidos/vendas/{id}/estornar-contas", post(orders::estornar_contas))
            .route("/Api/v3/estoques", post(stock::create))
            .route("/Api/v3/estoques/saldos", get(stock::saldos))
            .route("/Api/v3/estoques/saldos/{deposito}", get(stock::saldos_do_deposito))
            .route("/Api/v3/situacoes", post(situacoes::create))
            .route("/Api/v3/situacoes/transicoes", post(situacoes::create_transicao))
            .route("/Api/v3/situacoes/{id}", get(situacoes::get_one))
            .route("/Api/v3/situacoes/modulos", get(situacoes::modulos))
            .route("/Api/v3/situacoes/modulos/{id}", get(situacoes::do_modulo))
            .route("/Api/v3/situacoes/modulos/{id}/acoes", get(situacoes::acoes))
            .route("/Api/v3/situacoes/modulos/{id}/transicoes", get(situacoes::transicoes))
            .route("/Api/v3/formas-pagamentos", get(account::formas_pagamento).post(account::create_forma_pagamento))
            .route("/Api/v3/depositos", get(account::depositos))
            .route("/Api/v3/canais-venda", get(account::canais_venda))
            .route_layer(middleware::from_fn_with_state(self.clone(), access::gate));
        let router = api
            .route("/Api/v3/oauth/authorize", get(oauth::authorize).post(oauth::approve))
            .route("/Api/v3/oauth/token", post(oauth::token))
            .route("/Api/v3/oauth/revoke", post(oauth::revoke))
            .merge(admin::routes())
            .fallback(errors::unknown_route)
            .method_not_allowed_fallback(errors::method_not_allowed)
            .with_state(self.clone());
        self.rt.wrap(router)
    }

    /// Serves the fake on `listener` (or 127.0.0.1:0) until the handle is dropped.
    pub async fn spawn(self, listener: Option<TcpListener>) -> std::io::Result<Handle> {
        common::scan::record([&self.config.client_secret]);
        let served = common::server::serve(self.router(), listener).await?;
        let addr = served.addr;
        Ok(Handle { addr, base_url: format!("http://{addr}/Api/v3"), bling: self, _served: served })
    }
}

/// A running fake.
pub struct Handle {
    pub addr: SocketAddr,
    /// The API base, e.g. `http://127.0.0.1:41234/Api/v3` (OAuth lives under it too).
    pub base_url: String,
    pub bling: Bling,
    /// Serves until the handle is dropped.
    _served: Served,
}

impl Handle {
    /// What a merchant's browser does: opens the authorize URL and returns the `code` Bling
    /// redirects with (or the `error` when denied), for `state`.
    pub async fn authorize(&self, authorize_url: &str) -> Result<(String, String), String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client.get(authorize_url).send().await.map_err(|e| e.to_string())?;
        let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).ok_or("no redirect")?;
        let url = url::Url::parse(location).map_err(|e| e.to_string())?;
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        match (q.get("code"), q.get("error")) {
            (Some(code), _) => Ok((code.clone(), q.get("state").cloned().unwrap_or_default())),
            (_, Some(err)) => Err(err.clone()),
            _ => Err("redirect without code or error".into()),
        }
    }
}
