//! `ponte backfill start|watch|cancel`: full copies of a tenant's Bling catalog (or orders)
//! through catalog-sync's backfill RPCs. `watch` draws a live progress bar (items, rate, ETA,
//! counts) when stdout is a terminal and prints plain lines otherwise, then a final table;
//! `--output json` prints the final state as JSON.

use std::{io::IsTerminal, time::Duration};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ponte_core::grpc::TracedChannel as Channel;
use ponte_core::time::{from_timestamp, now_millis};
use ponte_proto::v1::{
    Backfill, BackfillScope, BackfillState, CancelBackfillRequest, StartBackfillRequest, SyncTarget,
    WatchBackfillRequest, catalog_sync_service_client::CatalogSyncServiceClient,
};
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use crate::output::{Output, table, when};

#[derive(Args, Debug)]
pub struct CatalogSyncAddr {
    /// catalog-sync's gRPC address (default: where `ponte dev` puts it).
    #[arg(long, env = "PONTE_CATALOG_SYNC_URL", default_value = "http://127.0.0.1:50053")]
    pub catalog_sync_url: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TargetArg {
    Bitrix24,
    Cplug,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ScopeArg {
    Products,
    Orders,
}

/// How a backfill is followed, and where catalog-sync is.
#[derive(Args, Debug)]
pub struct Watching {
    /// How many items to expect (Bling's lists carry no total): gives the bar a length and an ETA.
    #[arg(long)]
    expected: Option<u64>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    addr: CatalogSyncAddr,
}

#[derive(Subcommand, Debug)]
pub enum BackfillCommand {
    /// Starts a full copy of the tenant's Bling catalog (or orders) into a target; prints its id.
    Start {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value_t = TargetArg::Bitrix24)]
        target: TargetArg,
        #[arg(long, value_enum, default_value_t = ScopeArg::Products)]
        scope: ScopeArg,
        /// Then watch it until it ends, as `ponte backfill watch` does.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        view: Watching,
    },
    /// Follows a backfill until it ends: a progress bar on a terminal, plain lines otherwise,
    /// then the final state.
    Watch {
        backfill_id: String,
        #[command(flatten)]
        view: Watching,
    },
    /// Stops a running backfill at its next checkpoint.
    Cancel {
        backfill_id: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        addr: CatalogSyncAddr,
    },
}

async fn client(addr: &CatalogSyncAddr) -> anyhow::Result<CatalogSyncServiceClient<Channel>> {
    let url = &addr.catalog_sync_url;
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .with_context(|| format!("--catalog-sync-url '{url}' is not a URL"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach catalog-sync at {url} (start it, or pass --catalog-sync-url)"))?;
    Ok(CatalogSyncServiceClient::new(crate::with_token(channel)?))
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

pub async fn backfill(command: BackfillCommand) -> anyhow::Result<()> {
    match command {
        BackfillCommand::Start { tenant, target, scope, watch, view: Watching { expected, output, addr } } => {
            let mut c = client(&addr).await?;
            let req = StartBackfillRequest {
                tenant_id: tenant,
                target: match target {
                    TargetArg::Bitrix24 => SyncTarget::Bitrix24,
                    TargetArg::Cplug => SyncTarget::Cplug,
                } as i32,
                scope: match scope {
                    ScopeArg::Products => BackfillScope::Products,
                    ScopeArg::Orders => BackfillScope::Orders,
                } as i32,
            };
            let b = c.start_backfill(req).await.map_err(status)?.into_inner().backfill.unwrap_or_default();
            if watch {
                return follow(&mut c, &b.backfill_id, expected, output).await;
            }
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&to_json(&b))?),
                Output::Table => {
                    println!("{}", b.backfill_id);
                    eprintln!("started; follow it with: ponte backfill watch {}", b.backfill_id);
                }
            }
            Ok(())
        }
        BackfillCommand::Watch { backfill_id, view: Watching { expected, output, addr } } => {
            follow(&mut client(&addr).await?, &backfill_id, expected, output).await
        }
        BackfillCommand::Cancel { backfill_id, output, addr } => {
            let b = client(&addr)
                .await?
                .cancel_backfill(CancelBackfillRequest { backfill_id })
                .await
                .map_err(status)?
                .into_inner()
                .backfill
                .unwrap_or_default();
            print_final(&b, output)
        }
    }
}

