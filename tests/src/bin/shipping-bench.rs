//! 360Envios status webhook → Bling situação written, through the mesh, and the outside calls of
//! one order's whole life cycle.
//!
//! Everything runs in this process on 127.0.0.1: auth-token, mapping, catalog-sync,
//! shipping-status and a gateway against a fresh PostgreSQL database and Redis, the Bling and
//! 360Envios sandboxes (no added latency) sending their real signed webhooks to the gateway.
//! Both sandboxes and ponte's own quotas run `--scale` times faster (Bling's 3 requests/s become
//! 3,000/s at the default 1,000), so the outside systems' limits, which no ponte change can lift,
//! are not what is measured; the Bling sandbox allows `--bling-headroom` times Bling's rate while
//! ponte paces itself at the scaled rate (see sync-latency-bench for why).
//!
//! 1. Life cycle: `--cycles` orders, each with two products of its own, are released in Bling
//!    and taken by the hub through all four statuses; the calls ponte made to each system are
//!    counted at the sandboxes (less the benchmark's own) and divided by the orders.
//! 2. Latency: `--rate` events a second for `--seconds`, open loop. An event is the hub moving
//!    one released order to its next status (`Envios360::set_status`, which sends the signed
//!    `order.status_changed` webhook); it completes when the Bling sandbox applies the move to the
//!    mapped situação (`Bling::situacao_moves`). Consecutive events go to distinct orders. The
//!    baseline, in the same run, at the same rate, to the same end point: the benchmark's own
//!    `PATCH /pedidos/vendas/{id}/situacoes/{idSituacao}` with the tenant's token.
//!
//! Prints one JSON line. Needs PostgreSQL and Redis (scripts/services.sh).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser;
use ponte_tests::{
    eventually,
    shipping::{EM_ANDAMENTO, SPECS, ShippingWorld},
};
use serde_json::{Value, json};

/// The target for the p99 through the mesh.
const TARGET_P99_MS: f64 = 50.0;
/// The statuses an order goes through at the hub, in order.
const STATUSES: [&str; 4] = ["in_packing_list", "awaiting_shipment", "in_transit", "delivered"];

#[derive(Parser, Debug)]
#[command(about = "360 status webhook → Bling situação latency through the mesh, and outside calls per order")]
struct Args {
    /// Events a second, sent open loop.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long each of the baseline and the mesh is measured.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// How many times faster than real time the sandboxes and ponte's quotas run.
    #[arg(long, default_value_t = 1000.0)]
    scale: f64,
    /// The Bling sandbox allows this many times Bling's rate (ponte still paces itself at it).
    #[arg(long, default_value_t = 10)]
    bling_headroom: usize,
    /// Orders taken through the whole life cycle for the call counts.
    #[arg(long, default_value_t = 10)]
    cycles: usize,
}

/// When each (order, situação) move was applied in Bling.
type Moves = Arc<Mutex<HashMap<(i64, i64), Instant>>>;

/// The `q` quantile (nearest rank) of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    v.get(((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1)) - 1).copied().unwrap_or(f64::NAN)
}

fn latencies(mut v: Vec<f64>, sent: usize) -> Value {
    v.sort_by(f64::total_cmp);
    let r = |x: f64| (x * 100.0).round() / 100.0;
    json!({"p50": r(quantile(&v, 0.5)), "p99": r(quantile(&v, 0.99)), "max": r(quantile(&v, 1.0)),
           "completed": v.len(), "sent": sent})
}

/// Sends `events` at `rate` a second, each at its time whatever the earlier ones did; each
/// event's start and the move it waits for.
async fn open_loop<F, Fut>(events: Vec<(i64, i64)>, rate: f64, send: F) -> Vec<(Instant, (i64, i64))>
where
    F: Fn(usize, (i64, i64)) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = Vec::with_capacity(events.len());
    for (k, ev) in events.into_iter().enumerate() {
        tokio::time::sleep_until((start + interval.mul_f64(k as f64)).into()).await;
        started.push((Instant::now(), ev));
        tasks.spawn(send(k, ev));
    }
    while tasks.join_next().await.is_some() {}
    started
}

