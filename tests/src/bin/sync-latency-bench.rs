//! Webhook → Bitrix24 write latency through the mesh (issue 7, benchmark b): signed Bling
//! `product.updated` webhooks at a fixed open-loop rate into the gateway, each after a change
//! to its product in the Bling sandbox, timed from just before the POST to the moment the
//! Bitrix24 sandbox portal applied the `crm.product.update` carrying that change
//! (`Bitrix24::product_writes`).
//!
//! Everything runs in this process on 127.0.0.1: auth-token, mapping, catalog-sync and the
//! gateway (HTTP, inbox writers, dispatcher with its production defaults) against a fresh
//! PostgreSQL database and Redis, the Bling sandbox and a Bitrix24 sandbox portal connected
//! through its incoming webhook. Neither sandbox adds latency. Both run `--scale` times faster
//! (default 1,000: Bling's 3 requests/s become 3,000/s, Bitrix24's 2/s become 2,000/s) and
//! ponte's own quotas are scaled the same (`PONTE_RATE_LIMIT_SCALE`), so the outside systems'
//! rate limits, which no ponte change can lift, are not what is measured. ponte spaces Bling
//! calls 2% wider than Bling's limit (20 ms of slack at real speed); at 1,000× that slack is
//! 20 µs, less than scheduling jitter, and the sandbox would answer some calls 429 that it
//! never would at real speed. So the Bling sandbox allows `--bling-headroom` (default 10)
//! times Bling's 3 requests per second while ponte still paces itself at 3 (scaled):
//! `--bling-headroom 1` shows the 429s and their retries.
//!
//! The `--products` products are seeded in Bling and copied to Bitrix24 by a backfill first,
//! so every measured event is the steady-state update of a linked product (Bling read,
//! translation, link lookup, `crm.product.get`, `crm.product.update`). Event `seq` renames
//! product `seq mod N` to "Produto i #seq" in Bling and sends its webhook; the portal's write
//! of a name "#s" with s ≥ seq completes it (a newer change of the same product covers an
//! older one the dispatcher collapsed: counted as `coalesced`). Consecutive events go to
//! distinct products, so per-entity ordering does not serialize them. Sends are scheduled at
//! fixed times and never wait for earlier ones (open loop); how late the scheduler was is
//! reported (`max_send_late_ms`).
//!
//! Baseline, same run, same driver and the same end point: the three calls the sync makes to
//! the outside systems, made directly and in sequence for each event (`GET /produtos/{id}`
//! with the tenant's Bling token, `crm.product.get`, `crm.product.update`): what a sync with
//! no mesh in between would take. Its last call alone (`write`) is the floor of one write.
//!
//! Also reported, for finding where the time goes: the dispatcher's queue sampled every
//! 100 ms, the cores this process, PostgreSQL and Redis kept busy (and what else ran), the
//! disk, the gateway's inbox commit times, and PostgreSQL's transactions and table scans per
//! event. With `--trace` the spans of every event's trace are collected (OpenTelemetry, in
//! memory) and a second JSON line splits the latency into its phases.
//!
//! `sync-latency-bench [--rate 200] [--seconds 20] [--products 2000] [--scale 1000]
//! [--bling-headroom 10] [--warmup 20] [--baseline-seconds S] [--gateways 1]
//! [--env NAME=VALUE]... [--trace]` (`--gateways`: gateway replicas in this process, webhooks
//! spread over them; `--env`: a setting for every service, e.g. `PONTE_DISPATCH_CONCURRENCY=64`)
//! prints one JSON line. Needs PostgreSQL and Redis (scripts/services.sh).

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use ponte_connectors::bitrix24::client::field_values;
use ponte_proto::v1::{
    BackfillState, GetAccessTokenRequest, Provider, auth_token_service_client::AuthTokenServiceClient,
};
use ponte_sandbox::{
    bitrix24::{self, Bitrix24},
    bling,
};
use ponte_tests::webhooks::{BlingWorld, TENANT, bling_body, date, sign};
use serde_json::{Map, Value, json};
use sqlx::Row;
use tokio::sync::broadcast::error::RecvError;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

/// Issue 7's target for the p99 through the mesh.
const TARGET_P99_MS: f64 = 50.0;

/// Webhook-to-target sync latency under a steady webhook rate, beside a baseline run.
#[derive(clap::Parser, Debug)]
#[command(name = "sync-latency-bench")]
struct Args {
    /// Webhooks per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Products in the Bling catalog.
    #[arg(long, default_value_t = 2000)]
    products: u64,
    /// How many times faster than real time the rate limits run.
    #[arg(long, default_value_t = 1000.0)]
    scale: f64,
    /// Webhooks sent before measuring.
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Seconds of the baseline run (default: --seconds).
    #[arg(long)]
    baseline_seconds: Option<f64>,
    /// The Bling sandbox's per-second limit as a multiple of Bling's 3/s.
    #[arg(long, default_value_t = 10)]
    bling_headroom: usize,
    /// Gateway replicas.
    #[arg(long, default_value_t = 1)]
    gateways: usize,
    /// Export the spans and report where the time goes.
    #[arg(long)]
    trace: bool,
    /// A setting of ponte's, NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    envs: Vec<String>,
}

