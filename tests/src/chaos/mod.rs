//! The whole-mesh chaos run: every service and two gateways as `ponte serve` processes on a
//! private PostgreSQL and a private Redis, the Bling, Bitrix24, CPLUG and 360Envios sandboxes
//! sending their real signed webhooks (a share duplicated or held back so that later ones
//! overtake them), 10% 5xx answers and 429 storms at every fake, and meanwhile `kill -9` of
//! random processes, a Redis restart and a PostgreSQL restart. The workload (Bling product
//! changes; CPLUG sales and cancellations, which reach Bling as orders and stock movements;
//! Bling orders, which become Bitrix24 deals and, released, 360Envios orders; the hub's status
//! moves, which come back as Bling situações) is drawn from a seed; at the end what the
//! sandboxes hold is compared with what the workload implies.

mod check;
mod costs;
mod workload;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use ponte_proto::v1::SyncSettings;
use ponte_sandbox::{bling, common::FaultSettings, cplug, envios360};

pub use check::Report;
use workload::Workload;

use crate::procs::{ALL_SERVICES, MeshOptions, PrivatePostgres, PrivateRedis, ProcessMesh};

/// What one run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `ponte` binary.
    pub bin: PathBuf,
    pub events: usize,
    pub kills: usize,
    pub seed: u64,
    /// Events a second the workload makes.
    pub rate: f64,
    /// Bling products changed (and sold).
    pub products: usize,
    /// Gives up waiting for the mesh to drain after this long (the whole run is bounded by
    /// the events at `rate`, the restarts and this).
    pub drain_timeout: Duration,
    /// More settings for every process (e.g. `PONTE_LOG=trace`).
    pub env: Vec<(String, String)>,
    /// Where to write every secret the run used or was issued, one a line (for the secret
    /// scan).
    pub secrets_out: Option<PathBuf>,
    /// A quiet run that measures what each process costs (`Report::costs`): no faults, no
    /// restarts (give no kills either).
    pub costs: bool,
}

/// A small, seedable generator (SplitMix64): the same seed draws the same run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The faults at every fake: 10% of answers a 5xx, 15% of webhooks sent twice, 15% held back
/// (and overtaken), none dropped; `storm` answers 429 first.
fn faults(seed: u64, storm: u64) -> FaultSettings {
    FaultSettings {
        error_rate: 0.10,
        storm,
        webhook_duplicate_rate: 0.15,
        webhook_reorder_rate: 0.15,
        webhook_hold_ms: 400,
        seed: Some(seed),
        ..Default::default()
    }
}

/// The faults of every fake.
fn fakes(mesh: &ProcessMesh) -> Vec<&ponte_sandbox::common::Faults> {
    vec![mesh.bling.bling.faults(), mesh.portal.portal.faults(), mesh.pos.cplug.faults(), mesh.hub.hub.faults()]
}

/// Every secret of the run: the app's and the stores' credentials, the sealing keys, the
/// Bitrix24 tokens and every token Bling issued.
fn secrets(mesh: &ProcessMesh) -> Vec<String> {
    let mut out: Vec<String> = mesh
        .env()
        .iter()
        .filter(|(k, _)| k.contains("SECRET") || k.contains("KEYS") || k.contains("PASSWORD") || k.contains("TOKEN"))
        .filter(|(k, _)| !k.ends_with("_URL"))
        .map(|(_, v)| v.clone())
        .collect();
    // The key itself, without its id.
    out.extend(
        mesh.env()
            .iter()
            .filter(|(k, _)| k == "PONTE_SEALING_KEYS")
            .filter_map(|(_, v)| v.split_once('=').map(|(_, key)| key.to_owned())),
    );
    let pos = mesh.pos.cplug.config();
    out.extend([pos.client_secret.clone(), pos.password.clone(), pos.webhook_secret.clone()]);
    let portal = mesh.portal.portal.config();
    out.extend([portal.application_token.clone(), portal.webhook_code.clone()]);
    // The incoming webhook's secret path segment (`/rest/<user>/<secret>/`).
    if let Some(secret) = mesh.portal.webhook_url.trim_end_matches('/').rsplit('/').next() {
        out.push(secret.to_owned());
    }
    out.push(mesh.bling.bling.config().client_secret.clone());
    out.extend([mesh.hub.hub.config().api_token.clone(), mesh.hub.hub.config().webhook_secret.clone()]);
    out.extend(mesh.bling.bling.issued_secrets());
    out.retain(|s| s.len() >= 8);
    out.sort();
    out.dedup();
    out
}

