//! catalog-sync end to end: the Bling sandbox sends its webhooks to a real gateway, which
//! stores and delivers them over gRPC to catalog-sync, which re-reads the product from Bling,
//! translates it through the mapping service and writes the Bitrix24 sandbox. PostgreSQL,
//! Redis, gRPC over TCP and HTTP are all real; only Bling and Bitrix24 are fakes.

use std::time::Duration;

use ponte_core::db::Database;
use ponte_proto::v1::{
    DealStageMap, EntityKind, GetSyncSettingsRequest, Provider, ResolveRequest, SyncSettings,
    UpdateSyncSettingsRequest, catalog_sync_service_client::CatalogSyncServiceClient,
    mapping_service_client::MappingServiceClient,
};
use ponte_sandbox::{
    bitrix24::{self, Bitrix24},
    bling,
    common::FaultSettings,
};
use ponte_tests::{
    GatewayHttp, eventually,
    webhooks::{BlingWorld, TENANT, bling_body, date},
};
use serde_json::{Map, Value, json};
use sqlx::Row;
use tokio::net::TcpListener;

const SPECS: &[&ponte_core::service::ServiceSpec] =
    &[&ponte_auth_token::SPEC, &ponte_mapping::SPEC, &ponte_catalog_sync::SPEC, &ponte_gateway::SPEC];

/// The Bling sandbox sending webhooks to a gateway, the mesh, and a Bitrix24 portal connected
/// to tenant [`TENANT`] through its incoming webhook.
struct World {
    w: BlingWorld,
    portal: bitrix24::Handle,
    gateway: GatewayHttp,
}

async fn world() -> World {
    world_with(false).await
}

/// With `crm_events`, the portal's outgoing webhook sends its product events to the gateway
/// (ponte's own writes included, as on a real portal).
async fn world_with(crm_events: bool) -> World {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_addr = listener.local_addr().unwrap();
    let config = bling::Config {
        webhook_url: Some(format!("http://{gateway_addr}/webhooks/bling")),
        webhook_backoff: Duration::from_millis(200),
        ..bling::Config::default()
    };
    let w = BlingWorld::start_with(SPECS, config, &ponte_tests::redis_url()).await;
    let portal_config = bitrix24::Config {
        event_url: crm_events.then(|| format!("http://{gateway_addr}/webhooks/bitrix24/{TENANT}")),
        outgoing_events: ["ONCRMPRODUCTADD", "ONCRMPRODUCTUPDATE", "ONCRMPRODUCTDELETE"].map(String::from).to_vec(),
        ..bitrix24::Config::for_tests()
    };
    let portal = Bitrix24::new(portal_config).spawn(None).await.unwrap();
    w.connect_portal(&portal).await;
    let env = w
        .mesh
        .env
        .clone()
        .with("PONTE_DISPATCH_BACKOFF_MS", "50")
        .with("PONTE_DISPATCH_MAX_BACKOFF_SECONDS", "2")
        .with("PONTE_DISPATCH_MAX_ATTEMPTS", "40");
    let gateway = w.mesh.start_gateway_http_with(env, w.mesh.peers.clone(), Some(listener)).await;
    World { w, portal, gateway }
}

impl World {
    /// Creates a product through Bling's API, as the merchant's Bling does; returns its id.
    async fn create_in_bling(&self, product: Value) -> i64 {
        let body = self.bling_api(reqwest::Method::POST, "/produtos", Some(product)).await;
        body["data"]["id"].as_i64().expect("created id")
    }

