//! What every part of sales-ingest works with, built once: the database, the tenants' Bling
//! tokens and client (through the shared per-account budget), the mapping service, the caches
//! of Bling ids and settings, and how the worker drives sales (its limits and timings).

use std::time::Duration;

use ponte_connectors::bling::BlingApi;
use ponte_core::{
    access::AccessTokens,
    background::Background,
    config::{ConfigError, Env},
    db::Database,
};

use moka::future::Cache;
use ponte_core::{BlingId, TenantId};

use crate::{mapping::Mapping, settings::SettingsCache};

/// How the worker drives sales, from `PONTE_SALES_*`.
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    /// `PONTE_SALES_WORKERS`: sales driven at once per replica.
    pub workers: usize,
    /// `PONTE_SALES_LEASE_SECONDS`: how long a worker holds a sale before another may take it over.
    pub lease: Duration,
    /// `PONTE_SALES_SCAN_MS`: how often the scanner looks for due and unfinished sales.
    pub scan: Duration,
    /// `PONTE_SALES_RECHECK_SECONDS`: the first wait before a parked sale is tried again by
    /// itself (doubling up to six hours); a mapping change wakes it at once.
    pub recheck: Duration,
    /// `PONTE_SALES_INLINE_WAIT_MS`: how long a call or a webhook waits for its sale's outcome
    /// before answering with the sale as it stands (the worker goes on).
    pub inline_wait: Duration,
}

impl Tuning {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let workers: usize = env.parse_or("PONTE_SALES_WORKERS", 8, "a whole number of sales")?;
        if workers == 0 {
            return Err(ConfigError::new("PONTE_SALES_WORKERS", "must be at least 1"));
        }
        let scan_ms: u64 = env.parse_or("PONTE_SALES_SCAN_MS", 1000, "a whole number of milliseconds")?;
        if scan_ms < 10 {
            return Err(ConfigError::new("PONTE_SALES_SCAN_MS", format!("{scan_ms} is below the minimum of 10")));
        }
        let inline_ms: u64 = env.parse_or("PONTE_SALES_INLINE_WAIT_MS", 3000, "a whole number of milliseconds")?;
        Ok(Self {
            workers,
            lease: env.seconds_or("PONTE_SALES_LEASE_SECONDS", 180, 1)?,
            scan: Duration::from_millis(scan_ms),
            recheck: env.seconds_or("PONTE_SALES_RECHECK_SECONDS", 300, 1)?,
            inline_wait: Duration::from_millis(inline_ms),
        })
    }

    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Ids remembered at most per cache.
const CAPACITY: u64 = 200_000;

/// Bling ids that do not change once known (see [`crate::lookups`]), per tenant.
#[derive(Clone)]
pub(crate) struct KnownIds {
    pub products: Cache<(TenantId, String), BlingId>,
    pub contacts: Cache<(TenantId, String), BlingId>,
    pub consumidor_final: Cache<TenantId, BlingId>,
}

impl Default for KnownIds {
    fn default() -> Self {
        Self {
            products: Cache::builder().max_capacity(CAPACITY).build(),
            contacts: Cache::builder().max_capacity(CAPACITY).build(),
            consumidor_final: Cache::builder().max_capacity(CAPACITY).build(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Context {
    pub db: Database,
    pub tokens: AccessTokens,
    pub mapping: Mapping,
    pub bling: BlingApi,
    pub known: KnownIds,
    pub settings: SettingsCache,
    pub tuning: Tuning,
    /// The process's background work: a stopping process takes no new sale and hands back
    /// the ones it holds after the step in hand.
    pub background: Background,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_variable() {
        for (var, value) in [
            ("PONTE_SALES_WORKERS", "0"),
            ("PONTE_SALES_SCAN_MS", "5"),
            ("PONTE_SALES_LEASE_SECONDS", "0"),
            ("PONTE_SALES_INLINE_WAIT_MS", "soon"),
        ] {
            assert_eq!(Tuning::from_env(&Env::from_pairs([(var, value)])).unwrap_err().var, var);
        }
        let t = Tuning::from_env(&Env::default()).unwrap();
        assert_eq!((t.workers, t.lease_ms()), (8, 180_000));
    }
}
