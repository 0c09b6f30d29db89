//! One retry policy for every outbound call. What may be retried is the caller's knowledge
//! ([`Classify`]: each connector classifies its own errors); how long to wait is here:
//! exponential backoff with full jitter, or the wait a rate-limited answer asked for.
//!
//! Why not backon: its jitter adds up to one more delay on top of the exponential one, so
//! clients retrying together stay bunched within a factor of two, where full jitter spreads
//! them over the whole window; and the dispatcher needs the n-th delay of a schedule it keeps in
//! its database, not a loop around a future. Both fit in the few lines below.

use std::{future::Future, time::Duration};

use rand::Rng;

/// How an error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A transient fault (5xx, timeout, connection reset): try again after a backoff.
    Retriable,
    /// The other side asked us to slow down; wait this long (or a backoff when it did not say).
    RateLimited(Option<Duration>),
    /// Retrying cannot help (validation error, not found, revoked grant).
    Permanent,
}

pub trait Classify {
    fn class(&self) -> Class;
}

/// How many times and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (`attempt` starts at 1): uniform in
    /// `[0, min(max_delay, base_delay * 2^(attempt-1))]`, so retrying clients spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1_u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_delay);
        Duration::from_micros(rand::rng().random_range(0..=cap.as_micros().max(1) as u64))
    }

    /// Runs `op` until it succeeds, fails permanently, or the attempts run out; returns the
    /// last error then. `op` receives the attempt number (from 1).
    pub async fn run<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Classify,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            let err = match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let wait = match err.class() {
                Class::Permanent => return Err(err),
                _ if attempt >= self.max_attempts => return Err(err),
                // The other side knows when it will take requests again: its wait overrides
                // `max_delay`, which caps only the backoff ponte chooses itself.
                Class::RateLimited(Some(wait)) => wait,
                Class::RateLimited(None) | Class::Retriable => self.backoff(attempt),
            };
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, "retrying after a transient failure");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug, PartialEq)]
    struct E(Class);
    impl Classify for E {
        fn class(&self) -> Class {
            self.0
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p =
            RetryPolicy { max_attempts: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for attempt in 1..12 {
            let cap = Duration::from_millis(100 * (1 << (attempt - 1).min(10))).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(p.backoff(attempt) <= cap);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let r: Result<u32, E> = RetryPolicy::default()
            .run(|n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 3 { Err(E(Class::Retriable)) } else { Ok(n) } }
            })
            .await;
        assert_eq!(r, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_stop_at_once_and_attempts_are_bounded() {
        let calls = AtomicU32::new(0);
        let r: Result<(), E> = RetryPolicy::default()
            .run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(E(Class::Permanent)) }
            })
            .await;
        assert_eq!((r, calls.load(Ordering::SeqCst)), (Err(E(Class::Permanent)), 1));
        calls.store(0, Ordering::SeqCst);
        let _: Result<(), E> = RetryPolicy { max_attempts: 4, ..Default::default() }
            .run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(E(Class::Retriable)) }
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_answer_waits_as_long_as_asked() {
        let start = tokio::time::Instant::now();
        let r: Result<u32, E> =
            RetryPolicy::default()
                .run(|n| async move {
                    if n == 1 { Err(E(Class::RateLimited(Some(Duration::from_secs(30))))) } else { Ok(n) }
                })
                .await;
        assert_eq!(r, Ok(2));
        assert!(start.elapsed() >= Duration::from_secs(30));
    }
}
