//! The inbox: every accepted webhook as a row (`inbox_events`) and one delivery row per
//! subscribing service (`inbox_deliveries`). The rows in `rows`, their states in `state`, the
//! SQL in `store`, the group commit that stores them in `writer`.

pub mod rows;
pub mod state;
pub mod store;
pub mod writer;

pub use rows::{NewDelivery, NewEvent, clean, deliveries_for, lane};
pub use state::{DeliveryState, EventState};
pub use store::{Stored, insert_deliveries, settle, settle_all};
pub use writer::{STORE_TIMEOUT, StoreError, Writer};
