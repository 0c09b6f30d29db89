//! Short leases that make one replica at a time do a piece of work (refresh a connection's
//! token, run a backfill page). A lease expires by itself, so a crashed holder never blocks
//! the others for longer than its lease.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::{Script, aio::ConnectionManager};
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
#[error("lock service unavailable: {0}")]
pub struct LockError(String);

/// A held lease; give it back with [`Locks::release`].
#[derive(Debug)]
pub struct Lease {
    pub key: String,
    token: String,
}

#[async_trait]
pub trait Locks: Send + Sync + 'static {
    /// Takes `key` for `lease` if nobody holds it.
    async fn try_acquire(&self, key: &str, lease: Duration) -> Result<Option<Lease>, LockError>;
    /// Gives it back (only if still ours: an expired lease may belong to someone else now).
    async fn release(&self, lease: Lease) -> Result<(), LockError>;
}

/// Takes `key` for `lease`, waiting in steps of 100 ms for up to `wait` while another holder
/// has it; `None` if it was still held when the wait ran out.
pub async fn acquire_within(
    locks: &dyn Locks,
    key: &str,
    lease: Duration,
    wait: Duration,
) -> Result<Option<Lease>, LockError> {
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    loop {
        if let Some(held) = locks.try_acquire(key, lease).await? {
            return Ok(Some(held));
        }
        if waited >= wait {
            return Ok(None);
        }
        tokio::time::sleep(step).await;
        waited += step;
    }
}

const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Leases in Redis, shared by every replica.
#[derive(Clone)]
pub struct RedisLocks {
    conn: ConnectionManager,
    prefix: String,
    release: Arc<Script>,
}

impl RedisLocks {
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { conn, prefix: prefix.into(), release: Arc::new(Script::new(RELEASE)) }
    }
}

#[async_trait]
impl Locks for RedisLocks {
    async fn try_acquire(&self, key: &str, lease: Duration) -> Result<Option<Lease>, LockError> {
        let token = uuid::Uuid::new_v4().to_string();
        let full = format!("{}lock:{key}", self.prefix);
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(&full)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| LockError(e.to_string()))?;
        Ok(set.map(|_| Lease { key: full, token }))
    }

    async fn release(&self, lease: Lease) -> Result<(), LockError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .release
            .key(&lease.key)
            .arg(&lease.token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| LockError(e.to_string()))?;
        Ok(())
    }
}

/// Leases in this process's memory (`ponte dev`).
#[derive(Clone, Default)]
pub struct MemoryLocks {
    held: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

#[async_trait]
impl Locks for MemoryLocks {
    async fn try_acquire(&self, key: &str, lease: Duration) -> Result<Option<Lease>, LockError> {
        let now = Instant::now();
        let mut held = self.held.lock();
        if held.get(key).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let token = uuid::Uuid::new_v4().to_string();
        held.insert(key.to_owned(), (token.clone(), now + lease));
        Ok(Some(Lease { key: key.to_owned(), token }))
    }

    async fn release(&self, lease: Lease) -> Result<(), LockError> {
        let mut held = self.held.lock();
        if held.get(&lease.key).is_some_and(|(t, _)| *t == lease.token) {
            held.remove(&lease.key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_holder_at_a_time_until_release_or_expiry() {
        let locks = MemoryLocks::default();
        let a = locks.try_acquire("refresh:t1", Duration::from_secs(30)).await.unwrap().unwrap();
        assert!(locks.try_acquire("refresh:t1", Duration::from_secs(30)).await.unwrap().is_none());
        locks.release(a).await.unwrap();
        let b = locks.try_acquire("refresh:t1", Duration::from_secs(30)).await.unwrap().unwrap();
        tokio::time::advance(Duration::from_secs(31)).await;
        let c = locks.try_acquire("refresh:t1", Duration::from_secs(30)).await.unwrap();
        assert!(c.is_some(), "an expired lease still blocked");
        // The expired holder's release must not free the new holder's lease.
        locks.release(b).await.unwrap();
        assert!(locks.try_acquire("refresh:t1", Duration::from_secs(30)).await.unwrap().is_none());
    }
}