/// Writes the portal applied, by Bling id: the `#seq` of the name written, and when.
type Writes = Arc<Mutex<HashMap<i64, Vec<(u64, Instant)>>>>;

/// One event as the driver sent it.
struct Sent {
    seq: u64,
    bling_id: i64,
    /// Just before the first request left.
    t0: Instant,
    wall0: SystemTime,
    /// How much later than scheduled it left.
    late: Duration,
    /// Until the webhook's answer (the baseline: until its last call answered).
    ack: Duration,
    ok: bool,
    /// Baseline: when its `crm.product.update` left.
    write_start: Option<Instant>,
}

/// The products: (Bling id, Bitrix24 id), event `seq` going to `seq mod N`.
struct Catalog {
    products: Vec<(i64, u64)>,
}

impl Catalog {
    fn of(&self, seq: u64) -> (usize, i64, u64) {
        let i = (seq % self.products.len() as u64) as usize;
        (i, self.products[i].0, self.products[i].1)
    }
}

/// Sends `n` events at `rate` a second from `first_seq` on, each at its scheduled time
/// whether or not the earlier ones finished.
async fn open_loop<F, Fut>(n: u64, rate: f64, first_seq: u64, send: F) -> Vec<Sent>
where
    F: Fn(u64, Instant) -> Fut,
    Fut: Future<Output = Sent> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..n {
        let at = start + interval.mul_f64(k as f64);
        tokio::time::sleep_until(at.into()).await;
        tasks.spawn(send(first_seq + k, at));
    }
    let mut sent = Vec::with_capacity(n as usize);
    while let Some(s) = tasks.join_next().await {
        sent.push(s.expect("a send task panicked"));
    }
    sent.sort_by_key(|s| s.seq);
    sent
}

/// When each event's change reached the portal: the first write of its product whose `#seq`
/// is at least the event's, and whether it was the event's own.
fn completions(sent: &[Sent], writes: &Writes) -> Vec<Option<(Instant, bool)>> {
    let writes = writes.lock().unwrap_or_else(|e| e.into_inner());
    sent.iter()
        .map(|s| {
            writes.get(&s.bling_id).and_then(|ws| {
                ws.iter().filter(|(q, _)| *q >= s.seq).min_by_key(|(_, at)| *at).map(|(q, at)| (*at, *q == s.seq))
            })
        })
        .collect()
}

