//! Backfills and the sync status end to end: the Bling sandbox's catalog copied into a Bitrix24
//! sandbox portal through catalog-sync, over real gRPC, PostgreSQL and Redis, with the rate
//! limits of both sides (ponte's and the Bling sandbox's) scaled by the same time factor.

use std::time::Duration;

use ponte_core::{config::Env, service::ServiceSpec};
use ponte_proto::v1::{
    Backfill, BackfillScope, BackfillState, CancelBackfillRequest, CatalogSyncServiceHandleEventRequest, Flow,
    GetBackfillRequest, GetSyncStatusRequest, InboundEvent, Provider, StartBackfillRequest, SyncSettings, SyncTarget,
    UpdateSyncSettingsRequest, WatchBackfillRequest, catalog_sync_service_client::CatalogSyncServiceClient,
};
use ponte_sandbox::{
    bitrix24::{self, Bitrix24},
    bling,
    cplug::{self, Cplug},
};
use ponte_tests::Channel;
use ponte_tests::{
    Mesh,
    webhooks::{BlingWorld, TENANT},
};
use serde_json::{Map, Value, json};
use tonic::Code;

const SPECS: &[&ServiceSpec] = &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC];

/// Sandboxes and ponte run this many times faster than the real limits.
const SCALE: f64 = 10.0;

struct World {
    bling: bling::Handle,
    mesh: Mesh,
    portal: bitrix24::Handle,
    env: Env,
}

/// The Bling sandbox at `bling_scale` times its real limits, a portal connected through its
/// incoming webhook, and the mesh with ponte's quotas at `ponte_scale`.
async fn world(bling_scale: f64, ponte_scale: f64) -> World {
    world_with(bling_scale, ponte_scale, Env::default()).await
}

/// [`world`], with `env` added to ponte's configuration.
async fn world_with(bling_scale: f64, ponte_scale: f64, env: Env) -> World {
    let config = bling::Config { time_scale: bling_scale, ..bling::Config::default() };
    let w = BlingWorld::start_with_env(SPECS, config, &ponte_tests::redis_url(), env).await;
    let portal = Bitrix24::new(bitrix24::Config::for_tests()).spawn(None).await.unwrap();
    w.connect_portal(&portal).await;
    // The same deployment again with ponte's quotas scaled like the sandbox's.
    let env = w.mesh.env.clone().with("PONTE_RATE_LIMIT_SCALE", &ponte_scale.to_string());
    let BlingWorld { bling, mesh } = w;
    let database_url = mesh.database_url.clone();
    mesh.shutdown().await;
    let mesh = Mesh::start_on(SPECS, &ponte_tests::redis_url(), env.clone(), database_url).await;
    World { bling, mesh, portal, env }
}

impl World {
    async fn client(&self) -> CatalogSyncServiceClient<Channel> {
        CatalogSyncServiceClient::new(self.mesh.channel("catalog-sync").await)
    }

    async fn start(&self) -> Backfill {
        self.start_of(SyncTarget::Bitrix24, BackfillScope::Products).await
    }

    async fn start_of(&self, target: SyncTarget, scope: BackfillScope) -> Backfill {
        self.client()
            .await
            .start_backfill(StartBackfillRequest {
                tenant_id: TENANT.into(),
                target: target as i32,
                scope: scope as i32,
            })
            .await
            .expect("start backfill")
            .into_inner()
            .backfill
            .unwrap()
    }

    /// Saves [`TENANT`]'s sync switches.
    async fn settings(&self, settings: SyncSettings) {
        let settings = Some(SyncSettings { tenant_id: TENANT.into(), ..settings });
        self.client().await.update_sync_settings(UpdateSyncSettingsRequest { settings }).await.expect("settings");
    }

    async fn get(&self, id: &str) -> Backfill {
        let req = GetBackfillRequest { backfill_id: id.into() };
        self.client().await.get_backfill(req).await.unwrap().into_inner().backfill.unwrap()
    }

    /// Every message of WatchBackfill until the stream ends.
    async fn watch(&self, id: &str) -> Vec<Backfill> {
        let mut stream = self
            .client()
            .await
            .watch_backfill(WatchBackfillRequest { backfill_id: id.into() })
            .await
            .unwrap()
            .into_inner();
        let mut seen = Vec::new();
        while let Some(msg) =
            tokio::time::timeout(Duration::from_secs(120), stream.message()).await.expect("progress").unwrap()
        {
            seen.push(msg.backfill.unwrap());
        }
        seen
    }

