//! Benchmark of the webhook gateway's acknowledgement path: wrk drives `POST /webhooks/bling`
//! on 127.0.0.1 with signed ~600-byte Bling bodies, each with its own event id, and the result
//! is set beside a bare axum handler that only reads the body, measured in the same run.
//!
//! The mesh runs in this process as in production: auth-token (the tenant is connected through
//! the Bling sandbox), catalog-sync receiving the deliveries, the gateway with its inbox writers
//! and dispatcher, PostgreSQL (whatever `PONTE_TEST_DATABASE_URL` points at; its `fsync` and
//! `synchronous_commit` settings are printed) and Redis. "Stored" is counted in the inbox
//! table after each run, not taken from wrk.
//!
//! No event id is ever sent twice to the gateway: the number of unique bodies of a round follows
//! its duration and the rate the gateway last reached, and a wrk thread that runs out stops
//! instead of repeating one; such a run is discarded and the round is run again with twice the
//! bodies.

use std::{
    io::Write,
    net::SocketAddr,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use ponte_tests::{
    costs::cpu_seconds,
    webhooks::{BlingWorld, TENANT, sign},
};
use serde_json::json;

const LUA: &str = r#"
-- Each wrk thread takes every n-th line of the bodies file ("<signature>\t<body>"), so no two
-- threads send the same body; requests are formatted once, up front. In "once" mode a thread
-- that has sent all of its bodies stops (and says so) rather than send one again.
local counter = 1
local threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
local reqs = {}
local i = 0
local once = true
exhausted = 0
function init(args)
  local file, nthreads, path = args[1], tonumber(args[2]), args[3]
  once = args[4] ~= "cycle"
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id - 1 then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["X-Bling-Signature-256"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    n = n + 1
  end
end
function request()
  i = i + 1
  if i > #reqs and once then
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  return reqs[((i - 1) % #reqs) + 1]
end
function done(summary, latency, requests)
  local e = summary.errors
  local out = 0
  for _, t in ipairs(threads) do
    out = out + (t:get("exhausted") or 0)
  end
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d exhausted=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), out))
end
"#;

/// The gateway's acknowledgement benchmark (docs/benchmarks.md): wrk against the gateway and a
/// bare axum handler, same bodies, same run.
#[derive(Parser, Debug)]
#[command(name = "gateway-bench")]
struct Args {
    /// Seconds each wrk run lasts.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=30))]
    seconds: u64,
    /// The rounds' connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [8, 32])]
    connections: Vec<u32>,
    /// wrk threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Distinct products the events are about.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    products: u64,
    /// Run the dispatcher (false: the receiving side alone).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    dispatch: bool,
    /// `PONTE_INBOX_WRITERS`, when given.
    #[arg(long)]
    writers: Option<u32>,
    /// A setting for the gateway, e.g. `PONTE_RETENTION_INTERVAL_SECONDS=1`; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    envs: Vec<String>,
}

/// Rounds are run again, with twice the bodies, at most this many times when wrk runs out.
const ATTEMPTS: u32 = 3;
/// Unique bodies per round at the most (about 1 KiB each on disk and in wrk).
const MAX_BODIES: u64 = 3_000_000;

/// How many unique bodies a run of `seconds` needs at `rate` stored events/s, with headroom.
fn bodies_for(rate: f64, seconds: u64, threads: u32) -> u64 {
    (rate.max(1.0) * seconds as f64 * 1.5).ceil() as u64 + 1_000 * u64::from(threads)
}

#[derive(Debug, Clone, Copy)]
struct Run {
    requests: u64,
    seconds: f64,
    non2xx: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    /// wrk threads that ran out of unique bodies (and stopped).
    exhausted: u64,
}

/// The path every request posts to.
const PATH: &str = "/webhooks/bling";

/// wrk with the benchmark's script and thread count.
struct Wrk {
    lua: String,
    threads: u32,
}

impl Wrk {
    /// `connections` for `seconds` against `url`, sending the bodies in the file `bodies`.
    fn run(&self, url: &str, connections: u32, seconds: u64, bodies: &str, mode: Mode) -> anyhow::Result<Run> {
        let threads = self.threads.to_string();
        let out = Command::new("wrk")
            .args(["-t", &threads, "-c", &connections.to_string(), "-d", &format!("{seconds}s")])
            .args(["--timeout", "10s", "-s", &self.lua, url, "--", bodies, &threads, PATH, mode.arg()])
            .output()
            .context("running wrk (apt-get install -y wrk)")?;
        parse_result(&String::from_utf8_lossy(&out.stdout))
    }
}

/// The `RESULT` line the script prints.
fn parse_result(text: &str) -> anyhow::Result<Run> {
    let line =
        text.lines().find(|l| l.starts_with("RESULT ")).with_context(|| format!("wrk printed no result: {text}"))?;
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    };
    Ok(Run {
        requests: field("requests"),
        seconds: field("duration_us") as f64 / 1e6,
        non2xx: field("non2xx"),
        errors: field("errors"),
        p50_ms: field("p50_us") as f64 / 1000.0,
        p99_ms: field("p99_us") as f64 / 1000.0,
        exhausted: field("exhausted"),
    })
}

