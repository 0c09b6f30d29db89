//! Bitrix24 REST: incoming-webhook and OAuth calls through one [`Portal`] handle, 50-row pages,
//! `batch` (at most 50 typed commands, `$result[...]` references), the per-portal leaky bucket
//! shared by every replica, and the error codes classified. Wire types in [`types`]; the HTTP
//! glue in [`client`]; the `crm.*` methods in `crm`, `batch` in [`batch`]; pure conversions to
//! and from ponte's own values in [`transformers`]; the app's own methods (`app.info`) in `app`.

mod app;
pub mod batch;
pub mod client;
mod crm;
pub mod events;
pub mod oauth;
pub mod transformers;
pub mod types;

pub use app::AppInfo;
pub use batch::{Answers, Batch, Ref, Slot, php_query};
pub use client::{Bitrix24Auth, Bitrix24Client, Portal};
pub use oauth::{Bitrix24AppConfig, Bitrix24OAuth, Bitrix24Tokens};
pub use types::{Deal, DealFields, DealId, DealRow, Product, ProductFields, ProductId, PropertyKey, StageId, YesNo};

pub(crate) const SYSTEM: &str = "Bitrix24";

/// The most commands one `batch` call may carry.
pub const BATCH_LIMIT: usize = 50;
