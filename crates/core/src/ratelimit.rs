//! Rate limits as shared budgets: one limiter per (provider, account), enforced across every
//! service and replica through Redis, so the mesh as a whole never exceeds what the outside
//! system allows (Bling: 3 requests/s and 120,000/day per account, across every app).
//!
//! The algorithm is GCRA (a virtual-scheduling token bucket) run atomically in a Lua script
//! on Redis's own clock. Live work (webhook-driven) goes before backfills: while a live caller
//! is waiting for a key, backfill callers of that key are held back.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::{Script, aio::ConnectionManager};

/// How much later one request may reach an outside system than another, counted from their
/// slots, without the system's per-second window seeing more than it allows.
pub const ARRIVAL_MARGIN: Duration = Duration::from_millis(100);

/// What an outside system allows for one account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Minimum spacing between requests at the sustained rate.
    pub interval: Duration,
    /// How many requests may go at once after an idle period (at least 1).
    pub burst: u32,
    /// Requests per calendar day (UTC−3, Bling's day), if capped.
    pub daily: Option<u64>,
}

impl Quota {
    /// `per_second` requests a second sustained, `burst` at once.
    pub fn per_second(per_second: f64, burst: u32) -> Self {
        Self { interval: Duration::from_secs_f64(1.0 / per_second), burst: burst.max(1), daily: None }
    }

    pub fn with_daily(mut self, daily: u64) -> Self {
        self.daily = Some(daily);
        self
    }

    /// Bling: 3 requests/s per account (in any one second, counted on arrival), 120,000 a day.
    /// A slot is taken before its request leaves, and the time until the request reaches
    /// Bling varies (a busy host, a new connection): three intervals span one second plus
    /// [`ARRIVAL_MARGIN`], so four requests never arrive inside one second unless one is held
    /// back that much longer than another.
    pub fn bling() -> Self {
        Self { interval: (Duration::from_secs(1) + ARRIVAL_MARGIN) / 3, burst: 1, daily: Some(120_000) }
    }

    /// Bitrix24: 2 requests/s per portal with a burst of 50 (its leaky bucket).
    pub fn bitrix24() -> Self {
        Self::per_second(2.0, 50)
    }

    /// 360Envios: 5 requests/s per token. Spaced 2% wider than 1/5 s, as Bling's, so that
    /// network jitter never lets six requests land inside one second.
    pub fn envios360() -> Self {
        Self { interval: Duration::from_micros(204_000), burst: 1, daily: None }
    }

    /// The same quota with time running `factor` times faster (tests against fast sandboxes).
    pub fn scaled(self, factor: f64) -> Self {
        Self { interval: self.interval.div_f64(factor.max(1e-9)), ..self }
    }
}

/// Whose work a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Driven by a webhook or a person waiting.
    Live,
    /// Bulk copies that may wait.
    Backfill,
}

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send now; the request was counted.
    Go,
    /// Not yet; ask again after this long.
    Wait(Duration),
    /// The daily budget is spent; it renews after this long.
    DailyExhausted(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limiter unavailable: {0}")]
    Unavailable(String),
    #[error("daily request budget of '{key}' is spent; it renews in {renews_in:?}")]
    DailyExhausted { key: String, renews_in: Duration },
    #[error("no request slot for '{key}' within {waited:?}")]
    Timeout { key: String, waited: Duration },
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes a slot for `key` if one is free now.
    async fn try_acquire(&self, key: &str, quota: Quota, priority: Priority) -> Result<Decision, RateLimitError>;
}

