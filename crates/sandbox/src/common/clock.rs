//! A sandbox's clock: sandbox time runs `scale` times faster than real time, tests move it
//! forward, and `GET|POST /__admin/clock` shows and advances it.

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
