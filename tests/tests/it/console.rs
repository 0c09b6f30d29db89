//! The operator console (`/console` on the gateway) over real HTTP against a real mesh: login
//! with an API token from the tokens file, the session cookie's attributes, CSRF on every form,
//! the security headers, a tenant's token confined to its tenant, and the console's writes
//! reaching the services: a dead letter replayed is delivered again, a payment method mapped
//! posts the sale it held parked.

use std::time::Duration;

use ponte_core::config::Env;
use ponte_core::identity::{ENV_TOKEN, ENV_TOKENS_FILE};
use ponte_proto::v1::SaleState;
use ponte_tests::{TcpProxy, api_tokens_file, count, eventually, webhooks::TENANT};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::json;

use crate::sales_support::{PIX, SalesWorld, camisetas, sales_env};

const SERVICE: &str = "console-test-service-token-0123456789";
const OPERATOR: &str = "console-test-operator-token-0123456789";
const TENANT_TOKEN: &str = "console-test-tenant-token-0123456789";

/// The mesh's settings with a service, an operator and a tenant token.
fn env() -> Env {
    let file = api_tokens_file(&[
        ("mesh", SERVICE, "service"),
        ("ops", OPERATOR, "operator"),
        ("loja", TENANT_TOKEN, &format!("tenant:{TENANT}")),
    ]);
    sales_env().with(ENV_TOKENS_FILE, &file).with(ENV_TOKEN, SERVICE)
}

async fn world() -> SalesWorld {
    SalesWorld::start_with(
        &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_sales_ingest::SPEC, &ponte_gateway::SPEC],
        env(),
    )
    .await
}

