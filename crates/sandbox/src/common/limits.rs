//! Per-second request budgets: a sliding window of the times of the requests admitted, as the
//! 360Envios, CPLUG and Bling sandboxes count them.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

/// The times of the requests admitted within the last window.
#[derive(Debug, Clone, Default)]
pub struct Window(VecDeque<DateTime<Utc>>);

impl Window {
    /// Admits one request at `now` when fewer than `limit` were admitted within `span`;
    /// otherwise how long until one would fit.
    pub fn admit(&mut self, now: DateTime<Utc>, limit: usize, span: Duration) -> Result<(), Duration> {
        while self.0.front().is_some_and(|t| *t + span <= now) {
            self.0.pop_front();
        }
        if self.0.len() >= limit {
            let oldest = self.0.front().copied().unwrap_or(now);
            return Err(oldest + span - now);
        }
        self.0.push_back(now);
        Ok(())
    }

    /// Counts one call at `now` whatever the budget (a block follows once the count is over it);
    /// the calls within `span`, this one included.
    pub fn record(&mut self, now: DateTime<Utc>, span: Duration) -> usize {
        self.0.push_back(now);
        while self.0.front().is_some_and(|t| *t + span < now) {
            self.0.pop_front();
        }
        self.0.len()
    }
}

/// Whole seconds to wait (at least one), as a `Retry-After` header says it.
pub fn retry_after(wait: Duration) -> u64 {
    u64::try_from(wait.num_milliseconds().max(1)).unwrap_or(1000).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_and_says_when_the_next_fits() {
        let t0 = Utc::now();
        let mut w = Window::default();
        let second = Duration::seconds(1);
        assert!((0..3).all(|_| w.admit(t0, 3, second).is_ok()));
        let wait = w.admit(t0 + Duration::milliseconds(400), 3, second).unwrap_err();
        assert_eq!(wait, Duration::milliseconds(600));
        assert_eq!(retry_after(wait), 1);
        assert!(w.admit(t0 + second, 3, second).is_ok(), "the first three left the window");
    }
}
