//! A rolling restart under load, as Kubernetes rolls a release: the mesh of `ponte serve`
//! processes (auth-token, mapping, catalog-sync, sales-ingest, shipping-status and two
//! gateways: seven processes) takes a steady stream of webhooks: Bling `product.updated`, each
//! after a rename of its product in Bling; CPLUG `sale.completed` for till sales; and Bling
//! `order.updated` for orders released to shipping. Meanwhile every process is replaced one
//! after another (a new one starts and turns ready, the old one gets SIGTERM and must exit 0).
//! At the end: no event lost (every product in Bitrix24 carries the name of its last change,
//! every sale is posted in Bling and its stock written off, every released order is at
//! 360Envios), none duplicated (one CRM product per Bling product, one Bling order per sale,
//! one 360 order per released order, one inbox row per event id), no delivery and no sale
//! waited for a lease to expire (the sales' lease is longer than the test), and the
//! acknowledgement p99 during the restarts is printed beside the one before them. A webhook the
//! gateways could not take (a connection closed by a stopping gateway) is sent again, as the
//! senders do.
//!
//! Bounded: `PONTE_ROLLING_RATE` events a second (default 20) for the baseline
//! (`PONTE_ROLLING_BASELINE_SECONDS`, default 3) and the restarts, then the load stops.
//! docs/benchmarks.md has the figures.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ponte_proto::v1::SyncSettings;
use ponte_tests::{
    count, eventually,
    webhooks::{bling_body, date, sign},
};
use serde_json::json;
use tokio::sync::Mutex;

use crate::ops_mesh;

