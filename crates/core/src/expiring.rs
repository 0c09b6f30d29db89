//! Short-lived values shared by every replica (e.g. the console's sessions): a value under a
//! key that expires after a time without use. In Redis under the deployment's prefix, or in
//! this process's memory for `ponte dev`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::{AsyncCommands, aio::ConnectionManager};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
#[error("expiring store unavailable: {0}")]
pub struct ExpiringError(String);

/// Values that expire after `ttl` without use.
#[async_trait]
pub trait ExpiringStore: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl`, replacing what was there.
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), ExpiringError>;
    /// The value under `key`, its expiry restarted at `ttl`; `None` when absent or expired.
    async fn touch(&self, key: &str, ttl: Duration) -> Result<Option<String>, ExpiringError>;
    /// Deletes `key` (nothing when it is absent).
    async fn delete(&self, key: &str) -> Result<(), ExpiringError>;
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Values in Redis, under a prefix so deployments and tests can share a server.
#[derive(Clone)]
pub struct RedisExpiring {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisExpiring {
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { conn, prefix: prefix.into() }
    }

    fn key(&self, key: &str) -> String {
        format!("{}exp:{key}", self.prefix)
    }
}

#[async_trait]
impl ExpiringStore for RedisExpiring {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), ExpiringError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| ExpiringError(e.to_string()))
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<Option<String>, ExpiringError> {
        let mut conn = self.conn.clone();
        redis::cmd("GETEX")
            .arg(self.key(key))
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(|e| ExpiringError(e.to_string()))
    }

    async fn delete(&self, key: &str) -> Result<(), ExpiringError> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.key(key)).await.map_err(|e| ExpiringError(e.to_string()))
    }
}

/// The most values [`MemoryExpiring`] keeps (the soonest to expire go first).
const MEMORY_CAP: usize = 100_000;

/// Values in this process's memory (`ponte dev`, single replica).
#[derive(Clone, Default)]
pub struct MemoryExpiring {
    values: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

#[async_trait]
impl ExpiringStore for MemoryExpiring {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), ExpiringError> {
        let now = Instant::now();
        let mut values = self.values.lock();
        if values.len() >= MEMORY_CAP {
            values.retain(|_, (_, expires)| *expires > now);
        }
        if values.len() >= MEMORY_CAP
            && let Some(first) = values.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| k.clone())
        {
            values.remove(&first);
        }
        values.insert(key.to_owned(), (value.to_owned(), now + ttl));
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<Option<String>, ExpiringError> {
        let now = Instant::now();
        let mut values = self.values.lock();
        match values.get_mut(key) {
            Some((value, expires)) if *expires > now => {
                *expires = now + ttl;
                Ok(Some(value.clone()))
            }
            Some(_) => {
                values.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ExpiringError> {
        self.values.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn memory_values_expire_after_their_ttl_without_use() {
        let s = MemoryExpiring::default();
        let ttl = Duration::from_secs(10);
        s.put("a", "1", ttl).await.unwrap();
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(s.touch("a", ttl).await.unwrap().as_deref(), Some("1"), "used: expiry restarted");
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(s.touch("a", ttl).await.unwrap().as_deref(), Some("1"));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(s.touch("a", ttl).await.unwrap(), None, "expired");
        s.put("b", "2", ttl).await.unwrap();
        s.delete("b").await.unwrap();
        assert_eq!(s.touch("b", ttl).await.unwrap(), None, "deleted");
    }
}
