//! The dispatcher's settings, from `PONTE_DISPATCH_*`.

use std::time::Duration;

use ponte_core::{
    config::{ConfigError, Env},
    retry::RetryPolicy,
};

/// How the dispatcher delivers, from `PONTE_DISPATCH_*`.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// `PONTE_DISPATCH_ENABLED`: a replica that only receives can turn it off.
    pub enabled: bool,
    /// `PONTE_DISPATCH_MAX_ATTEMPTS`: attempts per delivery before it is a dead letter.
    pub max_attempts: u32,
    /// `PONTE_DISPATCH_BACKOFF_MS` and `PONTE_DISPATCH_MAX_BACKOFF_SECONDS`.
    pub backoff: RetryPolicy,
    /// `PONTE_DISPATCH_DEADLINE_SECONDS`: the gRPC deadline of one delivery.
    pub deadline: Duration,
    /// `PONTE_DISPATCH_LEASE_SECONDS`: how long a claim is held before another replica may
    /// take it over (longer than the deadline).
    pub lease: Duration,
    /// `PONTE_DISPATCH_POLL_MS`: the fallback poll when no wake arrives.
    pub poll: Duration,
    /// `PONTE_DISPATCH_CONCURRENCY`: deliveries in flight at once per replica.
    pub concurrency: usize,
}

impl DispatchConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let max_attempts: u32 = env.parse_or("PONTE_DISPATCH_MAX_ATTEMPTS", 12, "a whole number of attempts")?;
        if max_attempts == 0 {
            return Err(ConfigError::new("PONTE_DISPATCH_MAX_ATTEMPTS", "must be at least 1"));
        }
        let base_ms: u64 = env.parse_or("PONTE_DISPATCH_BACKOFF_MS", 500, "a whole number of milliseconds")?;
        let max_delay = env.seconds_or("PONTE_DISPATCH_MAX_BACKOFF_SECONDS", 600, 1)?;
        let deadline = env.seconds_or("PONTE_DISPATCH_DEADLINE_SECONDS", 10, 1)?;
        let lease = env.seconds_or("PONTE_DISPATCH_LEASE_SECONDS", 60, 1)?;
        if lease <= deadline {
            return Err(ConfigError::new(
                "PONTE_DISPATCH_LEASE_SECONDS",
                format!(
                    "{}s must be longer than the delivery deadline ({}s, PONTE_DISPATCH_DEADLINE_SECONDS)",
                    lease.as_secs(),
                    deadline.as_secs()
                ),
            ));
        }
        let poll_ms: u64 = env.parse_or("PONTE_DISPATCH_POLL_MS", 2000, "a whole number of milliseconds")?;
        if poll_ms < 10 {
            return Err(ConfigError::new("PONTE_DISPATCH_POLL_MS", format!("{poll_ms} is below the minimum of 10")));
        }
        let concurrency: usize = env.parse_or("PONTE_DISPATCH_CONCURRENCY", 32, "a whole number of deliveries")?;
        if concurrency == 0 {
            return Err(ConfigError::new("PONTE_DISPATCH_CONCURRENCY", "must be at least 1"));
        }
        Ok(Self {
            enabled: env.bool_or("PONTE_DISPATCH_ENABLED", true)?,
            max_attempts,
            backoff: RetryPolicy { max_attempts, base_delay: Duration::from_millis(base_ms.max(1)), max_delay },
            deadline,
            lease,
            poll: Duration::from_millis(poll_ms),
            concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_the_variable() {
        for (var, value) in [
            ("PONTE_DISPATCH_MAX_ATTEMPTS", "0"),
            ("PONTE_DISPATCH_BACKOFF_MS", "soon"),
            ("PONTE_DISPATCH_POLL_MS", "1"),
            ("PONTE_DISPATCH_CONCURRENCY", "0"),
            ("PONTE_DISPATCH_LEASE_SECONDS", "5"),
        ] {
            let err = DispatchConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
        }
        let cfg = DispatchConfig::from_env(&Env::default()).unwrap();
        assert!(cfg.enabled && cfg.lease > cfg.deadline);
    }
}
