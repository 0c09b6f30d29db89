//! Shipping as an operator meets it in `ponte dev --sandbox`: `ponte shipping setup` (a dry run,
//! the real one, and a second run that finds everything), then an order released in the Bling
//! sandbox reaches the 360Envios sandbox, and `ponte shipments list|show` show it as tables and
//! as JSON.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use ponte_proto::v1::{GetAccessTokenRequest, Provider, auth_token_service_client::AuthTokenServiceClient};
use serde_json::{Value, json};

use crate::support::{Killed, free_port_block, ponte};

#[tokio::test]
async fn setup_then_a_released_order_listed_and_shown_from_the_command_line() {
    let base = free_port_block(8);
    let sandbox = free_port_block(4);
    let dir = std::env::temp_dir().join(format!("ponte-shipping-{}", std::process::id()));
    let mut child = ponte()
        .args(["dev", "--data-dir", dir.to_str().unwrap(), "--grpc-port", &base.to_string()])
        .args(["--http-port", &(base + 7).to_string(), "--sandbox", "--bling-port", &sandbox.to_string()])
        .env("PONTE_DISPATCH_POLL_MS", "200")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _dev = Killed::new(child);
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.starts_with("ponte dev: ready"))
    });
    assert!(tokio::time::timeout(Duration::from_secs(30), ready).await.unwrap().unwrap(), "ponte dev did not start");

    let auth = format!("http://127.0.0.1:{base}");
    let shipping = format!("http://127.0.0.1:{}", base + 4);
    let run = |args: &[&str]| {
        let out = ponte()
            .args(args)
            .env("PONTE_AUTH_TOKEN_URL", &auth)
            .env("PONTE_SHIPPING_STATUS_URL", &shipping)
            .env("PONTE_ENVIOS360_API_TOKEN", "tok-360-sandbox-0000000000")
            .env("PONTE_ENVIOS360_WEBHOOK_SECRET", "whsec-360-sandbox-00000000")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    run(&["tenants", "create", "loja-1"]);
    let (authorize, _) = run(&["connections", "connect", "bling", "--tenant", "loja-1"]);
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(3)).build().unwrap();
    assert_eq!(browser.get(authorize.trim()).send().await.unwrap().status(), 200);
    run(&["connections", "envios360", "--tenant", "loja-1"]);

    let (dry, summary) = run(&["shipping", "setup", "--tenant", "loja-1", "--dry-run"]);
    assert!(dry.starts_with("ACTION"), "{dry}");
    assert_eq!(dry.lines().filter(|l| l.starts_with("would create")).count(), 9, "{dry}");
    assert!(summary.contains("dry run: 9 to create, 0 already there"), "{summary}");
    let (done, _) = run(&["shipping", "setup", "--tenant", "loja-1"]);
    assert_eq!(done.lines().filter(|l| l.starts_with("created")).count(), 9, "{done}");
    let (again, summary) = run(&["shipping", "setup", "--tenant", "loja-1"]);
    assert_eq!(again.lines().filter(|l| l.starts_with("found")).count(), 9, "{again}");
    assert!(summary.contains("0 created, 9 already there"), "{summary}");
    let (none, empty) = run(&["shipments", "list", "--tenant", "loja-1"]);
    assert!(none.is_empty() && empty.contains("no shipments"), "{none}{empty}");

    // The merchant's order, released in Bling; Bling's webhook as the gateway receives it.
    let channel = tonic::transport::Endpoint::from_shared(auth.clone()).unwrap().connect().await.unwrap();
    let token = AuthTokenServiceClient::new(crate::support::with_token(channel))
        .get_access_token(GetAccessTokenRequest {
            tenant_id: "loja-1".into(),
            provider: Provider::Bling as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let http = reqwest::Client::new();
    // The account's 3 requests/s are shared with ponte's own calls: a 429 is waited out.
    let bling = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let (http, url, token) = (http.clone(), format!("{}{path}", token.base_url), token.access_token.clone());
        async move {
            for _ in 0..50 {
                let mut req = http.request(method.clone(), &url).bearer_auth(&token);
                if let Some(b) = &body {
                    req = req.json(b);
                }
                let resp = req.send().await.unwrap();
                if resp.status() == 429 {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    continue;
                }
                assert!(resp.status().is_success(), "{url}: {}", resp.status());
                return resp.json::<Value>().await.unwrap_or(Value::Null);
            }
            panic!("Bling kept answering 429")
        }
    };
    let contato = bling(
        reqwest::Method::POST,
        "/contatos",
        Some(json!({"nome": "Maria Souza", "tipo": "F",
        "situacao": "A", "numeroDocumento": "529.982.247-25"})),
    )
    .await["data"]["id"]
        .as_i64()
        .unwrap();
    let produto = bling(
        reqwest::Method::POST,
        "/produtos",
        Some(json!({"nome": "Camiseta azul M", "codigo": "CAM-AZ-M",
        "preco": 59.9, "tipo": "P", "situacao": "A", "formato": "S"})),
    )
    .await["data"]["id"]
        .as_i64()
        .unwrap();
    let pedido = bling(reqwest::Method::POST, "/pedidos/vendas", Some(json!({"contato": {"id": contato},
        "data": "2026-03-02", "dataSaida": "2026-03-02", "dataPrevista": "2026-03-05",
        "itens": [{"produto": {"id": produto}, "codigo": "CAM-AZ-M", "quantidade": 2, "valor": 59.9, "descricao": "Camiseta azul M"}],
        "transporte": {"etiqueta": {"nome": "Maria Souza", "endereco": "Rua Augusta", "numero": "1500",
            "municipio": "São Paulo", "uf": "SP", "cep": "01304-001", "bairro": "Consolação"}}})))
    .await["data"]["id"]
        .as_i64()
        .unwrap();
    bling(reqwest::Method::PATCH, &format!("/pedidos/vendas/{pedido}/situacoes/15"), None).await;
    let body =
        json!({"eventId": "dev-order-1", "date": "2026-03-02T14:00:00Z", "version": "v1", "event": "order.updated",
        "companyId": "d4475854366a36c86a37e792f9634a51",
        "data": {"id": pedido, "numero": 1, "total": 119.8, "situacao": {"id": 15, "valor": 3}}})
        .to_string();
    let posted = http
        .post(format!("http://127.0.0.1:{}/webhooks/bling", base + 7))
        .header("content-type", "application/json")
        .header(
            "X-Bling-Signature-256",
            ponte_tests::webhooks::sign("ponte-sandbox-secret-0123456789", body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success());

    let mut listed = Value::Null;
    for _ in 0..100 {
        listed =
            serde_json::from_str(&run(&["shipments", "list", "--tenant", "loja-1", "--output", "json"]).0).unwrap();
        if listed[0]["status"] == "received" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(listed[0]["bling_order_id"], pedido, "{listed}");
    assert_eq!(listed[0]["status"], "received", "{listed}");
    assert!(listed[0]["envios360_order_id"].as_str().unwrap().starts_with("o_"), "{listed}");
    let (table, _) = run(&["shipments", "list", "--tenant", "loja-1", "--status", "received"]);
    assert!(table.lines().nth(1).unwrap().starts_with(&format!("{pedido}  ")), "{table}");
    assert!(run(&["shipments", "list", "--tenant", "loja-1", "--stuck"]).0.is_empty());
    let (shown, _) = run(&["shipments", "show", &pedido.to_string(), "--tenant", "loja-1"]);
    assert!(shown.contains("status      received"), "{shown}");
    assert!(shown.contains("CAM-AZ-M") && shown.contains("pending"), "{shown}");
    let created = shown.lines().find(|l| l.contains("created 360Envios order o_")).unwrap_or_else(|| panic!("{shown}"));
    assert!(created.contains("Bling order.updated") && created.contains("applied"), "{shown}");
    let json: Value = serde_json::from_str(
        &run(&["shipments", "show", &pedido.to_string(), "--tenant", "loja-1", "--output", "json"]).0,
    )
    .unwrap();
    assert_eq!(json["products"][0]["approval"], "pending");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_shipping_commands_have_help() {
    for args in
        [&["shipping", "setup", "--help"][..], &["shipments", "list", "--help"], &["shipments", "show", "--help"]]
    {
        let out = ponte().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: ponte"), "{args:?}");
    }
}
