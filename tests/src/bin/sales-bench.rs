//! A day's backlog of point-of-sale sales (the PDV was offline) pushed at once: the CPLUG
//! sandbox rings up `--sales` sales across `--stores` stores and pushes every webhook to the
//! gateway together; the gateway hands them to sales-ingest, which posts each as a Bling order
//! and a write-off on the Bling sandbox at Bling's real 3 requests/s (time sped up `--scale`
//! times, for the sandbox and ponte's budget alike). Reports the Bling calls per sale, the 429s
//! and duplicates (orders per `numeroLoja`, write-offs per order), and the drain time against
//! the floor the budget implies for the calls made: Bling calls ÷ 3/s ÷ scale.
//!
//! Prints one JSON line. Needs PostgreSQL and Redis (scripts/services.sh).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use clap::Parser;
use ponte_core::config::Env;
use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, CreateStoreMapRequest, PaymentMethodMap, StoreMap,
    mapping_service_client::MappingServiceClient,
};
use ponte_sandbox::{
    bling::{self, CANAL_PDV, DEPOSITOS},
    cplug,
};
use ponte_tests::webhooks::{BlingWorld, TENANT};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Parser, Debug)]
#[command(
    about = "Posts a burst of point-of-sale sales through the mesh at Bling's rate limit and reports calls per sale and drain time against the floor"
)]
struct Args {
    /// Sales in the burst.
    #[arg(long, default_value_t = 1000)]
    sales: usize,
    /// CPLUG stores the sales come from (mapped to the sandbox's depósitos in turn).
    #[arg(long, default_value_t = 3)]
    stores: usize,
    /// Distinct products sold.
    #[arg(long, default_value_t = 12)]
    skus: usize,
    /// How many times faster than real time Bling's limits (and ponte's budget) run.
    #[arg(long, default_value_t = 10.0)]
    scale: f64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_sales_ingest::SPEC];

/// A valid CPF for customer `n` (three regulars buy with their CPF; most sales are anonymous).
const CPFS: [&str; 3] = ["12345678909", "52998224725", "11144477735"];

fn sale(n: usize, args: &Args) -> Value {
    let store = format!("loja-{}", n % args.stores);
    let sku = |k: usize| format!("SKU-{}", (n + k) % args.skus);
    let mut s = json!({"id": format!("V-{n:06}"), "store_id": store,
        "items": [{"sku": sku(0), "quantity": 1 + n % 3, "unit_price": 19.90}, {"sku": sku(5), "quantity": 1, "unit_price": 7.50}]});
    let total = Value::from(((1 + n % 3) as f64 * 1990.0 + 750.0).round() / 100.0);
    s["payments"] = if n.is_multiple_of(4) {
        json!([{"method": "CREDITO", "amount": total, "installments": 3}])
    } else {
        json!([{"method": if n.is_multiple_of(2) { "PIX" } else { "DINHEIRO" }, "amount": total}])
    };
    if n.is_multiple_of(10) {
        s["customer"] = json!({"document": CPFS[n % CPFS.len()], "name": format!("Cliente {}", n % CPFS.len())});
    }
    s
}

