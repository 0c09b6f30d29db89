//! Idempotency keys: the fast path for "have I seen this already?". A key is claimed with
//! `SET NX` and a TTL; the database's unique constraints remain the truth, so a lost key
//! (Redis restarted, TTL passed) costs a lookup, never a duplicate.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::{AsyncCommands, aio::ConnectionManager};
use tokio::time::Instant;

use crate::config::{ConfigError, redact_url};

#[derive(Debug, thiserror::Error)]
#[error("idempotency store unavailable: {0}")]
pub struct IdempotencyError(String);

/// Claims keys so concurrent and repeated work happens once.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for `ttl`. `true` when this caller is the first to claim it.
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, IdempotencyError>;
    /// Gives a claim back, so that work which failed before it was stored can be retried.
    async fn release(&self, key: &str) -> Result<(), IdempotencyError>;
    /// Whether `key` is claimed, without claiming it (a fast path that changes nothing).
    async fn seen(&self, key: &str) -> Result<bool, IdempotencyError>;
    /// Whether the store answers (for readiness).
    async fn ping(&self) -> Result<(), IdempotencyError>;
    /// Deletes what this deployment keeps in the store for a tenant being erased: the claims
    /// `keys` (as given to [`IdempotencyStore::claim`]) and every key of the deployment with
    /// `:<tenant>:` in its name (locks, budgets). Returns how many keys went.
    async fn erase_tenant(&self, tenant: &str, keys: &[String]) -> Result<u64, IdempotencyError>;
}

/// A Redis `SCAN MATCH` pattern matching `text` literally.
fn glob_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How long Redis may take before a call fails, so a slow Redis never stalls a request.
#[derive(Debug, Clone, Copy)]
pub struct RedisTimeouts {
    pub connect: Duration,
    pub response: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(2), response: Duration::from_millis(500) }
    }
}

/// A Redis connection manager with timeouts set; it reconnects by itself after failures.
/// Waits up to `startup_timeout` for the first connection.
pub async fn connect_redis(
    url: &str,
    timeouts: RedisTimeouts,
    startup_timeout: Duration,
) -> Result<ConnectionManager, ConfigError> {
    let fail = |e: &dyn std::fmt::Display| {
        ConfigError::new("REDIS_URL", format!("cannot use Redis at {}: {e}", redact_url(url)))
    };
    // Small commands from many requests share one multiplexed connection: without TCP_NODELAY,
    // Nagle's algorithm holds a command back until the previous one is acknowledged, and the
    // server's delayed ACK turns that into ~40 ms stalls under load.
    let info = redis::IntoConnectionInfo::into_connection_info(url)
        .map_err(|e| fail(&e))?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info).map_err(|e| fail(&e))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let deadline = Instant::now() + startup_timeout;
    loop {
        match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
            Ok(mut conn) => {
                let pong: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
                match pong {
                    Ok(_) => return Ok(conn),
                    Err(e) if Instant::now() >= deadline => return Err(fail(&e)),
                    Err(_) => {}
                }
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(fail(&format!("{e} (waited {}s)", startup_timeout.as_secs())));
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Keys in Redis, under a prefix so deployments and tests can share a server.
#[derive(Clone)]
pub struct RedisIdempotency {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisIdempotency {
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { conn, prefix: prefix.into() }
    }

    fn key(&self, key: &str) -> String {
        format!("{}idem:{key}", self.prefix)
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotency {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, IdempotencyError> {
        let mut conn = self.conn.clone();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query_async(&mut conn)
            .await
            .map_err(|e| IdempotencyError(e.to_string()))?;
        Ok(set.is_some())
    }

    async fn release(&self, key: &str) -> Result<(), IdempotencyError> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(|e| IdempotencyError(e.to_string()))
    }

    async fn seen(&self, key: &str) -> Result<bool, IdempotencyError> {
        let mut conn = self.conn.clone();
        conn.exists::<_, bool>(self.key(key)).await.map_err(|e| IdempotencyError(e.to_string()))
    }

    async fn ping(&self) -> Result<(), IdempotencyError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| IdempotencyError(e.to_string()))
    }

    async fn erase_tenant(&self, tenant: &str, keys: &[String]) -> Result<u64, IdempotencyError> {
        let fail = |e: redis::RedisError| IdempotencyError(e.to_string());
        let mut conn = self.conn.clone();
        let mut erased = 0u64;
        for chunk in keys.chunks(500) {
            let full: Vec<String> = chunk.iter().map(|k| self.key(k)).collect();
            erased += conn.del::<_, u64>(full).await.map_err(fail)?;
        }
        // SCAN, never KEYS: a bounded amount of work per call however large the keyspace.
        let pattern = format!("{}*:{}:*", glob_literal(&self.prefix), glob_literal(tenant));
        let mut cursor = 0u64;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(fail)?;
            if !found.is_empty() {
                erased += conn.del::<_, u64>(found).await.map_err(fail)?;
            }
            if next == 0 {
                return Ok(erased);
            }
            cursor = next;
        }
    }
}

/// Keys in this process's memory (`ponte dev`, single replica).
#[derive(Clone, Default)]
pub struct MemoryIdempotency {
    keys: Arc<Mutex<HashMap<String, Instant>>>,
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, IdempotencyError> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        if keys.len() > 100_000 {
            keys.retain(|_, expires| *expires > now);
        }
        match keys.get(key) {
            Some(expires) if *expires > now => Ok(false),
            _ => {
                keys.insert(key.to_owned(), now + ttl);
                Ok(true)
            }
        }
    }

    async fn release(&self, key: &str) -> Result<(), IdempotencyError> {
        self.keys.lock().remove(key);
        Ok(())
    }

    async fn seen(&self, key: &str) -> Result<bool, IdempotencyError> {
        Ok(self.keys.lock().get(key).is_some_and(|expires| *expires > Instant::now()))
    }

    async fn ping(&self) -> Result<(), IdempotencyError> {
        Ok(())
    }

    async fn erase_tenant(&self, tenant: &str, keys: &[String]) -> Result<u64, IdempotencyError> {
        let mut held = self.keys.lock();
        let before = held.len();
        let infix = format!(":{tenant}:");
        held.retain(|k, _| !keys.contains(k) && !k.contains(&infix));
        Ok((before - held.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_store_claims_once_until_the_ttl_passes() {
        let store = MemoryIdempotency::default();
        assert!(!store.seen("bling:e1").await.unwrap());
        assert!(store.claim("bling:e1", Duration::from_secs(10)).await.unwrap());
        assert!(store.seen("bling:e1").await.unwrap());
        assert!(!store.claim("bling:e1", Duration::from_secs(10)).await.unwrap());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.claim("bling:e1", Duration::from_secs(10)).await.unwrap());
        store.release("bling:e1").await.unwrap();
        assert!(store.claim("bling:e1", Duration::from_secs(10)).await.unwrap());
    }
}
