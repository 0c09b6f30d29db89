//! The operator console in a real browser: Debian's chromium, headless, driven through
//! chromedriver's WebDriver API, against a real `ponte dev --sandbox --demo` process on free
//! ports. It logs in, disconnects Bling and connects it again through the Bling sandbox's
//! consent page, opens every tab of the demo tenant, replays a dead letter, rings up a sale whose payment method
//! has no DE-PARA, maps the method on the Método de pagamento tab and sees the sale posted on
//! Vendas, and opens a product's history, its trace id a link built from
//! `PONTE_TRACE_URL_TEMPLATE`. A screenshot of each tab goes to `docs/console/`.
//! Skipped, saying so, only when chromium and chromedriver are not installed (`scripts/test.sh`
//! installs them).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{API_TOKEN, Killed, free_port_block};

/// The tracing UI the demo's history links to, and the setting that says so.
const TRACE_VAR: &str = "PONTE_TRACE_URL_TEMPLATE";
const TRACES: &str = "https://traces.example.test/trace/{trace_id}";

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_exe(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|n| std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file()))
}

/// A chromedriver process and one headless chromium session.
struct Browser {
    _driver: Killed,
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path, profile: &Path) -> Self {
        let port = free_port_block(1);
        let driver = Command::new(chromedriver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Killed::new(driver);
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver not ready within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium.to_str().unwrap(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1366,900", "--lang=pt-BR", "--no-first-run", "--disable-extensions",
                     format!("--user-data-dir={}", profile.display())],
            "prefs": {"intl.accept_languages": "pt-BR"}
        }}}});
        let created: Value =
            http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Self { _driver: driver, http, session: format!("{base}/session/{session}") }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let v: Value = r.send().await.expect("chromedriver answers").json().await.expect("JSON");
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let v =
            self.call(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({"text": text}))).await;
    }

    /// An element's attribute (`href`) or, for `None`, its text.
    async fn read(&self, css: &str, attribute: Option<&str>) -> String {
        let e = self.find(css).await;
        let path = match attribute {
            Some(a) => format!("/element/{e}/attribute/{a}"),
            None => format!("/element/{e}/text"),
        };
        self.call(reqwest::Method::GET, &path, None).await.as_str().unwrap_or_default().to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), Some(json!({}))).await;
    }

    /// Waits (up to 15 s) for the browser to be at a URL containing `part`; whether it got there.
    async fn arrive(&self, part: &str) -> bool {
        for _ in 0..150 {
            if self.url().await.contains(part) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Saves the page as PNG at `path`.
    async fn screenshot(&self, path: &Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }

    /// Reloads `url` until its source contains `what` (for up to 40 s); whether it did.
    async fn until(&self, url: &str, what: &str) -> bool {
        for _ in 0..80 {
            self.goto(url).await;
            if self.source().await.contains(what) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    }
}

/// Ends the WebDriver session (chromium quits with it) before chromedriver is stopped, so that
/// no browser outlives the test, whether it passed or not.
impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(rest) = self.session.strip_prefix("http://") else { return };
        let Some((addr, path)) = rest.split_once('/') else { return };
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let req =
                format!("DELETE /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
    }
}

/// Starts `ponte dev --sandbox --demo` and waits (up to two minutes) for "ready"; the process
/// and the lines it printed.
async fn demo(dir: &Path, base: u16, bling_port: u16, otlp: std::net::SocketAddr) -> (Killed, Vec<String>) {
    let mut child = crate::support::ponte()
        .args(["dev", "--sandbox", "--demo", "--data-dir", dir.to_str().unwrap()])
        .args(["--grpc-port", &base.to_string(), "--http-port", &(base + 7).to_string()])
        .args(["--bling-port", &bling_port.to_string()])
        .env(TRACE_VAR, TRACES)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Killed::new(child);
    let (tx, read) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut tx = Some(tx);
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.is_some() {
                seen.push(l.clone());
            }
            if l.starts_with("ponte dev: ready")
                && let Some(t) = tx.take()
            {
                let _ = t.send(std::mem::take(&mut seen));
            }
        }
        if let Some(t) = tx {
            let _ = t.send(seen);
        }
    });
    let lines = tokio::time::timeout(Duration::from_secs(120), read).await.expect("ready within 2 minutes").unwrap();
    assert!(lines.last().is_some_and(|l| l.starts_with("ponte dev: ready")), "never ready: {lines:#?}");
    (guard, lines)
}

