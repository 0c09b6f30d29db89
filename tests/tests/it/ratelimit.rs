//! The shared rate limiter against a real Redis: several limiter instances (as several
//! replicas would have) share one budget per key.

use std::{sync::Arc, time::Duration};

use ponte_core::{
    idempotency::{RedisTimeouts, connect_redis},
    ratelimit::{Decision, Priority, Quota, RateLimiter, RedisRateLimiter},
};
use ponte_tests::{redis_url, unique_prefix};

async fn limiter(prefix: &str) -> RedisRateLimiter {
    let conn = connect_redis(&redis_url(), RedisTimeouts::default(), Duration::from_secs(5)).await.unwrap();
    RedisRateLimiter::new(conn, prefix)
}

#[tokio::test]
async fn two_replicas_share_one_burst_exactly() {
    let prefix = unique_prefix();
    let replicas = [Arc::new(limiter(&prefix).await), Arc::new(limiter(&prefix).await)];
    // 1 request a minute sustained, 5 at once: of 40 concurrent callers exactly 5 may go.
    let quota = Quota::per_second(1.0 / 60.0, 5);
    let calls = (0..40).map(|i| {
        let l = replicas[i % 2].clone();
        tokio::spawn(async move { l.try_acquire("bling:acct-1", quota, Priority::Live).await.unwrap() })
    });
    let decisions: Vec<Decision> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(decisions.iter().filter(|d| **d == Decision::Go).count(), 5);
    for d in decisions.iter().filter(|d| **d != Decision::Go) {
        let Decision::Wait(w) = d else { panic!("{d:?}") };
        assert!(*w > Duration::from_secs(50) && *w <= Duration::from_secs(60), "{w:?}");
    }
    // Another account is untouched.
    assert_eq!(replicas[0].try_acquire("bling:acct-2", quota, Priority::Live).await.unwrap(), Decision::Go);
}

#[tokio::test]
async fn backfill_yields_while_live_work_waits() {
    let prefix = unique_prefix();
    let (l, other_replica) = (limiter(&prefix).await, limiter(&prefix).await);
    let quota = Quota::per_second(1.0 / 60.0, 1);
    assert_eq!(l.try_acquire("k", quota, Priority::Backfill).await.unwrap(), Decision::Go);
    assert!(matches!(l.try_acquire("k", quota, Priority::Live).await.unwrap(), Decision::Wait(_)));
    // A live caller is now queued: backfill callers are told to wait, on every replica.
    assert!(matches!(other_replica.try_acquire("k", quota, Priority::Backfill).await.unwrap(), Decision::Wait(_)));
}

#[tokio::test]
async fn the_daily_budget_is_shared_and_enforced() {
    let prefix = unique_prefix();
    let (a, b) = (limiter(&prefix).await, limiter(&prefix).await);
    let quota = Quota::per_second(1000.0, 100).with_daily(3);
    assert_eq!(a.try_acquire("k", quota, Priority::Live).await.unwrap(), Decision::Go);
    assert_eq!(b.try_acquire("k", quota, Priority::Live).await.unwrap(), Decision::Go);
    assert_eq!(a.try_acquire("k", quota, Priority::Live).await.unwrap(), Decision::Go);
    let Decision::DailyExhausted(renews) = b.try_acquire("k", quota, Priority::Live).await.unwrap() else {
        panic!("the fourth request of the day was let through");
    };
    assert!(renews <= Duration::from_secs(86_400));
}
