//! The webhook gateway on receipt, against real PostgreSQL, Redis and ponte's services over
//! gRPC: verify first, deduplicate, store before acknowledging, and park what cannot be used.

use std::time::Duration;

use ponte_core::db::Database;
use ponte_proto::v1::{
    DeadLetterFilter, EventState, GetEventRequest, ListDeadLettersRequest, Provider, ReplayRequest,
    inbox_service_client::InboxServiceClient, replay_request::Target,
};
use ponte_tests::{
    TcpProxy, count, eventually,
    webhooks::{BlingWorld, TENANT, bling_body, date, sign},
};
use serde_json::{Value, json};
use sqlx::Row;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

async fn post(url: &str, content_type: &str, signature: Option<(&str, String)>, body: String) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(url).header("content-type", content_type).body(body);
    if let Some((name, value)) = signature {
        req = req.header(name, value);
    }
    req.send().await.expect("gateway answers")
}

async fn post_bling(w: &BlingWorld, gw: &ponte_tests::GatewayHttp, body: String) -> reqwest::Response {
    let sig = sign(&w.client_secret(), body.as_bytes());
    post(&gw.url("/webhooks/bling"), "application/json", Some(("X-Bling-Signature-256", sig)), body).await
}

async fn catalog_db(w: &BlingWorld) -> Database {
    w.mesh.db("catalog_sync").await
}

/// Every event catalog-sync handled: (inbox event id, outcome).
async fn catalog_log(db: &Database) -> Vec<(String, String)> {
    sqlx::query("SELECT event_id, outcome FROM event_log ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("urn:ponte:problem:"), "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    body
}

#[tokio::test]
async fn one_event_sent_fifty_times_at_once_is_stored_and_delivered_once() {
    let w = BlingWorld::start(SPECS).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let body = bling_body(
        "01945027-150e-72b4-e7cf-4943a042cd9c",
        "product.updated",
        &w.company_id(),
        &date(0),
        json!({"id": 16059781281_i64, "nome": "Copo do Bling", "codigo": "COD-4587"}),
    );
    let sends = (0..50).map(|_| post_bling(&w, &gw, body.clone()));
    let answers = futures::future::join_all(sends).await;
    let mut statuses = Vec::new();
    for a in answers {
        assert_eq!(a.status().as_u16(), 200);
        let v: Value = a.json().await.unwrap();
        statuses.push(v["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses.iter().filter(|s| *s == "stored").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "duplicate").count(), 49);
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, 1);

    let cs = catalog_db(&w).await;
    assert!(eventually(Duration::from_secs(10), || async { !catalog_log(&cs).await.is_empty() }).await);
    // Give a second delivery, if there were one, the time to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = catalog_log(&cs).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].1, "skipped");
    let row =
        sqlx::query("SELECT tenant_id, entity_key, state FROM inbox_events").fetch_one(gw.db.pool()).await.unwrap();
    assert_eq!((row.get::<String, _>(0), row.get::<String, _>(1)), (TENANT.into(), "product:16059781281".into()));
    assert!(
        eventually(Duration::from_secs(5), || async {
            count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'delivered'").await == 1
        })
        .await
    );
    let (attempts, detail): (i64, String) =
        sqlx::query_as("SELECT attempts, detail FROM inbox_deliveries").fetch_one(gw.db.pool()).await.unwrap();
    assert_eq!(attempts, 1);
    assert_eq!(detail, "Bitrix24 is not connected");

    // The same event again, long after: still a duplicate (Redis), and nothing new is stored.
    let again = post_bling(&w, &gw, body).await;
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, 1);
}

#[tokio::test]
async fn forged_oversize_and_mistyped_requests_are_refused_with_problems_and_nothing_is_stored() {
    let w = BlingWorld::start(SPECS).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let url = gw.url("/webhooks/bling");
    let body = bling_body("e-forged", "product.updated", &w.company_id(), &date(0), json!({"id": 1}));

    let forged = post(
        &url,
        "application/json",
        Some(("X-Bling-Signature-256", sign("not-the-secret", body.as_bytes()))),
        body.clone(),
    )
    .await;
    let p = problem(forged, 401).await;
    assert_eq!(p["type"], "urn:ponte:problem:invalid-signature");
    problem(post(&url, "application/json", None, body.clone()).await, 401).await;
    // A signature of another body.
    let other = sign(&w.client_secret(), b"{}");
    problem(post(&url, "application/json", Some(("X-Bling-Signature-256", other)), body.clone()).await, 401).await;

    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(ponte_gateway::MAX_BODY));
    let sig = sign(&w.client_secret(), big.as_bytes());
    problem(post(&url, "application/json", Some(("X-Bling-Signature-256", sig)), big).await, 413).await;

    let sig = sign(&w.client_secret(), body.as_bytes());
    problem(post(&url, "text/plain", Some(("X-Bling-Signature-256", sig.clone())), body.clone()).await, 415).await;
    problem(post(&url, "application/x-www-form-urlencoded", Some(("X-Bling-Signature-256", sig)), body).await, 415)
        .await;

    // Tenants named in the URL: unknown or malformed, the answer is the same 401.
    let cplug =
        json!({"event_id": "c1", "event": "sale.completed", "occurred_at": date(0), "sale": {"id": "V-1"}}).to_string();
    for tenant in ["ghost", "Not A Tenant"] {
        let url = gw.url(&format!("/webhooks/cplug/{}", tenant.replace(' ', "%20")));
        let sig = sign("whatever", cplug.as_bytes());
        problem(post(&url, "application/json", Some(("X-Cplug-Signature", sig)), cplug.clone()).await, 401).await;
    }
    let bitrix = "event=ONCRMPRODUCTUPDATE&data%5BFIELDS%5D%5BID%5D=1&ts=1&auth%5Bapplication_token%5D=x".to_owned();
    problem(post(&gw.url("/webhooks/bitrix24/loja"), "application/x-www-form-urlencoded", None, bitrix).await, 401)
        .await;

    problem(post(&gw.url("/webhooks/nowhere"), "application/json", None, "{}".into()).await, 404).await;
    let get = reqwest::get(gw.url("/webhooks/bling")).await.unwrap();
    problem(get, 405).await;

    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, 0, "a refused request left a row");
}