/// A browser of the console: no redirects followed, its session cookie kept by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    fn new(base: String) -> Self {
        Self { http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(), base, cookie: None }
    }

    async fn answer(&self, r: reqwest::RequestBuilder) -> Answer {
        let r = match &self.cookie {
            Some(c) => r.header("cookie", c),
            None => r,
        };
        let resp = r.send().await.expect("the console answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        assert!(status.as_u16() < 500 || status.as_u16() == 503, "{status}: {body}");
        Answer { status, headers, body }
    }

    async fn get(&self, path: &str) -> Answer {
        self.answer(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.answer(self.http.post(format!("{}{path}", self.base)).form(form)).await
    }

    /// Logs in with `token`; the login's answer.
    async fn login(&mut self, token: &str) -> Answer {
        let a = self.post("/console/login", &[("token", token)]).await;
        if let Some(c) = a.headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        a
    }
}

fn security_headers(a: &Answer) {
    let h = |n: &str| a.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let csp = h("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("x-frame-options"), "DENY");
}

#[tokio::test]
async fn the_console_logs_in_with_an_operator_token_and_guards_its_session_and_forms() {
    let w = world().await;
    let gw = w.gateway.as_ref().unwrap();
    let mut b = Browser::new(gw.url(""));

    // The login page: pt-BR by default, English on request; every answer with the headers.
    let page = b.get("/console/login").await;
    assert_eq!(page.status, StatusCode::OK);
    security_headers(&page);
    assert!(page.body.contains("<html lang=\"pt-BR\"") && page.body.contains("Entrar"), "{}", page.body);
    assert!(page.body.contains("<label for=\"token\""), "the token field has a label");
    assert!(!page.body.contains("<script>"), "no inline script");
    let en = b.get("/console/login?lang=en").await;
    assert!(en.body.contains("<html lang=\"en\"") && en.body.contains("Log in"), "{}", en.body);
    let js = b.get("/console/static/console.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));

    // Not logged in: sent to the login page, nothing shown.
    let home = b.get("/console").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert!(home.location().starts_with("/console/login"), "{}", home.location());
    let tab = b.get(&format!("/console/t/{TENANT}/vendas")).await;
    assert_eq!(tab.status, StatusCode::SEE_OTHER);
    security_headers(&tab);

    // A bad token is refused, naming the field, and opens no session.
    let bad = b.login("not-a-known-token").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains("token: desconhecido"), "{}", bad.body);
    assert!(bad.headers.get("set-cookie").is_none());
    assert!(b.cookie.is_none());
    let empty = b.login("").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.body.contains("token: obrigatório"), "{}", empty.body);

    // The operator's token: a session cookie with every attribute, holding a random id only.
    let ok = b.login(OPERATOR).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let set = ok.headers["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(set.split("; ").any(|a| a == attr), "{attr} missing from {set}");
    }
    assert!(set.starts_with(&format!("{}=", ponte_gateway::CONSOLE_COOKIE)), "{set}");
    assert!(!set.contains(OPERATOR), "the cookie carries the token");
    let id = set.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(id.len(), 64, "a 256-bit random id: {id}");

    let home = b.get("/console").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains(&format!("/console/t/{TENANT}/conexoes")), "{}", home.body);
    for tab in ["conexoes", "lojas", "situacoes", "eventos", "vendas", "pagamento", "historico"] {
        let page = b.get(&format!("/console/t/{TENANT}/{tab}")).await;
        assert_eq!(page.status, StatusCode::OK, "{tab}: {}", page.body);
        security_headers(&page);
    }
    let conn = b.get(&format!("/console/t/{TENANT}/conexoes")).await;
    assert!(conn.body.contains("Conectar ao Bling"), "{}", conn.body);
    assert!(conn.body.contains("BLING"), "the Bling connection is listed: {}", conn.body);
    let csrf = conn.csrf();
    // "Conectar ao Bling" starts Bling's OAuth flow: the browser is sent to Bling's consent page.
    let connect = b.post(&format!("/console/t/{TENANT}/conexoes/bling"), &[("csrf", &csrf)]).await;
    assert_eq!(connect.status, StatusCode::SEE_OTHER, "{}", connect.body);
    assert!(connect.location().starts_with("http") && connect.location().contains("state="), "{}", connect.location());

    // CSRF: a form without the session's token, or with another, is refused; nothing happens.
    let forms = format!("/console/t/{TENANT}/pagamento");
    let fields = [("cplug_method", "PIX"), ("bling_forma_pagamento_id", "11010302")];
    let none = b.post(&forms, &fields).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    assert!(none.body.contains("CSRF"), "{}", none.body);
    let wrong = b.post(&forms, &[fields[0], fields[1], ("csrf", "0000")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let maps =
        count(&w.world.mesh.db("mapping").await, "SELECT COUNT(*) FROM payment_method_maps WHERE cplug_method = 'PIX'")
            .await;
    assert_eq!(maps, 0, "a refused form changed nothing");

    // Bad input: a clear 4xx page naming the field.
    let bad_id = b.post(&forms, &[("cplug_method", "PIX"), ("bling_forma_pagamento_id", "abc"), ("csrf", &csrf)]).await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
    assert!(bad_id.body.contains("bling_forma_pagamento_id"), "{}", bad_id.body);
    let bad_entity = b.get(&format!("/console/t/{TENANT}/historico?entity=nocolon")).await;
    assert_eq!(bad_entity.status, StatusCode::BAD_REQUEST);
    assert!(bad_entity.body.contains("entity"), "{}", bad_entity.body);
    let bad_tenant = b.get("/console/t/N%C3%A3o%20Vale/vendas").await;
    assert_eq!(bad_tenant.status, StatusCode::BAD_REQUEST);
    assert!(bad_tenant.body.contains("tenant"), "{}", bad_tenant.body);
    let missing = b.post(&format!("/console/t/{TENANT}/eventos/replay"), &[("csrf", &csrf)]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body.contains("event_id"), "{}", missing.body);

    // Logged out: the session is gone on the server.
    let out = b.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/console").await.status, StatusCode::SEE_OTHER);

    // A tenant's token sees its tenant and no other.
    let mut t = Browser::new(gw.url(""));
    assert_eq!(t.login(TENANT_TOKEN).await.status, StatusCode::SEE_OTHER);
    let home = t.get("/console?lang=en").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains(&format!("/console/t/{TENANT}/conexoes")));
    let own = t.get(&format!("/console/t/{TENANT}/vendas")).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    for tab in ["conexoes", "vendas", "eventos", "pagamento"] {
        let other = t.get(&format!("/console/t/outra-loja/{tab}")).await;
        assert_eq!(other.status, StatusCode::FORBIDDEN, "{tab}: {}", other.body);
    }
    let csrf = own.csrf();
    let other = t.post("/console/t/outra-loja/pagamento", &[fields[0], fields[1], ("csrf", &csrf)]).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_console_replays_a_dead_letter_and_mapping_a_payment_method_posts_the_parked_sale() {
    let mut w = world().await;

    // A PIX sale parks: PIX has no DE-PARA.
    let mut sale = camisetas("V-PIX");
    sale["payments"] = json!([{"method": "PIX", "amount": 119.80}]);
    let pix = w.ring_up(sale);
    w.wait_for(&pix, SaleState::Parked).await;

    // A sale whose event dies: sales-ingest unreachable from the gateway, two attempts.
    let proxy = TcpProxy::start(w.world.mesh.addr("sales-ingest")).await;
    let peers =
        ponte_core::config::Peers { sales_ingest: format!("http://{}", proxy.addr), ..w.world.mesh.peers.clone() };
    drop(w.gateway.take());
    proxy.cut();
    let gw_env = w.world.mesh.env.clone().with("PONTE_DISPATCH_MAX_ATTEMPTS", "2");
    w.gateway = Some(w.world.mesh.start_gateway_http_with(gw_env, peers, None).await);
    let mut dead = camisetas("V-DEAD");
    dead["total"] = json!(119.80);
    dead["discount"] = json!(0.0);
    assert!(w.push("evt-dead", "sale.completed", dead).await.status().is_success());
    let gw = w.gateway.as_ref().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(&gw.db, "SELECT COUNT(*) FROM inbox_events WHERE state = 'dead'").await == 1
        })
        .await,
        "the event never died"
    );
    proxy.restore();
    assert!(w.sale("V-DEAD").await.is_none());

    let mut b = Browser::new(gw.url(""));
    assert_eq!(b.login(OPERATOR).await.status, StatusCode::SEE_OTHER);

    // Eventos lists it with its reason; Replay delivers it again.
    let events = b.get(&format!("/console/t/{TENANT}/eventos")).await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.body);
    assert!(events.body.contains("sales-ingest"), "the reason names the service: {}", events.body);
    let event_id: String = sqlx::query_scalar("SELECT event_id FROM inbox_events WHERE state = 'dead'")
        .fetch_one(gw.db.pool())
        .await
        .unwrap();
    assert!(events.body.contains(&event_id), "{}", events.body);
    let replay = b
        .post(&format!("/console/t/{TENANT}/eventos/replay"), &[("event_id", &event_id), ("csrf", &events.csrf())])
        .await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER, "{}", replay.body);
    assert!(replay.location().contains("ok=replayed"), "{}", replay.location());
    w.wait_for("V-DEAD", SaleState::Posted).await;
    assert_eq!(w.orders_of("V-DEAD").len(), 1);
    let after = b.get(&format!("/console/t/{TENANT}/eventos?ok=replayed")).await;
    assert!(!after.body.contains(&event_id), "still a dead letter: {}", after.body);
    assert!(after.body.contains("Reenvio enfileirado"), "{}", after.body);

    // Vendas shows the parked sale with its reason; the payment tab lists it under PIX.
    let sales = b.get(&format!("/console/t/{TENANT}/vendas")).await;
    assert!(sales.body.contains(&pix) && sales.body.contains("PARKED"), "{}", sales.body);
    assert!(sales.body.contains("UNMAPPED_PAYMENT_METHOD"), "{}", sales.body);
    assert!(sales.body.contains("POSTED"), "the replayed sale is posted: {}", sales.body);
    let pay = b.get(&format!("/console/t/{TENANT}/pagamento")).await;
    assert!(pay.body.contains(&format!("{pix} — PIX")), "{}", pay.body);
    assert!(pay.body.contains("<label for=\"cplug_method\""), "{}", pay.body);

    // Mapping PIX from the console posts it.
    let forma = PIX.to_string();
    let mapped = b
        .post(
            &format!("/console/t/{TENANT}/pagamento"),
            &[("cplug_method", "PIX"), ("bling_forma_pagamento_id", &forma), ("csrf", &pay.csrf())],
        )
        .await;
    assert_eq!(mapped.status, StatusCode::SEE_OTHER, "{}", mapped.body);
    w.wait_for(&pix, SaleState::Posted).await;
    assert_eq!(w.orders_of(&pix)[0]["parcelas"][0]["formaPagamento"]["id"], PIX);
    let pay = b.get(&format!("/console/t/{TENANT}/pagamento?ok=mapped")).await;
    assert!(pay.body.contains(&format!("<td>PIX</td><td>{PIX}</td>")), "{}", pay.body);

    // The sale's history, from the console.
    let history = b.get(&format!("/console/t/{TENANT}/historico?entity=sale:{pix}")).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert!(history.body.contains("sales-ingest"), "{}", history.body);
}