/// Whether wrk may send a body again.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Each body at most once: the gateway would answer a repeat as a duplicate.
    Once,
    /// Round and round: the bare handler stores nothing.
    Cycle,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Once => "once",
            Mode::Cycle => "cycle",
        }
    }
}

/// Writes `n` signed product.updated bodies of about 600 bytes, each with a fresh event id.
fn write_bodies(path: &std::path::Path, n: u64, products: u64, company: &str, secret: &str) -> anyhow::Result<usize> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut size = 0;
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T14:00:00Z")?;
    for i in 0..n {
        let product = 16_000_000_000 + (i % products);
        let date =
            (start + chrono::Duration::milliseconds(i as i64)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = json!({
            "eventId": uuid::Uuid::now_v7().to_string(), "date": date, "version": "v1", "event": "product.updated",
            "companyId": company,
            "data": {"id": product, "nome": "Camiseta Básica Algodão Orgânico Azul Marinho M", "codigo": format!("CAM-AZ-M-{product}"),
                "tipo": "P", "situacao": "A", "preco": 59.9, "unidade": "UN", "formato": "S", "idProdutoPai": 16_000_000_001_i64,
                "categoria": {"id": 12_345_679}, "descricaoCurta": "Camiseta de algodão orgânico, gola careca, manga curta.",
                "descricaoComplementar": "Tecido 100% algodão orgânico certificado; lavar à mão ou na máquina em água fria."}
        })
        .to_string();
        size = body.len();
        writeln!(f, "{}\t{}", sign(secret, body.as_bytes()), body)?;
    }
    f.flush()?;
    Ok(size)
}

