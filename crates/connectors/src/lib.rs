//! Clients of the outside systems ponte talks to, one module each: the HTTP glue (URLs,
//! headers, auth, error bodies) in `client.rs`, the vendor's wire types exactly as it sends
//! them in `types.rs`, and pure conversions to and from ponte's own types (vendor statuses
//! through `From`/`TryFrom`) in `transformers.rs`. A service never builds a vendor URL, names a
//! vendor method or parses a vendor body itself.
//!
//! Every error is classified ([`ConnectorError`] implements `ponte_core::retry::Classify`)
//! so one retry policy serves every system.

pub mod bitrix24;
pub mod bling;
pub mod cplug;
pub mod envios360;
pub mod error;
pub mod http;
pub mod json;
pub mod outside;
pub mod webhooks;

pub use error::{CallError, ConnectorError};
pub use outside::Outside;
