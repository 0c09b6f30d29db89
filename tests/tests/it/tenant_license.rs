//! A tenant's licence ("licença ativa"): while it is off, the gateway keeps answering 2xx and
//! storing the tenant's webhooks, holds their delivery (not a dead letter, not retried) while
//! other tenants flow, and delivers them in their order when it is on again. Only an operator
//! switches it. Real gateway, services, PostgreSQL and Redis; the Bling and Bitrix24 sandboxes.

use std::time::Duration;

use ponte_core::config::Env;
use ponte_proto::v1::{
    Bitrix24WebhookCredentials, CreateTenantRequest, DeadLetterFilter, EventState, GetEventRequest, GetTenantRequest,
    ListDeadLettersRequest, ListTenantsRequest, SetApiCredentialsRequest, SetTenantLicenseRequest,
    auth_token_service_client::AuthTokenServiceClient, inbox_service_client::InboxServiceClient,
    set_api_credentials_request::Credentials,
};
use ponte_sandbox::{
    bitrix24::{self, Bitrix24},
    bling,
};
use ponte_tests::{
    Mesh, api_tokens_file, count, eventually,
    webhooks::{BlingWorld, TENANT, bling_body, date},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::Code;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

const OTHER: &str = "outra";
const OTHER_APP_TOKEN: &str = "app-token-outra-0123456789";

async fn license(auth: &mut AuthTokenServiceClient<ponte_tests::Channel>, active: bool, reason: &str) {
    let t = auth
        .set_tenant_license(SetTenantLicenseRequest { tenant_id: TENANT.into(), active, reason: reason.into() })
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    let l = t.license.unwrap();
    assert_eq!((l.active, l.reason.as_str()), (active, reason));
    assert!(l.change_time.is_some());
}

/// `(event_id, delivery state)` of each of the tenant's events, in lane order.
async fn deliveries(db: &ponte_core::db::Database, tenant: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT d.event_id, d.state FROM inbox_deliveries d JOIN inbox_events e ON e.event_id = d.event_id \
         WHERE e.tenant_id = $1 ORDER BY d.order_time, d.event_id",
    )
    .bind(tenant)
    .fetch_all(db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_suspended_tenants_events_are_stored_and_held_then_delivered_in_order_when_reactivated() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_addr = listener.local_addr().unwrap();
    let config = bling::Config {
        webhook_url: Some(format!("http://{gateway_addr}/webhooks/bling")),
        webhook_backoff: Duration::from_millis(200),
        ..bling::Config::default()
    };
    let w = BlingWorld::start_with(SPECS, config, &ponte_tests::redis_url()).await;
    let portal = Bitrix24::new(bitrix24::Config::for_tests()).spawn(None).await.unwrap();
    w.connect_portal(&portal).await;
    let env = w.mesh.env.clone().with("PONTE_DISPATCH_BACKOFF_MS", "50");
    let gw = w.mesh.start_gateway_http_with(env, w.mesh.peers.clone(), Some(listener)).await;
    let mut auth = AuthTokenServiceClient::new(w.mesh.channel("auth-token").await);
    let mut inbox = InboxServiceClient::new(w.mesh.channel("gateway").await);

    // Another tenant, whose Bitrix24 portal sends its product events.
    auth.create_tenant(CreateTenantRequest { tenant_id: OTHER.into(), display_name: "Outra".into() }).await.unwrap();
    auth.set_api_credentials(SetApiCredentialsRequest {
        tenant_id: OTHER.into(),
        credentials: Some(Credentials::Bitrix24Webhook(Bitrix24WebhookCredentials {
            webhook_url: "https://outra.bitrix24.com.br/rest/1/abc123def456/".into(),
            application_token: OTHER_APP_TOKEN.into(),
        })),
    })
    .await
    .unwrap();

    license(&mut auth, false, "fatura em atraso").await;
    let got = auth.get_tenant(GetTenantRequest { tenant_id: TENANT.into() }).await.unwrap().into_inner();
    assert!(!got.tenant.unwrap().license.unwrap().active);
    let listed = auth.list_tenants(ListTenantsRequest::default()).await.unwrap().into_inner().tenants;
    let active: Vec<(String, bool)> =
        listed.iter().map(|t| (t.tenant_id.clone(), t.license.as_ref().unwrap().active)).collect();
    assert_eq!(active, [(TENANT.to_owned(), false), (OTHER.to_owned(), true)]);

    // While suspended: a product created and changed twice in Bling, another created, and one
    // webhook posted directly: all answered 2xx and stored.
    let bling_api = |body: Value| BlingWorld::bling_api(&w.mesh, reqwest::Method::POST, "/produtos", Some(body));
    let first = bling_api(json!({"nome": "Camiseta v1", "codigo": "CAM-1", "preco": 10.0, "tipo": "P",
                                 "situacao": "A", "formato": "S", "unidade": "UN"}))
    .await["data"]["id"]
        .as_i64()
        .unwrap();
    let second = bling_api(json!({"nome": "Boné", "codigo": "BON-1", "preco": 20.0, "tipo": "P",
                                  "situacao": "A", "formato": "S", "unidade": "UN"}))
    .await["data"]["id"]
        .as_i64()
        .unwrap();
    assert!(w.bling.bling.edit_product_in_ui(first, json!({"nome": "Camiseta v2"})));
    assert!(w.bling.bling.edit_product_in_ui(first, json!({"nome": "Camiseta v3"})));
    let direct = bling_body("lic-direct", "product.updated", &w.company_id(), &date(0), json!({"id": second}));
    assert_eq!(w.post_bling(&gw, direct).await.status().as_u16(), 200);
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE tenant_id = 'loja'").await >= 5
        })
        .await,
        "the suspended tenant's webhooks were not all stored"
    );

    // The other tenant flows meanwhile.
    let form = format!(
        "event=ONCRMPRODUCTUPDATE&event_handler_id=1&data%5BFIELDS%5D%5BID%5D=759&ts=1736405807\
         &auth%5Bdomain%5D=outra.bitrix24.com.br&auth%5Bapplication_token%5D={OTHER_APP_TOKEN}"
    );
    let resp = reqwest::Client::new()
        .post(gw.url(&format!("/webhooks/bitrix24/{OTHER}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        eventually(Duration::from_secs(20), || async {
            deliveries(&gw.db, OTHER).await.iter().all(|(_, s)| s == "delivered")
                && !deliveries(&gw.db, OTHER).await.is_empty()
        })
        .await,
        "the other tenant's event was not delivered: {:?}",
        deliveries(&gw.db, OTHER).await
    );

    // Every one of the suspended tenant's deliveries is held: none reached catalog-sync.
    assert!(
        eventually(Duration::from_secs(20), || async {
            let d = deliveries(&gw.db, TENANT).await;
            d.len() >= 5 && d.iter().all(|(_, s)| s == "held")
        })
        .await,
        "not all held: {:?}",
        deliveries(&gw.db, TENANT).await
    );
    let catalog = w.mesh.db("catalog_sync").await;
    assert_eq!(count(&catalog, "SELECT COUNT(*) FROM event_log WHERE tenant_id = 'loja'").await, 0);
    assert!(portal.portal.products().is_empty(), "a suspended tenant's product reached Bitrix24");
    let held_id = deliveries(&gw.db, TENANT).await[0].0.clone();
    let event = inbox.get_event(GetEventRequest { event_id: held_id }).await.unwrap().into_inner().event.unwrap();
    assert_eq!(event.state(), EventState::Held);
    assert_eq!(event.held_reason, "held: licence inactive (fatura em atraso)");
    assert_eq!(event.deliveries[0].state(), EventState::Held);
    assert_eq!(event.deliveries[0].attempts, 0, "holding spends no attempt");
    let dead = inbox
        .list_dead_letters(ListDeadLettersRequest {
            filter: Some(DeadLetterFilter { tenant_id: TENANT.into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(dead.events.is_empty(), "held events are not dead letters");

    // Reactivated: everything is delivered, each product's events in their order, the last
    // change winning in Bitrix24.
    let order_held: Vec<String> = deliveries(&gw.db, TENANT).await.into_iter().map(|(id, _)| id).collect();
    license(&mut auth, true, "").await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            deliveries(&gw.db, TENANT).await.iter().all(|(_, s)| s == "delivered" || s == "coalesced")
        })
        .await,
        "not delivered after the reactivation: {:?}",
        deliveries(&gw.db, TENANT).await
    );
    assert_eq!(count(&gw.db, "SELECT COUNT(*) FROM inbox_holds").await, 0);
    let names = || {
        portal.portal.products().into_iter().filter_map(|p| p.get("NAME").and_then(|n| n.as_str()).map(str::to_owned))
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            let mut n: Vec<String> = names().collect();
            n.sort();
            n == ["Boné", "Camiseta v3"]
        })
        .await,
        "Bitrix24 has {:?}",
        names().collect::<Vec<_>>()
    );
    for product in [first, second] {
        let handled: Vec<String> =
            sqlx::query_scalar("SELECT event_id FROM event_log WHERE entity_key = $1 ORDER BY seq")
                .bind(format!("product:{product}"))
                .fetch_all(catalog.pool())
                .await
                .unwrap();
        let mut in_lane_order: Vec<String> = order_held.iter().filter(|id| handled.contains(id)).cloned().collect();
        in_lane_order.dedup();
        let mut first_seen = handled.clone();
        first_seen.dedup();
        assert_eq!(first_seen, in_lane_order, "product {product} handled out of order");
    }
}

