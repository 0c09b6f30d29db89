//! The two-minute demo: the real `ponte dev --sandbox --demo` process on free ports with a
//! data directory of its own, driven by the commands it prints, run as a person pastes them
//! into a shell: a product created in the Bling sandbox reaches Bitrix24; a CPLUG sale becomes a
//! Bling order with its stock written off; 360Envios advancing the shipment moves the Bling
//! order's situação. Then a second start on the same directory, whose stories work as well
//! (the sandboxes' new ids meet none of the records kept from the first).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::support::{Killed, api_env, free_port_block};

struct Demo {
    guard: Killed,
    lines: Vec<String>,
    sales_url: String,
}

/// Starts `ponte dev --sandbox --demo` and waits (up to two minutes) for "ready".
async fn start(dir: &Path, base: u16, bling_port: u16) -> Demo {
    let mut child = crate::support::ponte()
        .args(["dev", "--sandbox", "--demo", "--data-dir", dir.to_str().unwrap()])
        .args(["--grpc-port", &base.to_string(), "--http-port", &(base + 7).to_string()])
        .args(["--bling-port", &bling_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Killed::new(child);
    // Its log lines go to stdout too: it is read to the end (and kept beside the data directory,
    // for a failure's diagnosis), so that the process never waits on a full pipe; the lines up
    // to "ready" come back.
    let (tx, read) = tokio::sync::oneshot::channel();
    let mut log = std::fs::File::create(dir.with_extension("log")).unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut seen = Vec::new();
        let mut tx = Some(tx);
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{l}");
            if let Some(sender) = tx.take_if(|_| l.starts_with("ponte dev: ready")) {
                seen.push(l);
                let _ = sender.send(std::mem::take(&mut seen));
            } else if tx.is_some() {
                seen.push(l);
            }
        }
        if let Some(sender) = tx {
            let _ = sender.send(seen);
        }
    });
    let lines = tokio::time::timeout(Duration::from_secs(120), read).await.expect("ready within 2 minutes").unwrap();
    assert!(lines.last().is_some_and(|l| l.starts_with("ponte dev: ready")), "never ready: {lines:#?}");
    Demo { guard, lines, sales_url: format!("http://127.0.0.1:{}", base + 3) }
}