/// Items written or given up on so far.
fn processed(b: &Backfill) -> u64 {
    let c = b.counts.unwrap_or_default();
    c.created + c.updated + c.unchanged + c.failed
}

fn state_name(b: &Backfill) -> &'static str {
    match b.state() {
        BackfillState::Pending => "pending",
        BackfillState::Running => "running",
        BackfillState::Succeeded => "succeeded",
        BackfillState::Failed => "failed",
        BackfillState::Cancelled => "cancelled",
        BackfillState::Unspecified => "unknown",
    }
}

fn ended(b: &Backfill) -> bool {
    matches!(b.state(), BackfillState::Succeeded | BackfillState::Failed | BackfillState::Cancelled)
}

/// Seconds since the backfill started (at least a millisecond), to its end once it ended.
fn elapsed_secs(b: &Backfill) -> f64 {
    let start = b.start_time.as_ref().map_or_else(now_millis, from_timestamp);
    let end = b.end_time.as_ref().map_or_else(now_millis, from_timestamp);
    ((end - start).max(1) as f64) / 1000.0
}

/// Items per second since the start.
fn rate(b: &Backfill) -> f64 {
    processed(b) as f64 / elapsed_secs(b)
}

fn counts_line(b: &Backfill) -> String {
    let c = b.counts.unwrap_or_default();
    format!("{} created, {} updated, {} unchanged, {} failed", c.created, c.updated, c.unchanged, c.failed)
}

/// One plain progress line, for logs and pipes.
pub fn progress_line(b: &Backfill, expected: Option<u64>) -> String {
    let done = processed(b);
    let items = match expected {
        Some(total) => format!("{done}/{total} items"),
        None => format!("{done} items"),
    };
    let eta = match expected {
        Some(total) if total > done && rate(b) > 0.0 => format!(", ETA {}s", ((total - done) as f64 / rate(b)).ceil()),
        _ => String::new(),
    };
    format!(
        "{} {}: {items}, {:.1}/s{eta}, page {}; {}",
        b.backfill_id,
        state_name(b),
        rate(b),
        b.pages_done,
        counts_line(b)
    )
}

