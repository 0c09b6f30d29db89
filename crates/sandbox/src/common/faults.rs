//! Faults switched on at run time through `GET|PUT /__admin/faults` (a 5xx rate, added latency,
//! a storm of rate-limit answers, dropped, duplicated and held-back webhooks), answered in each
//! system's own error shape.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// The faults in force. Every field defaults to "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultSettings {
    /// Fraction (0..=1) of API requests answered with the system's 5xx.
    pub error_rate: f64,
    /// Added to every API answer.
    pub latency_ms: u64,
    /// The next this-many API requests are answered with the system's rate-limit error.
    pub storm: u64,
    /// Fraction of outbound webhooks never sent.
    pub webhook_drop_rate: f64,
    /// Fraction of outbound webhooks sent twice.
    pub webhook_duplicate_rate: f64,
    /// Fraction of outbound webhooks held back before their first attempt, so that later
    /// ones overtake them (reordering), and for how long (real milliseconds).
    pub webhook_reorder_rate: f64,
    pub webhook_hold_ms: u64,
    /// Makes the random choices repeatable.
    pub seed: Option<u64>,
}

/// A system's own answers for the injected faults.
#[derive(Clone)]
pub struct Native {
    pub server_error: fn() -> Response,
    pub rate_limited: fn() -> Response,
}

/// Shared, switchable faults.
#[derive(Clone)]
pub struct Faults {
    settings: Arc<Mutex<(FaultSettings, StdRng)>>,
    native: Native,
}

impl Faults {
    pub fn new(native: Native) -> Self {
        Self { settings: Arc::new(Mutex::new((FaultSettings::default(), StdRng::from_os_rng()))), native }
    }

    pub fn set(&self, s: FaultSettings) {
        let rng = match s.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        *self.settings.lock() = (s, rng);
    }

    pub fn get(&self) -> FaultSettings {
        self.settings.lock().0.clone()
    }

    /// What to do with one API request: answer now with a fault, or go on after `delay`.
    fn decide(&self) -> (Duration, Option<Response>) {
        let mut guard = self.settings.lock();
        let (s, rng) = &mut *guard;
        let delay = Duration::from_millis(s.latency_ms);
        if s.storm > 0 {
            s.storm -= 1;
            return (delay, Some((self.native.rate_limited)()));
        }
        if s.error_rate > 0.0 && rng.random::<f64>() < s.error_rate {
            return (delay, Some((self.native.server_error)()));
        }
        (delay, None)
    }

    /// How many times to send one outbound webhook: 0 (dropped), 1 or 2 (duplicated).
    pub fn webhook_copies(&self) -> usize {
        let mut guard = self.settings.lock();
        let (s, rng) = &mut *guard;
        if s.webhook_drop_rate > 0.0 && rng.random::<f64>() < s.webhook_drop_rate {
            return 0;
        }
        if s.webhook_duplicate_rate > 0.0 && rng.random::<f64>() < s.webhook_duplicate_rate {
            return 2;
        }
        1
    }

    /// How long to hold the next outbound webhook back before its first attempt (zero unless
    /// reordering is on and picks it).
    pub fn webhook_hold(&self) -> Duration {
        let mut guard = self.settings.lock();
        let (s, rng) = &mut *guard;
        if s.webhook_reorder_rate > 0.0 && rng.random::<f64>() < s.webhook_reorder_rate {
            Duration::from_millis(s.webhook_hold_ms.max(1))
        } else {
            Duration::ZERO
        }
    }

    /// Wraps a sandbox's router: faults apply to every route but `/__admin/*`, which gains
    /// `GET|PUT /__admin/faults`.
    pub fn wrap(&self, router: Router) -> Router {
        let admin = Router::new().route("/__admin/faults", get(get_faults).put(put_faults)).with_state(self.clone());
        router.layer(middleware::from_fn_with_state(self.clone(), inject)).merge(admin)
    }
}

async fn inject(State(f): State<Faults>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/__admin") {
        return next.run(req).await;
    }
    let (delay, fault) = f.decide();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some(resp) => resp,
        None => next.run(req).await,
    }
}

async fn get_faults(State(f): State<Faults>) -> Json<FaultSettings> {
    Json(f.get())
}

async fn put_faults(State(f): State<Faults>, Json(s): Json<FaultSettings>) -> Response {
    let bad_rate = |r: f64| !(0.0..=1.0).contains(&r);
    if bad_rate(s.error_rate) || bad_rate(s.webhook_drop_rate) || bad_rate(s.webhook_duplicate_rate) {
        return (axum::http::StatusCode::BAD_REQUEST, "rates are fractions from 0 to 1").into_response();
    }
    f.set(s.clone());
    Json(s).into_response()
}