/// Waits until every sent event completed, or `within` passed; the completions.
async fn drain(sent: &[Sent], writes: &Writes, within: Duration) -> Vec<Option<(Instant, bool)>> {
    let until = Instant::now() + within;
    loop {
        let done = completions(sent, writes);
        if done.iter().all(Option::is_some) || Instant::now() >= until {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `q` quantile (nearest rank) of `v`, in ms.
fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn summary(mut v: Vec<f64>) -> Value {
    json!({"p50": round(pct(&mut v, 0.50)), "p90": round(pct(&mut v, 0.90)), "p99": round(pct(&mut v, 0.99)),
           "max": round(pct(&mut v, 1.0)), "n": v.len()})
}

/// The dispatcher's queue every 100 ms while `on`: catalog-sync deliveries pending (due or
/// not) and in flight, summarised.
async fn sample_queue(db: ponte_core::db::Database, on: Arc<std::sync::atomic::AtomicBool>) -> Value {
    let (mut pending, mut in_flight) = (Vec::new(), Vec::new());
    while on.load(Ordering::Relaxed) {
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM inbox_deliveries WHERE state IN ('pending', 'in_flight') GROUP BY state",
        )
        .fetch_all(db.pool())
        .await
        .unwrap_or_default();
        let of = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0.0, |(_, n)| *n as f64);
        pending.push(of("pending"));
        in_flight.push(of("in_flight"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mean = |v: &[f64]| round(v.iter().sum::<f64>() / v.len().max(1) as f64);
    json!({"samples": pending.len(), "pending_mean": mean(&pending), "pending_max": pct(&mut pending, 1.0),
           "in_flight_mean": mean(&in_flight), "in_flight_max": pct(&mut in_flight, 1.0)})
}

/// This database's PostgreSQL counters: `pg_stat_database` (commits, rollbacks, rows
/// returned and fetched) and, per table, `pg_stat_user_tables` (sequential scans and their
/// rows, index scans and their rows, rows written).
async fn pg_counters(db: &ponte_core::db::Database) -> anyhow::Result<BTreeMap<String, [i64; 5]>> {
    let mut out = BTreeMap::new();
    let row = sqlx::query(
        "SELECT xact_commit, xact_rollback, tup_returned + tup_fetched FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(db.pool())
    .await?;
    out.insert("(database)".to_owned(), [row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, 0, 0]);
    let tables = sqlx::query(
        "SELECT schemaname || '.' || relname, COALESCE(seq_scan, 0), COALESCE(seq_tup_read, 0), \
         COALESCE(idx_scan, 0), COALESCE(idx_tup_fetch, 0), n_tup_ins + n_tup_upd + n_tup_del \
         FROM pg_stat_user_tables",
    )
    .fetch_all(db.pool())
    .await?;
    for t in tables {
        out.insert(t.try_get(0)?, [t.try_get(1)?, t.try_get(2)?, t.try_get(3)?, t.try_get(4)?, t.try_get(5)?]);
    }
    Ok(out)
}

/// The PostgreSQL server's WAL bytes, full-page images and times its WAL buffers were full
/// (`pg_stat_wal`, all databases), checkpoints (`pg_stat_bgwriter`), and autovacuum and
/// autoanalyze runs on this database's tables.
async fn pg_server(db: &ponte_core::db::Database) -> anyhow::Result<[i64; 5]> {
    let r = sqlx::query(
        "SELECT (SELECT wal_bytes::bigint FROM pg_stat_wal), (SELECT wal_fpi FROM pg_stat_wal), \
         (SELECT wal_buffers_full FROM pg_stat_wal), \
         (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter), \
         (SELECT COALESCE(SUM(autovacuum_count + autoanalyze_count), 0)::bigint FROM pg_stat_user_tables)",
    )
    .fetch_one(db.pool())
    .await?;
    Ok([r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?])
}

/// The difference of two [`pg_counters`] per event.
fn pg_per_event(before: &BTreeMap<String, [i64; 5]>, after: &BTreeMap<String, [i64; 5]>, events: u64) -> Value {
    let per = |a: i64, b: i64| round((a - b) as f64 / events.max(1) as f64);
    let mut tables = Map::new();
    let mut out = Map::new();
    for (name, a) in after {
        let b = before.get(name).copied().unwrap_or_default();
        let d: Vec<f64> = a.iter().zip(b).map(|(a, b)| per(*a, b)).collect();
        if name == "(database)" {
            out.insert("commits".into(), json!(d[0]));
            out.insert("rollbacks".into(), json!(d[1]));
            out.insert("rows_read".into(), json!(d[2]));
        } else if d.iter().any(|x| *x >= 0.1) {
            tables.insert(
                name.clone(),
                json!({"seq_scans": d[0], "seq_rows": d[1], "idx_scans": d[2], "idx_rows": d[3], "rows_written": d[4]}),
            );
        }
    }
    out.insert("tables".into(), Value::Object(tables));
    Value::Object(out)
}

/// The machine's disks (not loop, zram or ram devices) from `/sys/block/*/stat`: writes,
/// sectors written, ms writing, flushes, ms flushing.
fn disk_counters() -> [u64; 5] {
    let mut out = [0; 5];
    for entry in std::fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["loop", "zram", "ram"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let f: Vec<u64> = stat.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        for (o, i) in out.iter_mut().zip([4, 6, 7, 15, 16]) {
            *o += f.get(i).copied().unwrap_or(0);
        }
    }
    out
}

/// Between two [`disk_counters`]: what the whole machine wrote, and how long writes and
/// flushes (fsync) took on average.
fn disk_use(b: [u64; 5], a: [u64; 5]) -> Value {
    let d: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.saturating_sub(b) as f64).collect();
    json!({"mb_written": round(d[1] * 512.0 / 1e6), "writes": d[0], "write_ms_avg": round(d[2] / d[0].max(1.0)),
           "flushes": d[3], "flush_ms_avg": round(d[4] / d[3].max(1.0))})
}

/// A Prometheus histogram's observations between two scrapes of the registry: how many, the
/// mean and the bucket bounds (ms) holding the median and the 99th percentile.
fn histogram_delta(before: &str, after: &str, name: &str) -> Value {
    let buckets = |text: &str| -> Vec<(f64, f64)> {
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix("_bucket{")?;
                let le = rest.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((le, l.split_whitespace().last()?.parse().ok()?))
            })
            .collect()
    };
    let single = |text: &str, suffix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{suffix}")))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let (b, a) = (buckets(before), buckets(after));
    let count = single(after, "_count") - single(before, "_count");
    let sum = single(after, "_sum") - single(before, "_sum");
    let cum: Vec<(f64, f64)> =
        a.iter().map(|(le, n)| (*le, n - b.iter().find(|(l, _)| l == le).map_or(0.0, |(_, m)| *m))).collect();
    let bound = |q: f64| cum.iter().find(|(_, n)| *n >= q * count).map(|(le, _)| le * 1000.0);
    json!({"count": count, "mean": round(1000.0 * sum / count.max(1.0)), "p50_at_most": bound(0.5),
           "p99_at_most": bound(0.99)})
}

/// CPU ticks so far: the machine's (all cores; busy includes softirq and steal, shown apart),
/// this process's, and every other process's by name.
struct Ticks {
    busy: u64,
    total: u64,
    softirq: u64,
    steal: u64,
    own: u64,
    by_name: HashMap<String, u64>,
}

/// A process's (name, user + system ticks) from its `/proc/<pid>/stat`.
fn proc_ticks(stat: &str) -> Option<(&str, u64)> {
    let (head, rest) = stat.rsplit_once(") ")?;
    let name = head.split_once(" (")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((name, fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?))
}

fn cpu_ticks() -> Option<Ticks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    let me = std::process::id().to_string();
    let (mut own, mut by_name) = (0, HashMap::new());
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|c| c.is_ascii_digit()) {
            continue; // self, thread-self, and the rest of /proc
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((name, t)) = proc_ticks(&stat) else { continue };
        if pid == me {
            own = t;
        } else {
            *by_name.entry(name.to_owned()).or_default() += t;
        }
    }
    Some(Ticks { busy: total - idle, total, softirq: *ticks.get(6)?, steal: *ticks.get(7)?, own, by_name })
}

