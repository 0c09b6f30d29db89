//! shipping-status killed between creating the 360 order and recording it: the service runs as
//! a process of its own (this test binary, running only [`shipping_status_process`]), talks to
//! 360 through a proxy that lets the create through and withholds the hub's answer, and is
//! killed (SIGKILL) once the hub holds the order. Restarted, it gets the event again from the
//! gateway, looks the order up by its `external_id` before creating anything, and adopts it:
//! still one 360 order. When the hub moved the order on meanwhile (its status webhooks came
//! while ponte did not know the order as its own), the Bling order follows the hub.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::Method, http::StatusCode, http::Uri};
use ponte_core::{
    config::{Env, Peers},
    idempotency::{RedisTimeouts, connect_redis},
    service::Shared,
};
use ponte_tests::eventually;
use tokio::net::TcpListener;

use ponte_tests::shipping::{ATENDIDO, EM_ANDAMENTO, ShippingWorld};

/// The test binary's own shipping-status, as `ponte serve shipping-status` runs it, configured
/// by the variables [`spawn`] sets; serves until killed.
#[tokio::test]
#[ignore = "the shipping-status process of shipping_crash, started by it"]
async fn shipping_status_process() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by shipping_crash"));
    let env = Env::from_process();
    let spec = &ponte_shipping_status::SPEC;
    let db = spec.database(&var("PONTE_TEST_DATABASE"), 5, Duration::from_secs(5), true).await.unwrap();
    let redis = connect_redis(
        &ponte_tests::redis_url(),
        RedisTimeouts { connect: Duration::from_millis(300), response: Duration::from_millis(300) },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let deps = Shared::redis(redis, &var("PONTE_TEST_REDIS_PREFIX")).deps(db, Peers::from_env(&env).unwrap(), env);
    let listener = TcpListener::bind(var("PONTE_TEST_LISTEN")).await.unwrap();
    let server = spec.serve(&deps, listener, std::future::pending()).unwrap();
    server.await.unwrap();
}

/// A child process, killed when dropped (a failing test leaves none behind).
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts [`shipping_status_process`] listening on `addr`.
fn spawn(world: &ShippingWorld, addr: &str, hub_url: &str) -> Process {
    let mesh = &world.w.mesh;
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "shipping_crash::shipping_status_process", "--ignored", "--nocapture"])
        .env("PONTE_TEST_DATABASE", mesh.database_url.url())
        .env("PONTE_TEST_REDIS_PREFIX", &mesh.redis_prefix)
        .env("PONTE_TEST_LISTEN", addr)
        .env("PONTE_AUTH_TOKEN_URL", &mesh.peers.auth_token)
        .env("PONTE_MAPPING_URL", &mesh.peers.mapping)
        .env("PONTE_API_TOKENS_FILE", mesh.env.get("PONTE_API_TOKENS_FILE").unwrap_or_default())
        .env("PONTE_API_TOKEN", mesh.env.get("PONTE_API_TOKEN").unwrap_or_default())
        .env("PONTE_BLING_API_URL", &world.w.bling.base_url)
        .env("PONTE_ENVIOS360_API_URL", hub_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Process(child)
}

/// A proxy in front of the hub that, while `withhold` is set, lets `POST /v1/orders` through
/// and never answers it: the create is made, its answer lost.
#[derive(Clone)]
struct Withholding {
    hub: String,
    withhold: Arc<AtomicBool>,
    http: reqwest::Client,
}