    /// One call to Bling's API with the tenant's token; the JSON answer (null when empty).
    async fn bling_api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        BlingWorld::bling_api(&self.w.mesh, method, path, body).await
    }

    /// The inbox state of each Bling webhook whose `eventId` starts with `prefix`.
    async fn inbox_states(&self, prefix: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT state FROM inbox_events WHERE source_event_id LIKE $1 ORDER BY source_event_id")
            .bind(format!("{prefix}%"))
            .fetch_all(self.gateway.db.pool())
            .await
            .unwrap()
    }

    async fn settings(&self, s: SyncSettings) {
        let mut cs = CatalogSyncServiceClient::new(self.w.mesh.channel("catalog-sync").await);
        cs.update_sync_settings(UpdateSyncSettingsRequest {
            settings: Some(SyncSettings { tenant_id: TENANT.into(), ..s }),
        })
        .await
        .unwrap();
    }

    /// The portal's products carrying Bling id `bling_id` in their "Bling ID" property.
    fn in_bitrix24(&self, bling_id: i64) -> Vec<Map<String, Value>> {
        let key = self.bling_id_key();
        self.portal
            .portal
            .products()
            .into_iter()
            .filter(|p| key.as_ref().is_some_and(|k| property(p, k) == Some(bling_id.to_string())))
            .collect()
    }

    fn bling_id_key(&self) -> Option<String> {
        self.portal.portal.properties().into_iter().find(|p| p.code == "BLING_ID").map(|p| format!("PROPERTY_{}", p.id))
    }

    async fn inbox_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox_events").fetch_one(self.gateway.db.pool()).await.unwrap()
    }

    /// Waits until no new event has reached the inbox for a while (bounded): a loop between
    /// the two systems would keep it growing.
    async fn quiet(&self) -> bool {
        let mut last = self.inbox_count().await;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let now = self.inbox_count().await;
            if now == last {
                return true;
            }
            last = now;
        }
        false
    }

    async fn catalog_db(&self) -> Database {
        self.w.mesh.db("catalog_sync").await
    }

    /// catalog-sync's ledger for `entity`: (outcome, detail) in the order handled, leaving out
    /// attempts that failed and were retried (e.g. on Bling's rate limit, which this test's own
    /// calls share).
    async fn log(&self, entity: &str) -> Vec<(String, String)> {
        let db = self.catalog_db().await;
        sqlx::query("SELECT outcome, detail FROM event_log WHERE entity_key = $1 AND outcome <> 'failed' ORDER BY seq")
            .bind(entity)
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    async fn post_bling(&self, body: String) -> u16 {
        self.w.post_bling(&self.gateway, body).await.status().as_u16()
    }
}

/// A property's value as text, however the portal returns it.
fn property(p: &Map<String, Value>, key: &str) -> Option<String> {
    ponte_connectors::bitrix24::client::field_values(p.get(key)).into_iter().next()
}

fn text(p: &Map<String, Value>, key: &str) -> String {
    p.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned()
}