fn setting(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One webhook's acknowledgement: when it was first sent, how long until a 2xx, whether the
/// restarts were under way.
struct Ack {
    took: Duration,
    during_restarts: bool,
}

fn p99(acks: &[Ack], during: bool) -> (usize, Duration) {
    let mut t: Vec<Duration> = acks.iter().filter(|a| a.during_restarts == during).map(|a| a.took).collect();
    t.sort();
    let at = ((t.len() as f64) * 0.99).ceil() as usize;
    (t.len(), t.get(at.saturating_sub(1)).copied().unwrap_or_default())
}

/// Event `k`'s kind: 20% till sales, 10% orders released to shipping (while there are
/// orders to release), the rest product renames.
enum Kind {
    Rename,
    Sale,
    Release(usize),
}

fn kind(k: u64, releasable: usize) -> Kind {
    match k % 10 {
        0 | 5 => Kind::Sale,
        3 if ((k / 10) as usize) < releasable => Kind::Release((k / 10) as usize),
        _ => Kind::Rename,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_process_under_load_loses_and_duplicates_nothing() {
    let rate = setting("PONTE_ROLLING_RATE", 20).clamp(1, 500);
    let baseline = Duration::from_secs(setting("PONTE_ROLLING_BASELINE_SECONDS", 3).clamp(1, 600));
    // Prime to the kinds' period of ten events, so that every product is renamed.
    let products = 29_i64;
    let mut mesh = ops_mesh::start_all(
        2,
        &[
            ("PONTE_SHUTDOWN_GRACE_SECONDS", "10".to_owned()),
            // Longer than the test: a sale taken over was handed back, not left to expire.
            ("PONTE_SALES_LEASE_SECONDS", "3600".to_owned()),
            ("PONTE_SALES_SCAN_MS", "100".to_owned()),
        ],
    )
    .await;
    mesh.settings(SyncSettings {
        bling_create_creates_in_bitrix24: true,
        bling_update_updates_bitrix24: true,
        ..Default::default()
    })
    .await;
    let ids: Vec<i64> = (0..products)
        .map(|i| {
            mesh.bling.bling.seed_product(json!({"nome": format!("P{i} #0"), "codigo": format!("P-{i}"), "preco": 10}))
        })
        .collect();
    // The till's product, with stock for every sale.
    let copo = ops_mesh::set_up_till(&mesh).await;
    let deposito = ponte_sandbox::bling::DEPOSITOS[0].0;
    const STOCK: i64 = 100_000;
    mesh.bling.bling.set_stock(copo, deposito, rust_decimal::Decimal::from(STOCK));
    // Orders at Em andamento whose webhooks the load sends.
    ops_mesh::set_up_shipping(&mesh).await;
    let contato = ops_mesh::shipping_customer(&mesh);
    let shirt =
        mesh.bling.bling.seed_product(json!({"nome": "Camiseta", "codigo": "CAM-1", "preco": 59.9, "pesoBruto": 0.4}));
    let auth = mesh.channel("auth-token").await;
    let mut orders = Vec::new();
    for _ in 0..100 {
        orders.push(ops_mesh::released_order(auth.clone(), contato, shirt, "CAM-1").await);
    }

    // The load: event k renames a product in Bling and posts its webhook, or posts a till
    // sale, or the webhook of an order released to shipping; each posted again until a
    // gateway takes it.
    let cfg = mesh.bling.bling.config().clone();
    let bling = mesh.bling.bling.clone();
    let till = mesh.pos.cplug.clone();
    let bling_url = mesh.gateway_url("/webhooks/bling");
    let cplug_url = mesh.gateway_url(&format!("/webhooks/cplug/{}", ponte_tests::webhooks::TENANT));
    let restarting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let resent = Arc::new(AtomicU64::new(0));
    let load = {
        let (restarting, stop, acks, resent, ids, orders) =
            (restarting.clone(), stop.clone(), acks.clone(), resent.clone(), ids.clone(), orders.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sends = tokio::task::JoinSet::new();
            let started = Instant::now();
            let mut k: u64 = 0;
            while !stop.load(Ordering::SeqCst) && k < 20_000 {
                tokio::time::sleep_until((started + Duration::from_secs_f64(k as f64 / rate as f64)).into()).await;
                k += 1;
                let (url, headers, body) = match kind(k, orders.len()) {
                    Kind::Sale => {
                        let sale = ops_mesh::sale(&format!("R-{k}"), "loja-centro");
                        let (headers, body) = till.sale_webhook(&format!("roll-{k}"), "sale.completed", sale);
                        (cplug_url.clone(), headers, body)
                    }
                    kind => {
                        let (event, data) = match kind {
                            Kind::Release(j) => {
                                ("order.updated", json!({"id": orders[j], "situacao": {"id": ops_mesh::EM_ANDAMENTO}}))
                            }
                            _ => {
                                let id = ids[(k % ids.len() as u64) as usize];
                                let name = format!("P{} #{k}", k % ids.len() as u64);
                                assert!(bling.edit_product_in_ui(id, json!({"nome": name})));
                                ("product.updated", json!({"id": id}))
                            }
                        };
                        let body = bling_body(&format!("roll-{k}"), event, &cfg.company_id, &date(k as i64), data);
                        let sig = sign(&cfg.client_secret, body.as_bytes());
                        let headers = vec![
                            ("content-type".to_owned(), "application/json".to_owned()),
                            ("X-Bling-Signature-256".to_owned(), sig),
                        ];
                        (bling_url.clone(), headers, body)
                    }
                };
                let (http, acks, resent) = (http.clone(), acks.clone(), resent.clone());
                let during_restarts = restarting.load(Ordering::SeqCst);
                sends.spawn(async move {
                    let sent = Instant::now();
                    for attempt in 0..50 {
                        if attempt > 0 {
                            resent.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        let mut req = http.post(&url);
                        for (k, v) in &headers {
                            req = req.header(k, v);
                        }
                        let resp = req.body(body.clone()).send().await;
                        if resp.is_ok_and(|r| r.status().is_success()) {
                            acks.lock().await.push(Ack { took: sent.elapsed(), during_restarts });
                            return;
                        }
                    }
                    panic!("webhook roll-{k} was never acknowledged");
                });
            }
            while let Some(r) = sends.join_next().await {
                r.expect("a webhook was never acknowledged");
            }
            k
        })
    };

    tokio::time::sleep(baseline).await;
    restarting.store(true, Ordering::SeqCst);
    let rolled = Instant::now();
    // Every process once, in the order of the mesh (auth-token, mapping, catalog-sync,
    // sales-ingest, shipping-status, the two gateways); each new process goes to the end.
    let n = mesh.procs.len();
    assert_eq!(n, 7);
    for _ in 0..n {
        let service = mesh.procs[0].service;
        let exit = mesh.roll(0).await;
        assert!(exit.success(), "ponte serve {service} exited {exit:?} on SIGTERM");
        // A rollout waits a moment (minReadySeconds) before the next pod.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let rollout = rolled.elapsed();
    // A moment of load on the new processes, then stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let sent = load.await.unwrap();
    let sales: Vec<String> =
        (1..=sent).filter(|k| matches!(kind(*k, orders.len()), Kind::Sale)).map(|k| format!("R-{k}")).collect();
    let released: Vec<i64> = (1..=sent)
        .filter_map(|k| match kind(k, orders.len()) {
            Kind::Release(j) => Some(orders[j]),
            _ => None,
        })
        .collect();

    // Every event delivered (or collapsed into a newer one of its entity); nothing dead.
    let gateway = mesh.db("gateway").await;
    let pending = "SELECT COUNT(*) FROM inbox_events WHERE state NOT IN ('delivered', 'coalesced')";
    let settled = eventually(Duration::from_secs(60), || async { count(&gateway, pending).await == 0 }).await;
    if !settled {
        // Say where each waiting event stands, each of its deliveries, and its lane.
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT concat_ws(' | ', e.source_event_id, e.event_type, e.state, e.entity_key, d.subscriber, d.state, \
             d.attempts, d.last_error, d.detail) FROM inbox_events e LEFT JOIN inbox_deliveries d \
             ON d.event_id = e.event_id WHERE e.state NOT IN ('delivered', 'coalesced')",
        )
        .fetch_all(gateway.pool())
        .await
        .unwrap();
        let lanes: Vec<String> = sqlx::query_scalar(
            "SELECT concat_ws(' | ', d.lane, d.event_id, d.subscriber, d.state, d.order_time, d.lease_owner) \
             FROM inbox_deliveries d WHERE (d.subscriber, d.lane) IN (SELECT x.subscriber, x.lane FROM \
             inbox_deliveries x JOIN inbox_events e ON e.event_id = x.event_id \
             WHERE e.state NOT IN ('delivered', 'coalesced')) ORDER BY d.lane, d.order_time DESC LIMIT 40",
        )
        .fetch_all(gateway.pool())
        .await
        .unwrap();
        panic!("events still waiting: {rows:#?}\ntheir lanes, newest first: {lanes:#?}");
    }
    // The load's events (360Envios's own webhooks come in too).
    let ours = "source IN ('bling', 'cplug')";
    let rows = count(&gateway, &format!("SELECT COUNT(*) FROM inbox_events WHERE {ours}")).await;
    assert_eq!(rows, sent as i64, "one inbox row per event id");
    let distinct =
        count(&gateway, &format!("SELECT COUNT(DISTINCT source_event_id) FROM inbox_events WHERE {ours}")).await;
    assert_eq!(distinct, sent as i64);
    let lease_waits =
        count(&gateway, "SELECT COUNT(*) FROM inbox_deliveries WHERE last_error LIKE '%stopped before it finished%'")
            .await;
    assert_eq!(lease_waits, 0, "deliveries waited for a lease to expire");
    let handed_back =
        count(&gateway, "SELECT COUNT(*) FROM inbox_deliveries WHERE last_error LIKE '%handed back%'").await;

    // Each product's last change is in Bitrix24, once.
    let portal = &mesh.portal.portal;
    let last_name = |i: i64| {
        let k = (1..=sent)
            .rev()
            .find(|k| matches!(kind(*k, orders.len()), Kind::Rename) && (*k % products as u64) as i64 == i);
        k.map_or_else(|| format!("P{i} #0"), |k| format!("P{i} #{k}"))
    };
    let all_there = eventually(Duration::from_secs(30), || async {
        let names: Vec<String> =
            portal.products().iter().map(|p| p["NAME"].as_str().unwrap_or_default().to_owned()).collect();
        (0..products).all(|i| names.contains(&last_name(i)))
    })
    .await;
    let names: Vec<String> =
        portal.products().iter().map(|p| p["NAME"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(all_there, "a product's last change is missing in Bitrix24: {names:?}");
    assert_eq!(portal.products().len(), products as usize, "duplicated CRM products: {names:?}");

    // Each sale is posted in Bling once and its stock written off once; none waited for its
    // lease (an hour) to expire.
    let sales_db = mesh.db("sales_ingest").await;
    let posted = "SELECT COUNT(*) FROM sales WHERE state = 'posted'";
    let all_posted =
        eventually(Duration::from_secs(60), || async { count(&sales_db, posted).await == sales.len() as i64 }).await;
    assert!(all_posted, "{} of {} sales posted", count(&sales_db, posted).await, sales.len());
    let b = &mesh.bling.bling;
    let bling_orders = b.orders();
    for id in &sales {
        let n = bling_orders.iter().filter(|o| o["numeroLoja"].as_str() == Some(id.as_str())).count();
        assert_eq!(n, 1, "sale {id} has {n} Bling orders");
    }
    let stock = b.stock(copo, deposito);
    assert_eq!(stock, rust_decimal::Decimal::from(STOCK - sales.len() as i64), "stock written off once per sale");

    // Each released order is at 360Envios once.
    let hub = &mesh.hub.hub;
    let at_hub = eventually(Duration::from_secs(60), || async { hub.orders().len() >= released.len() }).await;
    assert!(at_hub, "{} of {} released orders at 360Envios", hub.orders().len(), released.len());
    let hub_orders = hub.orders();
    assert_eq!(hub_orders.len(), released.len(), "duplicated 360 orders");
    let mut external: Vec<String> =
        hub_orders.iter().map(|o| o["external_id"].as_str().unwrap_or_default().to_owned()).collect();
    external.sort();
    external.dedup();
    assert_eq!(external.len(), released.len(), "one 360 order per Bling order: {external:?}");

    let acks = acks.lock().await;
    let (n_base, p99_base) = p99(&acks, false);
    let (n_roll, p99_roll) = p99(&acks, true);
    println!(
        "rolling restart: {sent} webhooks at {rate}/s ({} sales, {} orders released to 360Envios, the rest product \
         renames), {n} processes replaced in {:.1}s; ack p99 {:.1} ms without restarts ({n_base} webhooks), {:.1} ms \
         during them ({n_roll}); {} resent by the sender; {handed_back} deliveries handed back; 0 lost, 0 duplicated, \
         0 lease waits",
        sales.len(),
        released.len(),
        rollout.as_secs_f64(),
        p99_base.as_secs_f64() * 1000.0,
        p99_roll.as_secs_f64() * 1000.0,
        resent.load(Ordering::Relaxed),
    );
}
