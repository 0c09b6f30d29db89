//! A rolling restart under load, as Kubernetes rolls a release: the mesh of `ponte serve`
//! processes (two gateways) takes a steady stream of Bling `product.updated` webhooks, each
//! after a rename of its product in Bling; meanwhile every process is replaced one after
//! another (a new one starts and turns ready, the old one gets SIGTERM and must exit 0).
//! At the end: no event lost (every product in Bitrix24 carries the name of its last change),
//! none duplicated (one CRM product per Bling product, one inbox row per event id), no
//! delivery waited for a lease to expire, and the acknowledgement p99 during the restarts is
//! printed beside the one before them. A webhook the gateways could not take (a connection
//! closed by a stopping gateway) is sent again, as Bling does.
//!
//! Bounded: `PONTE_ROLLING_RATE` events a second (default 20) for the baseline
//! (`PONTE_ROLLING_BASELINE_SECONDS`, default 3) and the restarts, then the load stops.
//! docs/benchmarks.md has a longer run's figures.

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

#[tokio::test]
async fn a_rolling_restart_of_every_process_under_load_loses_and_duplicates_nothing() {
    let rate = setting("PONTE_ROLLING_RATE", 20).clamp(1, 500);
    let baseline = Duration::from_secs(setting("PONTE_ROLLING_BASELINE_SECONDS", 3).clamp(1, 600));
    let products = 30_i64;
    let mut mesh = ops_mesh::start(2, &[("PONTE_SHUTDOWN_GRACE_SECONDS", "10".to_owned())]).await;
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

    // The load: event k renames product k mod N in Bling, then its webhook is posted (and
    // posted again until a gateway takes it).
    let cfg = mesh.bling.bling.config().clone();
    let bling = mesh.bling.bling.clone();
    let url = mesh.gateway_url("/webhooks/bling");
    let restarting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let resent = Arc::new(AtomicU64::new(0));
    let load = {
        let (restarting, stop, acks, resent, ids) =
            (restarting.clone(), stop.clone(), acks.clone(), resent.clone(), ids.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sends = tokio::task::JoinSet::new();
            let started = Instant::now();
            let mut k: u64 = 0;
            while !stop.load(Ordering::SeqCst) && k < 20_000 {
                tokio::time::sleep_until((started + Duration::from_secs_f64(k as f64 / rate as f64)).into()).await;
                k += 1;
                let id = ids[(k % ids.len() as u64) as usize];
                let name = format!("P{} #{k}", k % ids.len() as u64);
                assert!(bling.edit_product_in_ui(id, json!({"nome": name})));
                let body = bling_body(
                    &format!("roll-{k}"),
                    "product.updated",
                    &cfg.company_id,
                    &date(k as i64),
                    json!({"id": id}),
                );
                let sig = sign(&cfg.client_secret, body.as_bytes());
                let (http, url, acks, resent) = (http.clone(), url.clone(), acks.clone(), resent.clone());
                let during_restarts = restarting.load(Ordering::SeqCst);
                sends.spawn(async move {
                    let sent = Instant::now();
                    for attempt in 0..50 {
                        if attempt > 0 {
                            resent.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        let resp = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("X-Bling-Signature-256", &sig)
                            .body(body.clone())
                            .send()
                            .await;
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
    // Every process once, in the order of the mesh (auth-token, mapping, catalog-sync, the
    // two gateways); each new process goes to the end of the list.
    let n = mesh.procs.len();
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

    // Every event delivered (or collapsed into a newer one of its product); nothing dead.
    let gateway = mesh.db("gateway").await;
    let settled = eventually(Duration::from_secs(60), || async {
        count(&gateway, "SELECT COUNT(*) FROM inbox_events WHERE state NOT IN ('delivered', 'coalesced')").await == 0
    })
    .await;
    assert!(
        settled,
        "events still waiting: {}",
        count(&gateway, "SELECT COUNT(*) FROM inbox_events WHERE state NOT IN ('delivered', 'coalesced')").await
    );
    assert_eq!(count(&gateway, "SELECT COUNT(*) FROM inbox_events").await, sent as i64, "one inbox row per event id");
    assert_eq!(count(&gateway, "SELECT COUNT(DISTINCT source_event_id) FROM inbox_events").await, sent as i64);
    let lease_waits =
        count(&gateway, "SELECT COUNT(*) FROM inbox_deliveries WHERE last_error LIKE '%stopped before it finished%'")
            .await;
    assert_eq!(lease_waits, 0, "deliveries waited for a lease to expire");
    let handed_back =
        count(&gateway, "SELECT COUNT(*) FROM inbox_deliveries WHERE last_error LIKE '%handed back%'").await;

    // Each product's last change is in Bitrix24, once.
    let portal = &mesh.portal.portal;
    let last_name = |i: i64| {
        let k = (1..=sent).rev().find(|k| (*k % products as u64) as i64 == i);
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

    let acks = acks.lock().await;
    let (n_base, p99_base) = p99(&acks, false);
    let (n_roll, p99_roll) = p99(&acks, true);
    println!(
        "rolling restart: {sent} webhooks at {rate}/s, {n} processes replaced in {:.1}s; ack p99 {:.1} ms without \
         restarts ({n_base} webhooks), {:.1} ms during them ({n_roll}); {} resent by the sender; {handed_back} \
         deliveries handed back; 0 lost, 0 duplicated, 0 lease waits",
        rollout.as_secs_f64(),
        p99_base.as_secs_f64() * 1000.0,
        p99_roll.as_secs_f64() * 1000.0,
        resent.load(Ordering::Relaxed),
    );
}
