//! Retention: a bounded background job in each service that owns records which stop being
//! useful (the gateway's settled events and dead letters, catalog-sync's event log, the sales
//! and shipping history), deleting the ones past their age a batch at a time.
//!
//! - **Bounded**: each batch picks at most [`BATCH`] rows by an index (the oldest first) and
//!   deletes them by primary key in a short transaction of its own; one pass deletes at most
//!   [`MAX_BATCHES`] batches, the next pass goes on. No table-wide lock, no rewrite.
//! - **Paced**: after each full batch the pass pauses [`PAUSE_RATIO`] times as long as the batch
//!   took, so retention holds the database at most a twentieth of the time and backs off by
//!   itself when the database is busy (its batches take longer); and at least long enough to
//!   stay under its pace in rows a second ([`pause_after`]), which bounds the WAL a catch-up
//!   writes per second whatever the load.
//! - **Yielding to the traffic**: the pace lies between `PONTE_RETENTION_MIN_ROWS_PER_SECOND`
//!   (default 100, twice what 10,000 merchants add, so retention always keeps up:
//!   docs/capacity.md) and `PONTE_RETENTION_MAX_ROWS_PER_SECOND` (default 300), by how busy the
//!   database is: while it pauses, a pass looks every [`SAMPLE_EVERY`] at whether any other
//!   session of its database is running a statement (`pg_stat_activity`), and the next batch's
//!   pace is the maximum less the busy share of the difference ([`Pace`]). A pass starts at the
//!   minimum. So a backlog of weeks (a retention shortened, or first turned on) is caught up
//!   fast in quiet hours and at the steady state's pace under load, where its cost does not
//!   show (docs/benchmarks.md, "Retention running meanwhile"). Sessions of another database
//!   role are not visible to it without `pg_read_all_stats`; ponte's services share one role.
//! - **One runner across replicas**: a pass runs under a PostgreSQL advisory lock per schema
//!   (`pg_try_advisory_lock`); a replica that does not get it skips the pass.
//! - **Deduplication survives it**: settled events are kept at least 3 days
//!   (`PONTE_RETENTION_SETTLED_EVENTS_DAYS` cannot go lower), Bling's retry window, so the
//!   inbox's unique `(source, source_event_id)` key still recognises any event Bling may resend.
//! - Metrics: `ponte_retention_rows_deleted_total{table}`,
//!   `ponte_retention_oldest_row_age_seconds{table}` (the oldest row a rule could delete, kept)
//!   and `ponte_retention_pace_rows_per_second{table}` (the pace it last deleted at).
//! - **Settled records go too**: a sale posted or cancelled, a shipment delivered or cancelled,
//!   holds a customer's name, document and address; after `PONTE_RETENTION_SALES_DAYS` and
//!   `PONTE_RETENTION_SHIPMENTS_DAYS` (default 90, at least 30: far past any resend of the point
//!   of sale or late change in Bling) the row goes with what hangs off it. Records still on
//!   their way, parked or failed never go: they wait for someone.

use std::{sync::LazyLock, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use sqlx::{Acquire, any::AnyArguments, query::Query};

use crate::{
    config::{ConfigError, Env},
    db::{Backend, Database},
    time::now_millis,
};

/// Rows deleted per batch.
pub const BATCH: i64 = 1000;
/// Batches per pass and rule.
pub const MAX_BATCHES: usize = 100;
/// After a full batch a pass pauses this many times the batch's own duration.
pub const PAUSE_RATIO: u32 = 19;
/// How often a pausing pass looks at whether the database is busy.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// The pause's bounds.
const PAUSE_MIN: Duration = Duration::from_millis(10);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// The pause after a full batch that took `took`: [`PAUSE_RATIO`] times as long (within
/// [`PAUSE_MIN`]..[`PAUSE_MAX`]), and at least what keeps the pass under `max_rows_per_second`.
pub fn pause_after(took: Duration, max_rows_per_second: u64) -> Duration {
    let by_share = (took * PAUSE_RATIO).clamp(PAUSE_MIN, PAUSE_MAX);
    let by_rate = Duration::from_secs_f64(BATCH as f64 / max_rows_per_second.max(1) as f64).saturating_sub(took);
    by_share.max(by_rate)
}

/// A pass's pace in rows a second, between the configured minimum and maximum by how busy the
/// database was while the pass last paused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    min: u64,
    max: u64,
    /// The share of the last pause's looks that found another session running a statement.
    busy: f64,
}