async fn settle() {
    // Long enough for a webhook that would arrive to be delivered and handled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn a_product_created_and_changed_in_bling_ends_in_bitrix24_with_the_mapped_fields() {
    let world = world().await;
    let id = world
        .create_in_bling(json!({"nome": "Camiseta Azul M", "codigo": "CAM-AZ-M", "preco": 59.9, "tipo": "P",
                                "situacao": "A", "formato": "S", "unidade": "UN"}))
        .await;
    assert!(eventually(Duration::from_secs(20), || async { world.in_bitrix24(id).len() == 1 }).await, "never synced");
    let entity = format!("product:{id}");
    assert!(
        eventually(Duration::from_secs(20), || async { world.log(&entity).await.iter().any(|(o, _)| o == "applied") })
            .await
    );
    let p = &world.in_bitrix24(id)[0];
    assert_eq!(text(p, "NAME"), "Camiseta Azul M");
    assert_eq!(text(p, "XML_ID"), "CAM-AZ-M", "the SKU goes to ID Externo");
    assert_eq!(text(p, "PRICE").parse::<f64>().unwrap(), 59.9);
    assert_eq!(text(p, "ACTIVE"), "Y");
    let bitrix_id = text(p, "ID");

    // The link registry knows the pair.
    let mut mapping = MappingServiceClient::new(world.w.mesh.channel("mapping").await);
    let linked = mapping
        .resolve(ResolveRequest {
            tenant_id: TENANT.into(),
            kind: EntityKind::Product as i32,
            from_system: Provider::Bling as i32,
            from_id: id.to_string(),
            to_system: Provider::Bitrix24 as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(linked.id, bitrix_id);

    // A change made in Bling's UI: price and situação (I → N).
    assert!(world.w.bling.bling.edit_product_in_ui(id, json!({"preco": 64.5, "situacao": "I"})));
    assert!(
        eventually(Duration::from_secs(20), || async {
            world.in_bitrix24(id).first().is_some_and(|p| text(p, "ACTIVE") == "N")
        })
        .await,
        "the change never reached Bitrix24: {:?}",
        world.in_bitrix24(id)
    );
    let all = world.in_bitrix24(id);
    assert_eq!(all.len(), 1, "updated in place, not created again");
    assert_eq!(text(&all[0], "PRICE").parse::<f64>().unwrap(), 64.5);
    assert_eq!(text(&all[0], "ID"), bitrix_id);
    let log = world.log(&entity).await;
    assert_eq!(log[0], ("applied".to_owned(), format!("created Bitrix24 product {bitrix_id}")), "{log:?}");
    assert_eq!(log[1], ("applied".to_owned(), format!("updated Bitrix24 product {bitrix_id}")), "{log:?}");

    // Deleted in Bling (situação E): deactivated, never removed.
    assert!(world.w.bling.bling.edit_product_in_ui(id, json!({"situacao": "A"})));
    assert!(
        eventually(Duration::from_secs(20), || async {
            world.in_bitrix24(id).first().is_some_and(|p| text(p, "ACTIVE") == "Y")
        })
        .await
    );
    assert!(world.w.bling.bling.edit_product_in_ui(id, json!({"situacao": "E"})));
    assert!(
        eventually(Duration::from_secs(20), || async {
            world.in_bitrix24(id).first().is_some_and(|p| text(p, "ACTIVE") == "N")
        })
        .await
    );
    assert!(world.log(&format!("product:{id}")).await.iter().any(|(_, d)| d.starts_with("deactivated")));
}

#[tokio::test]
async fn with_each_switch_off_nothing_is_written() {
    let world = world().await;
    let on = SyncSettings {
        bling_create_creates_in_bitrix24: true,
        bling_update_updates_bitrix24: true,
        ..Default::default()
    };

    // "Criação no Bling cria produto no Bitrix24" off: a new product stays out of Bitrix24.
    world.settings(SyncSettings { bling_create_creates_in_bitrix24: false, ..on.clone() }).await;
    let skipped = world.create_in_bling(json!({"nome": "Boné", "codigo": "BON-1", "preco": 30, "tipo": "P"})).await;
    let entity = format!("product:{skipped}");
    assert!(eventually(Duration::from_secs(20), || async { !world.log(&entity).await.is_empty() }).await);
    assert_eq!(
        world.log(&entity).await,
        [("skipped".to_owned(), "creation in Bling does not create in Bitrix24 (switch off)".to_owned())]
    );
    assert!(world.portal.portal.products().is_empty(), "{:?}", world.portal.portal.products());

    // Creation on: the next product goes; then "Alterações no Bling atualizam o Bitrix24" off.
    world.settings(on.clone()).await;
    let id = world.create_in_bling(json!({"nome": "Meia", "codigo": "MEI-1", "preco": 12.5, "tipo": "P"})).await;
    assert!(eventually(Duration::from_secs(20), || async { world.in_bitrix24(id).len() == 1 }).await);
    world.settings(SyncSettings { bling_update_updates_bitrix24: false, ..on }).await;
    assert!(world.w.bling.bling.edit_product_in_ui(id, json!({"preco": 99.0})));
    let entity = format!("product:{id}");
    assert!(eventually(Duration::from_secs(20), || async { world.log(&entity).await.len() == 2 }).await);
    assert_eq!(world.log(&entity).await[1].1, "changes in Bling do not update Bitrix24 (switch off)");
    settle().await;
    assert_eq!(text(&world.in_bitrix24(id)[0], "PRICE").parse::<f64>().unwrap(), 12.5, "written with the switch off");
    assert_eq!(world.portal.portal.products().len(), 1);
}

#[tokio::test]
async fn duplicated_and_reordered_webhooks_leave_the_final_state() {
    let world = world().await;
    let id = world.create_in_bling(json!({"nome": "Calça", "codigo": "CAL-1", "preco": 100, "tipo": "P"})).await;
    assert!(eventually(Duration::from_secs(20), || async { world.in_bitrix24(id).len() == 1 }).await);
    // Bling's final state, changed without a webhook of its own; the webhooks below arrive
    // late, twice each, and out of order.
    world.w.bling.bling.faults().set(FaultSettings { webhook_drop_rate: 1.0, ..Default::default() });
    assert!(world.w.bling.bling.edit_product_in_ui(id, json!({"preco": 130, "nome": "Calça Jeans"})));
    let company = world.w.company_id();
    let data = json!({"id": id, "nome": "Calça", "codigo": "CAL-1", "situacao": "A", "preco": 110});
    let events: Vec<String> = [("late-3", 300), ("late-1", 100), ("late-2", 200)]
        .iter()
        .map(|(eid, secs)| bling_body(eid, "product.updated", &company, &date(*secs + 86_400 * 365), data.clone()))
        .collect();
    for body in events.iter().chain(events.iter()) {
        assert_eq!(world.post_bling(body.clone()).await, 200);
    }
    let settled = || async {
        let states = world.inbox_states("late-").await;
        states.len() == 3 && states.iter().all(|s| s == "delivered" || s == "coalesced")
    };
    assert!(eventually(Duration::from_secs(30), settled).await, "{:?}", world.inbox_states("late-").await);
    // One row per webhook: the copies were stopped at the gateway.
    assert_eq!(world.inbox_states("late-").await.len(), 3);
    // The older two were never applied after the newest: each was stale, or replaced in the
    // queue by the newer one.
    let db = world.catalog_db().await;
    let applied_late: Vec<String> = sqlx::query_scalar(
        "SELECT source_event_id FROM event_log WHERE outcome = 'applied' AND source_event_id LIKE 'late-%' ORDER BY seq",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(applied_late.iter().all(|e| e == "late-3"), "{applied_late:?}");
    let all = world.in_bitrix24(id);
    assert_eq!(all.len(), 1);
    assert_eq!(text(&all[0], "NAME"), "Calça Jeans", "Bling's current state, not the webhook's copy");
    assert_eq!(text(&all[0], "PRICE").parse::<f64>().unwrap(), 130.0);
}

#[tokio::test]
async fn a_bitrix24_503_storm_delays_the_sync_but_loses_nothing() {
    let world = world().await;
    // Every Bitrix24 call fails for a while: the portal's own 503s, then its rate-limit answers.
    world.portal.portal.faults().set(FaultSettings { error_rate: 1.0, ..Default::default() });
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            world
                .create_in_bling(json!({"nome": format!("Produto {n}"), "codigo": format!("P-{n}"), "preco": 10 + n,
                                        "tipo": "P"}))
                .await,
        );
    }
    let failed = || async {
        let db = world.catalog_db().await;
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM event_log WHERE outcome = 'failed'")
            .fetch_one(db.pool())
            .await
            .unwrap()
    };
    assert!(eventually(Duration::from_secs(20), || async { failed().await >= 6 }).await, "no retries seen");
    assert!(world.portal.portal.products().is_empty());
    world.portal.portal.faults().set(FaultSettings { storm: 5, ..Default::default() });
    for id in &ids {
        assert!(
            eventually(Duration::from_secs(40), || async { world.in_bitrix24(*id).len() == 1 }).await,
            "product {id} lost after the storm"
        );
    }
    assert_eq!(world.portal.portal.products().len(), 3, "nothing created twice");
    let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox_events WHERE state = 'dead'")
        .fetch_one(world.gateway.db.pool())
        .await
        .unwrap();
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn exported_crm_products_reach_bling_and_no_write_comes_back_as_a_loop() {
    let world = world_with(true).await;
    world
        .settings(SyncSettings {
            bling_create_creates_in_bitrix24: true,
            bling_update_updates_bitrix24: true,
            bitrix24_export_to_bling: true,
            ..Default::default()
        })
        .await;
    // A product made by a person in the CRM.
    let crm_id = world
        .portal
        .portal
        .create_product_in_ui(json!({"NAME": "Caneca Esmaltada", "XML_ID": "CAN-1", "PRICE": 35, "ACTIVE": "Y"}))
        .unwrap();
    let bling_id = || {
        let key = world.bling_id_key()?;
        let p = world.portal.portal.product(crm_id)?;
        property(&p, &key)?.parse::<i64>().ok()
    };
    assert!(eventually(Duration::from_secs(20), || async { bling_id().is_some() }).await, "never exported");
    let id = bling_id().unwrap();
    let in_bling = world.w.bling.bling.product(id).expect("created in Bling");
    assert_eq!(in_bling["nome"], "Caneca Esmaltada");
    assert_eq!(in_bling["codigo"], "CAN-1");
    assert_eq!(in_bling["situacao"], "A");
    assert_eq!(in_bling["preco"].as_f64(), Some(35.0), "{in_bling}");
    assert!(world.quiet().await, "events kept coming: a loop");
    assert_eq!(world.portal.portal.products().len(), 1, "Bling's echo created a second CRM product");

    // Changed in the CRM: the price reaches Bling, and it settles.
    world.portal.portal.edit_product_in_ui(crm_id, json!({"PRICE": 42.5, "ACTIVE": "N"})).unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            world.w.bling.bling.product(id).is_some_and(|p| p["preco"].as_f64() == Some(42.5) && p["situacao"] == "I")
        })
        .await,
        "{:?}",
        world.w.bling.bling.product(id)
    );
    assert!(world.quiet().await, "events kept coming: a loop");

    // Changed in Bling: the CRM follows, and it settles too.
    assert!(world.w.bling.bling.edit_product_in_ui(id, json!({"nome": "Caneca Esmaltada Azul"})));
    assert!(
        eventually(Duration::from_secs(20), || async {
            world.portal.portal.product(crm_id).is_some_and(|p| text(&p, "NAME") == "Caneca Esmaltada Azul")
        })
        .await
    );
    assert!(world.quiet().await, "events kept coming: a loop");
    assert_eq!(world.portal.portal.products().len(), 1);
    let entity = format!("bitrix24_product:{crm_id}");
    let log = world.log(&entity).await;
    assert_eq!(log.iter().filter(|(o, _)| o == "applied").count(), 2, "one create and one update in Bling: {log:?}");
    assert!(log.iter().all(|(o, d)| o == "applied" || d.contains("already up to date")), "{log:?}");
    let writes_to_bitrix: Vec<_> =
        world.log(&format!("product:{id}")).await.into_iter().filter(|(o, _)| o == "applied").collect();
    assert_eq!(writes_to_bitrix.len(), 1, "only the Bling edit was written to the CRM: {writes_to_bitrix:?}");
}