async fn bare_axum() -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new().route(
        PATH,
        axum::routing::post(|body: axum::body::Bytes| async move {
            std::hint::black_box(body.len());
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn count(db: &ponte_core::db::Database, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(db.pool()).await?)
}

/// Waits (bounded) until the dispatcher delivered everything queued.
async fn drain(db: &ponte_core::db::Database, dispatch: bool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let queued = "SELECT COUNT(*) FROM inbox_deliveries WHERE state IN ('pending', 'in_flight')";
    while dispatch && started.elapsed() < Duration::from_secs(60) && count(db, queued).await? > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(started.elapsed())
}

/// What a round cost, for the capacity plan (docs/capacity.md): CPU of this process (the
/// gateway, its dispatcher, catalog-sync, auth-token, mapping and the sandboxes it calls) and of
/// every PostgreSQL process, WAL written and Redis memory. Machine-wide readings: on a machine
/// doing other work they include it.
struct Costs {
    ponte_cpu: f64,
    postgres_cpu: f64,
    wal: i64,
    redis: i64,
}

impl Costs {
    async fn now(db: &ponte_core::db::Database) -> anyhow::Result<Self> {
        let me = std::process::id();
        let wal: i64 = sqlx::query_scalar("SELECT CAST(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS BIGINT)")
            .fetch_one(db.pool())
            .await?;
        let client = redis::Client::open(ponte_tests::redis_url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await?;
        let redis =
            info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        Ok(Self {
            ponte_cpu: cpu_seconds(|_, pid| pid == me),
            postgres_cpu: cpu_seconds(|comm, _| comm == "postgres"),
            wal,
            redis,
        })
    }

    fn since(&self, before: &Costs) -> Costs {
        Costs {
            ponte_cpu: self.ponte_cpu - before.ponte_cpu,
            postgres_cpu: self.postgres_cpu - before.postgres_cpu,
            wal: self.wal - before.wal,
            redis: self.redis - before.redis,
        }
    }

    /// One line the capacity plan quotes.
    fn per_event(&self, round: usize, events: i64) -> String {
        let n = events.max(1) as f64;
        format!(
            "COSTS round {round}: {events} events, per event: ponte CPU {:.3} ms, PostgreSQL CPU {:.3} ms, WAL {:.0} B, Redis {:.0} B",
            1000.0 * self.ponte_cpu / n,
            1000.0 * self.postgres_cpu / n,
            self.wal as f64 / n,
            self.redis as f64 / n,
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let w = BlingWorld::start(&[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC]).await;
    let mut env = w.mesh.env.clone().with("PONTE_DISPATCH_ENABLED", &a.dispatch.to_string());
    if let Some(n) = a.writers {
        env = env.with("PONTE_INBOX_WRITERS", &n.to_string());
    }
    for kv in &a.envs {
        let (k, v) = kv.split_once('=').context("--env NAME=VALUE")?;
        env = env.with(k, v);
    }
    let gw = w.mesh.start_gateway_http(env).await;
    let bare = bare_axum().await?;
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method')",
    )
    .fetch_all(gw.db.pool())
    .await?;
    println!("PostgreSQL: {settings:?}");
    let dir = tempfile::tempdir()?;
    let lua = dir.path().join("bench.lua");
    std::fs::write(&lua, LUA)?;
    let wrk = Wrk { lua: lua.to_string_lossy().into_owned(), threads: a.threads };
    let (company, secret) = (w.company_id(), w.client_secret());
    // The benchmark tenant's events only, by an index: a grown inbox (scripts/capacity/grown.sh)
    // holds millions of other rows, and its retention deletes some while the benchmark runs.
    let stored_events = &format!("SELECT COUNT(*) FROM inbox_events WHERE tenant_id = '{TENANT}'");

    // A warm-up: the tenant lookup is cached and the connections are open before measuring; its
    // rate is the first estimate of how many bodies a round needs.
    let warm = dir.path().join("warm.txt");
    write_bodies(&warm, 2_000, a.products, &company, &secret)?;
    let before = count(&gw.db, stored_events).await?;
    let warm_run = wrk.run(&gw.url(""), 8, 2, &warm.to_string_lossy(), Mode::Once)?;
    let mut rate = (count(&gw.db, stored_events).await? - before) as f64 / warm_run.seconds.max(0.001);
    // The bare handler stores nothing: a fixed set of bodies, sent round and round.
    let cycled = dir.path().join("cycled.txt");
    write_bodies(&cycled, 20_000, a.products, &company, &secret)?;
    let cycled = cycled.to_string_lossy().into_owned();

    println!(
        "| connections | bare axum req/s | bare p50 / p99 ms | gateway stored events/s | gateway p50 / p99 ms | ratio | non-2xx | avg commit batch |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (round, &c) in a.connections.iter().enumerate() {
        let base = wrk.run(&format!("http://{bare}"), c, a.seconds, &cycled, Mode::Cycle)?;
        let bare_rate = base.requests as f64 / base.seconds;
        for attempt in 1..=ATTEMPTS {
            let n = bodies_for(rate, a.seconds, a.threads);
            anyhow::ensure!(n <= MAX_BODIES, "a run of {}s would need {n} unique bodies; lower --seconds", a.seconds);
            let bodies = dir.path().join(format!("bodies-{round}-{attempt}.txt"));
            let started = Instant::now();
            let size = write_bodies(&bodies, n, a.products, &company, &secret)?;
            eprintln!("round {round}: {n} bodies of ~{size} bytes written in {:?}", started.elapsed());
            let bodies = bodies.to_string_lossy().into_owned();

            tokio::time::sleep(Duration::from_secs(1)).await;
            let costs_before = Costs::now(&gw.db).await?;
            let before = count(&gw.db, stored_events).await?;
            let text = ponte_core::metrics::global().encode();
            let run = wrk.run(&gw.url(""), c, a.seconds, &bodies, Mode::Once)?;
            let stored = count(&gw.db, stored_events).await? - before;
            std::fs::remove_file(&bodies)?;
            let stored_rate = stored as f64 / run.seconds;
            if run.exhausted > 0 {
                // A thread stopped early: the run was shorter than measured. Never reported.
                eprintln!("round {round}: the gateway outran {n} bodies ({stored} stored); running it again");
                rate = (rate * 2.0).max(stored_rate * 2.0);
                eprintln!("round {round}: dispatcher drained in {:?}", drain(&gw.db, a.dispatch).await?);
                anyhow::ensure!(attempt < ATTEMPTS, "round {round} ran out of unique bodies {ATTEMPTS} times");
                continue;
            }
            rate = stored_rate;
            let text_after = ponte_core::metrics::global().encode();
            let (batch_before, batch_after) = (batch_stats(&text), batch_stats(&text_after));
            let avg_batch = (batch_after.0 - batch_before.0) / (batch_after.1 - batch_before.1).max(1.0);
            let (commit_before, commit_after) = (commit_stats(&text), commit_stats(&text_after));
            eprintln!(
                "round {round}: {:.0} commits, {:.2} ms each on average",
                commit_after.1 - commit_before.1,
                1000.0 * (commit_after.0 - commit_before.0) / (commit_after.1 - commit_before.1).max(1.0)
            );
            println!(
                "| {c} | {bare_rate:.0} | {:.2} / {:.2} | {stored_rate:.0} | {:.2} / {:.2} | {:.3} | {} | {avg_batch:.1} |",
                base.p50_ms,
                base.p99_ms,
                run.p50_ms,
                run.p99_ms,
                stored_rate / bare_rate,
                run.non2xx + run.errors,
            );
            eprintln!("round {round}: wrk {run:?}, stored {stored}; bare {base:?}");
            let backlog =
                count(&gw.db, "SELECT COUNT(*) FROM inbox_deliveries WHERE state IN ('pending', 'in_flight')").await?;
            eprintln!("round {round}: deliveries still queued when the load stopped: {backlog}");
            // Let the dispatcher catch up before the next round, bounded.
            eprintln!("round {round}: dispatcher drained in {:?}", drain(&gw.db, a.dispatch).await?);
            let spent = Costs::now(&gw.db).await?.since(&costs_before);
            println!("{}", spent.per_event(round, stored));
            break;
        }
    }
    Ok(())
}

/// (sum, count) of the inbox commit times so far.
fn commit_stats(text: &str) -> (f64, f64) {
    histogram_stats(text, "ponte_gateway_inbox_commit_seconds")
}

/// (sum, count) of the inbox commit batch sizes so far.
fn batch_stats(text: &str) -> (f64, f64) {
    histogram_stats(text, "ponte_gateway_inbox_commit_batch_size")
}

/// (sum, count) of a histogram in Prometheus text.
fn histogram_stats(text: &str, name: &str) -> (f64, f64) {
    let get = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (get(&format!("{name}_sum")), get(&format!("{name}_count")))
}