async fn forward(
    State(p): State<Withholding>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Bytes) {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = p.http.request(method.clone(), format!("{}{path}", p.hub)).body(body);
    for name in ["authorization", "content-type"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let answer = req.send().await;
    if method == Method::POST && uri.path() == "/v1/orders" && p.withhold.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    match answer {
        Ok(r) => (r.status(), r.bytes().await.unwrap_or_default()),
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    }
}

#[tokio::test]
async fn killed_between_the_360_create_and_recording_it_there_is_still_one_360_order() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let world = ShippingWorld::start_without_shipping(format!("http://{addr}")).await;
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_url = format!("http://{}/v1", proxy_listener.local_addr().unwrap());
    let proxy = Withholding {
        hub: world.hub.base_url.trim_end_matches("/v1").to_owned(),
        withhold: Arc::new(AtomicBool::new(true)),
        http: reqwest::Client::new(),
    };
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(proxy_listener, app).await });

    let mut process = spawn(&world, &addr, &hub_url);
    let up = eventually(Duration::from_secs(30), || async { world.shipping_reachable().await }).await;
    assert!(up, "shipping-status did not start");
    world.set_up(false).await;
    let customer = world.customer();
    let product = world.product("CAM-AZ-M", 59.9, 1);
    let order = world.order(customer, &[(product, 2, 59.9)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    let created = eventually(Duration::from_secs(30), || async { !world.hub_orders(order).is_empty() }).await;
    assert!(created, "the create never reached the hub");

    process.kill();
    let db = world.w.mesh.db("shipping_status").await;
    let (hub_id, started): (Option<String>, i64) =
        sqlx::query_as("SELECT envios360_order_id, create_started FROM shipments WHERE bling_order_id = $1")
            .bind(order)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(hub_id.is_none() && started > 0, "killed after recording: {hub_id:?}");

    proxy.withhold.store(false, Ordering::SeqCst);
    let mut restarted = spawn(&world, &addr, &hub_url);
    let s = world.until_shipment(order, "the 360 order", |s| !s.envios360_order_id.is_empty()).await;
    restarted.kill();
    let orders = world.hub_orders(order);
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(s.envios360_order_id, orders[0]["id"].as_str().unwrap());
    assert!(
        s.history.iter().any(|h| h.action.starts_with("found after an interrupted create 360Envios order")),
        "{:#?}",
        s.history
    );
}

#[tokio::test]
async fn an_order_the_hub_moved_on_before_its_interrupted_create_was_recorded_moves_the_bling_order() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let world = ShippingWorld::start_without_shipping(format!("http://{addr}")).await;
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_url = format!("http://{}/v1", proxy_listener.local_addr().unwrap());
    let proxy = Withholding {
        hub: world.hub.base_url.trim_end_matches("/v1").to_owned(),
        withhold: Arc::new(AtomicBool::new(true)),
        http: reqwest::Client::new(),
    };
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(proxy_listener, app).await });

    let mut process = spawn(&world, &addr, &hub_url);
    let up = eventually(Duration::from_secs(30), || async { world.shipping_reachable().await }).await;
    assert!(up, "shipping-status did not start");
    world.set_up(false).await;
    let customer = world.customer();
    let product = world.product("CAM-AZ-M", 59.9, 1);
    let order = world.order(customer, &[(product, 2, 59.9)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    let created = eventually(Duration::from_secs(30), || async { !world.hub_orders(order).is_empty() }).await;
    assert!(created, "the create never reached the hub");
    process.kill();

    // While shipping-status is down, the hub takes the order all the way: its webhooks wait at
    // the gateway, behind the release that is to be retried.
    let hub_id = world.hub_orders(order)[0]["id"].as_str().unwrap().to_owned();
    for status in ["in_packing_list", "awaiting_shipment", "in_transit", "delivered"] {
        world.hub.hub.set_status(&hub_id, status).unwrap();
    }
    proxy.withhold.store(false, Ordering::SeqCst);
    let mut restarted = spawn(&world, &addr, &hub_url);
    world.until_situacao(order, ATENDIDO).await;
    let s =
        world.until_shipment(order, "delivered", |s| s.status() == ponte_proto::v1::ShippingStatus::Delivered).await;
    restarted.kill();
    assert_eq!(world.hub_orders(order).len(), 1);
    assert_eq!(s.envios360_order_id, hub_id);
}