    fn bling_id_key(&self) -> String {
        let props = self.portal.portal.properties();
        props.into_iter().find(|p| p.code == "BLING_ID").map(|p| format!("PROPERTY_{}", p.id)).expect("property")
    }

    /// The portal's products by the Bling id in their "Bling ID" property.
    fn portal_by_bling_id(&self) -> std::collections::HashMap<String, Vec<Map<String, Value>>> {
        let key = self.bling_id_key();
        let mut by = std::collections::HashMap::<String, Vec<_>>::new();
        for p in self.portal.portal.products() {
            let id = ponte_connectors::bitrix24::client::field_values(p.get(&key)).into_iter().next();
            by.entry(id.unwrap_or_default()).or_default().push(p);
        }
        by
    }
}

/// What the seeded catalog holds.
struct Catalog {
    /// Every id Bling lists as not deleted.
    live: Vec<i64>,
    /// The product the portal refuses (no name).
    nameless: i64,
    inactive: u64,
}

/// 700 products (600 simple, 100 with variations) and 300 variations, every fifth simple
/// product inactive, one without a name, and one deleted product that is not copied.
fn seed(b: &bling::Bling) -> Catalog {
    let mut live = Vec::new();
    let mut inactive = 0;
    let mut nameless = 0;
    for i in 0..600 {
        let situacao = if i % 5 == 0 { "I" } else { "A" };
        inactive += u64::from(situacao == "I");
        let nome = if i == 321 { String::new() } else { format!("Produto {i}") };
        let id = b.seed_product(json!({"nome": nome, "codigo": format!("SKU-{i}"), "preco": 10.5 + i as f64,
            "situacao": situacao}));
        if i == 321 {
            nameless = id;
        }
        live.push(id);
    }
    for g in 0..100 {
        let parent = b.seed_product(json!({"nome": format!("Camiseta {g}"), "codigo": format!("CAM-{g}"),
            "preco": 59.9, "formato": "V"}));
        live.push(parent);
        for cor in ["Azul", "Verde", "Preta"] {
            live.push(b.seed_product(json!({"nome": format!("Camiseta {g} {cor}"),
                "codigo": format!("CAM-{g}-{cor}"), "preco": 59.9,
                "variacao": {"nome": format!("Cor:{cor}"), "produtoPai": {"id": parent}}})));
        }
    }
    b.seed_product(json!({"nome": "Excluído", "codigo": "DEL-1", "preco": 1, "situacao": "E"}));
    Catalog { live, nameless, inactive }
}