#[tokio::test]
async fn bling_orders_become_bitrix24_deals_with_product_rows_and_the_stage_of_their_situacao() {
    let world = world().await;
    world
        .settings(SyncSettings {
            bling_create_creates_in_bitrix24: true,
            bling_update_updates_bitrix24: true,
            orders_to_bitrix24: true,
            ..Default::default()
        })
        .await;
    let synced =
        world.create_in_bling(json!({"nome": "Camiseta", "codigo": "CAM-1", "preco": 59.9, "tipo": "P"})).await;
    assert!(eventually(Duration::from_secs(20), || async { world.in_bitrix24(synced).len() == 1 }).await);
    let crm_product = text(&world.in_bitrix24(synced)[0], "ID");
    // A product Bling has but ponte never synced (added before the app was connected).
    let unsynced = world.w.bling.bling.seed_product(json!({"nome": "Brinde", "codigo": "BRI-1", "preco": 0}));

    let order = world
        .bling_api(
            reqwest::Method::POST,
            "/pedidos/vendas",
            Some(json!({"contato": {"id": bling::CONSUMIDOR_FINAL}, "data": "2026-11-22", "dataSaida": "2026-11-22", "dataPrevista": "2026-11-22",
                "itens": [{"produto": {"id": synced}, "quantidade": 2, "valor": 59.9, "descricao": "Camiseta"},
                          {"produto": {"id": unsynced}, "quantidade": 1, "valor": 5, "desconto": 10, "descricao": "Brinde"}]})),
        )
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let deal = || world.portal.portal.deals().into_iter().find(|d| text(d, "ORIGIN_ID") == order.to_string());
    assert!(eventually(Duration::from_secs(20), || async { deal().is_some() }).await, "no deal for the order");
    let d = deal().unwrap();
    assert_eq!(text(&d, "ORIGINATOR_ID"), "bling");
    assert_eq!(text(&d, "STAGE_ID"), "NEW", "Em aberto");
    assert_eq!(text(&d, "OPPORTUNITY").parse::<f64>().unwrap(), 124.3);
    let deal_id: u64 = text(&d, "ID").parse().unwrap();
    // The rows follow the deal's creation.
    let rows_set = || async { world.portal.portal.deal_rows(deal_id).len() == 2 };
    assert!(eventually(Duration::from_secs(10), rows_set).await, "{:?}", world.portal.portal.deal_rows(deal_id));
    let rows = world.portal.portal.deal_rows(deal_id);
    assert_eq!(text(&rows[0], "PRODUCT_ID"), crm_product, "the synced product is named");
    assert_eq!(text(&rows[0], "QUANTITY").parse::<f64>().unwrap(), 2.0);
    assert_eq!(text(&rows[1], "PRODUCT_ID"), "0", "a product never synced is a free-text row");
    assert_eq!(text(&rows[1], "PRODUCT_NAME"), "Brinde");
    assert_eq!(text(&rows[1], "PRICE").parse::<f64>().unwrap(), 4.5, "the item's 10% discount");

    // Atendido in Bling: the deal is won; still one deal.
    world.bling_api(reqwest::Method::PATCH, &format!("/pedidos/vendas/{order}/situacoes/9"), None).await;
    assert!(
        eventually(Duration::from_secs(20), || async { deal().is_some_and(|d| text(&d, "STAGE_ID") == "WON") }).await,
        "{:?}",
        deal()
    );
    assert_eq!(world.portal.portal.deals().len(), 1);
    let log = world.log(&format!("order:{order}")).await;
    assert_eq!(log[0].1, format!("created Bitrix24 deal {deal_id}"), "{log:?}");
    assert_eq!(log.last().unwrap().1, format!("updated Bitrix24 deal {deal_id}"), "{log:?}");
}

