//! The time between the limiter granting a Bling slot and the request reaching Bling varies (a
//! busy host, a new connection). Bling counts arrivals in any one second: the limiter's
//! spacing must absorb that delay, so the account's limit is never exceeded.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use ponte_connectors::bling::{BlingApi, BlingConfig, BlingOAuth, Caller};
use ponte_core::{
    idempotency::{RedisTimeouts, connect_redis},
    ratelimit::{Decision, Priority, Quota, RateLimitError, RateLimiter, RedisRateLimiter},
};
use ponte_sandbox::bling::{Bling, Config};

/// The shared Redis limiter, with the request then held back for up to 80 ms after each
/// granted slot, as a loaded machine holds it.
struct Delayed {
    inner: RedisRateLimiter,
    n: AtomicU64,
}

#[async_trait]
impl RateLimiter for Delayed {
    async fn try_acquire(&self, key: &str, quota: Quota, priority: Priority) -> Result<Decision, RateLimitError> {
        let decision = self.inner.try_acquire(key, quota, priority).await?;
        if decision == Decision::Go {
            // A spread of delays (0..80 ms) from a fixed sequence, so runs are comparable.
            let i = self.n.fetch_add(1, Ordering::Relaxed);
            let delay = i.wrapping_mul(2_654_435_761) % 81;
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        Ok(decision)
    }
}

#[tokio::test]
async fn bursts_with_delayed_requests_never_get_a_429_at_blings_real_limit() {
    let cfg = Config::default();
    let handle = Bling::new(cfg.clone()).spawn(None).await.unwrap();
    let url =
        format!("{}/oauth/authorize?response_type=code&client_id={}&state=jitter", handle.base_url, cfg.client_id);
    let (code, _) = handle.authorize(&url).await.unwrap();
    let oauth = BlingOAuth::new(
        ponte_connectors::http::client(),
        BlingConfig::at(&handle.base_url, &cfg.client_id, &cfg.client_secret),
    );
    let token = oauth.exchange_code(&code).await.unwrap().access_token;
    let redis =
        connect_redis(&ponte_tests::redis_url(), RedisTimeouts::default(), Duration::from_secs(5)).await.unwrap();
    let limiter = Delayed { inner: RedisRateLimiter::new(redis, ponte_tests::unique_prefix()), n: AtomicU64::new(0) };
    let api = BlingApi::new(ponte_connectors::http::client(), &handle.base_url, Arc::new(limiter), Quota::bling());

    // 300 calls in bursts of 6 callers at once; stops at the first 429.
    const CALLS: u64 = 300;
    let sent = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let (api, token, account, sent, bling) =
                (api.clone(), token.clone(), cfg.company_id.clone(), sent.clone(), handle.bling.clone());
            tokio::spawn(async move {
                while sent.fetch_add(1, Ordering::SeqCst) < CALLS && bling.stats().rate_limited == 0 {
                    let caller = Caller { account: &account, priority: Priority::Backfill, token: &token };
                    let _ = api.dados_basicos_for(caller).await;
                }
            })
        })
        .collect();
    for c in callers {
        c.await.unwrap();
    }
    let stats = handle.bling.stats();
    assert_eq!(stats.rate_limited, 0, "Bling answered 429 after {} calls", stats.api_requests);
    assert!(stats.api_requests >= CALLS, "only {} calls reached Bling", stats.api_requests);
}