/// The console's session keys in this test's Redis prefix.
async fn session_keys(mesh: &ponte_tests::Mesh) -> Vec<String> {
    let client = redis::Client::open(ponte_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS").arg(format!("{}exp:console:session:*", mesh.redis_prefix)).query_async(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_console_session_opened_on_one_gateway_is_seen_and_ended_on_another() {
    let w = world().await;
    let mesh = &w.world.mesh;
    let a = w.gateway.as_ref().unwrap();
    let b_gw = mesh.start_gateway_http(mesh.env.clone()).await;

    // Logged in through gateway A; the same cookie on gateway B (same Redis) is the same session.
    let mut on_a = Browser::new(a.url(""));
    assert_eq!(on_a.login(OPERATOR).await.status, StatusCode::SEE_OTHER);
    let mut on_b = Browser::new(b_gw.url(""));
    on_b.cookie = on_a.cookie.clone();
    let page = on_b.get(&format!("/console/t/{TENANT}/vendas")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    assert_eq!(csrf, on_a.get(&format!("/console/t/{TENANT}/vendas")).await.csrf(), "one session, one CSRF token");
    // A form of B's page is accepted by A (the CSRF check passes; the missing field is named).
    let form = on_a.post(&format!("/console/t/{TENANT}/vendas/replay"), &[("csrf", &csrf)]).await;
    assert_eq!(form.status, StatusCode::BAD_REQUEST, "{}", form.body);
    assert!(form.body.contains("sale_id"), "{}", form.body);

    // At rest in Redis: under a hash of the cookie's id, sealed, expiring.
    let keys = session_keys(mesh).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let id = on_a.cookie.as_deref().unwrap().split('=').nth(1).unwrap().to_owned();
    assert!(!keys[0].contains(&id), "the key is a hash of the id: {}", keys[0]);
    let client = redis::Client::open(ponte_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stored: String = redis::cmd("GET").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(!stored.contains(OPERATOR) && !stored.contains("ops") && !stored.contains(&csrf), "sealed: {stored}");
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query_async(&mut conn).await.unwrap();
    assert!(ttl > 0 && ttl <= 8 * 3600 * 1000, "the idle expiry: {ttl}");

    // Logged out on B: gone on A too.
    let out = on_b.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = on_a.get(&format!("/console/t/{TENANT}/vendas")).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/console/login"), "{}", after.location());
    assert!(session_keys(mesh).await.is_empty());

    // An expired session (its key gone from Redis) and an unknown cookie: sent to the login page.
    assert_eq!(on_a.login(OPERATOR).await.status, StatusCode::SEE_OTHER);
    assert_eq!(on_a.get("/console").await.status, StatusCode::OK);
    let keys = session_keys(mesh).await;
    let _: () = redis::cmd("PEXPIRE").arg(&keys[0]).arg(1).query_async(&mut conn).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async { session_keys(mesh).await.is_empty() }).await,
        "the key never expired"
    );
    let expired = on_a.get(&format!("/console/t/{TENANT}/conexoes")).await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER, "{}", expired.body);
    assert!(expired.location().starts_with("/console/login"), "{}", expired.location());
    on_b.cookie = Some(format!("{}={}", ponte_gateway::CONSOLE_COOKIE, "f".repeat(64)));
    let unknown = on_b.get("/console").await;
    assert_eq!(unknown.status, StatusCode::SEE_OTHER);
    assert!(unknown.location().starts_with("/console/login"), "{}", unknown.location());
}

