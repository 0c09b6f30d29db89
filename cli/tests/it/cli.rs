//! The `ponte` binary as an operator meets it: help, configuration errors, `ponte dev`.

use crate::support::{Killed, free_port_block, ponte};
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["dev", "--help"],
        &["migrate", "--help"],
        &["keys", "--help"],
        &["keys", "rotate", "--help"],
        &["keys", "generate", "--help"],
    ] {
        let out = ponte().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: ponte"), "{args:?}: {text}");
    }
    let out = ponte().args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for svc in ["auth-token", "mapping", "catalog-sync", "sales-ingest", "shipping-status", "gateway"] {
        assert!(text.contains(svc), "serve --help does not list {svc}");
    }
}

/// Runs `ponte serve mapping` with `env` and returns (exit code, stderr lines).
fn serve_with(env: &[(&str, &str)]) -> (i32, Vec<String>) {
    let out = ponte().args(["serve", "mapping"]).envs(env.iter().copied()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).lines().map(str::to_owned).collect();
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn an_unreachable_database_stops_the_process_with_one_line() {
    let started = Instant::now();
    let (code, stderr) = serve_with(&[
        ("DATABASE_URL", "postgres://nobody:s3cret@127.0.0.1:1/x"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("PONTE_STARTUP_TIMEOUT_SECONDS", "1"),
        ("PONTE_GRPC_ADDR", "127.0.0.1:0"),
    ]);
    assert_ne!(code, 0);
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(stderr[0].starts_with("ponte: configuration error: DATABASE_URL: "), "{}", stderr[0]);
    assert!(!stderr[0].contains("s3cret"), "the password leaked: {}", stderr[0]);
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn malformed_settings_stop_the_process_with_one_line_naming_the_variable() {
    let base =
        [("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"), ("REDIS_URL", "redis://127.0.0.1:6379")];
    for (var, value) in [
        ("PONTE_GRPC_ADDR", "nope"),
        ("PONTE_DB_MAX_CONNECTIONS", "lots"),
        ("PONTE_LOG_FORMAT", "xml"),
        ("PONTE_MAPPING_URL", "ponte-mapping:50051"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("REDIS_URL", "localhost"),
    ] {
        let mut env: Vec<(&str, &str)> = base.iter().copied().filter(|(k, _)| *k != var).collect();
        env.push((var, value));
        let (code, stderr) = serve_with(&env);
        assert_eq!(code, 2, "{var}={value}: {stderr:?}");
        assert_eq!(stderr.len(), 1, "{var}={value}: {stderr:?}");
        assert!(stderr[0].starts_with(&format!("ponte: configuration error: {var}: ")), "{}", stderr[0]);
    }
    // The API's tokens are required: an open API is a choice (PONTE_API_AUTH=disabled).
    let out = ponte().args(["serve", "mapping"]).envs(base).env_remove("PONTE_API_TOKENS_FILE").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("ponte: configuration error: PONTE_API_TOKENS_FILE: is required"), "{stderr}");
    let (code, stderr) = serve_with(&[("REDIS_URL", "redis://127.0.0.1:6379")]);
    assert_eq!((code, stderr.len()), (2, 1));
    assert!(stderr[0].contains("DATABASE_URL: is not set"), "{}", stderr[0]);
}

#[test]
fn an_unknown_service_is_a_usage_error() {
    let out = ponte().args(["serve", "billing"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'billing'"));
}

/// A running `ponte dev`: killed when dropped.
struct Dev {
    guard: Killed,
    /// Its first gRPC port (HTTP is `base + 7`).
    base: u16,
    /// What it printed up to and including "ready".
    lines: Vec<String>,
    dir: std::path::PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `ponte dev` on a free block of ports with `extra` arguments and waits for "ready".
async fn start_dev(name: &str, extra: &[&str]) -> Dev {
    start_dev_with(name, extra, false).await
}

/// As [`start_dev`]; `own_token`: without the tests' API token, so `ponte dev` makes its own.
async fn start_dev_with(name: &str, extra: &[&str], own_token: bool) -> Dev {
    let dir = std::env::temp_dir().join(format!("ponte-{name}-{}", std::process::id()));
    let base = free_port_block(8);
    let mut cmd = ponte();
    if own_token {
        cmd.env_remove("PONTE_API_TOKENS_FILE").env_remove("PONTE_API_TOKEN");
    }
    let mut child = cmd
        .args(["dev", "--data-dir", dir.to_str().unwrap(), "--grpc-port", &base.to_string()])
        .args(["--http-port", &(base + 7).to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Killed::new(child);
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = l.starts_with("ponte dev: ready");
            seen.push(l);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("ponte dev: ready")),
        "ponte dev never printed ready: {lines:?}"
    );
    Dev { guard, base, lines, dir }
}

#[tokio::test]
async fn dev_makes_an_api_token_that_the_commands_find_in_its_data_directory() {
    let dev = start_dev_with("devtoken", &[], true).await;
    let url = format!("http://127.0.0.1:{}", dev.base);
    let token = std::fs::read_to_string(dev.dir.join("api-token")).unwrap();
    let tokens = std::fs::read_to_string(dev.dir.join("api-tokens.yaml")).unwrap();
    assert!(token.trim().len() >= 32 && !tokens.contains(token.trim()), "the tokens file keeps digests only");
    let create = |data_dir: Option<&std::path::Path>| {
        let mut cmd = ponte();
        cmd.env_remove("PONTE_API_TOKENS_FILE").env_remove("PONTE_API_TOKEN");
        if let Some(d) = data_dir {
            cmd.env("PONTE_DATA_DIR", d);
        }
        cmd.args(["tenants", "create", "loja-1", "--auth-token-url", &url]).output().unwrap()
    };
    let refused = create(None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"), "{refused:?}");
    let created = create(Some(&dev.dir));
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
}

#[tokio::test]
async fn dev_is_ready_within_three_seconds_and_every_service_serves() {
    let started = Instant::now();
    let mut dev = start_dev("dev", &[]).await;
    let elapsed = started.elapsed();
    let base = dev.base;
    assert!(elapsed < Duration::from_secs(3), "ready after {elapsed:?}");

    for port in base..base + 6 {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await;
        let mut health = HealthClient::new(ch.unwrap());
        let ok = ponte_tests::eventually(Duration::from_secs(3), || {
            let mut h = health.clone();
            async move {
                h.check(HealthCheckRequest { service: String::new() })
                    .await
                    .is_ok_and(|r| r.into_inner().status() == ServingStatus::Serving)
            }
        })
        .await;
        assert!(ok, "port {port} is not SERVING");
        let _ = &mut health;
    }
    let http = reqwest::get(format!("http://127.0.0.1:{}/readyz", base + 7)).await.unwrap();
    assert_eq!(http.status(), 200);

    // SIGTERM stops it cleanly.
    let mut child = dev.guard.take();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn migrate_creates_each_service_schema_once() {
    let url = ponte_tests::fresh_database().await;
    let run = || ponte().arg("migrate").env("DATABASE_URL", url.url()).output().unwrap();
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let text = String::from_utf8_lossy(&first.stdout);
    for svc in ["auth-token", "mapping", "catalog-sync", "sales-ingest", "shipping-status", "gateway"] {
        assert!(text.contains(&format!("{svc}: migrations applied")), "{text}");
    }
    assert!(run().status.success(), "a second migrate must be a no-op");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let schemas: Vec<(String,)> = sqlx::query_as(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name IN \
         ('auth_token','mapping','catalog_sync','sales_ingest','shipping_status','gateway') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(schemas.len(), 6, "{schemas:?}");
    let (tenants,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'auth_token' AND table_name = 'tenants'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tenants, 1, "auth-token's tables live in its own schema");
}

#[tokio::test]
async fn operators_manage_tenants_and_connections_from_the_command_line() {
    let dev = start_dev("ops", &[]).await;
    let base = dev.base;
    let url = format!("http://127.0.0.1:{base}");
    let op = |args: &[&str], env: &[(&str, &str)]| {
        let out = ponte().args(args).args(["--auth-token-url", &url]).envs(env.iter().copied()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = op(&["tenants", "create", "loja-1", "--name", "Loja Um"], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("created tenant loja-1"));
    let (code, _, err) = op(&["tenants", "create", "Loja Um"], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("InvalidArgument") && err.contains("tenant_id"), "{err}");
    let (_, out, _) = op(&["tenants", "list"], &[]);
    assert_eq!(out.trim(), "loja-1\tLoja Um\tactive");

    // Secrets come from the environment, never from argv (where `ps` would show them).
    let (code, _, err) = op(&["connections", "envios360", "--tenant", "loja-1"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("PONTE_ENVIOS360_API_TOKEN: is not set"), "{err}");
    let env = [
        ("PONTE_ENVIOS360_API_TOKEN", "tok-aaaaaaaaaaaaaaaa"),
        ("PONTE_ENVIOS360_WEBHOOK_SECRET", "sec-bbbbbbbbbbbbbbbbb"),
    ];
    let (code, out, err) = op(&["connections", "envios360", "--tenant", "loja-1"], &env);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Connected"), "{out}");
    let (_, out, _) = op(&["connections", "list", "--tenant", "loja-1"], &[]);
    assert!(out.starts_with("Envios360\tConnected"), "{out}");
    assert!(!out.contains("tok-aaaa"));
}

#[tokio::test]
async fn dev_with_sandbox_connects_a_bling_account_through_the_gateway_callback() {
    let bling_port = free_port_block(8);
    let dev = start_dev("sbx", &["--sandbox", "--bling-port", &bling_port.to_string()]).await;
    let (base, lines) = (dev.base, &dev.lines);
    assert!(lines.iter().any(|l| l.contains("(sandbox)") && l.contains(&bling_port.to_string())), "{lines:?}");
    for (system, offset) in [("bitrix24", 1), ("envios360", 2), ("cplug", 3)] {
        let port = (bling_port + offset).to_string();
        assert!(
            lines.iter().any(|l| l.contains(system) && l.contains("(sandbox") && l.contains(&port)),
            "{system}: {lines:?}"
        );
    }
    let url = format!("http://127.0.0.1:{base}");
    let op = |args: &[&str]| {
        let out = ponte().args(args).args(["--auth-token-url", &url]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    op(&["tenants", "create", "loja-1"]);
    let authorize = op(&["connections", "connect", "bling", "--tenant", "loja-1"]);
    assert!(authorize.starts_with(&format!("http://127.0.0.1:{bling_port}/Api/v3/oauth/authorize?")), "{authorize}");

    // The merchant's browser: Bling's consent page redirects to the gateway's callback.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(3)).build().unwrap();
    let page = browser.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.url().path().ends_with("/oauth/bling/callback"), "{}", page.url());
    let html = page.text().await.unwrap();
    assert!(html.contains("Connected") && html.contains("loja-1"), "{html}");
    // Opening the same link again ends on a clear page, not a 500.
    let again = browser.get(&authorize).send().await.unwrap();
    assert_eq!(again.status(), 400, "a second use of the consent link");

    let list = op(&["connections", "list", "--tenant", "loja-1"]);
    assert!(list.starts_with("Bling\tConnected\td4475854366a36c86a37e792f9634a51"), "{list}");
}