#[tokio::test]
async fn a_tenants_own_situacoes_move_the_deal_to_the_stages_it_mapped() {
    let world = world().await;
    let mut cs = CatalogSyncServiceClient::new(world.w.mesh.channel("catalog-sync").await);
    let stage = |id: i64, stage: &str| DealStageMap { bling_situacao_id: id, stage_id: stage.into() };
    let with = |deal_stages: Vec<DealStageMap>| UpdateSyncSettingsRequest {
        settings: Some(SyncSettings {
            tenant_id: TENANT.into(),
            orders_to_bitrix24: true,
            deal_stages,
            ..Default::default()
        }),
    };

    // A bad map is refused whole, naming the entry's field.
    for (deal_stages, field) in [
        (vec![stage(24, "PREPARATION"), stage(18, "")], "settings.deal_stages[1].stage_id"),
        (vec![stage(24, "PREPARATION"), stage(24, "NEW")], "settings.deal_stages[1].bling_situacao_id"),
        (vec![stage(0, "NEW")], "settings.deal_stages[0].bling_situacao_id"),
        (vec![stage(24, "c3:won")], "settings.deal_stages[0].stage_id"),
    ] {
        let status = cs.update_sync_settings(with(deal_stages)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(&format!("{field}: ")), "{status:?}");
    }
    let get = GetSyncSettingsRequest { tenant_id: TENANT.into() };
    let kept = cs.get_sync_settings(get.clone()).await.unwrap().into_inner().settings.unwrap();
    assert!(!kept.orders_to_bitrix24 && kept.deal_stages.is_empty(), "nothing of a refused update is kept: {kept:?}");

    // Verificado (24), a situação of the merchant's own, and Atendido (9), overriding its
    // default; Venda agenciada (18) is left unmapped. Read back in situação order.
    cs.update_sync_settings(with(vec![stage(24, "PREPARATION"), stage(9, "FINAL_INVOICE")])).await.unwrap();
    let saved = cs.get_sync_settings(get).await.unwrap().into_inner().settings.unwrap();
    assert_eq!(saved.deal_stages, [stage(9, "FINAL_INVOICE"), stage(24, "PREPARATION")]);

    let product = world.w.bling.bling.seed_product(json!({"nome": "Caneca", "codigo": "CAN-1", "preco": 30}));
    let order = world
        .bling_api(
            reqwest::Method::POST,
            "/pedidos/vendas",
            Some(json!({"contato": {"id": bling::CONSUMIDOR_FINAL}, "data": "2026-12-01", "dataSaida": "2026-12-01", "dataPrevista": "2026-12-01",
                "itens": [{"produto": {"id": product}, "quantidade": 1, "valor": 30, "descricao": "Caneca"}]})),
        )
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    let deal = || world.portal.portal.deals().into_iter().find(|d| text(d, "ORIGIN_ID") == order.to_string());
    let stage_is = |wanted: &'static str| {
        let deal = &deal;
        move || async move { deal().is_some_and(|d| text(&d, "STAGE_ID") == wanted) }
    };
    assert!(eventually(Duration::from_secs(20), stage_is("NEW")).await, "Em aberto: {:?}", deal());

    let entity = format!("order:{order}");
    // catalog-sync's deliveries of the order's webhooks: how many, how many not done yet (the
    // order's deliveries to shipping-status, not running here, stay pending).
    let inbox = || async {
        let states: Vec<String> = sqlx::query_scalar(
            "SELECT d.state FROM inbox_deliveries d JOIN inbox_events e ON e.event_id = d.event_id \
             WHERE e.entity_key = $1 AND d.subscriber = 'catalog-sync'",
        )
        .bind(&entity)
        .fetch_all(world.gateway.db.pool())
        .await
        .unwrap();
        let open = states.iter().filter(|s| *s != "delivered" && *s != "coalesced").count();
        (states.len(), open)
    };
    // Moves the order to `situacao` in Bling and waits until its webhook was handled.
    let move_to = |situacao: i64| {
        let (world, inbox) = (&world, &inbox);
        async move {
            let (before, _) = inbox().await;
            world
                .bling_api(reqwest::Method::PATCH, &format!("/pedidos/vendas/{order}/situacoes/{situacao}"), None)
                .await;
            let handled = || async { matches!(inbox().await, (n, 0) if n > before) };
            assert!(eventually(Duration::from_secs(20), handled).await, "situação {situacao}: {:?}", inbox().await);
        }
    };

    move_to(24).await;
    assert!(eventually(Duration::from_secs(5), stage_is("PREPARATION")).await, "Verificado: {:?}", deal());
    let deal_id = text(&deal().unwrap(), "ID");
    move_to(18).await;
    assert_eq!(text(&deal().unwrap(), "STAGE_ID"), "PREPARATION", "an unmapped situação keeps the stage");
    let log = world.log(&entity).await;
    assert_eq!(log.last().unwrap().1, format!("Bitrix24 deal {deal_id} already up to date"), "{log:?}");
    move_to(9).await;
    assert!(eventually(Duration::from_secs(5), stage_is("FINAL_INVOICE")).await, "Atendido: {:?}", deal());
    move_to(12).await;
    assert!(eventually(Duration::from_secs(5), stage_is("LOSE")).await, "Cancelado keeps its default: {:?}", deal());
    assert_eq!(world.portal.portal.deals().len(), 1);
}

