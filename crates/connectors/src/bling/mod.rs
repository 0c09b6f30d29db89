//! Bling ERP, API v3: OAuth 2.0 (authorization code, rotating refresh tokens), the account
//! identity and the resources the flows use. Wire types in [`types`] and [`resources`]; the
//! HTTP glue in [`client`]; the calls on each resource in [`calls`] (contacts in [`contatos`], an
//! order's write-off done once in [`estoque`], what shipping reads of orders and products in
//! [`shipping`], transitions between situações in [`situacoes`]); pure conversions to ponte's
//! values in [`transformers`].

pub mod calls;
pub mod client;
pub mod contatos;
pub mod estoque;
pub mod resources;
pub mod shipping;
pub mod situacoes;
pub mod transformers;
pub mod types;
pub mod webhooks;

pub use calls::{PAGE_SIZE, array_filter};
pub use client::{BlingApi, BlingConfig, BlingOAuth, Caller, TokenSet};

pub(crate) const SYSTEM: &str = "Bling";