/// Waits for the moves of `started` (at most `within`); their latencies in ms.
async fn completions(started: &[(Instant, (i64, i64))], moves: &Moves, within: Duration) -> Vec<f64> {
    let all = || {
        let m = moves.lock().unwrap();
        started
            .iter()
            .filter_map(|(t0, key)| m.get(key).map(|at| at.duration_since(*t0).as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
    };
    eventually(within, || async { all().len() == started.len() }).await;
    all()
}

/// Creates an order in Bling with `products` and releases it; its id.
async fn released_order(world: &ShippingWorld, customer: i64, products: &[i64]) -> i64 {
    let lines: Vec<(i64, i64, f64)> = products.iter().map(|p| (*p, 1, 25.0)).collect();
    let order = world.order(customer, &lines, true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    order
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = args.scale;
    let env = ponte_core::config::Env::default().with("PONTE_RATE_LIMIT_SCALE", &scale.to_string());
    let headroom = args.bling_headroom.max(1);
    let world = ShippingWorld::start_layout(
        SPECS,
        None,
        env,
        |b| {
            b.time_scale = scale;
            b.per_second = 3 * headroom;
        },
        |h| h.time_scale = scale,
    )
    .await;
    let moves: Moves = Arc::default();
    let mut rx = world.w.bling.bling.situacao_moves();
    let collected = moves.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(m) => {
                    collected.lock().unwrap().insert((m.pedido, m.situacao), m.at);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    });
    world.set_up(false).await;
    let mut situacoes = Vec::new();
    for name in ["Em romaneio", "Aguardando coleta", "Em rota de entrega", "Atendido"] {
        situacoes.push(world.situacao(name).await);
    }
    let customer = world.customer();

    // 1. The life cycle, counted.
    let (bling0, hub0) = (world.w.bling.bling.stats(), world.hub.hub.stats());
    let mut own_bling_calls = 0;
    let mut cycle_orders = Vec::new();
    for i in 0..args.cycles {
        let products = [world.product(&format!("C{i}-A"), 25.0, 2), world.product(&format!("C{i}-B"), 25.0, 0)];
        cycle_orders.push(released_order(&world, customer, &products).await);
        own_bling_calls += 2;
    }
    for order in &cycle_orders {
        let hub_id = world.until_at_hub(*order).await["id"].as_str().unwrap_or_default().to_owned();
        for (status, situacao) in STATUSES.iter().zip(&situacoes) {
            world.hub.hub.set_status(&hub_id, status).map_err(anyhow::Error::msg)?;
            world.until_situacao(*order, *situacao).await;
        }
    }
    world.until_quiet().await;
    let (bling1, hub1) = (world.w.bling.bling.stats(), world.hub.hub.stats());
    let per_order = |n: u64| n as f64 / args.cycles.max(1) as f64;
    let bling_by_ponte = bling1.api_requests - bling0.api_requests - own_bling_calls;
    let cycle = json!({
        "orders": args.cycles, "products_per_order": 2,
        "bling_calls_per_order": per_order(bling_by_ponte),
        "envios360_calls_per_order": per_order(hub1.requests - hub0.requests),
        "floor": {"bling": 1 + 2 + 4, "envios360": 2 + 1},
        "bling_429": bling1.rate_limited - bling0.rate_limited,
        "envios360_429": hub1.rate_limited - hub0.rate_limited,
    });
    eprintln!("life cycle: {cycle}");

    // 2. Latency: released orders for the mesh, orders left in Em aberto for the baseline.
    let n = ((args.rate * args.seconds as f64) as usize).div_ceil(STATUSES.len()).max(1);
    let product = world.product("LAT-1", 25.0, 1);
    let mut mesh_orders = Vec::with_capacity(n);
    let mut base_orders = Vec::with_capacity(n);
    for _ in 0..n {
        mesh_orders.push(released_order(&world, customer, &[product]).await);
        base_orders.push(world.order(customer, &[(product, 1, 25.0)], true).await);
    }
    let mut hub_ids = HashMap::new();
    for order in &mesh_orders {
        hub_ids.insert(*order, world.until_at_hub(*order).await["id"].as_str().unwrap_or_default().to_owned());
    }
    world.until_quiet().await;
    let events = |orders: &[i64]| -> Vec<(i64, i64)> {
        (0..n * STATUSES.len()).map(|k| (orders[k % n], situacoes[k / n])).collect()
    };

    let token = world.bling_token().await;
    let http = reqwest::Client::new();
    let base = open_loop(events(&base_orders), args.rate, |_, (order, situacao)| {
        let req = http
            .patch(format!("{}/pedidos/vendas/{order}/situacoes/{situacao}", token.base_url))
            .bearer_auth(&token.access_token);
        async move {
            let _ = req.send().await;
        }
    })
    .await;
    let base_ms = completions(&base, &moves, Duration::from_secs(30)).await;
    world.until_quiet().await;

    let hub = world.hub.hub.clone();
    let hub_ids = Arc::new(hub_ids);
    let mesh = open_loop(events(&mesh_orders), args.rate, |k, (order, _)| {
        let (hub, hub_ids) = (hub.clone(), hub_ids.clone());
        async move {
            let _ = hub.set_status(&hub_ids[&order], STATUSES[k / n]);
        }
    })
    .await;
    let mesh_ms = completions(&mesh, &moves, Duration::from_secs(60)).await;
    world.until_quiet().await;

    let (b, m) = (latencies(base_ms, base.len()), latencies(mesh_ms, mesh.len()));
    let p99 = m["p99"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{}",
        json!({"rate": args.rate, "seconds": args.seconds, "scale": scale, "bling_headroom": headroom,
               "orders": n, "baseline_direct_patch_ms": b, "mesh_ms": m,
               "target_p99_ms": TARGET_P99_MS, "target_met": p99 < TARGET_P99_MS,
               "bling_429": world.w.bling.bling.stats().rate_limited, "life_cycle": cycle})
    );
    Ok(())
}