/// Waits for a slot for `key`, at most `max_wait`.
pub async fn acquire(
    limiter: &dyn RateLimiter,
    key: &str,
    quota: Quota,
    priority: Priority,
    max_wait: Duration,
) -> Result<(), RateLimitError> {
    let started = tokio::time::Instant::now();
    let deadline = started + max_wait;
    loop {
        match limiter.try_acquire(key, quota, priority).await? {
            Decision::Go => {
                crate::metrics::record_budget_wait(key, started.elapsed());
                return Ok(());
            }
            Decision::DailyExhausted(renews_in) => {
                crate::metrics::record_budget_refused(key, "daily_exhausted");
                return Err(RateLimitError::DailyExhausted { key: key.to_owned(), renews_in });
            }
            Decision::Wait(wait) => {
                let now = tokio::time::Instant::now();
                if now + wait > deadline {
                    crate::metrics::record_budget_refused(key, "wait_too_long");
                    return Err(RateLimitError::Timeout { key: key.to_owned(), waited: max_wait });
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Seconds east of UTC of the day boundary used for daily budgets (Brasília, UTC−3).
const DAY_OFFSET_SECS: i64 = -3 * 3600;

fn day_and_renewal(now_unix_micros: i64) -> (i64, Duration) {
    let local = now_unix_micros / 1_000_000 + DAY_OFFSET_SECS;
    let day = local.div_euclid(86_400);
    let left = 86_400 - local.rem_euclid(86_400);
    (day, Duration::from_secs(left as u64))
}

const GCRA: &str = r"
-- KEYS[1] schedule (TAT, microseconds), KEYS[2] live-waiting flag, KEYS[3] daily counter prefix
-- ARGV[1] interval us, ARGV[2] burst tolerance us, ARGV[3] 1 if backfill, ARGV[4] daily limit (0 none),
-- ARGV[5] day offset seconds
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local backfill = ARGV[3] == '1'
local daily = tonumber(ARGV[4])
if backfill and redis.call('EXISTS', KEYS[2]) == 1 then
  return {1, interval}
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - tau
if now < allow_at then
  if not backfill then
    redis.call('SET', KEYS[2], '1', 'PX', math.floor((allow_at - now) / 1000) + 50)
  end
  return {1, allow_at - now}
end
if daily > 0 then
  local local_secs = tonumber(t[1]) + tonumber(ARGV[5])
  local day = math.floor(local_secs / 86400)
  local left = 86400 - (local_secs % 86400)
  local dkey = KEYS[3] .. day
  local used = tonumber(redis.call('GET', dkey) or '0')
  if used >= daily then
    return {2, left * 1000000}
  end
  redis.call('INCR', dkey)
  redis.call('EXPIRE', dkey, 172800)
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1000)
return {0, 0}
";

/// The limiter shared by every replica, in Redis.
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    prefix: String,
    script: Arc<Script>,
}

impl RedisRateLimiter {
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { conn, prefix: prefix.into(), script: Arc::new(Script::new(GCRA)) }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn try_acquire(&self, key: &str, quota: Quota, priority: Priority) -> Result<Decision, RateLimitError> {
        let base = format!("{}rl:{{{key}}}", self.prefix);
        let tau = micros(quota.interval) * i64::from(quota.burst.max(1) - 1);
        let mut conn = self.conn.clone();
        let (code, value): (i64, i64) = self
            .script
            .key(format!("{base}:tat"))
            .key(format!("{base}:live"))
            .key(format!("{base}:day:"))
            .arg(micros(quota.interval))
            .arg(tau)
            .arg(if priority == Priority::Backfill { "1" } else { "0" })
            .arg(quota.daily.unwrap_or(0))
            .arg(DAY_OFFSET_SECS)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| RateLimitError::Unavailable(e.to_string()))?;
        let d = Duration::from_micros(value.max(0) as u64);
        Ok(match code {
            0 => Decision::Go,
            2 => Decision::DailyExhausted(d),
            _ => Decision::Wait(d.max(Duration::from_micros(100))),
        })
    }
}

#[derive(Default)]
struct LocalState {
    tat: i64,
    live_waiting_until: i64,
    day: i64,
    used_today: u64,
}

/// The same limiter in this process's memory (`ponte dev`, a single replica).
#[derive(Clone, Default)]
pub struct MemoryRateLimiter {
    keys: Arc<Mutex<HashMap<String, LocalState>>>,
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(micros).unwrap_or(0)
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn try_acquire(&self, key: &str, quota: Quota, priority: Priority) -> Result<Decision, RateLimitError> {
        let now = now_micros();
        let interval = micros(quota.interval);
        let tau = interval * i64::from(quota.burst.max(1) - 1);
        let mut keys = self.keys.lock();
        let s = keys.entry(key.to_owned()).or_default();
        if priority == Priority::Backfill && s.live_waiting_until > now {
            return Ok(Decision::Wait(quota.interval));
        }
        let tat = s.tat.max(now);
        let allow_at = tat - tau;
        if now < allow_at {
            if priority == Priority::Live {
                s.live_waiting_until = allow_at + 50_000;
            }
            return Ok(Decision::Wait(Duration::from_micros((allow_at - now) as u64)));
        }
        if let Some(daily) = quota.daily {
            let (day, renews_in) = day_and_renewal(now);
            if s.day != day {
                s.day = day;
                s.used_today = 0;
            }
            if s.used_today >= daily {
                return Ok(Decision::DailyExhausted(renews_in));
            }
            s.used_today += 1;
        }
        s.tat = tat + interval;
        Ok(Decision::Go)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_turns_at_midnight_in_brasilia() {
        // 2026-11-22 02:59:59 UTC is 23:59:59 on the 21st in UTC−3.
        let before = 1_795_316_399_i64 * 1_000_000;
        let (d1, left) = day_and_renewal(before);
        let (d2, _) = day_and_renewal(before + 1_000_000);
        assert_eq!(d2, d1 + 1);
        assert_eq!(left, Duration::from_secs(1));
    }

    #[tokio::test]
    async fn memory_limiter_allows_the_burst_then_spaces_requests() {
        let l = MemoryRateLimiter::default();
        let q = Quota::per_second(10.0, 3);
        for _ in 0..3 {
            assert_eq!(l.try_acquire("k", q, Priority::Live).await.unwrap(), Decision::Go);
        }
        let Decision::Wait(w) = l.try_acquire("k", q, Priority::Live).await.unwrap() else { panic!("no wait") };
        assert!(w <= Duration::from_millis(100) && w > Duration::ZERO, "{w:?}");
        assert_eq!(l.try_acquire("other", q, Priority::Live).await.unwrap(), Decision::Go, "keys are independent");
    }

    #[tokio::test]
    async fn backfill_waits_while_live_work_is_queued() {
        let l = MemoryRateLimiter::default();
        let q = Quota::per_second(5.0, 1);
        assert_eq!(l.try_acquire("k", q, Priority::Backfill).await.unwrap(), Decision::Go);
        assert!(matches!(l.try_acquire("k", q, Priority::Live).await.unwrap(), Decision::Wait(_)));
        tokio::time::sleep(Duration::from_millis(210)).await;
        // The live caller registered its wait; the slot is free but backfill must yield.
        assert!(matches!(l.try_acquire("k", q, Priority::Backfill).await.unwrap(), Decision::Wait(_)));
        assert_eq!(l.try_acquire("k", q, Priority::Live).await.unwrap(), Decision::Go);
    }

    #[tokio::test]
    async fn the_daily_budget_is_counted() {
        let l = MemoryRateLimiter::default();
        let q = Quota::per_second(1000.0, 10).with_daily(3);
        for _ in 0..3 {
            acquire(&l, "k", q, Priority::Live, Duration::from_secs(1)).await.unwrap();
        }
        let err = acquire(&l, "k", q, Priority::Live, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, RateLimitError::DailyExhausted { .. }), "{err}");
    }
}