#[tokio::test]
async fn only_an_operator_switches_a_licence_and_bad_requests_name_the_field() {
    const SERVICE: &str = "svc-token-license-0123456789abcdef";
    const OPERATOR: &str = "ops-token-license-0123456789abcdef";
    const OWN: &str = "loja-token-license-0123456789abcdef";
    let file = api_tokens_file(&[
        ("mesh", SERVICE, "service"),
        ("ops", OPERATOR, "operator"),
        ("loja", OWN, &format!("tenant:{TENANT}")),
    ]);
    let env = Env::default().with("PONTE_API_TOKENS_FILE", &file).with("PONTE_API_TOKEN", SERVICE);
    let mesh = Mesh::start_with(&[&ponte_auth_token::SPEC], &ponte_tests::redis_url(), env).await;
    let mut ops = AuthTokenServiceClient::new(mesh.channel_as("auth-token", OPERATOR).await);
    ops.create_tenant(CreateTenantRequest { tenant_id: TENANT.into(), display_name: "Loja".into() }).await.unwrap();
    let set = |tenant: &str, active: bool, reason: String| SetTenantLicenseRequest {
        tenant_id: tenant.into(),
        active,
        reason,
    };

    let mut own = AuthTokenServiceClient::new(mesh.channel_as("auth-token", OWN).await);
    let denied = own.set_tenant_license(set(TENANT, true, String::new())).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    // The tenant still reads its own licence.
    let mine = own.get_tenant(GetTenantRequest { tenant_id: TENANT.into() }).await.unwrap().into_inner();
    assert!(mine.tenant.unwrap().license.unwrap().active);

    let unknown = ops.set_tenant_license(set("nenhuma", false, String::new())).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let missing = ops.set_tenant_license(set("", false, String::new())).await.unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().starts_with("tenant_id"), "{}", missing.message());
    let long = ops.set_tenant_license(set(TENANT, false, "x".repeat(501))).await.unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().starts_with("reason"), "{}", long.message());

    let off = ops.set_tenant_license(set(TENANT, false, " pedido do cliente ".into())).await.unwrap().into_inner();
    let l = off.tenant.unwrap().license.unwrap();
    assert_eq!((l.active, l.reason.as_str()), (false, "pedido do cliente"));
    let on = ops.set_tenant_license(set(TENANT, true, String::new())).await.unwrap().into_inner();
    assert!(on.tenant.unwrap().license.unwrap().active);
    mesh.shutdown().await;
}