#[tokio::test]
async fn the_console_in_chromium_against_the_demo() {
    let (Some(chromium), Some(chromedriver)) =
        (find_exe(&["chromium", "chromium-browser"]), find_exe(&["chromedriver"]))
    else {
        eprintln!(
            "SKIPPED the_console_in_chromium_against_the_demo: chromium and chromedriver are not installed \
             (scripts/test.sh installs Debian's chromium and chromium-driver)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let base = free_port_block(8);
    let bling_port = free_port_block(4);
    let (spans, otlp) = ponte_tests::otlp::Receiver::start().await.unwrap();
    let (_ponte, _lines) = demo(&data, base, bling_port, otlp).await;
    let console = format!("http://127.0.0.1:{}/console", base + 7);
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
    std::fs::create_dir_all(&shots).unwrap();
    let b = Browser::start(&chromium, &chromedriver, &dir.path().join("profile")).await;

    // Log in with the API token.
    b.goto(&format!("{console}/login")).await;
    b.screenshot(&shots.join("login.png")).await;
    b.type_into("#token", API_TOKEN).await;
    b.click("form.login button").await;
    assert!(b.arrive("/console?").await, "not logged in: {}", b.source().await);
    let home = b.source().await;
    assert!(home.contains("/console/t/demo/conexoes"), "the demo tenant is listed: {home}");
    b.screenshot(&shots.join("tenants.png")).await;

    // Every tab of the demo tenant.
    let t = format!("{console}/t/demo");
    b.goto(&format!("{t}/conexoes")).await;
    let page = b.source().await;
    assert!(page.contains("Conectar ao Bling") && page.contains("CONNECTED"), "{page}");
    b.screenshot(&shots.join("conexoes.png")).await;

    // Bling disconnected, then connected again through the Bling sandbox's consent page, back
    // on Conexões.
    let bling = "<td>BLING</td><td><span class=\"state-";
    b.click("form[action$='/conexoes/desconectar']:has(input[value='BLING']) button").await;
    assert!(b.arrive("ok=disconnected").await, "{}", b.url().await);
    assert!(b.source().await.contains(&format!("{bling}revoked\">REVOKED")), "{}", b.source().await);
    b.click("form[action$='/conexoes/bling'] button").await;
    assert!(b.arrive("/Api/v3/oauth/authorize").await, "not at Bling's consent page: {}", b.url().await);
    assert!(b.source().await.contains("Autorizar aplicativo"), "{}", b.source().await);
    b.screenshot(&shots.join("bling-autorizar.png")).await;
    b.click("#autorizar").await;
    assert!(b.arrive("/oauth/bling/callback").await, "{}", b.url().await);
    assert!(b.source().await.contains("is connected"), "{}", b.source().await);
    b.click("#console").await;
    assert!(b.arrive("/console/t/demo/conexoes").await, "{}", b.url().await);
    assert!(b.source().await.contains(&format!("{bling}connected\">CONNECTED")), "{}", b.source().await);

    for (tab, expect) in [
        ("produtos", "Mapeamento de produtos"),
        ("lojas", "Lojas e depósitos"),
        ("situacoes", "Em romaneio"),
        ("envios", "Envios"),
        ("sincronizacao", "Sincronização de dados"),
    ] {
        b.goto(&format!("{t}/{tab}")).await;
        let page = b.source().await;
        assert!(page.contains(expect), "{tab}: {page}");
        b.screenshot(&shots.join(format!("{tab}.png"))).await;
    }

    // A webhook the till signed but ponte cannot read is a dead letter on Eventos; Replay
    // queues it again (it dies again: its body is still unreadable).
    let body = "{not json";
    let secret = ponte_sandbox::cplug::Config::default().webhook_secret;
    let hook = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/webhooks/cplug/demo", base + 7))
        .header("content-type", "application/json")
        .header("x-cplug-signature", ponte_tests::webhooks::sign(&secret, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(hook.status().is_success(), "{}", hook.text().await.unwrap_or_default());
    assert!(b.until(&format!("{t}/eventos"), "eventos/replay").await, "no dead letter: {}", b.source().await);
    b.screenshot(&shots.join("eventos.png")).await;
    b.click("form[action$='/eventos/replay'] button").await;
    assert!(b.arrive("ok=replayed").await, "{}", b.url().await);
    assert!(b.source().await.contains("Reenvio enfileirado"), "{}", b.source().await);

    // A sale paid by a method without DE-PARA parks.
    let ponte = env!("CARGO_BIN_EXE_ponte");
    let out = crate::support::ponte()
        .env("PONTE_DATA_DIR", &data)
        .args(["sandbox", "cplug", "sale", "--sku", "DEMO-CAMISETA", "--quantity", "1", "--payment", "VALE"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{ponte} sandbox cplug sale: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        b.until(&format!("{t}/vendas"), "UNMAPPED_PAYMENT_METHOD").await,
        "the sale never parked: {}",
        b.source().await
    );
    b.screenshot(&shots.join("vendas-parked.png")).await;

    // Mapped on the Método de pagamento tab, it posts.
    b.goto(&format!("{t}/pagamento")).await;
    assert!(b.source().await.contains("VALE"), "the parked sale is listed under its method");
    b.type_into("#cplug_method", "VALE").await;
    b.type_into("#bling_forma_pagamento_id", "11010299").await;
    b.screenshot(&shots.join("pagamento.png")).await;
    b.click("form.stack button").await;
    assert!(b.arrive("ok=mapped").await, "{}", b.url().await);
    assert!(b.source().await.contains("<td>VALE</td>"), "{}", b.source().await);
    assert!(b.until(&format!("{t}/vendas"), "sale-posted").await, "never posted: {}", b.source().await);
    let sales = b.source().await;
    assert!(!sales.contains("UNMAPPED_PAYMENT_METHOD"), "still parked: {sales}");
    b.screenshot(&shots.join("vendas.png")).await;

    // A product's history, in English.
    let products = crate::support::ponte()
        .env("PONTE_DATA_DIR", &data)
        .args(["sandbox", "bling", "products", "--output", "json"])
        .output()
        .unwrap();
    let products: Value = serde_json::from_slice(&products.stdout).expect("the Bling products as JSON");
    let id = products.as_array().and_then(|a| a.first()).map(|p| p["id"].to_string()).expect("a demo product");
    b.goto(&format!("{t}/historico?entity=product:{id}&lang=en")).await;
    let history = b.source().await;
    assert!(history.contains("What ponte did") && history.contains("catalog-sync"), "{history}");
    b.screenshot(&shots.join("historico.png")).await;

    // Its trace id links to the tracing UI through the configured template.
    let link = "td a[href^='https://traces.example.test/trace/']";
    let (href, trace) = (b.read(link, Some("href")).await, b.read(link, None).await);
    assert_eq!(trace.len(), 32, "a trace id: {trace}");
    assert_eq!(href, TRACES.replace("{trace_id}", &trace));
    // A working trace id: the trace the demo's process exported has it.
    let exported = || async {
        spans
            .0
            .lock()
            .await
            .iter()
            .any(|(_, s)| s.trace_id.iter().map(|b| format!("{b:02x}")).collect::<String>() == trace)
    };
    let mut found = false;
    for _ in 0..60 {
        if exported().await {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(found, "no exported span of trace {trace}");
}
