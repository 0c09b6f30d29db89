//! The inbox as an operator meets it in `ponte dev` (SQLite, one process): a merchant's Bling
//! webhook is stored and delivered to catalog-sync, an event nobody subscribes to becomes a
//! dead letter, and `ponte dlq list|show|replay` find and replay it.

use crate::support::{free_port_block, ponte};
use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

struct Dev(std::process::Child, std::path::PathBuf);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

#[tokio::test]
async fn dead_letters_are_listed_shown_and_replayed_from_the_command_line() {
    let base = free_port_block(8);
    let sandbox = free_port_block(4);
    let dir = std::env::temp_dir().join(format!("ponte-dlq-{}", std::process::id()));
    let mut child = ponte()
        .args(["dev", "--data-dir", dir.to_str().unwrap(), "--grpc-port", &base.to_string()])
        .args(["--http-port", &(base + 7).to_string(), "--sandbox", "--bling-port", &sandbox.to_string()])
        .env("PONTE_DISPATCH_POLL_MS", "200")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _dev = Dev(child, dir.clone());
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.starts_with("ponte dev: ready"))
    });
    assert!(tokio::time::timeout(Duration::from_secs(30), ready).await.unwrap().unwrap(), "ponte dev did not start");

    let auth = format!("http://127.0.0.1:{base}");
    let gateway = format!("http://127.0.0.1:{}", base + 5);
    let run = |args: &[&str]| {
        let out = ponte().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    run(&["tenants", "create", "loja-1", "--auth-token-url", &auth]);
    let authorize = run(&["connections", "connect", "bling", "--tenant", "loja-1", "--auth-token-url", &auth]);
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(3)).build().unwrap();
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 200);

    // The sandbox's app signs with its client secret; the account is the sandbox's company.
    let secret = "ponte-sandbox-secret-0123456789";
    let company = "d4475854366a36c86a37e792f9634a51";
    let http = reqwest::Client::new();
    let post = |body: String| {
        http.post(format!("http://127.0.0.1:{}/webhooks/bling", base + 7))
            .header("content-type", "application/json")
            .header("X-Bling-Signature-256", ponte_tests::webhooks::sign(secret, body.as_bytes()))
            .body(body)
            .send()
    };
    let product = serde_json::json!({"eventId": "dev-p-1", "date": "2026-03-02T14:00:00Z", "version": "v1",
        "event": "product.updated", "companyId": company, "data": {"id": 16059781281_i64, "nome": "Copo"}});
    let stored: serde_json::Value = post(product.to_string()).await.unwrap().json().await.unwrap();
    assert_eq!(stored["status"], "stored", "{stored}");
    // A hook left at another payload version: a dead letter until the merchant fixes the hook.
    let stock = serde_json::json!({"eventId": "dev-s-1", "date": "2026-03-02T14:00:00Z", "version": "v2",
        "event": "product.updated", "companyId": company, "data": {"id": 1}});
    let dead: serde_json::Value = post(stock.to_string()).await.unwrap().json().await.unwrap();
    assert_eq!(dead["status"], "dead_letter", "{dead}");
    let dead_id = dead["eventId"].as_str().unwrap().to_owned();

    // The product event reaches catalog-sync (SQLite on both sides).
    let product_id = stored["eventId"].as_str().unwrap().to_owned();
    let mut shown = String::new();
    for _ in 0..50 {
        shown = run(&["dlq", "show", &product_id, "--gateway-url", &gateway]);
        if shown.contains("state\tdelivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown.contains("state\tdelivered"), "{shown}");
    assert!(shown.contains("delivery\tcatalog-sync\tdelivered\tattempts=1\toutcome=skipped"), "{shown}");

    // The product's history: the gateway's receipt and delivery, and catalog-sync's own entry.
    let entity = ["--tenant", "loja-1", "--entity", "product:16059781281", "--gateway-url", &gateway];
    let history = run(&[&["history"], &entity[..]].concat());
    assert!(history.starts_with("TIME"), "{history}");
    let rows: Vec<String> = history.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    for step in [
        "gateway received bling product.updated delivered -",
        "catalog-sync handled bling product.updated skipped Bitrix24 is not connected",
        "gateway delivered to catalog-sync skipped Bitrix24 is not connected",
    ] {
        assert!(rows.iter().any(|r| r.contains(step)), "{step} missing: {history}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&run(&[&["history", "--output", "json"], &entity[..]].concat())).unwrap();
    let by: Vec<&str> = json.as_array().unwrap().iter().map(|e| e["component"].as_str().unwrap()).collect();
    assert_eq!(by, ["gateway", "catalog-sync", "gateway"], "{json:#}");
    assert!(json[0]["event_id"] == product_id.as_str() && json[1]["event_id"] == product_id.as_str(), "{json:#}");
    let out = ponte()
        .args(["history", "--tenant", "loja-1", "--entity", "product", "--gateway-url", &gateway])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("entity: must be"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let listed = run(&["dlq", "list", "--source", "bling", "--gateway-url", &gateway]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.starts_with(&format!("{dead_id}\t")), "{listed}");
    assert!(listed.contains("loja-1\tproduct.updated") && listed.contains("is not supported"), "{listed}");
    assert!(run(&["dlq", "list", "--tenant", "other", "--gateway-url", &gateway]).is_empty());
    let json: serde_json::Value =
        serde_json::from_str(&run(&["dlq", "list", "--output", "json", "--gateway-url", &gateway])).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json:#}");
    assert_eq!((json[0]["event_id"].as_str(), json[0]["state"].as_str()), (Some(dead_id.as_str()), Some("dead")));
    assert_eq!(run(&["dlq", "list", "--tenant", "other", "--output", "json", "--gateway-url", &gateway]), "[]");
    let tenants: serde_json::Value =
        serde_json::from_str(&run(&["tenants", "list", "--output", "json", "--auth-token-url", &auth])).unwrap();
    assert_eq!(tenants[0]["tenant_id"], "loja-1", "{tenants:#}");
    let connections: serde_json::Value = serde_json::from_str(&run(&[
        "connections",
        "list",
        "--tenant",
        "loja-1",
        "--output",
        "json",
        "--auth-token-url",
        &auth,
    ]))
    .unwrap();
    assert_eq!(connections[0]["provider"], "bling", "{connections:#}");

    let show = run(&["dlq", "show", &dead_id, "--gateway-url", &gateway]);
    assert!(show.contains("state\tdead") && show.contains("\"version\":\"v2\""), "{show}");

    assert_eq!(run(&["dlq", "replay", &dead_id, "--gateway-url", &gateway]), dead_id);
    let out = ponte().args(["dlq", "replay", &product_id, "--gateway-url", &gateway]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not dead"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ponte().args(["dlq", "replay", "--gateway-url", &gateway]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "replay needs an event id or --all");
}