/// Runs the chaos and compares; the report (with `ok()` false on any difference).
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    let pg = PrivatePostgres::start().context("private PostgreSQL")?;
    let mut redis = PrivateRedis::start().await.context("private Redis")?;
    let database_url = pg.create_database("ponte_chaos").await?;

    let mut opts = MeshOptions::new(&cfg.bin, 2);
    opts.services = ALL_SERVICES.to_vec();
    opts.database_url = Some(database_url);
    opts.redis_url = Some(redis.url());
    opts.webhooks = true;
    opts.logs = cfg.secrets_out.is_some() || cfg.env.iter().any(|(k, v)| k == "PONTE_LOG" && v != "warn");
    // Senders retry for minutes with doubling waits, as the real ones do for days.
    opts.bling = bling::Config {
        per_second: 5000,
        webhook_attempts: 14,
        webhook_backoff: Duration::from_millis(50),
        ..Default::default()
    };
    opts.pos = cplug::Config {
        per_second: 100_000,
        webhook_attempts: 14,
        webhook_backoff: Duration::from_millis(50),
        webhook_timeout: Duration::from_secs(5),
        ..cplug::Config::for_tests()
    };
    opts.hub = Some(envios360::Config {
        per_second: 100_000,
        webhook_attempts: 14,
        webhook_backoff: Duration::from_millis(50),
        webhook_timeout: Duration::from_secs(5),
        ..envios360::Config::for_tests()
    });
    opts.extra = [
        ("PONTE_SALES_SCAN_MS", "100"),
        ("PONTE_SALES_RECHECK_SECONDS", "1"),
        ("PONTE_DISPATCH_POLL_MS", "100"),
        ("PONTE_DISPATCH_BACKOFF_MS", "50"),
        ("PONTE_SHUTDOWN_GRACE_SECONDS", "5"),
        // Work a killed process held is taken over after this long (a rolling restart hands
        // it back at once; SIGKILL cannot).
        ("PONTE_SALES_LEASE_SECONDS", "10"),
        ("PONTE_DISPATCH_LEASE_SECONDS", "15"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(cfg.env.iter().cloned())
    .collect();
    let mut mesh = ProcessMesh::start(opts).await;
    mesh.settings(SyncSettings {
        bling_create_creates_in_bitrix24: true,
        bling_update_updates_bitrix24: true,
        orders_to_bitrix24: true,
        ..Default::default()
    })
    .await;
    let mut workload = Workload::set_up(&mesh, &cfg).await?;

    for (i, f) in fakes(&mesh).iter().enumerate().filter(|_| !cfg.costs) {
        f.set(faults(cfg.seed.wrapping_add(i as u64), 0));
    }
    let costs_before = if cfg.costs { Some(costs::sample(&mesh, &pg, &redis).await?) } else { None };
    let mut rng = Rng::new(cfg.seed ^ 0xC4A0_5EED);
    let kill_at: Vec<usize> = (1..=cfg.kills).map(|k| k * cfg.events / (cfg.kills + 1)).collect();
    let (redis_at, pg_at) = (cfg.events * 2 / 5, cfg.events * 3 / 5);
    let mut killed = Vec::new();
    let began = Instant::now();
    for n in 0..cfg.events {
        tokio::time::sleep_until((began + Duration::from_secs_f64(n as f64 / cfg.rate)).into()).await;
        // Each event draws from its own generator, and the faults and kills from theirs: what the
        // hub can move depends on timing, and must not shift the rest of the run.
        let mut event = Rng::new(cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ n as u64);
        workload.step(&mesh, &mut event, n).await?;
        // A storm of 429s at one fake for a tenth of the events.
        if rng.chance(0.1) && !cfg.costs {
            let fakes = fakes(&mesh);
            let which = rng.below(fakes.len());
            fakes[which].set(faults(rng.next_u64(), 3 + rng.below(8) as u64));
        }
        for _ in kill_at.iter().filter(|k| **k == n) {
            let index = rng.below(mesh.procs.len());
            killed.push(mesh.kill(index).await);
        }
        if n == redis_at && !cfg.costs {
            redis.restart().await.context("restart Redis")?;
        }
        if n == pg_at && !cfg.costs {
            let pg = &pg;
            tokio::task::block_in_place(|| pg.restart()).context("restart PostgreSQL")?;
        }
    }
    let sent = began.elapsed();
    // Costs are read once the inbox is empty, before the check's polls (which would count).
    let costs = match costs_before {
        Some(before) => {
            costs::settle(&mesh, cfg.drain_timeout).await?;
            Some(costs::sample(&mesh, &pg, &redis).await?.since(&before, &mesh.database_url).await?)
        }
        None => None,
    };
    let drained = check::drain(&mesh, &workload, cfg.drain_timeout).await;
    let mut report = check::compare(&mesh, &workload).await;
    report.costs = costs;
    report.events = cfg.events;
    report.seed = cfg.seed;
    report.killed = killed;
    report.workload_secs = sent.as_secs_f64();
    report.drain_secs = drained.map(|d| d.as_secs_f64());
    for f in fakes(&mesh) {
        f.set(FaultSettings::default());
    }
    if let Some(path) = &cfg.secrets_out {
        std::fs::write(path, secrets(&mesh).join("\n") + "\n").context("write the secrets")?;
    }
    Ok(report)
}