#[tokio::test]
async fn the_bling_catalog_reaches_cplug_with_changes_arriving_together_sharing_bulk_calls() {
    let pos = ponte_sandbox::cplug::Cplug::new(ponte_sandbox::cplug::Config::for_tests()).spawn(None).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let env = ponte_core::config::Env::default().with("PONTE_CPLUG_API_URL", &pos.base_url);
    let w = BlingWorld::start_with_env(SPECS, bling::Config::default(), &ponte_tests::redis_url(), env).await;
    BlingWorld::connect_cplug(&w.mesh, &pos).await;
    let gateway = w.mesh.start_gateway_http_with(w.mesh.env.clone(), w.mesh.peers.clone(), Some(listener)).await;
    CatalogSyncServiceClient::new(w.mesh.channel("catalog-sync").await)
        .update_sync_settings(UpdateSyncSettingsRequest {
            settings: Some(SyncSettings { tenant_id: TENANT.into(), catalog_to_cplug: true, ..Default::default() }),
        })
        .await
        .unwrap();

    // Twelve products and a variation (no grid module: it goes as a product of its own).
    let mut ids: Vec<i64> = (0..12)
        .map(|n| {
            w.bling.bling.seed_product(json!({"nome": format!("Produto {n}"), "codigo": format!("P-{n}"),
                "preco": 10.5 + f64::from(n), "unidade": "UN", "situacao": if n == 0 { "I" } else { "A" }}))
        })
        .collect();
    let parent = ids[1];
    ids.push(w.bling.bling.seed_product(json!({"nome": "Produto 1", "codigo": "P-1-AZ", "preco": 12,
        "variacao": {"nome": "Cor:Azul;Tamanho:M", "produtoPai": {"id": parent}}})));
    let before = pos.cplug.stats().api_requests;
    let company = w.company_id();
    // Each webhook carries the product as Bling sends it.
    let sends = ids.iter().map(|id| {
        let p = w.bling.bling.product(*id).unwrap();
        let mut data = json!({"id": id, "nome": p["nome"], "codigo": p["codigo"], "preco": p["preco"],
            "situacao": p["situacao"], "unidade": p["unidade"], "tipo": "P", "formato": "S"});
        if let Some(pai) = p["variacao"]["produtoPai"]["id"].as_i64() {
            data["idProdutoPai"] = json!(pai);
        }
        let body = bling_body(&format!("pos-{id}"), "product.updated", &company, &date(0), data);
        let (w, gateway) = (&w, &gateway);
        async move { w.post_bling(gateway, body).await.status() }
    });
    for status in futures::future::join_all(sends).await {
        assert_eq!(status, 200);
    }
    let held = || pos.cplug.products();
    let delivered = eventually(Duration::from_secs(30), || async { held().len() == 13 }).await;
    let errors: Vec<(String, String)> =
        sqlx::query_as("SELECT lane, last_error FROM inbox_deliveries WHERE state <> 'delivered'")
            .fetch_all(gateway.db.pool())
            .await
            .unwrap_or_default();
    assert!(delivered, "{:?} {errors:?}", held().keys());
    let products = held();
    let first = &products[&ids[0].to_string()];
    assert_eq!(
        (first["sku"].as_str(), first["price"].as_f64(), first["active"].as_bool()),
        (Some("P-0"), Some(10.5), Some(false))
    );
    let variation = &products[&ids[12].to_string()];
    assert_eq!(variation["name"], "Produto 1 (Azul, M)", "{variation}");
    assert!(variation["parent_external_id"].is_null() || variation["parent_external_id"] == "");
    let calls = pos.cplug.stats().api_requests - before;
    assert!(calls < 13, "{calls} CPLUG calls for 13 products: the upserts were not shared");
}