impl Pace {
    /// A pass's pace before it has looked: the minimum, as if the database were busy.
    pub fn new(cfg: &RetentionConfig) -> Self {
        Self { min: cfg.min_rows_per_second, max: cfg.max_rows_per_second, busy: 1.0 }
    }

    /// Rows a second now: the maximum less the busy share of the difference.
    pub fn rows_per_second(&self) -> u64 {
        let span = self.max.saturating_sub(self.min) as f64;
        self.min + (span * (1.0 - self.busy.clamp(0.0, 1.0))).round() as u64
    }

    /// The share of looks that found the database busy, 0 to 1.
    pub fn busy(&self) -> f64 {
        self.busy
    }

    /// Pauses after a full batch that took `took` ([`pause_after`] at the current pace), looking
    /// at the database every [`SAMPLE_EVERY`] meanwhile; the next batch's pace follows what it saw.
    /// On SQLite (one process, `ponte dev`) there is nobody to yield to: the maximum.
    pub async fn pause(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
        took: Duration,
    ) -> Result<(), sqlx::Error> {
        let until = tokio::time::Instant::now() + pause_after(took, self.rows_per_second());
        let (mut looks, mut busy) = (0u32, 0u32);
        loop {
            let now = tokio::time::Instant::now();
            if now >= until {
                break;
            }
            tokio::time::sleep((until - now).min(SAMPLE_EVERY)).await;
            if backend == Backend::Postgres {
                looks += 1;
                busy += u32::from(others_running(conn).await?);
            }
        }
        self.busy = if looks == 0 { 0.0 } else { f64::from(busy) / f64::from(looks) };
        Ok(())
    }
}

/// Whether another session of this connection's database is running a statement now
/// (PostgreSQL; a read of shared memory, no lock).
pub async fn others_running(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend')",
    )
    .fetch_one(conn)
    .await
}

/// Bling retries a webhook for up to 3 days: a settled event is kept at least that long.
pub const MIN_SETTLED_DAYS: u64 = 3;

const DAY_MS: i64 = 86_400_000;

/// How long each kind of record is kept, and how often the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// `PONTE_RETENTION_SETTLED_EVENTS_DAYS` (default 14, at least 3).
    pub settled_events_days: u64,
    /// `PONTE_RETENTION_DEAD_LETTERS_DAYS` (default 90, at least 3): dead letters not replayed.
    pub dead_letters_days: u64,
    /// `PONTE_RETENTION_HISTORY_DAYS` (default 90, at least 1): event logs and record history.
    pub history_days: u64,
    /// `PONTE_RETENTION_SALES_DAYS` (default 90, at least 30): sales posted or cancelled.
    pub sales_days: u64,
    /// `PONTE_RETENTION_SHIPMENTS_DAYS` (default 90, at least 30): shipments delivered or
    /// cancelled.
    pub shipments_days: u64,
    /// `PONTE_RETENTION_INTERVAL_SECONDS` (default 600, at least 1).
    pub interval: Duration,
    /// `PONTE_RETENTION_MAX_ROWS_PER_SECOND` (default 300, at least 1): the most rows of a
    /// table (besides what hangs off them) a pass deletes in a second, while nothing else
    /// runs on the database.
    pub max_rows_per_second: u64,
    /// `PONTE_RETENTION_MIN_ROWS_PER_SECOND` (default 100, at least 1, at most the maximum):
    /// the pace while the database is busy all the time.
    pub min_rows_per_second: u64,
}

const MAX_ROWS_VAR: &str = "PONTE_RETENTION_MAX_ROWS_PER_SECOND";
const MIN_ROWS_VAR: &str = "PONTE_RETENTION_MIN_ROWS_PER_SECOND";

/// A settled sale or shipment is kept at least this long.
pub const MIN_SETTLED_RECORD_DAYS: u64 = 30;

