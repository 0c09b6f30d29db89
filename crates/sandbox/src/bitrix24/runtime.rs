//! What the Bitrix24, 360Envios and CPLUG sandboxes share beyond `common`: the sandbox clock
//! (scaled, movable by tests, `GET|POST /__admin/clock`) and reordered webhook delivery
//! (`GET|PUT /__admin/webhook-order`: a share of events held back so later ones overtake them).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// A sandbox's clock: sandbox time runs `scale` times faster than real time, and tests can
/// move it forward.
#[derive(Clone)]
pub struct Clock {
    origin: Instant,
    origin_utc: DateTime<Utc>,
    scale: f64,
    offset: Arc<Mutex<chrono::Duration>>,
}

impl Clock {
    /// A clock starting now; a scale that is not a positive number means real time.
    pub fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        Self { origin: Instant::now(), origin_utc: Utc::now(), scale, offset: Arc::default() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.origin.elapsed().mul_f64(self.scale);
        self.origin_utc + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero()) + *self.offset.lock()
    }

    /// Sandbox seconds per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Moves the clock forward (tokens expire, limits refill).
    pub fn advance(&self, by: Duration) {
        *self.offset.lock() += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
    }

    /// How long to really wait for `d` of sandbox time.
    pub fn real(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }

    /// `GET /__admin/clock` (now and the scale) and `POST /__admin/clock` with
    /// `{"advance_seconds": n}`.
    pub fn routes(&self) -> Router {
        Router::new().route("/__admin/clock", get(read_clock).post(advance_clock)).with_state(self.clone())
    }
}

#[derive(Serialize)]
struct ClockView {
    now: String,
    time_scale: f64,
}

async fn read_clock(State(c): State<Clock>) -> Json<ClockView> {
    Json(ClockView { now: c.now().to_rfc3339(), time_scale: c.scale })
}

#[derive(Deserialize)]
struct Advance {
    advance_seconds: f64,
}

async fn advance_clock(State(c): State<Clock>, body: Option<Json<Advance>>) -> Response {
    match body {
        Some(Json(a)) if a.advance_seconds.is_finite() && (0.0..=1e9).contains(&a.advance_seconds) => {
            c.advance(Duration::from_secs_f64(a.advance_seconds));
            read_clock(State(c)).await.into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "send {\"advance_seconds\": <0 to 1e9>}").into_response(),
    }
}

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
