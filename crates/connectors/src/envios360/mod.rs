//! 360Envios, as ponte's contract defines it (`contracts/envios360.md`): products (awaiting the
//! hub's approval) and orders, cancellation, the forward-only status life cycle and its
//! signed webhooks. Wire types in [`types`]; the HTTP glue in [`client`]; its statuses as
//! ponte's in [`transformers`].

pub mod client;
pub mod transformers;
pub mod types;
pub mod webhooks;

pub use client::Envios360Client;

pub(crate) const SYSTEM: &str = "360Envios";
