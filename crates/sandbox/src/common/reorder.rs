//! Reordered webhook delivery, switched at run time through `GET|PUT /__admin/webhook-order`:
//! a share of events is held back before its first attempt so that later ones overtake it.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// How webhooks are reordered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReorderSettings {
    /// Fraction (0..=1) of events held back before their first delivery.
    pub reorder_rate: f64,
    /// How long a held event waits, in real milliseconds.
    pub hold_ms: u64,
    pub seed: Option<u64>,
}

/// Switchable reordering of outbound webhooks.
#[derive(Clone)]
pub struct Reorder {
    state: Arc<Mutex<(ReorderSettings, StdRng)>>,
}

impl Default for Reorder {
    fn default() -> Self {
        Self { state: Arc::new(Mutex::new((ReorderSettings::default(), StdRng::from_os_rng()))) }
    }
}

impl Reorder {
    pub fn set(&self, s: ReorderSettings) {
        let rng = s.seed.map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64);
        *self.state.lock() = (s, rng);
    }

    pub fn get(&self) -> ReorderSettings {
        self.state.lock().0.clone()
    }

    /// How long to hold the next event back before its first attempt (zero for most).
    pub fn hold(&self) -> Duration {
        let mut guard = self.state.lock();
        let (s, rng) = &mut *guard;
        if s.reorder_rate > 0.0 && rng.random::<f64>() < s.reorder_rate {
            Duration::from_millis(s.hold_ms.max(1))
        } else {
            Duration::ZERO
        }
    }

    /// `GET|PUT /__admin/webhook-order`.
    pub fn routes(&self) -> Router {
        Router::new().route("/__admin/webhook-order", get(read_order).put(write_order)).with_state(self.clone())
    }
}

async fn read_order(State(r): State<Reorder>) -> Json<ReorderSettings> {
    Json(r.get())
}

async fn write_order(State(r): State<Reorder>, body: Option<Json<ReorderSettings>>) -> Response {
    match body {
        Some(Json(s)) if (0.0..=1.0).contains(&s.reorder_rate) => {
            r.set(s.clone());
            Json(s).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "send {\"reorder_rate\": <0 to 1>, \"hold_ms\": n}").into_response(),
    }
}
