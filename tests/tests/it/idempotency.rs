//! The idempotency store against a real Redis.

use std::{sync::Arc, time::Duration};

use ponte_core::idempotency::{IdempotencyStore, RedisIdempotency, RedisTimeouts, connect_redis};
use ponte_tests::{redis_url, unique_prefix};

async fn store(prefix: &str) -> RedisIdempotency {
    let conn = connect_redis(&redis_url(), RedisTimeouts::default(), Duration::from_secs(5)).await.unwrap();
    RedisIdempotency::new(conn, prefix)
}

#[tokio::test]
async fn fifty_concurrent_claims_of_one_key_have_one_winner() {
    let store = Arc::new(store(&unique_prefix()).await);
    let claims = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.claim("bling:evt-1", Duration::from_secs(60)).await.unwrap() })
    });
    let results = futures::future::join_all(claims).await;
    assert_eq!(results.into_iter().filter(|r| *r.as_ref().unwrap()).count(), 1);
}

#[tokio::test]
async fn a_claim_expires_with_its_ttl_and_can_be_released() {
    let store = store(&unique_prefix()).await;
    assert!(store.claim("k", Duration::from_millis(200)).await.unwrap());
    assert!(!store.claim("k", Duration::from_millis(200)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(store.claim("k", Duration::from_secs(60)).await.unwrap(), "expired key was still claimed");
    store.release("k").await.unwrap();
    assert!(store.claim("k", Duration::from_secs(60)).await.unwrap(), "released key was still claimed");
}

#[tokio::test]
async fn prefixes_keep_deployments_apart() {
    let (a, b) = (store(&unique_prefix()).await, store(&unique_prefix()).await);
    assert!(a.claim("same", Duration::from_secs(60)).await.unwrap());
    assert!(b.claim("same", Duration::from_secs(60)).await.unwrap());
    a.ping().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_naming_the_variable() {
    let started = std::time::Instant::now();
    let err = connect_redis("redis://127.0.0.1:1", RedisTimeouts::default(), Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(err.var, "REDIS_URL");
    assert!(started.elapsed() < Duration::from_secs(10));
}