/// Between two [`cpu_ticks`]: how busy the machine was (0–1) and how many cores on average this
/// process, PostgreSQL (all its backends, whoever they serve), Redis, softirq, steal and the
/// rest took, with the busiest other process names. Processes that started or ended in
/// between count only in the rest.
fn cpu_use(before: Option<Ticks>, after: Option<Ticks>) -> Value {
    let (Some(b), Some(a)) = (before, after) else { return Value::Null };
    let total = (a.total - b.total).max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let share = |x: u64, y: u64| round(y.saturating_sub(x) as f64 * cores / total);
    let named = |n: &str| share(b.by_name.get(n).copied().unwrap_or(0), a.by_name.get(n).copied().unwrap_or(0));
    let (busy, own, pg, redis) = (share(b.busy, a.busy), share(b.own, a.own), named("postgres"), named("redis-server"));
    let (softirq, steal) = (share(b.softirq, a.softirq), share(b.steal, a.steal));
    let mut others: Vec<(f64, &String)> = a
        .by_name
        .keys()
        .filter(|n| !["postgres", "redis-server"].contains(&n.as_str()))
        .map(|n| (named(n), n))
        .filter(|(c, _)| *c >= 0.02)
        .collect();
    others.sort_by(|x, y| y.0.total_cmp(&x.0));
    let top: Map<String, Value> = others.iter().take(4).map(|(c, n)| ((*n).clone(), json!(c))).collect();
    json!({"cores": cores, "machine_busy": round(busy / cores), "this_process_cores": own, "postgres_cores": pg,
           "redis_cores": redis, "softirq_cores": softirq, "steal_cores": steal,
           "rest_cores": round((busy - own - pg - redis - softirq - steal).max(0.0)), "busiest_others": top})
}

/// In `--trace` mode: the spans of the run, kept in memory.
mod trace {
    use std::{
        sync::{Arc, Mutex},
        time::{Duration, SystemTime},
    };

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
    use tracing_subscriber::{Layer as _, layer::SubscriberExt};

    /// (trace id, span name, start, end).
    pub type Span = (String, String, SystemTime, SystemTime);

    #[derive(Debug, Default, Clone)]
    pub struct Spans(pub Arc<Mutex<Vec<Span>>>);

    const KEPT: &[&str] = &[
        "POST /webhooks/bling",
        "deliver ",
        "ponte.v1.CatalogSyncService/HandleEvent",
        "Bling ",
        "Bitrix24 ",
        "ponte.v1.MappingService/",
    ];

