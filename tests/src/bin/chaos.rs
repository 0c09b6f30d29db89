//! The whole-mesh chaos run (see `ponte_tests::chaos`): every service and two gateways as
//! `ponte serve` processes on a private PostgreSQL and Redis, the sandboxes sending duplicated
//! and reordered webhooks and answering 5xx and 429 storms, `--kills` processes killed with
//! SIGKILL, Redis and PostgreSQL restarted once each; then what the sandboxes hold is compared
//! with what the workload implies. Prints one JSON line; exits 1 on any difference.
//!
//! Needs the `ponte` binary (`cargo build -p ponte`; `--ponte` or next to this one), PostgreSQL's
//! server binaries (`PONTE_PG_BIN`, default `/usr/lib/postgresql/15/bin`) and `redis-server`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Kills, restarts and faults across the whole ponte mesh under a mixed workload, then checks that \
                   nothing was lost, duplicated or wrong")]
struct Args {
    /// Workload events (product changes, sales, cancellations).
    #[arg(long, default_value_t = 300)]
    events: usize,
    /// Processes killed with SIGKILL (and restarted) during the run.
    #[arg(long, default_value_t = 5)]
    kills: usize,
    /// Seed of the workload, the kills and the faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Workload events a second.
    #[arg(long, default_value_t = 40.0)]
    rate: f64,
    /// Bling products changed and sold.
    #[arg(long, default_value_t = 20)]
    products: usize,
    /// Longest wait for the mesh to drain after the workload.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// The `ponte` binary (default: next to this one).
    #[arg(long)]
    ponte: Option<PathBuf>,
    /// The processes' log filter (`PONTE_LOG`), e.g. `trace`; their logs go to this stderr.
    #[arg(long, default_value = "warn")]
    log: String,
    /// Export the processes' spans to a receiver in this process and write each span (name,
    /// attributes, events) as a line of this file.
    #[arg(long)]
    spans_out: Option<PathBuf>,
    /// Write every secret the run used or was issued to this file, one a line.
    #[arg(long)]
    secrets_out: Option<PathBuf>,
    /// Measure instead of breaking: no faults, kills or restarts; prints each process's CPU per
    /// event and each table's bytes per row (docs/benchmarks.md, "What each service costs").
    #[arg(long)]
    costs: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match args.ponte {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("ponte"),
    };
    anyhow::ensure!(bin.exists(), "no ponte binary at {} (cargo build -p ponte, or --ponte)", bin.display());
    let mut env = vec![("PONTE_LOG".to_owned(), args.log.clone())];
    let receiver = match &args.spans_out {
        Some(_) => {
            let (receiver, addr) = ponte_tests::otlp::Receiver::start().await?;
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), format!("http://{addr}")));
            env.push(("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()));
            Some(receiver)
        }
        None => None,
    };
    let report = ponte_tests::chaos::run(ponte_tests::chaos::Config {
        bin,
        events: args.events,
        kills: if args.costs { 0 } else { args.kills },
        seed: args.seed,
        rate: args.rate.max(0.1),
        products: args.products.max(1),
        drain_timeout: Duration::from_secs(args.timeout_secs),
        env,
        secrets_out: args.secrets_out.clone(),
        costs: args.costs,
    })
    .await?;
    if let (Some(receiver), Some(path)) = (receiver, &args.spans_out) {
        // The processes are gone; what they exported before is all there is.
        std::fs::write(path, receiver.lines().await.join("\n") + "\n")?;
    }
    println!("{}", serde_json::to_string(&report)?);
    eprintln!(
        "chaos seed {}: {} events, {} kills ({}); lost {}, duplicated {}, wrong {}, undelivered {}, unsettled sales {}; \
         drain {}",
        report.seed,
        report.events,
        report.killed.len(),
        report.killed.join(", "),
        report.lost,
        report.duplicated,
        report.wrong,
        report.undelivered,
        report.unsettled_sales,
        report.drain_secs.map_or_else(|| "never".to_owned(), |s| format!("{s:.1}s")),
    );
    for d in &report.differences {
        eprintln!("  {d}");
    }
    if let Some(costs) = &report.costs {
        eprint!("{}", costs.table());
    }
    if !report.ok() {
        std::process::exit(1);
    }
    Ok(())
}