async fn retry<T, F, Fut>(mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    for _ in 0..20 {
        match f().await {
            Ok(t) => return Ok(t),
            // The account's budget is shared: a busy moment is waited out.
            Err(s) if s.code() == tonic::Code::Unavailable => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(s) => anyhow::bail!("{s:?}"),
        }
    }
    anyhow::bail!("mapping stayed unavailable")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = args.scale.to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/webhooks/cplug/{TENANT}", listener.local_addr()?);
    let pos =
        cplug::Cplug::new(cplug::Config { webhook_url: Some(hook), per_second: 100_000, ..cplug::Config::for_tests() })
            .spawn(None)
            .await?;
    let env = Env::default()
        .with("PONTE_RATE_LIMIT_SCALE", &scale)
        .with("PONTE_CPLUG_API_URL", &pos.base_url)
        .with("PONTE_SALES_SCAN_MS", "100")
        .with("PONTE_DISPATCH_POLL_MS", "100");
    let w = BlingWorld::start_with_env(
        SPECS,
        bling::Config { time_scale: args.scale, ..bling::Config::default() },
        &ponte_tests::redis_url(),
        env,
    )
    .await;
    BlingWorld::connect_cplug(&w.mesh, &pos).await;
    let _gateway = w.mesh.start_gateway_http_with(w.mesh.env.clone(), w.mesh.peers.clone(), Some(listener)).await;

    let mapping = MappingServiceClient::new(w.mesh.channel("mapping").await);
    for s in 0..args.stores {
        let map = StoreMap {
            tenant_id: TENANT.into(),
            cplug_store_id: format!("loja-{s}"),
            bling_loja_id: CANAL_PDV,
            bling_deposito_id: DEPOSITOS[s % DEPOSITOS.len()].0,
            create_time: None,
        };
        retry(|| {
            let (mut m, map) = (mapping.clone(), map.clone());
            async move { m.create_store_map(CreateStoreMapRequest { map: Some(map), validate_only: false }).await }
        })
        .await?;
    }
    for (method, forma) in [("CREDITO", 11_010_300), ("DINHEIRO", 11_010_299), ("PIX", 11_010_302)] {
        let map = PaymentMethodMap {
            tenant_id: TENANT.into(),
            cplug_method: method.into(),
            bling_forma_pagamento_id: forma,
            ..Default::default()
        };
        retry(|| {
            let (mut m, map) = (mapping.clone(), map.clone());
            async move {
                m.create_payment_method_map(CreatePaymentMethodMapRequest { map: Some(map), validate_only: false })
                    .await
            }
        })
        .await?;
    }
    let b = &w.bling.bling;
    for k in 0..args.skus {
        b.seed_product(json!({"nome": format!("Produto {k}"), "codigo": format!("SKU-{k}"), "preco": 19.9}));
    }
    // Let the set-up's calls leave the account's window before counting.
    tokio::time::sleep(Duration::from_secs_f64(2.0 / args.scale)).await;

    let sales_db = w.mesh.db("sales_ingest").await;
    let (calls_before, refused_before) = (b.stats().api_requests, b.stats().rate_limited);
    let began = Instant::now();
    for n in 0..args.sales {
        pos.ring_up(sale(n, &args)).map_err(|e| anyhow::anyhow!("the till refused sale {n}: {e:?}"))?;
    }
    let deadline = began + Duration::from_secs(args.timeout);
    let posted = loop {
        let posted = ponte_tests::count(&sales_db, "SELECT COUNT(*) FROM sales WHERE state = 'posted'").await;
        if posted as usize >= args.sales || Instant::now() > deadline {
            break posted;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let drain = began.elapsed();
    anyhow::ensure!(posted as usize == args.sales, "only {posted} of {} sales posted in time", args.sales);

    let calls = b.stats().api_requests - calls_before;
    let refused = b.stats().rate_limited - refused_before;
    let mut per_numero: HashMap<String, usize> = HashMap::new();
    for o in b.orders() {
        *per_numero.entry(o["numeroLoja"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    let duplicate_orders = per_numero.values().filter(|n| **n > 1).count();
    let mut per_order: HashMap<i64, usize> = HashMap::new();
    for m in b.movements().into_iter().filter(|m| m.pedido.is_some()) {
        *per_order.entry(m.pedido.unwrap_or_default()).or_default() += 1;
    }
    // Each sale has two items: a single write-off moves two lines.
    let duplicate_write_offs = per_order.values().filter(|n| **n != 2).count();
    let floor = Duration::from_secs_f64(calls as f64 / 3.0 / args.scale);
    println!(
        "{}",
        json!({
            "sales": args.sales, "stores": args.stores, "skus": args.skus, "scale": args.scale,
            "orders": per_numero.len(), "duplicate_orders": duplicate_orders,
            "orders_written_off": per_order.len(), "duplicate_write_offs": duplicate_write_offs,
            "bling_calls": calls, "calls_per_sale": calls as f64 / args.sales as f64, "bling_429s": refused,
            "floor_s": floor.as_secs_f64(), "drain_s": drain.as_secs_f64(),
            "drain_over_floor": drain.as_secs_f64() / floor.as_secs_f64(),
        })
    );
    Ok(())
}