    impl SpanProcessor for Spans {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
        fn on_end(&self, span: SpanData) {
            if KEPT.iter().any(|k| span.name.starts_with(k)) {
                let entry =
                    (span.span_context.trace_id().to_string(), span.name.to_string(), span.start_time, span.end_time);
                self.0.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
            }
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    /// Installs the process-wide subscriber (before anything creates a span).
    pub fn install() -> Spans {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let spans = Spans::default();
        let provider =
            opentelemetry_sdk::trace::SdkTracerProvider::builder().with_span_processor(spans.clone()).build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("sync-latency-bench"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other subscriber");
        spans
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Args = clap::Parser::parse();
    let Args {
        rate, seconds, products: n_products, scale, warmup, bling_headroom: headroom, gateways: n_gateways, ..
    } = args;
    let baseline_seconds = args.baseline_seconds.unwrap_or(seconds);
    let tracing_on = args.trace;
    anyhow::ensure!(rate > 0.0 && seconds > 0.0 && n_products > 0 && scale > 0.0, "bad arguments");
    let spans = tracing_on.then(trace::install);
    let (base_instant, base_wall) = (Instant::now(), SystemTime::now());
    let wall = move |at: Instant| base_wall + at.saturating_duration_since(base_instant);

    // The mesh with ponte's quotas scaled like the sandboxes'.
    let mut env = ponte_core::config::Env::default().with("PONTE_RATE_LIMIT_SCALE", &scale.to_string());
    for kv in &args.envs {
        let (k, v) = kv.split_once('=').context("--env NAME=VALUE")?;
        env = env.with(k, v);
    }
    let w = BlingWorld::start_with_env(
        SPECS,
        bling::Config { time_scale: scale, per_second: 3 * headroom.max(1), ..bling::Config::default() },
        &ponte_tests::redis_url(),
        env,
    )
    .await;
    let portal = Bitrix24::new(bitrix24::Config { time_scale: scale, ..bitrix24::Config::default() })
        .spawn(None)
        .await
        .map_err(|e| anyhow::anyhow!("Bitrix24 sandbox: {e}"))?;
    anyhow::ensure!(
        w.bling.bling.faults().get().latency_ms == 0 && portal.faults().get().latency_ms == 0,
        "the sandboxes must add no latency"
    );
    w.connect_portal(&portal).await;

    // The catalog, in Bling and (by a backfill) in Bitrix24, linked.
    let b = w.bling.bling.clone();
    let ids: Vec<i64> = (0..n_products)
        .map(|i| {
            b.seed_product(json!({"nome": format!("Produto {i}"), "codigo": format!("SKU-{i}"), "preco": 10.5,
                "unidade": "UN"}))
        })
        .collect();
    eprintln!("seeded {n_products} products; backfilling them into Bitrix24");
    let last = ponte_tests::backfill_products_to_bitrix24(w.mesh.channel("catalog-sync").await).await?;
    anyhow::ensure!(last.state == BackfillState::Succeeded as i32, "backfill ended {:?}: {}", last.state, last.reason);
    let key = portal
        .properties()
        .into_iter()
        .find(|p| p.code == "BLING_ID")
        .map(|p| format!("PROPERTY_{}", p.id))
        .context("the portal has no Bling ID property after the backfill")?;
    let bling_id_of = |p: &Map<String, Value>| field_values(p.get(&key)).first().and_then(|v| v.parse::<i64>().ok());
    let bitrix_ids: HashMap<i64, u64> = portal
        .products()
        .iter()
        .filter_map(|p| Some((bling_id_of(p)?, p.get("ID")?.as_str()?.parse().ok()?)))
        .collect();
    let catalog = Arc::new(Catalog {
        products: ids
            .iter()
            .map(|id| bitrix_ids.get(id).map(|bx| (*id, *bx)).context("a product the backfill did not copy"))
            .collect::<anyhow::Result<_>>()?,
    });

    // Every product write from now on, by Bling id and the `#seq` of its name.
    let writes: Writes = Arc::default();
    let lagged = Arc::new(AtomicU64::new(0));
    let mut rx = portal.product_writes();
    {
        let (writes, lagged, key) = (writes.clone(), lagged.clone(), key.clone());
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(write) => {
                        let Some(p) = write.product else { continue };
                        let id = field_values(p.get(&key)).first().and_then(|v| v.parse::<i64>().ok());
                        let name = p.get("NAME").and_then(Value::as_str).unwrap_or_default();
                        let seq = name.rsplit_once(" #").and_then(|(_, s)| s.parse::<u64>().ok());
                        if let (Some(id), Some(seq)) = (id, seq) {
                            writes
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .entry(id)
                                .or_default()
                                .push((seq, write.at));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    // The gateway as deployed (dispatcher defaults), and the webhook driver.
    let mut gateways = Vec::new();
    for _ in 0..n_gateways.max(1) {
        gateways.push(w.mesh.start_gateway_http(w.mesh.env.clone()).await);
    }
    let gw = &gateways[0];
    let urls: Arc<Vec<String>> = Arc::new(gateways.iter().map(|g| g.url("/webhooks/bling")).collect());
    let http = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let mesh_send = {
        let (http, urls, secret, company) = (http.clone(), urls.clone(), w.client_secret(), w.company_id());
        let (b, catalog, run) = (b.clone(), catalog.clone(), run.clone());
        move |seq: u64, at: Instant| {
            let url = urls[(seq % urls.len() as u64) as usize].clone();
            let (http, secret, company, b, catalog, run) =
                (http.clone(), secret.clone(), company.clone(), b.clone(), catalog.clone(), run.clone());
            async move {
                let (i, bling_id, _) = catalog.of(seq);
                let name = format!("Produto {i} #{seq}");
                b.edit_product_in_ui(bling_id, json!({"nome": name}));
                let data = json!({"id": bling_id, "nome": name, "codigo": format!("SKU-{i}"), "tipo": "P",
                    "situacao": "A", "preco": 10.5, "unidade": "UN", "formato": "S"});
                let body = bling_body(&format!("{run}-{seq}"), "product.updated", &company, &date(seq as i64), data);
                let mut req = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("X-Bling-Signature-256", sign(&secret, body.as_bytes()));
                if tracing_on {
                    req = req.header("traceparent", format!("00-{run}{seq:016x}-{:016x}-01", seq + 1));
                }
                let (t0, wall0) = (Instant::now(), SystemTime::now());
                let ok = req.body(body).send().await.is_ok_and(|r| r.status().is_success());
                Sent {
                    seq,
                    bling_id,
                    t0,
                    wall0,
                    late: t0.saturating_duration_since(at),
                    ack: t0.elapsed(),
                    ok,
                    write_start: None,
                }
            }
        }
    };

    // Warm-up (connections, caches, prepared statements), then the measured run.
    let mut seq = 1;
    let warm = open_loop(warmup, rate, seq, &mesh_send).await;
    let warm_done = drain(&warm, &writes, Duration::from_secs(30)).await;
    anyhow::ensure!(warm_done.iter().all(Option::is_some), "the warm-up events did not all reach Bitrix24");
    seq += warmup;
    let events = (rate * seconds).round() as u64;
    let (bling_before, portal_before) = (b.stats(), portal.stats());
    eprintln!("warmed up; sending {events} webhooks at {rate}/s");
    // PostgreSQL backends flush their statistics at the latest 10 s after going idle: wait, so
    // that the backfill's and the warm-up's are not counted as the measured run's.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let pg_before = pg_counters(&gw.db).await?;
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn(sample_queue(gw.db.clone(), sampling.clone()));
    let cpu_before = cpu_ticks();
    let (disk_before, metrics_before) = (disk_counters(), ponte_core::metrics::global().encode());
    let server_before = pg_server(&gw.db).await?;
    let began = Instant::now();
    let sent = open_loop(events, rate, seq, &mesh_send).await;
    let send_span = began.elapsed();
    let done = drain(&sent, &writes, Duration::from_secs(60)).await;
    let cpu_after = cpu_ticks();
    let (disk_after, metrics_after) = (disk_counters(), ponte_core::metrics::global().encode());
    let server_after = pg_server(&gw.db).await?;
    sampling.store(false, Ordering::Relaxed);
    let queue = sampler.await?;
    seq += events;
    let (bling_after, portal_after) = (b.stats(), portal.stats());

    let lat: Vec<f64> =
        sent.iter().zip(&done).filter_map(|(s, d)| d.map(|(at, _)| ms(at.saturating_duration_since(s.t0)))).collect();
    let completed = lat.len();
    let coalesced = done.iter().filter(|d| matches!(d, Some((_, false)))).count();
    let non_2xx = sent.iter().filter(|s| !s.ok).count();
    let acks: Vec<f64> = sent.iter().map(|s| ms(s.ack)).collect();
    let late_max = sent.iter().map(|s| s.late).max().unwrap_or_default();

    // The gateway's record of the same events: attempts, outcomes, receipt → delivered.
    let rows = sqlx::query(
        "SELECT e.receive_time, d.delivered_time, d.attempts, d.state, d.outcome FROM inbox_events e \
         JOIN inbox_deliveries d ON d.event_id = e.event_id WHERE e.tenant_id = $2 AND e.source_event_id LIKE $1 \
         AND d.subscriber = 'catalog-sync'",
    )
    .bind(format!("{run}-%"))
    // By the tenant's index: a grown inbox (scripts/capacity/grown.sh) holds millions of rows.
    .bind(TENANT)
    .fetch_all(gw.db.pool())
    .await?;
    let mut delivered_after = Vec::new();
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut retried = 0;
    for r in &rows {
        let (received, delivered, attempts): (i64, Option<i64>, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let (state, outcome): (String, String) = (r.try_get(3)?, r.try_get(4)?);
        *states.entry(if outcome.is_empty() { state } else { format!("{state}/{outcome}") }).or_default() += 1;
        if attempts > 1 {
            retried += 1;
        }
        if let Some(d) = delivered {
            delivered_after.push((d - received) as f64);
        }
    }

    // The baseline: the sync's three outside calls, made directly.
    let mut auth = AuthTokenServiceClient::new(w.mesh.channel("auth-token").await);
    let bling_token = auth
        .get_access_token(GetAccessTokenRequest {
            tenant_id: TENANT.into(),
            provider: Provider::Bling as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    let direct_send = {
        let (http, bling_api, token) =
            (http.clone(), bling_token.base_url.trim_end_matches('/').to_owned(), bling_token.access_token);
        let (b, catalog, webhook, key) = (b.clone(), catalog.clone(), portal.webhook_url.clone(), key.clone());
        move |seq: u64, at: Instant| {
            let (http, bling_api, token, b, catalog, webhook, key) = (
                http.clone(),
                bling_api.clone(),
                token.clone(),
                b.clone(),
                catalog.clone(),
                webhook.clone(),
                key.clone(),
            );
            async move {
                let (i, bling_id, bitrix_id) = catalog.of(seq);
                b.edit_product_in_ui(bling_id, json!({"nome": format!("Produto {i} #{seq}")}));
                let (t0, wall0) = (Instant::now(), SystemTime::now());
                let read = http.get(format!("{bling_api}/produtos/{bling_id}")).bearer_auth(&token).send().await;
                let product = match read {
                    Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                    _ => None,
                };
                let mut ok = product.is_some();
                let mut write_start = None;
                if let Some(p) = product.map(|p| p["data"].clone()) {
                    let get = http
                        .post(format!("{webhook}crm.product.get.json"))
                        .json(&json!({"id": bitrix_id}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    let fields = json!({"NAME": p["nome"], "XML_ID": p["codigo"], "PRICE": p["preco"], "ACTIVE": "Y",
                        key: bling_id.to_string()});
                    write_start = Some(Instant::now());
                    let update = http
                        .post(format!("{webhook}crm.product.update.json"))
                        .json(&json!({"id": bitrix_id, "fields": fields}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    ok = get && update;
                }
                Sent {
                    seq,
                    bling_id,
                    t0,
                    wall0,
                    late: t0.saturating_duration_since(at),
                    ack: t0.elapsed(),
                    ok,
                    write_start,
                }
            }
        }
    };
    let base_events = (rate * baseline_seconds).round() as u64;
    eprintln!("baseline: {base_events} direct call chains at {rate}/s");
    let base_cpu_before = cpu_ticks();
    let base = open_loop(base_events, rate, seq, &direct_send).await;
    let base_done = drain(&base, &writes, Duration::from_secs(30)).await;
    let base_cpu = cpu_use(base_cpu_before, cpu_ticks());
    let base_lat: Vec<f64> = base
        .iter()
        .zip(&base_done)
        .filter_map(|(s, d)| d.map(|(at, _)| ms(at.saturating_duration_since(s.t0))))
        .collect();
    let base_write: Vec<f64> = base
        .iter()
        .zip(&base_done)
        .filter_map(|(s, d)| Some(ms(d.as_ref()?.0.saturating_duration_since(s.write_start?))))
        .collect();
    let base_failed = base.iter().filter(|s| !s.ok).count() + base_done.iter().filter(|d| d.is_none()).count();
    // Read after the baseline, which leaves PostgreSQL alone: by then every backend has
    // flushed its statistics of the measured run (at the latest 10 s after going idle).
    let pg_after = pg_counters(&gw.db).await?;
    let pg = pg_per_event(&pg_before, &pg_after, events);

    let (p99, base_p99) = (pct(&mut lat.clone(), 0.99), pct(&mut base_lat.clone(), 0.99));
    let lat_summary = summary(lat);
    let base_summary = summary(base_lat);
    let result = json!({
        "rate": rate, "seconds": seconds, "products": n_products, "scale": scale, "bling_headroom": headroom,
        "gateways": gateways.len(),
        "events": events, "sent_per_s": round(events as f64 / send_span.as_secs_f64()),
        "max_send_late_ms": round(ms(late_max)), "non_2xx": non_2xx,
        "completed": completed, "lost": events as usize - completed, "coalesced": coalesced,
        "p50_ms": lat_summary["p50"], "p90_ms": lat_summary["p90"], "p99_ms": lat_summary["p99"],
        "max_ms": lat_summary["max"],
        "ack": summary(acks),
        "receipt_to_delivered_ms": summary(delivered_after),
        "deliveries": states, "retried": retried,
        "bling_calls": bling_after.api_requests - bling_before.api_requests,
        "bling_429": bling_after.rate_limited - bling_before.rate_limited,
        "bitrix24_calls": portal_after.requests - portal_before.requests,
        "bitrix24_refused": (portal_after.query_limit_exceeded + portal_after.operation_time_limit)
            - (portal_before.query_limit_exceeded + portal_before.operation_time_limit),
        "writes_lagged": lagged.load(Ordering::Relaxed),
        "queue": queue,
        "cpu": cpu_use(cpu_before, cpu_after),
        "disk": disk_use(disk_before, disk_after),
        "postgres_server": {"wal_mb": round((server_after[0] - server_before[0]) as f64 / 1e6),
            "wal_full_page_images": server_after[1] - server_before[1],
            "wal_buffers_full": server_after[2] - server_before[2],
            "checkpoints": server_after[3] - server_before[3],
            "autovacuum_or_analyze_runs": server_after[4] - server_before[4]},
        "inbox_commit_ms": histogram_delta(&metrics_before, &metrics_after, "ponte_gateway_inbox_commit_seconds"),
        "postgres_per_event": pg,
        "baseline": {"what": "Bling GET + crm.product.get + crm.product.update, direct",
                     "p50_ms": base_summary["p50"], "p99_ms": base_summary["p99"], "max_ms": base_summary["max"],
                     "write": summary(base_write), "failed": base_failed, "cpu": base_cpu},
        "p99_over_baseline_p99": round(p99 / base_p99),
        "p99_over_target": round(p99 / TARGET_P99_MS),
        "target_met": p99 < TARGET_P99_MS && completed == events as usize,
    });
    println!("{result}");

    if let Some(spans) = spans {
        println!("{}", phases(&sent, &done, &spans, &run, wall));
    }
    Ok(())
}

/// With `--trace`: each measured event's latency split at its spans' edges (ms): the client to
/// the gateway, the gateway's receipt (inbox commit included), the wait until the dispatcher
/// starts the delivery, the gRPC hop into catalog-sync, catalog-sync before its Bling read
/// (version check, settings, cached tokens), the Bling read (rate-limit wait included), the
/// translation, link lookup and `crm.product.get` up to the update, and the update until the
/// portal applied it.
fn phases(
    sent: &[Sent],
    done: &[Option<(Instant, bool)>],
    spans: &trace::Spans,
    run: &str,
    wall: impl Fn(Instant) -> SystemTime,
) -> Value {
    let all = spans.0.lock().unwrap_or_else(|e| e.into_inner());
    let mut by_trace: HashMap<&str, Vec<&trace::Span>> = HashMap::new();
    for s in all.iter().filter(|s| s.0.starts_with(run)) {
        by_trace.entry(s.0.as_str()).or_default().push(s);
    }
    let between = |a: SystemTime, b: SystemTime| match b.duration_since(a) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    };
    let names = [
        "to_gateway",
        "receipt",
        "until_delivery",
        "grpc_hop",
        "before_bling",
        "bling_read",
        "translate_link_get",
        "update_until_applied",
        "total",
    ];
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let (mut traced, mut redelivered, mut incomplete) = (0, 0, 0);
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    for (s, d) in sent.iter().zip(done) {
        let Some((applied, _)) = d else { continue };
        let id = format!("{run}{:016x}", s.seq);
        let Some(spans) = by_trace.get(id.as_str()) else { continue };
        traced += 1;
        for sp in spans.iter() {
            *calls.entry(sp.1.clone()).or_default() += 1;
        }
        // The last attempt is the one that wrote.
        let last = |prefix: &str| spans.iter().filter(|sp| sp.1.starts_with(prefix)).max_by_key(|sp| sp.2);
        let deliveries = spans.iter().filter(|sp| sp.1.starts_with("deliver ")).count();
        if deliveries > 1 {
            redelivered += 1;
        }
        let (Some(recv), Some(deliver), Some(handle), Some(read), Some(update)) = (
            last("POST /webhooks/bling"),
            last("deliver "),
            last("ponte.v1.CatalogSyncService/HandleEvent"),
            last("Bling GET"),
            last("Bitrix24 crm.product.update"),
        ) else {
            incomplete += 1;
            continue;
        };
        let applied = wall(*applied);
        let edges = [
            between(s.wall0, recv.2),
            between(recv.2, recv.3),
            between(recv.3, deliver.2),
            between(deliver.2, handle.2),
            between(handle.2, read.2),
            between(read.2, read.3),
            between(read.3, update.2),
            between(update.2, applied),
            between(s.wall0, applied),
        ];
        for (c, v) in cols.iter_mut().zip(edges) {
            c.push(v);
        }
    }
    let mut out = Map::new();
    for (name, c) in names.iter().zip(cols) {
        out.insert((*name).to_owned(), summary(c));
    }
    let per_event: BTreeMap<String, f64> =
        calls.into_iter().map(|(k, v)| (k, round(v as f64 / traced.max(1) as f64))).collect();
    json!({"phases_ms": out, "traced": traced, "redelivered": redelivered, "incomplete": incomplete,
           "spans_per_event": per_event})
}