/// Two deliveries of one order running at once (a retry while the first attempt is still at
/// work, or two replicas after a lease ran out) make one deal, not two, and neither fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_of_one_order_running_at_once_make_one_deal() {
    use ponte_proto::v1::{CatalogSyncServiceHandleEventRequest, EventOutcome, InboundEvent};
    let world = world().await;
    // The webhooks' own deliveries off: only the concurrent calls below write.
    world.settings(SyncSettings { orders_to_bitrix24: false, ..Default::default() }).await;
    let item = world.w.bling.bling.seed_product(json!({"nome": "Avulso", "codigo": "AV-1", "preco": 10}));
    let order = world
        .bling_api(
            reqwest::Method::POST,
            "/pedidos/vendas",
            Some(json!({"contato": {"id": bling::CONSUMIDOR_FINAL}, "data": "2026-11-22", "dataSaida": "2026-11-22", "dataPrevista": "2026-11-22",
                "itens": [{"produto": {"id": item}, "quantidade": 1, "valor": 10, "descricao": "Avulso"}]})),
        )
        .await["data"]["id"]
        .as_i64()
        .unwrap();
    assert!(world.quiet().await);
    world.settings(SyncSettings { orders_to_bitrix24: true, ..Default::default() }).await;
    // A slow CRM widens the time between looking the deal up and linking the one created.
    world.portal.portal.faults().set(FaultSettings { latency_ms: 400, ..Default::default() });
    // Newer than the webhook the order's creation sent, so none of them is stale.
    let now_ms = ponte_core::time::now_millis() + 1_000;
    let calls = (0..4).map(|n| {
        let channel = world.w.mesh.channel("catalog-sync");
        async move {
            let mut cs = CatalogSyncServiceClient::new(channel.await);
            let event = InboundEvent {
                event_id: format!("race-{n}"),
                tenant_id: TENANT.into(),
                source: Provider::Bling as i32,
                source_event_id: format!("race-{n}"),
                event_type: "order.updated".into(),
                entity_key: format!("order:{order}"),
                occurred_at: Some(ponte_core::time::to_timestamp(now_ms + n)),
                ..Default::default()
            };
            cs.handle_event(CatalogSyncServiceHandleEventRequest { event: Some(event) }).await
        }
    });
    let answers = futures::future::join_all(calls).await;
    let outcomes: Vec<_> = answers
        .iter()
        .map(|a| a.as_ref().unwrap_or_else(|s| panic!("a concurrent delivery failed: {s:?}")).get_ref().outcome())
        .collect();
    // One of them writes the deal; the others find it written.
    assert_eq!(outcomes.iter().filter(|o| **o == EventOutcome::Applied).count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, EventOutcome::Applied | EventOutcome::Skipped)), "{outcomes:?}");
    let deals: Vec<_> =
        world.portal.portal.deals().into_iter().filter(|d| text(d, "ORIGIN_ID") == order.to_string()).collect();
    assert_eq!(deals.len(), 1, "one order, one deal: {deals:?}");
}
