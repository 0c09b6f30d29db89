//! The short chaos run of CI (`ponte_tests::chaos`): this package's `ponte` binary as every
//! service and two gateways on a private PostgreSQL and Redis, 300 events of Bling product
//! changes, CPLUG sales and cancellations, Bling orders (deals, releases to 360Envios) and the
//! hub's status moves through sandboxes that duplicate, reorder and refuse, two processes killed with SIGKILL, Redis and PostgreSQL restarted; then nothing may
//! be lost, duplicated or wrong. Bounded: the workload takes seconds, the drain at most 90 s.
//! `PONTE_CHAOS_SEED` picks another run.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_loses_duplicates_and_gets_wrong_nothing() {
    let seed = std::env::var("PONTE_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let report = ponte_tests::chaos::run(ponte_tests::chaos::Config {
        bin: env!("CARGO_BIN_EXE_ponte").into(),
        events: 300,
        kills: 2,
        seed,
        rate: 40.0,
        products: 20,
        drain_timeout: Duration::from_secs(90),
        env: Vec::new(),
        secrets_out: None,
        costs: false,
    })
    .await
    .expect("the chaos run");
    println!("{}", serde_json::to_string(&report).unwrap());
    assert!(report.ok(), "chaos seed {seed}: {report:#?}");
    assert_eq!(report.killed.len(), 2);
}