fn counts(b: &Backfill) -> [u64; 8] {
    let c = b.counts.unwrap_or_default();
    [c.products, c.variations, c.active, c.inactive, c.created, c.updated, c.unchanged, c.failed]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_backfill_resumes_and_ends_with_exact_counts() {
    let world = world(SCALE, SCALE).await;
    let catalog = seed(&world.bling.bling);
    let started = world.start().await;
    // Its runner may have taken it already.
    assert!([BackfillState::Pending as i32, BackfillState::Running as i32].contains(&started.state));
    let id = started.backfill_id.clone();

    // Halfway through (11 pages of 100), the whole deployment goes away.
    let halfway =
        ponte_tests::eventually(Duration::from_secs(60), || async { world.get(&id).await.pages_done >= 5 }).await;
    assert!(halfway, "the backfill never got halfway");
    let World { bling, mesh, portal, env } = world;
    let database_url = mesh.database_url.clone();
    drop(mesh);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let portal_before = portal.portal.products().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(portal.portal.products().len(), portal_before, "the stopped runner kept writing");

    // A new process on the same database picks it up from its checkpoint.
    let mesh = Mesh::start_on(SPECS, &ponte_tests::redis_url(), env.clone(), database_url).await;
    let world = World { bling, mesh, portal, env };
    let interrupted = world.get(&id).await;
    assert!(interrupted.pages_done >= 5 && interrupted.pages_done < 11, "{interrupted:?}");
    assert_eq!(interrupted.state, BackfillState::Running as i32);

    let progress = world.watch(&id).await;
    let done = progress.last().expect("progress").clone();
    assert_eq!(done.state, BackfillState::Succeeded as i32, "{done:?}");
    assert!(progress.windows(2).all(|w| w[0].pages_done <= w[1].pages_done), "progress went backwards");
    assert!(progress.len() >= 2, "WatchBackfill streamed only {} messages", progress.len());
    assert_eq!(done.pages_done, 11);

    let live = catalog.live.len() as u64;
    assert_eq!(live, 1000);
    // products, variations, active, inactive, created, updated, unchanged, failed
    assert_eq!(counts(&done), [700, 300, live - catalog.inactive, catalog.inactive, 999, 0, 0, 1]);
    assert_eq!(done.failures.len(), 1);
    assert_eq!(done.failures[0].source_id, catalog.nameless.to_string());
    assert!(done.failures[0].reason.contains("NAME"), "{}", done.failures[0].reason);
    assert!(done.end_time.is_some());

    // Exactly one portal product per Bling product, none for the deleted or nameless ones.
    let by = world.portal_by_bling_id();
    assert_eq!(world.portal.portal.products().len(), 999);
    for id in &catalog.live {
        let n = by.get(&id.to_string()).map_or(0, Vec::len);
        assert_eq!(n, usize::from(*id != catalog.nameless), "Bling product {id} is in the portal {n} times");
    }

    // Run again: nothing to write.
    let again = world.start().await;
    let last = world.watch(&again.backfill_id).await.pop().unwrap();
    assert_eq!(counts(&last), [700, 300, live - catalog.inactive, catalog.inactive, 0, 0, 999, 1]);
    assert_eq!(world.portal.portal.products().len(), 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_status_explains_live_events_and_backfills() {
    let world = world(SCALE, SCALE).await;
    let b = &world.bling.bling;
    let simple = b.seed_product(json!({"nome": "Caneca", "codigo": "CAN-1", "preco": 25}));
    let nameless = b.seed_product(json!({"nome": "", "codigo": "X-1", "preco": 2}));
    let parent = b.seed_product(json!({"nome": "Camiseta", "codigo": "CAM", "preco": 59.9, "formato": "V"}));
    b.seed_product(json!({"nome": "Camiseta P", "codigo": "CAM-P", "preco": 59.9,
        "variacao": {"nome": "Tamanho:P", "produtoPai": {"id": parent}}}));
    b.seed_product(json!({"nome": "Antigo", "codigo": "OLD", "preco": 9, "situacao": "I"}));

    // Live events: one applied, one the portal refuses.
    let mut cs = world.client().await;
    let event = |n: i64, id: i64| InboundEvent {
        event_id: format!("e-{n}"),
        tenant_id: TENANT.into(),
        source: Provider::Bling as i32,
        source_event_id: format!("b-{n}"),
        event_type: "product.updated".into(),
        entity_key: format!("product:{id}"),
        occurred_at: Some(ponte_core::time::to_timestamp(1_700_000_000_000 + n)),
        ..Default::default()
    };
    cs.handle_event(CatalogSyncServiceHandleEventRequest { event: Some(event(1, simple)) }).await.unwrap();
    let refused = cs.handle_event(CatalogSyncServiceHandleEventRequest { event: Some(event(2, nameless)) }).await;
    assert!(refused.is_err());

    let status = cs.get_sync_status(GetSyncStatusRequest { tenant_id: TENANT.into() }).await.unwrap().into_inner();
    let products = status.flows.iter().find(|f| f.flow == Flow::BlingToBitrix24Products as i32).unwrap();
    assert!(products.last_success_time.is_some());
    assert!(products.last_error.contains("NAME"), "{}", products.last_error);
    assert_eq!(products.counts.unwrap().created, 1);
    // The whole tab: catalog-sync's four flows, then the sales and shipping flows, whose
    // services this mesh does not run: their lines say so.
    assert_eq!(status.flows.len(), 7);
    let sales = status.flows.iter().find(|f| f.flow == Flow::CplugSalesToBling as i32).unwrap();
    assert!(sales.last_error.starts_with("sales-ingest could not tell: Unavailable"), "{}", sales.last_error);

    let started = world.start().await;
    let done = world.watch(&started.backfill_id).await.pop().unwrap();
    assert_eq!(done.state, BackfillState::Succeeded as i32);
    // Caneca was there already; the rest is new; the nameless one is refused again.
    assert_eq!(counts(&done), [4, 1, 4, 1, 3, 0, 1, 1]);

    let status = cs.get_sync_status(GetSyncStatusRequest { tenant_id: TENANT.into() }).await.unwrap().into_inner();
    let products = status.flows.iter().find(|f| f.flow == Flow::BlingToBitrix24Products as i32).unwrap();
    let c = products.counts.unwrap();
    assert_eq!((c.products, c.variations, c.active, c.inactive), (4, 1, 4, 1));
    assert_eq!((c.created, c.unchanged, c.failed), (3, 1, 1));
    let ms = |t: Option<prost_types::Timestamp>| t.as_ref().map(ponte_core::time::from_timestamp);
    assert!(ms(products.last_success_time) >= ms(done.end_time));
    let cplug = status.flows.iter().find(|f| f.flow == Flow::BlingToCplugProducts as i32).unwrap();
    assert!(cplug.last_success_time.is_none() && cplug.last_error.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_are_refused_naming_the_field_and_a_backfill_can_be_cancelled() {
    // Real limits: the backfill is slow enough to be cancelled while it runs.
    let world = world(1.0, 1.0).await;
    for i in 0..1000 {
        world.bling.bling.seed_product(json!({"nome": format!("P{i}"), "codigo": format!("P{i}"), "preco": 1}));
    }
    let mut cs = world.client().await;
    let start = |tenant: &str, target: SyncTarget, scope: BackfillScope| StartBackfillRequest {
        tenant_id: tenant.into(),
        target: target as i32,
        scope: scope as i32,
    };
    let err = cs.start_backfill(start("nobody", SyncTarget::Bitrix24, BackfillScope::Products)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = cs.start_backfill(start("", SyncTarget::Bitrix24, BackfillScope::Products)).await.unwrap_err();
    assert!(err.code() == Code::InvalidArgument && err.message().starts_with("tenant_id"), "{err:?}");
    let err = cs.start_backfill(start(TENANT, SyncTarget::Unspecified, BackfillScope::Products)).await.unwrap_err();
    assert!(err.code() == Code::InvalidArgument && err.message().starts_with("target"), "{err:?}");
    let err = cs.start_backfill(start(TENANT, SyncTarget::Bitrix24, BackfillScope::Unspecified)).await.unwrap_err();
    assert!(err.code() == Code::InvalidArgument && err.message().starts_with("scope"), "{err:?}");
    // CPLUG is not connected; orders never go to CPLUG.
    let err = cs.start_backfill(start(TENANT, SyncTarget::Cplug, BackfillScope::Products)).await.unwrap_err();
    assert!(err.code() == Code::FailedPrecondition && err.message().contains("cplug"), "{err:?}");
    let err = cs.start_backfill(start(TENANT, SyncTarget::Cplug, BackfillScope::Orders)).await.unwrap_err();
    assert!(err.code() == Code::InvalidArgument && err.message().starts_with("scope"), "{err:?}");
    let err = cs.get_backfill(GetBackfillRequest { backfill_id: String::new() }).await.unwrap_err();
    assert!(err.code() == Code::InvalidArgument && err.message().starts_with("backfill_id"), "{err:?}");
    let err = cs.get_backfill(GetBackfillRequest { backfill_id: "missing".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = cs.get_sync_status(GetSyncStatusRequest { tenant_id: "nobody".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let running = world.start().await;
    let err = cs.start_backfill(start(TENANT, SyncTarget::Bitrix24, BackfillScope::Products)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().contains(&running.backfill_id));
    // An orders backfill into the same portal may start beside it (there are no orders).
    let orders = world.start_of(SyncTarget::Bitrix24, BackfillScope::Orders).await;

    let cancelled = cs
        .cancel_backfill(CancelBackfillRequest { backfill_id: running.backfill_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .backfill
        .unwrap();
    let orders = world.watch(&orders.backfill_id).await.pop().unwrap();
    assert_eq!((orders.state, orders.pages_done), (BackfillState::Succeeded as i32, 0), "{orders:?}");
    assert_eq!(cancelled.state, BackfillState::Cancelled as i32);
    let last = world.watch(&running.backfill_id).await.pop().unwrap();
    assert_eq!(last.state, BackfillState::Cancelled as i32);
    assert!(last.pages_done < 10, "{last:?}");
    // A new one may start once the old one has ended; a finished one cannot be cancelled.
    let next = world.start().await;
    let err = cs.cancel_backfill(CancelBackfillRequest { backfill_id: "missing".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    cs.cancel_backfill(CancelBackfillRequest { backfill_id: next.backfill_id }).await.unwrap();
}

fn text(p: &Map<String, Value>, key: &str) -> String {
    ponte_connectors::bitrix24::client::field_values(p.get(key)).into_iter().next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cplug_backfill_sends_the_catalog_in_bulks_of_500_and_counts_what_changed() {
    const FAST: f64 = 40.0;
    let pos = Cplug::new(cplug::Config::for_tests()).spawn(None).await.unwrap();
    let world = world_with(FAST, FAST, Env::default().with("PONTE_CPLUG_API_URL", &pos.base_url)).await;
    BlingWorld::connect_cplug(&world.mesh, &pos).await;
    world.settings(SyncSettings { catalog_to_cplug: true, cplug_grid_enabled: true, ..Default::default() }).await;
    // 520 simple products (every fifth inactive, one sold by the kilo), 20 with variations and
    // their 60 variations: 600 items, 7 Bling pages, two bulk calls.
    let b = &world.bling.bling;
    let mut simple = Vec::new();
    for i in 0..520 {
        simple.push(b.seed_product(json!({"nome": format!("Produto {i}"), "codigo": format!("SKU-{i}"),
            "preco": 10.5 + i as f64, "unidade": if i == 7 { "KG" } else { "UN" },
            "situacao": if i % 5 == 0 { "I" } else { "A" }})));
    }
    let mut variations = Vec::new();
    for g in 0..20 {
        let parent = b.seed_product(json!({"nome": format!("Camiseta {g}"), "codigo": format!("CAM-{g}"),
            "preco": 59.9, "unidade": "UN", "formato": "V"}));
        for cor in ["Azul", "Verde", "Preta"] {
            variations.push((
                parent,
                b.seed_product(json!({"nome": format!("Camiseta {g} {cor}"),
                "codigo": format!("CAM-{g}-{cor}"), "preco": 59.9,
                "variacao": {"nome": format!("Cor:{cor};Tamanho:M"), "produtoPai": {"id": parent}}})),
            ));
        }
    }
    b.seed_product(json!({"nome": "Excluído", "codigo": "DEL-1", "preco": 1, "situacao": "E"}));

    let calls_before = pos.cplug.stats().api_requests;
    let started = world.start_of(SyncTarget::Cplug, BackfillScope::Products).await;
    let done = world.watch(&started.backfill_id).await.pop().unwrap();
    assert_eq!(done.state, BackfillState::Succeeded as i32, "{done:?}");
    assert_eq!(done.pages_done, 7);
    // products, variations, active, inactive, created, updated, unchanged, failed
    assert_eq!(counts(&done), [540, 60, 496, 104, 600, 0, 0, 0], "{done:?}");
    // One look at CPLUG's (empty) catalog, then one bulk call per 500 items.
    let calls = pos.cplug.stats().api_requests - calls_before;
    assert_eq!(calls, 3, "CPLUG calls: {calls}");

    let held = pos.cplug.products();
    assert_eq!(held.len(), 600);
    assert!(!held.contains_key("DEL-1"));
    let kilo = &held[&simple[7].to_string()];
    assert_eq!(kilo["unit"], "KG", "{kilo}");
    let (parent, variation) = variations[4];
    let v = &held[&variation.to_string()];
    assert_eq!(v["parent_external_id"], parent.to_string(), "{v}");
    assert_eq!(v["variation"]["attributes"]["cor"], "Verde", "{v}");
    assert_eq!(held[&simple[0].to_string()]["active"], false);

    // One price changes in Bling; a second backfill writes only that one.
    assert!(b.edit_product_in_ui(simple[3], json!({"preco": 99.9})));
    let calls_before = pos.cplug.stats().api_requests;
    let again = world.start_of(SyncTarget::Cplug, BackfillScope::Products).await;
    let last = world.watch(&again.backfill_id).await.pop().unwrap();
    assert_eq!(counts(&last), [540, 60, 496, 104, 0, 1, 599, 0], "{last:?}");
    assert_eq!(pos.cplug.products()[&simple[3].to_string()]["price"], 99.9);
    // The catalog read again (6 pages of 100), and one bulk call for the one change.
    assert_eq!(pos.cplug.stats().api_requests - calls_before, 7);

    let status = world.client().await.get_sync_status(GetSyncStatusRequest { tenant_id: TENANT.into() }).await;
    let status = status.unwrap().into_inner();
    let flow = status.flows.iter().find(|f| f.flow == Flow::BlingToCplugProducts as i32).unwrap();
    assert!(flow.last_success_time.is_some(), "{flow:?}");
    let c = flow.counts.unwrap();
    assert_eq!((c.products, c.variations, c.updated, c.unchanged), (540, 60, 1, 599));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_orders_backfill_turns_every_bling_order_into_one_deal() {
    let world = world(SCALE, SCALE).await;
    let produto = world.bling.bling.seed_product(json!({"nome": "Caneca", "codigo": "CAN-1", "preco": 25}));
    let mut orders = Vec::new();
    for n in 0..105 {
        let order = BlingWorld::bling_api(
            &world.mesh,
            reqwest::Method::POST,
            "/pedidos/vendas",
            Some(json!({"contato": {"id": bling::CONSUMIDOR_FINAL}, "data": "2026-11-30", "dataSaida": "2026-11-30", "dataPrevista": "2026-11-30",
                "itens": [{"produto": {"id": produto}, "quantidade": 1 + n % 3, "valor": 25, "descricao": "Caneca"}]})),
        )
        .await;
        orders.push(order["data"]["id"].as_i64().unwrap());
    }
    world
        .settings(SyncSettings {
            orders_to_bitrix24: true,
            bling_create_creates_in_bitrix24: true,
            bling_update_updates_bitrix24: true,
            ..Default::default()
        })
        .await;
    // One order is already a deal (the live sync made it): the backfill finds it. The orders
    // were just created through the same Bling account, so its 3 requests/s may be spent:
    // UNAVAILABLE is retried after its retry-after, as the gateway's dispatcher does.
    let order = orders[17];
    let event = InboundEvent {
        event_id: "e-1".into(),
        tenant_id: TENANT.into(),
        source: Provider::Bling as i32,
        source_event_id: "b-1".into(),
        event_type: "order.created".into(),
        entity_key: format!("order:{order}"),
        occurred_at: Some(ponte_core::time::to_timestamp(1_700_000_000_000)),
        ..Default::default()
    };
    let mut cs = world.client().await;
    for attempt in 1.. {
        match cs.handle_event(CatalogSyncServiceHandleEventRequest { event: Some(event.clone()) }).await {
            Ok(_) => break,
            Err(s) if s.code() == Code::Unavailable && attempt < 10 => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(s) => panic!("order.created: {s:?}"),
        }
    }
    assert_eq!(world.portal.portal.deals().len(), 1);

    let started = world.start_of(SyncTarget::Bitrix24, BackfillScope::Orders).await;
    let done = world.watch(&started.backfill_id).await.pop().unwrap();
    assert_eq!(done.state, BackfillState::Succeeded as i32, "{done:?}");
    assert_eq!(done.pages_done, 2);
    assert_eq!(counts(&done), [0, 0, 0, 0, 104, 0, 1, 0], "{done:?}");
    let deals = world.portal.portal.deals();
    assert_eq!(deals.len(), 105);
    let mut origins: Vec<String> = deals.iter().map(|d| text(d, "ORIGIN_ID")).collect();
    origins.sort();
    origins.dedup();
    assert_eq!(origins.len(), 105, "one deal per order");
    let d = deals.iter().find(|d| text(d, "ORIGIN_ID") == orders[2].to_string()).unwrap();
    assert_eq!(text(d, "OPPORTUNITY").parse::<f64>().unwrap(), 75.0, "{d:?}");
    assert_eq!(text(d, "STAGE_ID"), "NEW");

    // Again: nothing to write.
    let again = world.start_of(SyncTarget::Bitrix24, BackfillScope::Orders).await;
    let last = world.watch(&again.backfill_id).await.pop().unwrap();
    assert_eq!(counts(&last), [0, 0, 0, 0, 0, 0, 105, 0], "{last:?}");
    assert_eq!(world.portal.portal.deals().len(), 105);
}
