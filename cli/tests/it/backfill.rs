//! `ponte backfill start|watch|cancel` against a real catalog-sync copying the Bling sandbox's
//! catalog into the Bitrix24 sandbox: plain progress lines when stdout is not a terminal, the
//! final table, the final state as JSON, and one-line errors.

use ponte_core::service::ServiceSpec;
use ponte_sandbox::{
    bitrix24::{self, Bitrix24},
    bling,
};
use ponte_tests::{
    Mesh,
    webhooks::{BlingWorld, TENANT},
};
use serde_json::{Value, json};

use crate::support::ponte;

const SPECS: &[&ServiceSpec] = &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC];
const SCALE: f64 = 10.0;

/// `ponte args…` against catalog-sync at `url`: exit success, stdout, stderr.
async fn run(url: &str, args: &[&str]) -> (bool, String, String) {
    let (url, args): (String, Vec<String>) = (url.to_owned(), args.iter().map(|a| (*a).to_owned()).collect());
    tokio::task::spawn_blocking(move || {
        let out = ponte().args(&args).env("PONTE_CATALOG_SYNC_URL", url).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_started_watched_and_cancelled_from_the_command_line() {
    let config = bling::Config { time_scale: SCALE, ..bling::Config::default() };
    let api = ponte_core::config::Env::from_pairs(crate::support::api_env());
    let w = BlingWorld::start_with_env(SPECS, config, &ponte_tests::redis_url(), api).await;
    let portal = Bitrix24::new(bitrix24::Config::for_tests()).spawn(None).await.unwrap();
    w.connect_portal(&portal).await;
    // The same deployment again with ponte's quotas scaled like the sandbox's.
    let env = w.mesh.env.clone().with("PONTE_RATE_LIMIT_SCALE", &SCALE.to_string());
    let BlingWorld { bling, mesh } = w;
    let database_url = mesh.database_url.clone();
    mesh.shutdown().await;
    let mesh = Mesh::start_on(SPECS, &ponte_tests::redis_url(), env, database_url).await;
    for i in 0..250 {
        bling.bling.seed_product(json!({"nome": format!("Produto {i}"), "codigo": format!("SKU-{i}"), "preco": 10.5}));
    }
    let url = format!("http://{}", mesh.addr("catalog-sync"));

    let (ok, out, err) = run(&url, &["backfill", "start", "--tenant", TENANT, "--watch", "--expected", "250"]).await;
    assert!(ok, "{out}\n{err}");
    let progress: Vec<&str> = out.lines().filter(|l| l.contains(" items, ")).collect();
    assert!(!progress.is_empty(), "no progress lines: {out}");
    assert!(progress.iter().all(|l| l.contains("/250 items") && l.contains("/s")), "{progress:#?}");
    assert!(progress.last().unwrap().contains("succeeded: 250/250 items"), "{progress:#?}");
    let id = progress[0].split_whitespace().next().unwrap().to_owned();
    let table_start = out.find("FIELD").expect("the final table");
    let table = &out[table_start..];
    assert!(table.lines().any(|l| l.starts_with("state") && l.ends_with("succeeded")), "{table}");
    assert!(table.contains("250 created, 0 updated, 0 unchanged, 0 failed"), "{table}");
    assert!(table.contains("250 products + 0 variations"), "{table}");
    assert_eq!(portal.portal.products().len(), 250);

    let (ok, out, err) = run(&url, &["backfill", "watch", &id, "--output", "json"]).await;
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!((v["backfill_id"].as_str(), v["state"].as_str()), (Some(id.as_str()), Some("succeeded")));
    assert_eq!(v["counts"]["created"], 250);
    assert_eq!(v["tenant_id"], TENANT);

    // An ended backfill cannot be cancelled; a bad id or an unreachable service is one line.
    let (ok, out, err) = run(&url, &["backfill", "cancel", &id]).await;
    assert!(!ok && out.is_empty(), "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("already ended"), "{err}");
    let (ok, _, err) = run(&url, &["backfill", "watch", "no-such-backfill"]).await;
    assert!(!ok && err.trim().lines().count() == 1, "{err}");
    let (ok, _, err) = run("http://127.0.0.1:1", &["backfill", "watch", &id]).await;
    assert!(!ok && err.contains("cannot reach catalog-sync"), "{err}");

    // A second run finds everything in place, and its id is all `start` prints.
    let (ok, out, _) = run(&url, &["backfill", "start", "--tenant", TENANT]).await;
    assert!(ok);
    let second = out.trim().to_owned();
    assert!(!second.is_empty() && second != id && !second.contains(' '), "{out}");
    let (ok, out, err) = run(&url, &["backfill", "watch", &second]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("0 created, 0 updated, 250 unchanged, 0 failed"), "{out}");

    // On a terminal (`script` gives it one), a live bar instead of lines, then the same table.
    let cmd = format!("{} backfill start --tenant {TENANT} --watch --expected 250", env!("CARGO_BIN_EXE_ponte"));
    let url2 = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "xterm")
            .envs(crate::support::api_env())
            .env("PONTE_CATALOG_SYNC_URL", url2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("/250 items") && shown.contains("ETA"), "no bar: {shown:?}");
    assert!(!shown.contains("running: "), "plain lines on a terminal: {shown:?}");
    assert!(shown.contains("250 unchanged"), "{shown:?}");
}