/// The whole mesh the new tabs write through: catalog-sync and shipping-status too.
async fn full_world() -> SalesWorld {
    SalesWorld::start_with(
        &[
            &ponte_auth_token::SPEC,
            &ponte_mapping::SPEC,
            &ponte_sales_ingest::SPEC,
            &ponte_catalog_sync::SPEC,
            &ponte_shipping_status::SPEC,
            &ponte_gateway::SPEC,
        ],
        env()
            .with("PONTE_BITRIX24_CLIENT_ID", "local.console-test")
            .with("PONTE_BITRIX24_CLIENT_SECRET", "console-test-bitrix24-secret"),
    )
    .await
}

impl Browser {
    /// Posts `fields` to `path` twice without the CSRF token (none, then another); both refused.
    async fn refused_without_csrf(&self, path: &str, fields: &[(&str, &str)]) {
        let none = self.post(path, fields).await;
        assert_eq!(none.status, StatusCode::FORBIDDEN, "{path}: {}", none.body);
        assert!(none.body.contains("CSRF"), "{}", none.body);
        let mut wrong = fields.to_vec();
        wrong.push(("csrf", "0000"));
        assert_eq!(self.post(path, &wrong).await.status, StatusCode::FORBIDDEN, "{path}");
    }

    /// Posts `fields` with the CSRF token of `page`; the answer must be a redirect to `tab`
    /// with notice `ok`.
    async fn submit(&self, page: &Answer, path: &str, fields: &[(&str, &str)], ok: &str) {
        let a = self.post_with(page, path, fields).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}: {}", a.body);
        assert!(a.location().contains(&format!("ok={ok}")), "{}", a.location());
    }

    /// Posts `fields` with the CSRF token of `page`; the answer.
    async fn post_with(&self, page: &Answer, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = page.csrf();
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post(path, &all).await
    }

    /// Posts `fields` with the CSRF token of `page`; the answer must be `status` naming `field`.
    async fn bad(&self, page: &Answer, path: &str, fields: &[(&str, &str)], status: StatusCode, field: &str) {
        let a = self.post_with(page, path, fields).await;
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert!(a.body.contains(field), "{field} not named: {}", a.body);
        assert!(a.body.contains("role=\"alert\""), "{}", a.body);
    }
}

