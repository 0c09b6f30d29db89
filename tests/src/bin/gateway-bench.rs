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
//! Usage: gateway-bench [--seconds N] [--connections 8,32] [--threads 2] [--products 10000] [--dispatch true]
//!        [--writers N]

use std::{
    io::Write,
    net::SocketAddr,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;
use ponte_tests::webhooks::{BlingWorld, sign};
use serde_json::json;

const LUA: &str = r#"
-- Each wrk thread takes every n-th line of the bodies file ("<signature>\t<body>"), so no two
-- requests carry the same event id; requests are formatted once, up front.
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local reqs = {}
local i = 0
function init(args)
  local file, threads, path = args[1], tonumber(args[2]), args[3]
  local n = 0
  for line in io.lines(file) do
    if n % threads == id - 1 then
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
  return reqs[((i - 1) % #reqs) + 1]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#;

struct Args {
    seconds: u64,
    connections: Vec<u32>,
    threads: u32,
    products: u64,
    /// Leave the dispatcher off (to see the receiving side alone).
    dispatch: bool,
    /// `PONTE_INBOX_WRITERS`, when given.
    writers: Option<u32>,
}

fn args() -> anyhow::Result<Args> {
    let mut a =
        Args { seconds: 15, connections: vec![8, 32], threads: 2, products: 10_000, dispatch: true, writers: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse().context("--seconds")?,
            "--connections" => {
                a.connections = value.split(',').map(str::parse).collect::<Result<_, _>>().context("--connections")?
            }
            "--threads" => a.threads = value.parse().context("--threads")?,
            "--products" => a.products = value.parse().context("--products")?,
            "--dispatch" => a.dispatch = value.parse().context("--dispatch (true or false)")?,
            "--writers" => a.writers = Some(value.parse().context("--writers")?),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!((1..=30).contains(&a.seconds), "--seconds must be between 1 and 30");
    Ok(a)
}

#[derive(Debug, Clone, Copy)]
struct Run {
    requests: u64,
    seconds: f64,
    non2xx: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wrk(
    url: &str,
    path: &str,
    connections: u32,
    threads: u32,
    seconds: u64,
    bodies: &str,
    lua: &str,
) -> anyhow::Result<Run> {
    let out = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &connections.to_string(), "-d", &format!("{seconds}s")])
        .args(["--timeout", "10s", "-s", lua, url, "--", bodies, &threads.to_string(), path])
        .output()
        .context("running wrk (apt-get install -y wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
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
    })
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
        "/webhooks/bling",
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let w = BlingWorld::start(&[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC]).await;
    let mut env = w.mesh.env.clone().with("PONTE_DISPATCH_ENABLED", &a.dispatch.to_string());
    if let Some(n) = a.writers {
        env = env.with("PONTE_INBOX_WRITERS", &n.to_string());
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
    let lua = lua.to_string_lossy().into_owned();

    // A warm-up: the tenant lookup is cached and the connections are open before measuring.
    let warm = dir.path().join("warm.txt");
    write_bodies(&warm, 2_000, a.products, &w.company_id(), &w.client_secret())?;
    wrk(&gw.url(""), "/webhooks/bling", 8, a.threads, 2, &warm.to_string_lossy(), &lua)?;

    println!(
        "| connections | bare axum req/s | bare p50 / p99 ms | gateway stored events/s | gateway p50 / p99 ms | ratio | non-2xx | avg commit batch |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (round, &c) in a.connections.iter().enumerate() {
        // Enough bodies that no id repeats: far more than the fastest run could send.
        let bodies = dir.path().join(format!("bodies-{round}.txt"));
        let started = Instant::now();
        let size = write_bodies(&bodies, 12_000 * a.seconds, a.products, &w.company_id(), &w.client_secret())?;
        eprintln!("round {round}: {} bodies of ~{size} bytes written in {:?}", 12_000 * a.seconds, started.elapsed());
        let bodies = bodies.to_string_lossy().into_owned();

        let base = wrk(&format!("http://{bare}"), "/webhooks/bling", c, a.threads, a.seconds, &bodies, &lua)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await?;
        let text = ponte_core::metrics::global().encode();
        let batch_before = batch_stats(&text);
        let run = wrk(&gw.url(""), "/webhooks/bling", c, a.threads, a.seconds, &bodies, &lua)?;
        let stored = count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await? - before;
        let text_after = ponte_core::metrics::global().encode();
        let batch_after = batch_stats(&text_after);
        let avg_batch = (batch_after.0 - batch_before.0) / (batch_after.1 - batch_before.1).max(1.0);
        let (commit_before, commit_after) = (commit_stats(&text), commit_stats(&text_after));
        eprintln!(
            "round {round}: {:.0} commits, {:.2} ms each on average",
            commit_after.1 - commit_before.1,
            1000.0 * (commit_after.0 - commit_before.0) / (commit_after.1 - commit_before.1).max(1.0)
        );
        let bare_rate = base.requests as f64 / base.seconds;
        let stored_rate = stored as f64 / run.seconds;
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
        let drain = Instant::now();
        while a.dispatch
            && drain.elapsed() < Duration::from_secs(60)
            && count(&gw.db, "SELECT COUNT(*) FROM inbox_deliveries WHERE state IN ('pending', 'in_flight')").await? > 0
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!("round {round}: dispatcher drained in {:?}", drain.elapsed());
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
