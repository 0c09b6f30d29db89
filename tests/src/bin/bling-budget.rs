//! Saturates one Bling account's budget from two processes that share it through Redis, and
//! reports what the Bling sandbox saw: calls served, 429s answered, and the achieved rate as a
//! fraction of the allowed one.
//!
//! `bling-budget run [--seconds S] [--scale F] [--callers N]` starts the sandbox (its limits sped
//! up F times), connects an account, starts two `worker` copies of itself, and prints one JSON
//! line. Bounded in time, 127.0.0.1 only.

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ponte_connectors::bling::{BlingApi, Caller};
use ponte_core::{
    idempotency::{RedisTimeouts, connect_redis},
    ratelimit::{Priority, Quota, RedisRateLimiter},
};
use ponte_sandbox::bling::{Bling, Config};

/// One Bling account's budget saturated from two processes sharing it through Redis.
#[derive(clap::Parser, Debug)]
#[command(name = "bling-budget")]
enum Cmd {
    /// Starts the sandbox and two workers; prints one JSON line.
    Run {
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// How many times faster than real time the sandbox's limits run.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Concurrent callers per worker.
        #[arg(long, default_value_t = 20)]
        callers: usize,
    },
    /// One of the two processes `run` starts.
    Worker(WorkerArgs),
}

#[derive(clap::Args, Debug)]
struct WorkerArgs {
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    #[arg(long, default_value_t = 20)]
    callers: usize,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The Bling sandbox's base URL.
    #[arg(long, default_value = "")]
    bling: String,
    #[arg(long, default_value = "")]
    token: String,
    #[arg(long, default_value = "")]
    account: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    #[arg(long, default_value = "ponte-bench:")]
    prefix: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match <Cmd as clap::Parser>::parse() {
        Cmd::Worker(args) => worker(args).await,
        Cmd::Run { seconds, scale, callers } => run(seconds, scale, callers.to_string()).await,
    }
}

async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let WorkerArgs { scale, callers, seconds, bling, token, account, redis, prefix } = args;
    let redis = connect_redis(&redis, RedisTimeouts::default(), Duration::from_secs(5)).await?;
    let limiter = Arc::new(RedisRateLimiter::new(redis, prefix));
    let api = BlingApi::new(ponte_connectors::http::client(), &bling, limiter, Quota::bling().scaled(scale));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let epoch_ms = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    };
    let first = Arc::new(AtomicU64::new(u64::MAX));
    let last = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (api, token, account, ok, failed) =
                (api.clone(), token.clone(), account.clone(), ok.clone(), failed.clone());
            let (first, last) = (first.clone(), last.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let caller = Caller { account: &account, priority: Priority::Live, token: &token };
                    let result = api.dados_basicos_for(caller).await;
                    // When the answer arrived: the span from the first to the last answer is
                    // what the budget was spread over.
                    let at = epoch_ms();
                    first.fetch_min(at, Ordering::Relaxed);
                    last.fetch_max(at, Ordering::Relaxed);
                    match result {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    println!(
        "{} {} {} {}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        first.load(Ordering::Relaxed),
        last.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn run(seconds: f64, scale: f64, callers: String) -> anyhow::Result<()> {
    let cfg = Config { time_scale: scale, ..Config::default() };
    let handle = Bling::new(cfg.clone()).spawn(None).await?;
    let url = format!("{}/oauth/authorize?response_type=code&client_id={}&state=bench", handle.base_url, cfg.client_id);
    let (code, _) = handle.authorize(&url).await.map_err(anyhow::Error::msg)?;
    let oauth = ponte_connectors::bling::BlingOAuth::new(
        ponte_connectors::http::client(),
        ponte_connectors::bling::BlingConfig::at(&handle.base_url, &cfg.client_id, &cfg.client_secret),
    );
    let tokens = oauth.exchange_code(&code).await?;
    let prefix = format!("ponte-bench:{}:", uuid::Uuid::new_v4().simple());
    let redis = std::env::var("PONTE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe()?)
                .args([
                    "worker",
                    "--bling",
                    &handle.base_url,
                    "--token",
                    &tokens.access_token,
                    "--account",
                    &cfg.company_id,
                ])
                .args(["--redis", &redis, "--prefix", &prefix, "--callers", &callers])
                .args(["--seconds", &seconds.to_string(), "--scale", &scale.to_string()])
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let (mut served, mut failed, mut first, mut last) = (0_u64, 0_u64, u64::MAX, 0_u64);
    for w in workers {
        let out = tokio::task::spawn_blocking(move || w.wait_with_output()).await??;
        let text = String::from_utf8_lossy(&out.stdout);
        let n: Vec<u64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if let [ok, bad, f, l] = n[..] {
            served += ok;
            failed += bad;
            first = first.min(f);
            last = last.max(l);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = handle.bling.stats();
    let allowed = cfg.per_second as f64 * scale;
    // n answers spread over a span hold n - 1 full intervals.
    let span = (last.saturating_sub(first)) as f64 / 1000.0;
    let achieved = if span > 0.0 { (served.saturating_sub(1)) as f64 / span } else { 0.0 };
    println!(
        "{}",
        serde_json::json!({"seconds": seconds, "scale": scale, "processes": 2, "served": served,
            "rate_limited": stats.rate_limited, "allowed_per_s": allowed, "achieved_per_s": achieved,
            "ratio": achieved / allowed, "span_seconds": span, "wall_seconds": elapsed,
            "failed": failed, "sandbox_api_requests": stats.api_requests})
    );
    Ok(())
}