impl Demo {
    /// The printed command line that contains `what`, without its leading spaces.
    fn command(&self, what: &str) -> String {
        self.lines
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.starts_with('#') && l.contains(what))
            .unwrap_or_else(|| panic!("no printed command with '{what}': {:#?}", self.lines))
            .to_owned()
    }

    /// The Bling order the demo released to 360Envios.
    fn order(&self) -> i64 {
        let line = self.lines.iter().find(|l| l.contains("released to 360Envios")).expect("the demo's summary");
        line.split("Bling order ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap()
    }

    /// Stops the process with SIGINT (as Ctrl-C) and waits for it.
    fn stop(mut self) {
        let mut child = self.guard.take();
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        for _ in 0..100 {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `line` in `sh` as a person would paste it, with only PATH and the tests' API token;
/// (success, stdout, stderr).
fn shell(line: &str) -> (bool, String, String) {
    let out = Command::new("sh")
        .args(["-c", line])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(api_env())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(line: &str) -> Value {
    let (ok, out, err) = shell(&format!("{line} --output json"));
    assert!(ok, "{line}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{line}: {e}: {out}"))
}

/// Polls `f` every 300 ms for up to 40 s; whether it held.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..134 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

/// The demo's four stories, through the commands `demo` printed. `round` tells the runs apart.
async fn stories(demo: &Demo, round: usize) -> String {
    let prefix = {
        let create = demo.command("sandbox bling product create");
        create[..create.find(" sandbox ").unwrap()].to_owned()
    };
    let bling_products = format!("{prefix} sandbox bling products");
    let bling_orders = demo.command("sandbox bling orders");
    let bling_orders = bling_orders.split(" && ").next().unwrap().to_owned();

    // 1. A product created in the Bling sandbox appears in Bitrix24.
    let name = format!("Chaveiro ponte {round}");
    let create = demo.command("sandbox bling product create").replace("\"Chaveiro ponte\"", &format!("\"{name}\""));
    let (ok, out, err) = shell(&create);
    assert!(ok && out.contains("DEMO-CHAVEIRO"), "{create}: {out} {err}");
    let crm = demo.command("sandbox bitrix24 products");
    let in_crm = eventually(|| json(&crm).as_array().unwrap().iter().any(|p| p["NAME"] == name.as_str())).await;
    assert!(in_crm, "'{name}' never reached Bitrix24: {}", json(&crm));
    // A change made in Bling reaches the CRM product too.
    let update = format!("{prefix} sandbox bling product update --sku DEMO-CHAVEIRO --price 16.50");
    let (ok, _, err) = shell(&update);
    assert!(ok, "{update}: {err}");
    let repriced = eventually(|| {
        json(&crm).as_array().unwrap().iter().any(|p| {
            p["NAME"] == name.as_str() && p["PRICE"].as_str().and_then(|s| s.parse::<f64>().ok()) == Some(16.5)
        })
    })
    .await;
    assert!(repriced, "the new price never reached Bitrix24: {}", json(&crm));
    // The same SKU again is refused by Bling, in one line naming the field.
    let (ok, _, err) = shell(&create);
    assert!(!ok && err.lines().count() == 1 && err.contains("codigo") && err.contains("DEMO-CHAVEIRO"), "{err}");

    // 2. A CPLUG sale becomes a Bling order, its stock written off.
    let stock = |sku: &str| -> f64 {
        let products = json(&bling_products);
        let p = products.as_array().unwrap().iter().find(|p| p["codigo"] == sku).cloned().unwrap();
        p["estoque"].as_f64().unwrap()
    };
    let before = stock("DEMO-CAMISETA");
    assert_eq!(before, 20.0, "the demo's catalog starts with 20 camisetas");
    let sale = json(&demo.command("sandbox cplug sale"));
    let sale_id = sale["sale"]["id"].as_str().unwrap().to_owned();
    let posted = eventually(|| {
        json(&bling_orders)
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["numeroLoja"] == sale_id.as_str() && o["estoqueLancado"] == true)
    })
    .await;
    if !posted {
        let sales = shell(&format!(
            "{prefix} sales show {sale_id} --tenant demo --sales-ingest-url {} --output json",
            demo.sales_url
        ));
        panic!(
            "sale {sale_id} never became a Bling order with its stock written off: {}\n{sales:?}",
            json(&bling_orders)
        );
    }
    assert_eq!(stock("DEMO-CAMISETA"), before - 2.0);
    // A SKU the till does not sell: one line naming the flag.
    let (ok, _, err) = shell(&format!("{prefix} sandbox cplug sale --sku NOPE-1"));
    assert!(!ok && err.lines().count() == 1 && err.contains("--sku"), "{err}");

    // 3. Advancing the 360 shipment moves the Bling order's situação.
    let order = demo.order();
    let situacao = |order: i64| -> String {
        let orders = json(&bling_orders);
        let o = orders.as_array().unwrap().iter().find(|o| o["id"] == order).cloned().unwrap();
        o["situacao"]["nome"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(situacao(order), "Em andamento");
    let advance = demo.command("sandbox envios360 advance");
    assert!(advance.ends_with(&format!("--order {order}")), "{advance}");
    let (ok, out, err) = shell(&advance);
    assert!(ok && out.contains("in_packing_list"), "{advance}: {out} {err}");
    let moved = eventually(|| situacao(order) == "Em romaneio").await;
    assert!(moved, "the Bling order stayed at {}", situacao(order));

    // 4. A catalog Bling held before ponte came (300 products here), copied to Bitrix24 by a
    // backfill followed to its end.
    if round == 1 {
        let line = demo.command("sandbox bling product import").replace("10000", "300");
        let (ok, out, err) = shell(&line);
        assert!(ok, "{line}: {out} {err}");
        let progress: Vec<&str> = out.lines().filter(|l| l.contains(" items, ")).collect();
        assert!(progress.iter().all(|l| l.contains("/300 items") && l.contains("/s")), "{out}");
        assert!(progress.last().is_some_and(|l| l.contains("succeeded: ")), "{out}");
        let crm = json(&demo.command("sandbox bitrix24 products"));
        let copied = crm
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["NAME"].as_str().is_some_and(|n| n.starts_with("Produto importado ")))
            .count();
        assert_eq!(copied, 300, "imported products in Bitrix24");
        // The same codes again are refused by the sandbox, naming the field.
        let again = line.split(" && ").next().unwrap();
        let (ok, _, err) = shell(again);
        assert!(!ok && err.lines().count() == 1 && err.contains("prefix"), "{err}");
    }
    sale_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_its_four_stories_and_starts_again_on_the_same_directory() {
    let dir: PathBuf = std::env::temp_dir().join(format!("ponte-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = free_port_block(8);
    let bling_port = free_port_block(4);

    let demo = start(&dir, base, bling_port).await;
    assert!(dir.join("sandboxes.json").exists());
    let first_sale = stories(&demo, 1).await;
    let first_order = demo.order();
    demo.stop();

    // A second start on the same directory: the tenant and its mapping are found, the
    // sandboxes start afresh with ids of their own, and every story works again.
    let demo = start(&dir, base, bling_port).await;
    assert!(demo.lines.iter().any(|l| l.contains("demo tenant 'demo' set up")), "{:#?}", demo.lines);
    assert_ne!(demo.order(), first_order, "the second start's order has an id of its own");
    let second_sale = stories(&demo, 2).await;
    assert_ne!(first_sale, second_sale, "sale ids differ across starts");
    demo.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("log"));
}