impl RetentionConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let days = |var: &str, default: u64, min: u64| -> Result<u64, ConfigError> {
            let d: u64 = env.parse_or(var, default, "a whole number of days")?;
            if d < min {
                return Err(ConfigError::new(var, format!("{d} is below the minimum of {min} days")));
            }
            Ok(d)
        };
        let max_rows_per_second: u64 = env.parse_or(MAX_ROWS_VAR, 300, "a whole number of rows")?;
        if max_rows_per_second == 0 {
            return Err(ConfigError::new(MAX_ROWS_VAR, "must be at least 1"));
        }
        // Unset, the minimum follows a maximum set below its default.
        let min_rows_per_second: u64 =
            env.parse_or(MIN_ROWS_VAR, max_rows_per_second.min(100), "a whole number of rows")?;
        if min_rows_per_second == 0 {
            return Err(ConfigError::new(MIN_ROWS_VAR, "must be at least 1"));
        }
        if min_rows_per_second > max_rows_per_second {
            return Err(ConfigError::new(
                MIN_ROWS_VAR,
                format!("{min_rows_per_second} is above {MAX_ROWS_VAR} ({max_rows_per_second})"),
            ));
        }
        Ok(Self {
            settled_events_days: days("PONTE_RETENTION_SETTLED_EVENTS_DAYS", 14, MIN_SETTLED_DAYS)?,
            dead_letters_days: days("PONTE_RETENTION_DEAD_LETTERS_DAYS", 90, MIN_SETTLED_DAYS)?,
            history_days: days("PONTE_RETENTION_HISTORY_DAYS", 90, 1)?,
            sales_days: days("PONTE_RETENTION_SALES_DAYS", 90, MIN_SETTLED_RECORD_DAYS)?,
            shipments_days: days("PONTE_RETENTION_SHIPMENTS_DAYS", 90, MIN_SETTLED_RECORD_DAYS)?,
            interval: env.seconds_or("PONTE_RETENTION_INTERVAL_SECONDS", 600, 1)?,
            max_rows_per_second,
            min_rows_per_second,
        })
    }

    fn days(&self, kind: Kind) -> u64 {
        match kind {
            Kind::SettledEvents => self.settled_events_days,
            Kind::DeadLetters => self.dead_letters_days,
            Kind::History => self.history_days,
            Kind::SettledSales => self.sales_days,
            Kind::SettledShipments => self.shipments_days,
        }
    }
}

/// Which setting a rule's age comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SettledEvents,
    DeadLetters,
    History,
    SettledSales,
    SettledShipments,
}

/// How a table's key is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Text,
    Int,
    /// `(tenant_id, text id)`: `pick` selects both columns; `{keys}` becomes a `VALUES` list
    /// of pairs, for `(a, b) IN ({keys})` (PostgreSQL and SQLite alike).
    TenantText,
    /// `(tenant_id, integer id)`, as [`KeyType::TenantText`].
    TenantInt,
}

/// One kind of record of one table and how it goes.
#[derive(Debug)]
pub struct Rule {
    /// The table (the metrics' `table` label).
    pub table: &'static str,
    pub kind: Kind,
    pub key: KeyType,
    /// Picks up to `$2` keys of rows older than `$1` (epoch milliseconds), by an index, the
    /// oldest first.
    pub pick: &'static str,
    /// Deletes the rows whose keys are in `{keys}` (still matching the rule: a row that changed
    /// since it was picked stays), returning their keys.
    pub delete: &'static str,
    /// Then deletes what belonged to the deleted rows (keys in `{keys}`), one statement each,
    /// in the same transaction.
    pub dependents: &'static [&'static str],
    /// The oldest time (epoch milliseconds) among the rows the rule could delete, by an index.
    pub oldest: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

struct RetentionMetrics {
    deleted: Family<TableLabels, Counter>,
    oldest_age: Family<TableLabels, Gauge>,
    pace: Family<TableLabels, Gauge>,
}

static METRICS: LazyLock<RetentionMetrics> = LazyLock::new(|| {
    let m = RetentionMetrics { deleted: Family::default(), oldest_age: Family::default(), pace: Family::default() };
    let r = crate::metrics::global();
    r.register("ponte_retention_rows_deleted", "Rows deleted by retention, by table", m.deleted.clone());
    r.register(
        "ponte_retention_oldest_row_age_seconds",
        "Age of the oldest row retention could delete and kept, by table",
        m.oldest_age.clone(),
    );
    r.register(
        "ponte_retention_pace_rows_per_second",
        "The pace retention last deleted at, by table: lower while the database is busy",
        m.pace.clone(),
    );
    m
});

