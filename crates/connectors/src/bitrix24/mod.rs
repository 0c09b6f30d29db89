//! Bitrix24 REST: incoming-webhook and OAuth calls, 50-row pages, `batch` (at most 50
//! commands, `$result[...]` references), the per-portal leaky bucket shared by every replica,
//! and the error codes classified. Wire types in [`types`]; the HTTP glue in [`client`]; the
//! app's own methods (`app.info`) in `app`.

mod app;
pub mod client;
pub mod events;
pub mod oauth;
pub mod types;

pub use app::AppInfo;
pub use client::{BatchCommand, Bitrix24Auth, Bitrix24Client, php_query};
pub use oauth::{Bitrix24AppConfig, Bitrix24OAuth, Bitrix24Tokens};

pub(crate) const SYSTEM: &str = "Bitrix24";

/// The most commands one `batch` call may carry.
pub const BATCH_LIMIT: usize = 50;
