//! Where the outside systems are and how fast ponte may call them, read from the environment in
//! one place: every service builds its clients from [`Outside::from_env`], so no service names a
//! vendor URL or a vendor's rate.

use std::sync::Arc;

use ponte_core::{
    config::{ConfigError, Env},
    ratelimit::{Quota, RateLimiter},
};

use crate::{bitrix24::Bitrix24Client, bling::BlingApi, envios360::Envios360Client};

/// 360Envios's API root: the default of `PONTE_ENVIOS360_API_URL`.
pub const ENVIOS360_API_URL: &str = "https://api.360envios.com.br/v1";
/// CPLUG's API root: the default of `PONTE_CPLUG_API_URL`.
pub const CPLUG_API_URL: &str = "https://api.connectplug.com.br/api/v3";

/// The clients of the outside systems a service calls, sharing one HTTP pool and the mesh's
/// rate budgets.
#[derive(Clone)]
pub struct Outside {
    pub http: reqwest::Client,
    /// Bling's API (`PONTE_BLING_API_URL`), through each account's shared budget.
    pub bling: BlingApi,
    /// Bitrix24's REST API (each portal's address comes with its token), through each portal's budget.
    pub bitrix24: Bitrix24Client,
    /// `PONTE_CPLUG_API_URL`.
    pub cplug_url: String,
    /// `PONTE_ENVIOS360_API_URL`.
    pub envios360_url: String,
    /// 360Envios's API at `envios360_url`, through each token's budget.
    pub envios360: Envios360Client,
    /// `PONTE_RATE_LIMIT_SCALE`: how many times faster than real time the outside systems'
    /// quotas run. Only for sandboxes whose own limits are scaled the same way (tests,
    /// benchmarks); 1, the default, is the real limits.
    pub scale: f64,
}

impl Outside {
    pub fn from_env(env: &Env, limiter: Arc<dyn RateLimiter>) -> Result<Self, ConfigError> {
        let scale: f64 = env.parse_or("PONTE_RATE_LIMIT_SCALE", 1.0, "a positive number")?;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(ConfigError::new("PONTE_RATE_LIMIT_SCALE", "must be a positive number"));
        }
        let http = crate::http::client();
        let bling_url = env.http_url_or("PONTE_BLING_API_URL", crate::bling::client::API_URL)?;
        let envios360_url = env.http_url_or("PONTE_ENVIOS360_API_URL", ENVIOS360_API_URL)?;
        Ok(Self {
            bling: BlingApi::new(http.clone(), &bling_url, limiter.clone(), Quota::bling().scaled(scale)),
            bitrix24: Bitrix24Client::new(http.clone(), limiter.clone(), Quota::bitrix24().scaled(scale)),
            envios360: Envios360Client::new(http.clone(), &envios360_url, limiter, Quota::envios360().scaled(scale)),
            cplug_url: env.http_url_or("PONTE_CPLUG_API_URL", CPLUG_API_URL)?,
            envios360_url,
            http,
            scale,
        })
    }
}

#[cfg(test)]
mod tests {
    use ponte_core::ratelimit::MemoryRateLimiter;

    use super::*;

    #[test]
    fn bad_settings_name_their_variable() {
        let limiter: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::default());
        for (var, value) in
            [("PONTE_RATE_LIMIT_SCALE", "0"), ("PONTE_BLING_API_URL", "ftp://x"), ("PONTE_CPLUG_API_URL", "x")]
        {
            let err = Outside::from_env(&Env::from_pairs([(var, value)]), limiter.clone()).err().unwrap();
            assert_eq!(err.var, var);
        }
        let ok = Outside::from_env(&Env::default(), limiter).unwrap();
        assert_eq!((ok.cplug_url.as_str(), ok.scale), (CPLUG_API_URL, 1.0));
    }
}