async fn follow(
    c: &mut CatalogSyncServiceClient<Channel>,
    backfill_id: &str,
    expected: Option<u64>,
    output: Output,
) -> anyhow::Result<()> {
    let mut stream = c
        .watch_backfill(WatchBackfillRequest { backfill_id: backfill_id.to_owned() })
        .await
        .map_err(status)?
        .into_inner();
    let bar = (std::io::stdout().is_terminal() && output == Output::Table).then(|| new_bar(expected));
    let mut last: Option<Backfill> = None;
    let mut last_line = String::new();
    while let Some(update) = stream.next().await {
        let Some(b) = update.map_err(status)?.backfill else { continue };
        match &bar {
            Some(bar) => {
                bar.set_position(processed(&b));
                bar.set_message(bar_message(&b, expected));
            }
            None if output == Output::Table => {
                let line = progress_line(&b, expected);
                // The same progress again (a heartbeat) is not printed twice.
                let key = line.split_once(", ").map_or(line.as_str(), |(_, rest)| rest).to_owned();
                if key != last_line {
                    println!("{line}");
                    last_line = key;
                }
            }
            None => {}
        }
        let done = ended(&b);
        last = Some(b);
        if done {
            break;
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let b = last.ok_or_else(|| anyhow::anyhow!("catalog-sync ended the watch of {backfill_id} without any state"))?;
    if !ended(&b) {
        anyhow::bail!(
            "the watch of {backfill_id} ended while it is {} (run `ponte backfill watch {backfill_id}` again)",
            state_name(&b)
        );
    }
    print_final(&b, output)?;
    match b.state() {
        BackfillState::Succeeded => Ok(()),
        _ => anyhow::bail!(
            "backfill {backfill_id} {}: {}",
            state_name(&b),
            if b.reason.is_empty() { "no reason given" } else { &b.reason }
        ),
    }
}

fn new_bar(expected: Option<u64>) -> ProgressBar {
    // Two lines, so the counts never squeeze the bar on a narrow terminal.
    let (len, template) = match expected {
        Some(total) => (Some(total), "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} items\n  {msg}"),
        None => (None, "{spinner} [{elapsed_precise}] {pos} items\n  {msg}"),
    };
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stdout()).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The bar's second line: rate, ETA, state, page and counts.
fn bar_message(b: &Backfill, expected: Option<u64>) -> String {
    let done = processed(b);
    let eta = match expected {
        Some(total) if total <= done => "ETA 0s".to_owned(),
        Some(total) if rate(b) > 0.0 => format!("ETA {}s", ((total - done) as f64 / rate(b)).ceil()),
        _ => "ETA unknown".to_owned(),
    };
    format!("{:.1} items/s · {eta} · {} · page {} · {}", rate(b), state_name(b), b.pages_done, counts_line(b))
}

fn to_json(b: &Backfill) -> Value {
    let c = b.counts.unwrap_or_default();
    json!({
        "backfill_id": b.backfill_id,
        "tenant_id": b.tenant_id,
        "target": match b.target() { SyncTarget::Bitrix24 => "bitrix24", SyncTarget::Cplug => "cplug", SyncTarget::Unspecified => "" },
        "scope": match b.scope() { BackfillScope::Products => "products", BackfillScope::Orders => "orders", BackfillScope::Unspecified => "" },
        "state": state_name(b),
        "pages_done": b.pages_done,
        "counts": {
            "products": c.products, "variations": c.variations, "active": c.active, "inactive": c.inactive,
            "created": c.created, "updated": c.updated, "unchanged": c.unchanged, "failed": c.failed,
        },
        "failures": b.failures.iter().map(|f| json!({"source_id": f.source_id, "reason": f.reason})).collect::<Vec<_>>(),
        "start_time": b.start_time.as_ref().map(|t| when(Some(t))),
        "end_time": b.end_time.as_ref().map(|t| when(Some(t))),
        "reason": b.reason,
    })
}

/// The final state: a table of the backfill's fields and counts, then its failures.
pub fn render_final(b: &Backfill) -> String {
    let c = b.counts.unwrap_or_default();
    let rows: Vec<Vec<String>> = [
        ("backfill", b.backfill_id.clone()),
        ("tenant", b.tenant_id.clone()),
        ("state", state_name(b).to_owned()),
        ("pages", b.pages_done.to_string()),
        (
            "in Bling",
            format!(
                "{} products + {} variations ({} active, {} inactive)",
                c.products, c.variations, c.active, c.inactive
            ),
        ),
        ("written", counts_line(b)),
        ("rate", format!("{:.1} items/s", rate(b))),
        ("started", when(b.start_time.as_ref())),
        ("ended", when(b.end_time.as_ref())),
        ("reason", if b.reason.is_empty() { "-".into() } else { b.reason.clone() }),
    ]
    .into_iter()
    .map(|(k, v)| vec![k.to_owned(), v])
    .collect();
    let mut out = table(&["FIELD", "VALUE"], &rows);
    if !b.failures.is_empty() {
        out.push('\n');
        let failures: Vec<Vec<String>> =
            b.failures.iter().map(|f| vec![f.source_id.clone(), f.reason.clone()]).collect();
        out.push_str(&table(&["FAILED ITEM", "REASON"], &failures));
    }
    out
}

fn print_final(b: &Backfill, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&to_json(b))?),
        Output::Table => print!("{}", render_final(b)),
    }
    Ok(())
}