#[tokio::test]
async fn signed_events_that_cannot_be_used_are_dead_letters_answered_2xx_and_replayable() {
    let w = BlingWorld::start(SPECS).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let company = w.company_id();
    let cases = [
        (
            bling_body("u-1", "product.updated", "ffffffffffffffffffffffffffffffff", &date(0), json!({"id": 1})),
            "is not connected",
        ),
        (
            json!({"eventId": "u-2", "date": date(0), "version": "v1", "event": "product.updated", "data": {"id": 1}})
                .to_string(),
            "companyId is missing",
        ),
        (bling_body("u-3", "product.updated", &company, &date(0), json!({"nome": "sem id"})), "data.id"),
        ("{not json".to_owned(), "not JSON"),
    ];
    for (body, _) in &cases {
        let resp = post_bling(&w, &gw, body.clone()).await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["status"], "dead_letter");
    }
    // A retry of the unparseable body is the same dead letter, not a second one.
    assert_eq!(post_bling(&w, &gw, cases[3].0.clone()).await.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'dead'").await, 4);
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_deliveries").await, 0);

    let mut inbox = InboxServiceClient::new(w.mesh.channel("gateway").await);
    let all = inbox.list_dead_letters(ListDeadLettersRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.events.len(), 4);
    for (_, why) in &cases {
        assert!(all.events.iter().any(|e| e.dead_reason.contains(why)), "no dead letter says '{why}'");
    }
    let filtered = inbox
        .list_dead_letters(ListDeadLettersRequest {
            filter: Some(DeadLetterFilter {
                tenant_id: TENANT.into(),
                source: Provider::Bling as i32,
                reason_contains: "data.id".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.events.len(), 1);
    assert_eq!(filtered.events[0].source_event_id, "u-3");
    let page = inbox
        .list_dead_letters(ListDeadLettersRequest { page_size: 3, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.events.len(), 3);
    let rest = inbox
        .list_dead_letters(ListDeadLettersRequest {
            page_size: 3,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.events.len(), 1);
    assert!(rest.next_page_token.is_empty());

    let got = inbox
        .get_event(GetEventRequest { event_id: filtered.events[0].event_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert_eq!(got.state(), EventState::Dead);
    assert!(String::from_utf8(got.payload).unwrap().contains("sem id"));
    let missing = inbox.get_event(GetEventRequest { event_id: "nope".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bad = inbox
        .list_dead_letters(ListDeadLettersRequest { page_token: "%%".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // Replayed, a dead letter is classified again; still unusable, it is dead again with its reason.
    let replayed =
        inbox.replay(ReplayRequest { target: Some(Target::EventId(got.event_id.clone())) }).await.unwrap().into_inner();
    assert_eq!(replayed.event_ids, std::slice::from_ref(&got.event_id));
    assert!(
        eventually(Duration::from_secs(10), || async {
            let e = inbox_state(&gw.db, &got.event_id).await;
            e.0 == "dead" && e.1.contains("data.id")
        })
        .await
    );
    let not_dead = inbox.replay(ReplayRequest { target: None }).await.unwrap_err();
    assert_eq!(not_dead.code(), tonic::Code::InvalidArgument);
}

async fn inbox_state(db: &Database, event_id: &str) -> (String, String) {
    sqlx::query_as("SELECT state, dead_reason FROM inbox_events WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn with_redis_cut_mid_run_nothing_is_lost_and_nothing_is_processed_twice() {
    let proxy = TcpProxy::start(ponte_tests::redis_url().trim_start_matches("redis://").parse().unwrap()).await;
    let w = BlingWorld::start_with(SPECS, Default::default(), &format!("redis://{}", proxy.addr)).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let company = w.company_id();
    let body = |i: usize| {
        bling_body(&format!("redis-{i}"), "product.created", &company, &date(i as i64), json!({"id": 1000 + i}))
    };
    // Each event is sent twice at once; Redis is cut a third of the way in and restored at two thirds.
    const N: usize = 150;
    for chunk in (0..N).collect::<Vec<_>>().chunks(10) {
        if chunk[0] == N / 3 {
            proxy.cut();
        }
        if chunk[0] == 2 * N / 3 {
            proxy.restore();
        }
        let sends = chunk.iter().flat_map(|i| [post_bling(&w, &gw, body(*i)), post_bling(&w, &gw, body(*i))]);
        for resp in futures::future::join_all(sends).await {
            assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
        }
    }
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, N as i64);
    let cs = catalog_db(&w).await;
    assert!(
        eventually(Duration::from_secs(30), || async { catalog_log(&cs).await.len() >= N }).await,
        "only {} of {N} events reached catalog-sync",
        catalog_log(&cs).await.len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = catalog_log(&cs).await;
    let unique: std::collections::HashSet<_> = log.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!((log.len(), unique.len()), (N, N), "an event was delivered twice");
    // Redis was really used on either side of the cut.
    let mut redis =
        redis::Client::open(ponte_tests::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}idem:inbox:bling:*", w.mesh.redis_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.len() >= N / 3 && keys.len() < N, "{} keys", keys.len());
}

#[tokio::test]
async fn cplug_envios360_and_bitrix24_events_are_verified_with_their_tenant_secrets() {
    use ponte_proto::v1::{
        Bitrix24WebhookCredentials, CplugCredentials, Envios360Credentials, SetApiCredentialsRequest,
        auth_token_service_client::AuthTokenServiceClient, set_api_credentials_request::Credentials,
    };
    let w = BlingWorld::start(&[
        &ponte_auth_token::SPEC,
        &ponte_catalog_sync::SPEC,
        &ponte_sales_ingest::SPEC,
        &ponte_shipping_status::SPEC,
        &ponte_gateway::SPEC,
    ])
    .await;
    let mut auth = AuthTokenServiceClient::new(w.mesh.channel("auth-token").await);
    let creds = [
        Credentials::Envios360(Envios360Credentials {
            api_token: "tok-360-aaaaaaaaaaaaaaaaaaaa".into(),
            webhook_secret: "whsec-360-bbbbbbbbbbbbbbbbbbb".into(),
        }),
        Credentials::Cplug(CplugCredentials {
            client_id: "cid".into(),
            client_secret: "csecret-dddddddddddd".into(),
            username: "caixa".into(),
            password: "pdv-password-ccccccccccc".into(),
            webhook_secret: "cplug-hook-eeeeeeeeeeee".into(),
        }),
        Credentials::Bitrix24Webhook(Bitrix24WebhookCredentials {
            webhook_url: "https://loja.bitrix24.com.br/rest/1/abc123def456/".into(),
            application_token: "app-token-ffffffffffff".into(),
        }),
    ];
    for c in creds {
        auth.set_api_credentials(SetApiCredentialsRequest { tenant_id: TENANT.into(), credentials: Some(c) })
            .await
            .unwrap();
    }
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;

    let status = json!({"event_id": "360-1", "event": "order.status_changed", "occurred_at": date(5),
        "order": {"id": "o_1", "external_id": "12345678", "status": "in_transit"}})
    .to_string();
    let url = gw.url("/webhooks/envios360/loja");
    problem(
        post(&url, "application/json", Some(("X-360-Signature", sign("wrong", status.as_bytes()))), status.clone())
            .await,
        401,
    )
    .await;
    let ok = post(
        &url,
        "application/json",
        Some(("X-360-Signature", sign("whsec-360-bbbbbbbbbbbbbbbbbbb", status.as_bytes()))),
        status,
    )
    .await;
    assert_eq!(ok.status().as_u16(), 200);

    let sale =
        json!({"event_id": "cp-1", "event": "sale.completed", "occurred_at": date(6), "sale": {"id": "V-000123"}})
            .to_string();
    let ok = post(
        &gw.url("/webhooks/cplug/loja"),
        "application/json",
        Some(("X-Cplug-Signature", sign("cplug-hook-eeeeeeeeeeee", sale.as_bytes()))),
        sale,
    )
    .await;
    assert_eq!(ok.status().as_u16(), 200);

    let form = "event=ONCRMPRODUCTUPDATE&event_handler_id=1&data%5BFIELDS%5D%5BID%5D=759&ts=1736405807\
        &auth%5Bdomain%5D=loja.bitrix24.com.br&auth%5Bapplication_token%5D=app-token-ffffffffffff";
    let url = gw.url("/webhooks/bitrix24/loja");
    problem(
        post(&url, "application/x-www-form-urlencoded", None, form.replace("ffffffffffff", "000000000000")).await,
        401,
    )
    .await;
    assert_eq!(post(&url, "application/x-www-form-urlencoded", None, form.to_owned()).await.status().as_u16(), 200);

    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT source, entity_key, tenant_id FROM inbox_events ORDER BY source")
            .fetch_all(gw.db.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("bitrix24".into(), "bitrix24_product:759".into(), TENANT.into()),
            ("cplug".into(), "sale:V-000123".into(), TENANT.into()),
            ("envios360".into(), "order:12345678".into(), TENANT.into()),
        ]
    );
    let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM inbox_events WHERE source = 'bitrix24'")
        .fetch_one(gw.db.pool())
        .await
        .unwrap();
    assert!(!String::from_utf8(payload).unwrap().contains("app-token"), "the application token was stored");
    // Each went to its subscriber: the Bitrix24 product to catalog-sync, the sale to
    // sales-ingest (which stores a sale without its data as failed, answering it parked) and the
    // status to shipping-status (delivered: an order ponte never sent is stored and reported,
    // not refused).
    assert!(
        eventually(Duration::from_secs(10), || async {
            count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state IN ('pending', 'received')").await == 0
        })
        .await
    );
    let deliveries: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT e.source, d.subscriber, d.state FROM inbox_deliveries d JOIN inbox_events e ON e.event_id = d.event_id ORDER BY e.source",
    )
    .fetch_all(gw.db.pool())
    .await
    .unwrap();
    assert_eq!(
        deliveries,
        [
            ("bitrix24".into(), "catalog-sync".into(), "delivered".into()),
            ("cplug".into(), "sales-ingest".into(), "delivered".into()),
            ("envios360".into(), "shipping-status".into(), "delivered".into()),
        ]
    );
    let (outcome, detail): (String, String) = sqlx::query_as(
        "SELECT d.outcome, d.detail FROM inbox_deliveries d JOIN inbox_events e ON e.event_id = d.event_id \
         WHERE e.source = 'cplug'",
    )
    .fetch_one(gw.db.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "parked");
    assert!(detail.contains("V-000123 cannot be posted as sent: sale."), "{detail}");
    let (state, reason) = inbox_state(
        &gw.db,
        &sqlx::query_scalar::<_, String>("SELECT event_id FROM inbox_events WHERE source = 'envios360'")
            .fetch_one(gw.db.pool())
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(state, "dead", "the 360 status became a dead letter: {reason}");
}

#[tokio::test]
async fn metrics_count_events_by_source_in_prometheus_text() {
    let w = BlingWorld::start(SPECS).await;
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let body = bling_body("m-1", "product.created", &w.company_id(), &date(0), json!({"id": 7}));
    post_bling(&w, &gw, body.clone()).await;
    post_bling(&w, &gw, body).await;
    let cs = catalog_db(&w).await;
    assert!(eventually(Duration::from_secs(10), || async { !catalog_log(&cs).await.is_empty() }).await);
    let text = reqwest::get(gw.url("/metrics")).await.unwrap().text().await.unwrap();
    for needle in [
        "ponte_gateway_events_received_total{source=\"bling\"}",
        "ponte_gateway_events_stored_total{source=\"bling\"}",
        "ponte_gateway_events_duplicate_total{source=\"bling\"}",
        "ponte_gateway_deliveries_total{subscriber=\"catalog-sync\",outcome=\"skipped\"}",
        "ponte_gateway_dispatch_lag_seconds_count{subscriber=\"catalog-sync\"}",
        "ponte_gateway_ack_latency_seconds_bucket{",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics:\n{text}");
    }
}