/// Registers the retention metrics (so they show before the first pass).
pub fn register_metrics() {
    LazyLock::force(&METRICS);
}

enum Keys {
    Text(Vec<String>),
    Int(Vec<i64>),
    TenantText(Vec<(String, String)>),
    TenantInt(Vec<(String, i64)>),
}

impl Keys {
    fn len(&self) -> usize {
        match self {
            Keys::Text(k) => k.len(),
            Keys::Int(k) => k.len(),
            Keys::TenantText(k) => k.len(),
            Keys::TenantInt(k) => k.len(),
        }
    }

    async fn pick(rule: &Rule, cutoff: i64, conn: &mut sqlx::AnyConnection) -> Result<Self, sqlx::Error> {
        let q = sqlx::query(rule.pick).bind(cutoff).bind(BATCH);
        let rows = q.fetch_all(conn).await?;
        Ok(Self::of_rows(rule.key, &rows))
    }

    fn of_rows(key: KeyType, rows: &[sqlx::any::AnyRow]) -> Self {
        use sqlx::Row;
        let text = |r: &sqlx::any::AnyRow, i: usize| r.try_get::<String, _>(i).unwrap_or_default();
        let int = |r: &sqlx::any::AnyRow, i: usize| r.try_get::<i64, _>(i).unwrap_or_default();
        match key {
            KeyType::Text => Keys::Text(rows.iter().map(|r| text(r, 0)).collect()),
            KeyType::Int => Keys::Int(rows.iter().map(|r| int(r, 0)).collect()),
            KeyType::TenantText => Keys::TenantText(rows.iter().map(|r| (text(r, 0), text(r, 1))).collect()),
            KeyType::TenantInt => Keys::TenantInt(rows.iter().map(|r| (text(r, 0), int(r, 1))).collect()),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `sql` with `{keys}` replaced by one placeholder per key, and the keys bound.
    fn bind<'q>(&'q self, sql: &'q str) -> Query<'q, sqlx::Any, AnyArguments> {
        let list: Vec<String> = match self {
            Keys::Text(_) | Keys::Int(_) => (1..=self.len()).map(|i| format!("${i}")).collect(),
            Keys::TenantText(_) | Keys::TenantInt(_) => {
                let pairs: Vec<String> = (0..self.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
                vec![format!("VALUES {}", pairs.join(", "))]
            }
        };
        let text = sql.replace("{keys}", &list.join(", "));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
        match self {
            Keys::Text(keys) => {
                for k in keys {
                    q = q.bind(k.as_str());
                }
            }
            Keys::Int(keys) => {
                for k in keys {
                    q = q.bind(*k);
                }
            }
            Keys::TenantText(keys) => {
                for (t, k) in keys {
                    q = q.bind(t.as_str()).bind(k.as_str());
                }
            }
            Keys::TenantInt(keys) => {
                for (t, k) in keys {
                    q = q.bind(t.as_str()).bind(*k);
                }
            }
        }
        q
    }
}

/// One pass over `rules` at time `now` (epoch milliseconds): the rows deleted per table, or
/// `None` when another replica holds the schema's lock.
pub async fn run_once(
    db: &Database,
    rules: &[Rule],
    cfg: &RetentionConfig,
    now: i64,
) -> Result<Option<Vec<(&'static str, u64)>>, sqlx::Error> {
    // A connection of its own, out of the pool: the advisory lock lives as long as the session,
    // so a pass cut short (the process stopping) must close it rather than hand it back locked.
    let mut conn = db.pool().acquire().await?.detach();
    let lock_key = format!("ponte-retention:{}", db.schema());
    if db.backend() == Backend::Postgres {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(&lock_key)
            .fetch_one(&mut conn)
            .await?;
        if !got {
            let _ = sqlx::Connection::close(conn).await;
            return Ok(None);
        }
    }
    let result = pass(&mut conn, db.backend(), rules, cfg, now).await;
    if db.backend() == Backend::Postgres {
        let _ =
            sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))").bind(&lock_key).execute(&mut conn).await;
    }
    let _ = sqlx::Connection::close(conn).await;
    result.map(Some)
}

async fn pass(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    rules: &[Rule],
    cfg: &RetentionConfig,
    now: i64,
) -> Result<Vec<(&'static str, u64)>, sqlx::Error> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    let mut pace = Pace::new(cfg);
    for rule in rules {
        let cutoff = now - cfg.days(rule.kind) as i64 * DAY_MS;
        let mut deleted = 0u64;
        let paced = METRICS.pace.get_or_create(&TableLabels { table: rule.table }).clone();
        paced.set(pace.rows_per_second() as i64);
        for batch in 0..MAX_BATCHES {
            let started = std::time::Instant::now();
            let picked = Keys::pick(rule, cutoff, &mut *conn).await?;
            if picked.is_empty() {
                break;
            }
            let mut tx = conn.begin().await?;
            let gone = Keys::of_rows(rule.key, &picked.bind(rule.delete).fetch_all(&mut *tx).await?);
            if !gone.is_empty() {
                for dependent in rule.dependents {
                    gone.bind(dependent).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            deleted += gone.len() as u64;
            if (picked.len() as i64) < BATCH {
                break;
            }
            if batch + 1 < MAX_BATCHES {
                pace.pause(&mut *conn, backend, started.elapsed()).await?;
                paced.set(pace.rows_per_second() as i64);
            }
        }
        METRICS.deleted.get_or_create(&TableLabels { table: rule.table }).inc_by(deleted);
        match out.iter_mut().find(|(t, _)| *t == rule.table) {
            Some((_, n)) => *n += deleted,
            None => out.push((rule.table, deleted)),
        }
    }
    // The oldest row each table's rules could delete, after the pass.
    let mut oldest: Vec<(&'static str, Option<i64>)> = Vec::new();
    for rule in rules {
        let t: Option<i64> = sqlx::query_scalar(rule.oldest).fetch_one(&mut *conn).await?;
        match oldest.iter_mut().find(|(table, _)| *table == rule.table) {
            Some((_, o)) => {
                *o = match (*o, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            None => oldest.push((rule.table, t)),
        }
    }
    for (table, t) in oldest {
        let age = t.map_or(0, |t| ((now - t) / 1000).max(0));
        METRICS.oldest_age.get_or_create(&TableLabels { table }).set(age);
    }
    Ok(out)
}

/// Runs [`run_once`] every `cfg.interval` until the process ends (the first pass after one
/// interval, so replicas starting together do not add work to their start).
pub fn spawn(db: Database, rules: &'static [Rule], cfg: RetentionConfig) -> tokio::task::JoinHandle<()> {
    register_metrics();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + cfg.interval, cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&db, rules, &cfg, now_millis()).await {
                Ok(Some(done)) => {
                    for (table, rows) in done.into_iter().filter(|(_, n)| *n > 0) {
                        tracing::info!(table, rows, "retention deleted old rows");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "retention pass failed; the next one goes on"),
            }
        }
    })
}

/// A rule for an append-only history table whose key grows with time (`BIGSERIAL`): it looks
/// at the [`BATCH`] lowest keys only, so a pass costs the same however large the table.
#[macro_export]
macro_rules! history_rule {
    ($table:literal, $key:literal, $time:literal) => {
        $crate::retention::Rule {
            table: $table,
            kind: $crate::retention::Kind::History,
            key: $crate::retention::KeyType::Int,
            pick: concat!(
                "SELECT ",
                $key,
                " FROM (SELECT ",
                $key,
                ", ",
                $time,
                " FROM ",
                $table,
                " ORDER BY ",
                $key,
                " LIMIT $2) oldest WHERE ",
                $time,
                " < $1"
            ),
            delete: concat!("DELETE FROM ", $table, " WHERE ", $key, " IN ({keys}) RETURNING ", $key),
            dependents: &[],
            oldest: concat!("SELECT ", $time, " FROM ", $table, " ORDER BY ", $key, " LIMIT 1"),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_refuse_a_window_shorter_than_bling_s_retries_naming_the_variable() {
        let cfg = RetentionConfig::from_env(&Env::default()).unwrap();
        assert_eq!(
            cfg,
            RetentionConfig {
                settled_events_days: 14,
                dead_letters_days: 90,
                history_days: 90,
                sales_days: 90,
                shipments_days: 90,
                interval: Duration::from_secs(600),
                max_rows_per_second: 300,
                min_rows_per_second: 100,
            }
        );
        let short = Env::default().with("PONTE_RETENTION_SETTLED_EVENTS_DAYS", "2");
        let e = RetentionConfig::from_env(&short).unwrap_err().to_string();
        assert!(e.contains("PONTE_RETENTION_SETTLED_EVENTS_DAYS") && e.contains("minimum of 3"), "{e}");
        let bad = Env::default().with("PONTE_RETENTION_HISTORY_DAYS", "soon");
        let e = RetentionConfig::from_env(&bad).unwrap_err().to_string();
        assert!(e.contains("PONTE_RETENTION_HISTORY_DAYS"), "{e}");
        let sales = Env::default().with("PONTE_RETENTION_SALES_DAYS", "7");
        let e = RetentionConfig::from_env(&sales).unwrap_err().to_string();
        assert!(e.contains("PONTE_RETENTION_SALES_DAYS") && e.contains("minimum of 30"), "{e}");
        let zero = Env::default().with("PONTE_RETENTION_INTERVAL_SECONDS", "0");
        assert!(RetentionConfig::from_env(&zero).unwrap_err().to_string().contains("PONTE_RETENTION_INTERVAL_SECONDS"));
        for bad in ["0", "-5", "fast"] {
            let env = Env::default().with("PONTE_RETENTION_MAX_ROWS_PER_SECOND", bad);
            let e = RetentionConfig::from_env(&env).unwrap_err().to_string();
            assert!(e.contains("PONTE_RETENTION_MAX_ROWS_PER_SECOND"), "{bad}: {e}");
            let env = Env::default().with("PONTE_RETENTION_MIN_ROWS_PER_SECOND", bad);
            let e = RetentionConfig::from_env(&env).unwrap_err().to_string();
            assert!(e.contains("PONTE_RETENTION_MIN_ROWS_PER_SECOND"), "{bad}: {e}");
        }
        let above = Env::default().with("PONTE_RETENTION_MIN_ROWS_PER_SECOND", "500");
        let e = RetentionConfig::from_env(&above).unwrap_err().to_string();
        assert!(e.contains("PONTE_RETENTION_MIN_ROWS_PER_SECOND") && e.contains("above"), "{e}");
        // A maximum below the minimum's default takes the minimum down with it.
        let low = RetentionConfig::from_env(&Env::default().with("PONTE_RETENTION_MAX_ROWS_PER_SECOND", "50")).unwrap();
        assert_eq!((low.min_rows_per_second, low.max_rows_per_second), (50, 50));
    }

    #[test]
    fn the_pace_runs_from_the_minimum_when_busy_to_the_maximum_when_quiet() {
        let cfg = RetentionConfig::from_env(&Env::default()).unwrap();
        let mut pace = Pace::new(&cfg);
        assert_eq!(pace.rows_per_second(), 100, "a pass starts as if the database were busy");
        for (busy, rate) in [(0.0, 300), (0.25, 250), (0.5, 200), (1.0, 100), (7.0, 100), (-1.0, 300)] {
            pace.busy = busy;
            assert_eq!(pace.rows_per_second(), rate, "busy {busy}");
        }
        let fixed = Pace { min: 300, max: 300, busy: 0.5 };
        assert_eq!(fixed.rows_per_second(), 300);
    }

    #[test]
    fn a_pass_pauses_for_its_share_of_the_time_and_for_its_rows_per_second() {
        let ms = Duration::from_millis;
        // A quick batch under the cap: 1,000 rows at 300/s take 3.33 s, the batch's 100 ms included.
        assert_eq!(pause_after(ms(100), 300), Duration::from_secs_f64(1000.0 / 300.0) - ms(100));
        // A slow batch: its share of the time decides (19 × 200 ms), the cap is already kept.
        assert_eq!(pause_after(ms(200), 1000), ms(3800));
        // A cap far above what a batch deletes: the share, within its bounds.
        assert_eq!(pause_after(ms(2), 1_000_000), ms(38));
        assert_eq!(pause_after(ms(0), 1_000_000), PAUSE_MIN);
        assert_eq!(pause_after(ms(1000), 1_000_000), PAUSE_MAX);
        // A batch slower than the cap's whole budget: no extra wait beyond the share.
        assert_eq!(pause_after(ms(4000), 300), PAUSE_MAX);
    }
}