/// The value of the hidden field `name` in the first form that has one.
fn hidden_value(body: &str, name: &str) -> String {
    let at = body.find(&format!("name=\"{name}\" value=\"")).expect(name) + name.len() + 15;
    body[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_console_maps_product_fields_sets_the_sync_switches_stores_and_situacoes() {
    let w = full_world().await;
    let mut b = Browser::new(w.gateway.as_ref().unwrap().url(""));
    assert_eq!(b.login(OPERATOR).await.status, StatusCode::SEE_OTHER);
    let t = format!("/console/t/{TENANT}");

    // Mapeamento de produtos: the fixed set listed; a field mapped, then deleted.
    let page = b.get(&format!("{t}/produtos")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<code>nome</code>") && page.body.contains("fixo"), "{}", page.body);
    let field = [
        ("target", "BITRIX24"),
        ("bling_field", "estoque.minimo"),
        ("target_field", "PROPERTY_104"),
        ("direction", "ONE_WAY"),
    ];
    b.refused_without_csrf(&format!("{t}/produtos"), &field).await;
    let mut bad = field.to_vec();
    bad[0] = ("target", "ERP");
    b.bad(&page, &format!("{t}/produtos"), &bad, StatusCode::BAD_REQUEST, "target").await;
    assert!(!b.get(&format!("{t}/produtos")).await.body.contains("<code>PROPERTY_104</code>"), "nothing stored");
    b.submit(&page, &format!("{t}/produtos"), &field, "saved").await;
    let page = b.get(&format!("{t}/produtos?ok=saved")).await;
    assert!(page.body.contains("<code>PROPERTY_104</code>") && page.body.contains("Salvo."), "{}", page.body);
    let id = hidden_value(&page.body, "mapping_id");
    b.refused_without_csrf(&format!("{t}/produtos/excluir"), &[("mapping_id", &id)]).await;
    b.bad(&page, &format!("{t}/produtos/excluir"), &[], StatusCode::BAD_REQUEST, "mapping_id").await;
    b.submit(&page, &format!("{t}/produtos/excluir"), &[("mapping_id", &id)], "deleted").await;
    assert!(!b.get(&format!("{t}/produtos")).await.body.contains("<code>PROPERTY_104</code>"), "deleted");

    // The sync switches: what is checked is on, what is not is off.
    let switch = "name=\"catalog_to_cplug\" checked";
    assert!(!page.body.contains(switch), "{}", page.body);
    b.refused_without_csrf(&format!("{t}/produtos/sincronizacao"), &[("catalog_to_cplug", "on")]).await;
    assert!(!b.get(&format!("{t}/produtos")).await.body.contains(switch), "a refused form changed nothing");
    b.submit(&page, &format!("{t}/produtos/sincronizacao"), &[("catalog_to_cplug", "on")], "saved").await;
    assert!(b.get(&format!("{t}/produtos")).await.body.contains(switch));

    // Lojas e depósitos: a second store mapped (its ids checked against Bling), then deleted.
    let page = b.get(&format!("{t}/lojas")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<td>loja-centro</td>"), "{}", page.body);
    let loja = ponte_sandbox::bling::CANAL_PDV.to_string();
    let geral = crate::sales_support::DEPOSITO_GERAL.to_string();
    let store = [("cplug_store_id", "loja-shopping"), ("bling_loja_id", loja.as_str()), ("bling_deposito_id", &geral)];
    b.refused_without_csrf(&format!("{t}/lojas"), &store).await;
    let mut bad = store.to_vec();
    bad[2] = ("bling_deposito_id", "abc");
    b.bad(&page, &format!("{t}/lojas"), &bad, StatusCode::BAD_REQUEST, "bling_deposito_id").await;
    bad[2] = ("bling_deposito_id", "999");
    b.bad(&page, &format!("{t}/lojas"), &bad, StatusCode::BAD_REQUEST, "depósito").await;
    b.submit(&page, &format!("{t}/lojas"), &store, "saved").await;
    let page = b.get(&format!("{t}/lojas")).await;
    assert!(page.body.contains("<td>loja-shopping</td>"), "{}", page.body);
    b.refused_without_csrf(&format!("{t}/lojas/excluir"), &[("cplug_store_id", "loja-shopping")]).await;
    b.submit(&page, &format!("{t}/lojas/excluir"), &[("cplug_store_id", "loja-shopping")], "deleted").await;
    assert!(!b.get(&format!("{t}/lojas")).await.body.contains("loja-shopping"));

    // Situações: the shipping cycle set up in Bling, its maps listed; one deleted and mapped again.
    let page = b.get(&format!("{t}/situacoes")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let setup = [("release_situacao_name", "Em andamento"), ("transitions", "on")];
    b.refused_without_csrf(&format!("{t}/situacoes/envio"), &setup).await;
    b.bad(
        &page,
        &format!("{t}/situacoes/envio"),
        &[("transitions", "on")],
        StatusCode::BAD_REQUEST,
        "release_situacao_name",
    )
    .await;
    // A dry run lists what it would create and leaves Bling as it was.
    let shown = b.post_with(&page, &format!("{t}/situacoes/envio"), &[setup[0], setup[1], ("dry_run", "on")]).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(shown.body.contains("nada foi alterado") && shown.body.contains("seria criado"), "{}", shown.body);
    assert!(shown.body.contains("Em romaneio"), "{}", shown.body);
    assert!(!b.get(&format!("{t}/situacoes")).await.body.contains("<td>Em romaneio</td>"));
    // The real run creates each step; a second finds them all.
    let done = b.post_with(&page, &format!("{t}/situacoes/envio"), &setup).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("criado agora") && !done.body.contains("seria criado"), "{}", done.body);
    let again = b.post_with(&page, &format!("{t}/situacoes/envio"), &setup).await;
    assert!(again.body.contains("já existia") && !again.body.contains("criado agora"), "{}", again.body);
    let page = b.get(&format!("{t}/situacoes")).await;
    assert!(page.body.contains("<td>Em romaneio</td><td>IN_PACKING_LIST</td>"), "{}", page.body);
    let at = page.body.find("<td>Em romaneio</td>").unwrap();
    let romaneio = page.body[..at].rsplit("<tr><td>").next().unwrap().split('<').next().unwrap().to_owned();
    let del = [("bling_situacao_id", romaneio.as_str())];
    b.refused_without_csrf(&format!("{t}/situacoes/excluir"), &del).await;
    b.submit(&page, &format!("{t}/situacoes/excluir"), &del, "deleted").await;
    assert!(!b.get(&format!("{t}/situacoes")).await.body.contains("<td>Em romaneio</td>"));
    let map = [
        ("bling_situacao_id", romaneio.as_str()),
        ("bling_situacao_name", "Em romaneio"),
        ("shipping_status", "IN_PACKING_LIST"),
    ];
    b.refused_without_csrf(&format!("{t}/situacoes"), &map).await;
    let mut bad = map.to_vec();
    bad[2] = ("shipping_status", "LOST");
    b.bad(&page, &format!("{t}/situacoes"), &bad, StatusCode::BAD_REQUEST, "shipping_status").await;
    b.submit(&page, &format!("{t}/situacoes"), &map, "saved").await;
    assert!(b.get(&format!("{t}/situacoes")).await.body.contains("<td>Em romaneio</td><td>IN_PACKING_LIST</td>"));
}

#[tokio::test]
async fn the_console_moves_a_sale_connects_by_credentials_and_disconnects() {
    let w = full_world().await;
    w.map_store("loja-shopping", crate::sales_support::DEPOSITO_GERAL).await;
    let id = w.ring_up(camisetas("V-MOVE"));
    w.wait_for(&id, SaleState::Posted).await;
    let mut pix = camisetas("V-PIX");
    pix["payments"] = json!([{"method": "PIX", "amount": 119.80}]);
    let pix = w.ring_up(pix);
    w.wait_for(&pix, SaleState::Parked).await;
    let mut b = Browser::new(w.gateway.as_ref().unwrap().url(""));
    assert_eq!(b.login(OPERATOR).await.status, StatusCode::SEE_OTHER);
    let t = format!("/console/t/{TENANT}");

    // Sincronização de dados: every flow's line, and why the sales in Bling and at the till
    // differ (one posted, one held by an unmapped payment method), with the last success.
    let sync = b.get(&format!("{t}/sincronizacao")).await;
    assert_eq!(sync.status, StatusCode::OK, "{}", sync.body);
    for flow in ["Produtos Bling → Bitrix24", "Pedidos Bling → 360Envios", "Status 360Envios → Bling"] {
        assert!(sync.body.contains(&format!("{flow}</th>")), "{flow}: {}", sync.body);
    }
    let at = sync.body.find("Vendas CPLUG → Bling</th>").unwrap_or_else(|| panic!("no sales flow: {}", sync.body));
    let row = sync.body[at..].split("</tr>").next().unwrap();
    assert!(row.contains("lançadas: 1") && row.contains("paradas: pagamento sem DE-PARA: 1"), "{row}");
    assert!(!row.contains("</th><td>—</td>"), "no last success: {row}");

    // Vendas: a posted sale moved to another store.
    let page = b.get(&format!("{t}/vendas")).await;
    assert!(page.body.contains("name=\"to_store_id\"") && page.body.contains("loja-shopping"), "{}", page.body);
    let mv = [("sale_id", id.as_str()), ("to_store_id", "loja-shopping")];
    b.refused_without_csrf(&format!("{t}/vendas/mover"), &mv).await;
    b.bad(
        &page,
        &format!("{t}/vendas/mover"),
        &[("sale_id", &id), ("to_store_id", "loja-sem-mapa")],
        StatusCode::CONFLICT,
        "loja-sem-mapa",
    )
    .await;
    b.bad(&page, &format!("{t}/vendas/mover"), &[("sale_id", &id)], StatusCode::BAD_REQUEST, "to_store_id").await;
    b.submit(&page, &format!("{t}/vendas/mover"), &mv, "moved").await;
    let moved = crate::sales_support::poll(Duration::from_secs(20), || async {
        w.sale(&id).await.filter(|r| r.cplug_store_id == "loja-shopping" && r.state() == SaleState::Posted)
    })
    .await
    .expect("the move finishes");
    assert_eq!(moved.bling_deposito_id, crate::sales_support::DEPOSITO_GERAL);

    // Conexões: 360Envios connected by credentials, never shown back; then disconnected.
    let page = b.get(&format!("{t}/conexoes")).await;
    assert!(page.body.contains("type=\"password\""), "{}", page.body);
    let token = "console-360-api-token-0123456789";
    let secret = "console-360-webhook-secret-0123456789";
    let creds = [("api_token", token), ("webhook_secret", secret)];
    b.refused_without_csrf(&format!("{t}/conexoes/envios360"), &creds).await;
    b.bad(
        &page,
        &format!("{t}/conexoes/envios360"),
        &[("api_token", token)],
        StatusCode::BAD_REQUEST,
        "webhook_secret",
    )
    .await;
    b.submit(&page, &format!("{t}/conexoes/envios360"), &creds, "connected").await;
    let page = b.get(&format!("{t}/conexoes?ok=connected")).await;
    assert!(page.body.contains("<td>ENVIOS360</td><td><span class=\"state-connected\">"), "{}", page.body);
    assert!(!page.body.contains(token) && !page.body.contains(secret), "a secret shown back");
    let off = [("provider", "ENVIOS360")];
    b.refused_without_csrf(&format!("{t}/conexoes/desconectar"), &off).await;
    b.bad(&page, &format!("{t}/conexoes/desconectar"), &[("provider", "ORKUT")], StatusCode::BAD_REQUEST, "provider")
        .await;
    b.submit(&page, &format!("{t}/conexoes/desconectar"), &off, "disconnected").await;
    let page = b.get(&format!("{t}/conexoes")).await;
    assert!(page.body.contains("<td>ENVIOS360</td><td><span class=\"state-revoked\">"), "{}", page.body);

    // CPLUG by its credentials (the sandbox's), the connection checked by the services.
    let pos = w.pos.config().clone();
    let cplug = [
        ("client_id", pos.client_id.as_str()),
        ("client_secret", &pos.client_secret),
        ("username", &pos.username),
        ("password", &pos.password),
        ("webhook_secret", &pos.webhook_secret),
    ];
    b.refused_without_csrf(&format!("{t}/conexoes/cplug"), &cplug).await;
    b.bad(&page, &format!("{t}/conexoes/cplug"), &cplug[..3], StatusCode::BAD_REQUEST, "password").await;
    b.submit(&page, &format!("{t}/conexoes/cplug"), &cplug, "connected").await;
    let page = b.get(&format!("{t}/conexoes")).await;
    assert!(page.body.contains("<td>CPLUG</td><td><span class=\"state-connected\">"), "{}", page.body);
    assert!(!page.body.contains(&pos.password) && !page.body.contains(&pos.client_secret));

    // Bitrix24: its OAuth flow started, the browser sent to the portal's consent page.
    b.refused_without_csrf(&format!("{t}/conexoes/bitrix24"), &[("bitrix24_domain", "loja.bitrix24.com.br")]).await;
    b.bad(&page, &format!("{t}/conexoes/bitrix24"), &[], StatusCode::BAD_REQUEST, "bitrix24_domain").await;
    let csrf = page.csrf();
    let go = b
        .post(&format!("{t}/conexoes/bitrix24"), &[("bitrix24_domain", "loja.bitrix24.com.br"), ("csrf", &csrf)])
        .await;
    assert_eq!(go.status, StatusCode::SEE_OTHER, "{}", go.body);
    assert!(go.location().contains("state="), "{}", go.location());
}

#[tokio::test]
async fn the_console_switches_a_tenants_licence_and_only_an_operator_may() {
    let w = world().await;
    let mut b = Browser::new(w.gateway.as_ref().unwrap().url(""));
    assert_eq!(b.login(OPERATOR).await.status, StatusCode::SEE_OTHER);
    let t = format!("/console/t/{TENANT}");
    let page = b.get(&format!("{t}/conexoes")).await;
    assert!(page.body.contains("<span class=\"state-connected\">ativa</span>"), "{}", page.body);
    assert_eq!(hidden_value(&page.body[page.body.find("id=\"license\"").unwrap()..], "active"), "false");

    let off = [("active", "false"), ("reason", "fatura em aberto")];
    b.refused_without_csrf(&format!("{t}/conexoes/licenca"), &off).await;
    b.bad(&page, &format!("{t}/conexoes/licenca"), &[("active", "talvez")], StatusCode::BAD_REQUEST, "active").await;
    let long = "x".repeat(600);
    b.bad(
        &page,
        &format!("{t}/conexoes/licenca"),
        &[("active", "false"), ("reason", &long)],
        StatusCode::BAD_REQUEST,
        "reason",
    )
    .await;
    b.submit(&page, &format!("{t}/conexoes/licenca"), &off, "suspended").await;
    let page = b.get(&format!("{t}/conexoes?ok=suspended")).await;
    assert!(page.body.contains("Licença suspensa"), "{}", page.body);
    assert!(
        page.body.contains("suspensa: os eventos são guardados e retidos</span> — fatura em aberto"),
        "{}",
        page.body
    );
    assert_eq!(hidden_value(&page.body[page.body.find("id=\"license\"").unwrap()..], "active"), "true");

    // The tenant's own login sees the licence but may not switch it.
    let mut own = Browser::new(w.gateway.as_ref().unwrap().url(""));
    assert_eq!(own.login(TENANT_TOKEN).await.status, StatusCode::SEE_OTHER);
    let mine = own.get(&format!("{t}/conexoes")).await;
    assert!(mine.body.contains("suspensa"), "{}", mine.body);
    let csrf = mine.csrf();
    let refused = own.post(&format!("{t}/conexoes/licenca"), &[("active", "true"), ("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(b.get(&format!("{t}/conexoes")).await.body.contains("suspensa"));

    b.submit(&page, &format!("{t}/conexoes/licenca"), &[("active", "true")], "licensed").await;
    let page = b.get(&format!("{t}/conexoes")).await;
    assert!(page.body.contains("<span class=\"state-connected\">ativa</span>"), "{}", page.body);
}
