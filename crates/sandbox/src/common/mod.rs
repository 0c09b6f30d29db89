//! What every sandbox shares, built once: the [`Runtime`] each one runs on (faults switched at
//! run time, [`faults`]; the sandbox clock, [`clock`]; held-back webhooks, [`reorder`]; signed
//! webhook delivery with retries and a stable event id, [`webhooks`]) with the admin routes that
//! switch them, serving a router on a port ([`server`]), per-second request windows
//! ([`limits`]), and reading bearer tokens and amounts ([`values`]).

pub mod clock;
pub mod faults;
pub mod limits;
pub mod reorder;
pub mod scan;
pub mod server;
pub mod values;
pub mod webhooks;

pub use clock::Clock;
pub use faults::{FaultSettings, Faults, Native};
pub use limits::Window;
pub use reorder::{Reorder, ReorderSettings};
pub use server::Served;
pub use webhooks::{Attempt, Outbox, Retry, sign};

use axum::Router;

/// The accessors every sandbox type has over its [`Runtime`] (its field `rt`), written once:
/// `faults()`, `clock()` and `reorder()`.
macro_rules! runtime_accessors {
    () => {
        /// Faults switched on at run time (also through `PUT /__admin/faults`).
        pub fn faults(&self) -> &$crate::common::Faults {
            &self.rt.faults
        }

        /// The sandbox's clock: scaled by its `time_scale`, moved by tests (also
        /// `GET|POST /__admin/clock`).
        pub fn clock(&self) -> &$crate::common::Clock {
            &self.rt.clock
        }

        /// Reordering of outbound webhooks (also through `PUT /__admin/webhook-order`).
        pub fn reorder(&self) -> &$crate::common::Reorder {
            &self.rt.reorder
        }
    };
}
pub(crate) use runtime_accessors;

/// What a sandbox runs on: its faults, its clock, the reordering of its webhooks and the
/// outbox that sends them; clone freely (clones share everything).
#[derive(Clone)]
pub struct Runtime {
    pub faults: Faults,
    pub clock: Clock,
    pub reorder: Reorder,
    pub outbox: Outbox,
}

impl Runtime {
    /// `native`: the system's own answers for injected faults; `time_scale`: sandbox seconds
    /// per real second.
    pub fn new(native: Native, time_scale: f64) -> Self {
        let faults = Faults::new(native);
        let clock = Clock::new(time_scale);
        let reorder = Reorder::default();
        let outbox = Outbox::new(faults.clone(), reorder.clone(), clock.clone());
        Self { faults, clock, reorder, outbox }
    }

    /// A sandbox's routes behind its faults, plus the admin routes every sandbox has:
    /// `/__admin/faults`, `/__admin/clock` and `/__admin/webhook-order`.
    pub fn wrap(&self, routes: Router) -> Router {
        self.faults.wrap(routes).merge(self.clock.routes()).merge(self.reorder.routes())
    }
}
