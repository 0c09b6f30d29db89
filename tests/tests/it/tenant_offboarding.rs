//! Tenant offboarding, end to end: a merchant with data in every service, made the way it is made
//! in production (its Bling account connected through OAuth, shipping set up, an order shipped
//! through 360Envios with the webhooks of both going through the gateway, a sale ingested), and
//! a neighbour holding a copy of every one of its rows. `DeleteTenant` revokes the merchant's
//! Bling grant at Bling, and afterwards no table of any service schema (every table with a
//! `tenant_id` column, found in the catalog, so tables added later are covered), no inbox delivery
//! and no Redis key holds anything of it, while the neighbour has every row it had; the audit
//! record says when and by whom, and names the tenant only by a hash.

use std::collections::BTreeMap;

use ponte_proto::v1::{
    DeleteTenantRequest, GetTenantRequest, IngestSaleRequest, Sale, SaleItem, UpdateSalesSettingsRequest,
    auth_token_service_client::AuthTokenServiceClient, sales_ingest_service_client::SalesIngestServiceClient,
};
use ponte_tests::{
    Mesh,
    shipping::{EM_ANDAMENTO, ShippingWorld},
    webhooks::TENANT,
};
use sqlx::{Connection, PgConnection, Row};

const SCHEMAS: [&str; 6] = ["auth_token", "mapping", "catalog_sync", "sales_ingest", "shipping_status", "gateway"];
const NEIGHBOUR: &str = "vizinha";

fn all_specs() -> Vec<&'static ponte_core::service::ServiceSpec> {
    vec![
        &ponte_auth_token::SPEC,
        &ponte_mapping::SPEC,
        &ponte_catalog_sync::SPEC,
        &ponte_sales_ingest::SPEC,
        &ponte_shipping_status::SPEC,
        &ponte_gateway::SPEC,
    ]
}

/// Every `schema.table` of the service schemas with a `tenant_id` column.
async fn tenant_tables(pg: &mut PgConnection) -> Vec<(String, String)> {
    sqlx::query(
        "SELECT c.table_schema::text, c.table_name::text FROM information_schema.columns c \
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = ANY($1) AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' ORDER BY 1, 2",
    )
    .bind(SCHEMAS.map(String::from).to_vec())
    .fetch_all(&mut *pg)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Rows of `tenant` per `schema.table`.
async fn rows_of(pg: &mut PgConnection, tenant: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (schema, table) in tenant_tables(pg).await {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {schema}.{table} WHERE tenant_id = $1"
        )))
        .bind(tenant)
        .fetch_one(&mut *pg)
        .await
        .unwrap();
        out.insert(format!("{schema}.{table}"), n);
    }
    out
}

/// Gives [`NEIGHBOUR`] a copy of every row of [`TENANT`] (columns in a unique key without
/// `tenant_id` suffixed, generated ones left to their defaults), and of its inbox deliveries.
async fn copy_to_neighbour(pg: &mut PgConnection) {
    let mut tables = tenant_tables(pg).await;
    // The tenant's record before the rows that refer to it.
    tables.sort_by_key(|(_, t)| t != "tenants");
    for (schema, table) in tables {
        let qualified = format!("{schema}.{table}");
        let unique: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
             AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisunique \
             AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = i.indrelid \
                             AND b.attnum = ANY(i.indkey) AND b.attname = 'tenant_id')",
        )
        .bind(&qualified)
        .fetch_all(&mut *pg)
        .await
        .unwrap();
        let columns = sqlx::query(
            "SELECT column_name::text, data_type::text, COALESCE(column_default, '')::text, is_identity::text \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(&schema)
        .bind(&table)
        .fetch_all(&mut *pg)
        .await
        .unwrap();
        let (mut names, mut values) = (Vec::new(), Vec::new());
        for c in columns {
            let (name, kind, default, identity): (String, String, String, String) =
                (c.get(0), c.get(1), c.get(2), c.get(3));
            if default.starts_with("nextval") || identity == "YES" {
                continue;
            }
            let value = if name == "tenant_id" {
                format!("'{NEIGHBOUR}'")
            } else if unique.contains(&name) && kind == "text" {
                format!("{name} || '-v'")
            } else {
                name.clone()
            };
            names.push(name);
            values.push(value);
        }
        let sql = format!(
            "INSERT INTO {qualified} ({}) SELECT {} FROM {qualified} WHERE tenant_id = '{TENANT}'",
            names.join(", "),
            values.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *pg).await.unwrap_or_else(|e| panic!("{qualified}: {e}"));
    }
    sqlx::query(
        "INSERT INTO gateway.inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, attempts, \
         next_attempt_time, lease_owner, lease_until, last_error, outcome, detail, delivered_time, create_time) \
         SELECT d.event_id || '-v', subscriber, d.lane, order_time, coalescible, d.state, attempts, next_attempt_time, \
         lease_owner, lease_until, last_error, outcome, detail, delivered_time, create_time \
         FROM gateway.inbox_deliveries d JOIN gateway.inbox_events e USING (event_id) WHERE e.tenant_id = $1",
    )
    .bind(TENANT)
    .execute(&mut *pg)
    .await
    .unwrap();
}

async fn deliveries_of(pg: &mut PgConnection, tenant: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM gateway.inbox_deliveries d JOIN gateway.inbox_events e USING (event_id) \
         WHERE e.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&mut *pg)
    .await
    .unwrap()
}

/// Every key of the deployment's prefix, by SCAN.
async fn redis_keys(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(ponte_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(found);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

async fn set_key(key: &str) {
    let client = redis::Client::open(ponte_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET").arg(key).arg("1").arg("EX").arg(600).query_async(&mut conn).await.unwrap();
}

/// The merchant's data in every service, made through the flows.
async fn merchant_with_data_everywhere() -> ShippingWorld {
    let world =
        ShippingWorld::start_layout(&all_specs(), None, ponte_core::config::Env::default(), |_| {}, |_| {}).await;
    world.set_up(false).await;
    let customer = world.customer();
    let product = world.product("CAM-AZ-M", 59.9, 1);
    let order = world.order(customer, &[(product, 1, 59.9)], true).await;
    world.move_order(order, EM_ANDAMENTO).await;
    world.until_shipment(order, "the 360 order", |s| !s.envios360_order_id.is_empty()).await;
    world.until_quiet().await;
    let mut sales = SalesIngestServiceClient::new(world.w.mesh.channel("sales-ingest").await);
    sales
        .update_sales_settings(UpdateSalesSettingsRequest {
            settings: Some(ponte_proto::v1::SalesSettings { tenant_id: TENANT.into(), ..Default::default() }),
        })
        .await
        .expect("sales settings");
    let sale = Sale {
        sale_id: "V-000001".into(),
        store_id: "loja-centro".into(),
        number: 1,
        items: vec![SaleItem {
            sku: "CAM-AZ-M".into(),
            quantity: "1".into(),
            unit_price_cents: 5990,
            name: "Camiseta".into(),
            ..Default::default()
        }],
        payments: vec![ponte_proto::v1::Payment {
            method: "CREDITO".into(),
            amount_cents: 5990,
            installments: 1,
            ..Default::default()
        }],
        total_cents: 5990,
        occurred_at: Some(prost_types::Timestamp { seconds: 1_772_460_000, nanos: 0 }),
        ..Default::default()
    };
    sales.ingest_sale(IngestSaleRequest { tenant_id: TENANT.into(), sale: Some(sale) }).await.expect("ingest a sale");
    world
}

#[tokio::test]
async fn a_deleted_tenant_leaves_nothing_in_any_table_or_redis_key_and_its_neighbour_keeps_everything() {
    let world = merchant_with_data_everywhere().await;
    let mesh = &world.w.mesh;
    let mut pg = PgConnection::connect(mesh.database_url.url()).await.unwrap();

    let before = rows_of(&mut pg, TENANT).await;
    for schema in SCHEMAS {
        let held: i64 = before.iter().filter(|(t, _)| t.starts_with(&format!("{schema}."))).map(|(_, n)| n).sum();
        assert!(held > 0, "the merchant has no rows in {schema}: {before:?}");
    }
    assert!(deliveries_of(&mut pg, TENANT).await > 0);
    let event_ids: Vec<String> =
        sqlx::query_scalar("SELECT source_event_id FROM gateway.inbox_events WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_all(&mut pg)
            .await
            .unwrap();
    let keys = redis_keys(&mesh.redis_prefix).await;
    assert!(
        event_ids.iter().any(|id| keys.iter().any(|k| k.ends_with(&format!(":{id}")))),
        "the inbox's dedupe keys are in Redis: {keys:?}"
    );
    copy_to_neighbour(&mut pg).await;
    let neighbour_key = format!("{}lock:auth-token:refresh:{NEIGHBOUR}:bling", mesh.redis_prefix);
    set_key(&neighbour_key).await;
    set_key(&format!("{}lock:auth-token:refresh:{TENANT}:envios360", mesh.redis_prefix)).await;
    let neighbour = rows_of(&mut pg, NEIGHBOUR).await;
    let neighbour_deliveries = deliveries_of(&mut pg, NEIGHBOUR).await;
    let old_token = world.bling_token().await.access_token;

    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    let deletion = auth
        .delete_tenant(DeleteTenantRequest { tenant_id: TENANT.into(), requested_by: "ops-ana".into() })
        .await
        .expect("delete the tenant")
        .into_inner()
        .deletion
        .unwrap();

    // Nothing of the merchant anywhere; the neighbour has every row it had.
    let after = rows_of(&mut pg, TENANT).await;
    assert!(after.values().all(|n| *n == 0), "rows left: {after:?}");
    assert_eq!(deliveries_of(&mut pg, TENANT).await, 0);
    // The neighbour is a live tenant (its copied sale goes on being worked on, adding history):
    // it lost nothing.
    let neighbour_after = rows_of(&mut pg, NEIGHBOUR).await;
    for (table, n) in &neighbour {
        assert!(neighbour_after[table] >= *n, "the neighbour lost rows of {table}: {neighbour_after:?}");
    }
    assert!(deliveries_of(&mut pg, NEIGHBOUR).await >= neighbour_deliveries);
    let keys = redis_keys(&mesh.redis_prefix).await;
    assert!(!keys.iter().any(|k| k.contains(&format!(":{TENANT}:"))), "{keys:?}");
    for id in &event_ids {
        assert!(!keys.iter().any(|k| k.ends_with(&format!("inbox:bling:{id}"))), "dedupe key of {id} left");
    }
    assert!(keys.contains(&neighbour_key), "the neighbour's key went: {keys:?}");

    // Bling's grant was revoked at Bling: the token handed out before no longer works.
    assert_eq!(world.w.bling.bling.stats().revocations, 1);
    let status = reqwest::Client::new()
        .get(format!("{}/empresas/me/dados-basicos", world.w.bling.base_url))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "the revoked token still works");

    // The audit record: when, by whom, how much where; the tenant only as a hash.
    assert_eq!(deletion.tenant_hash, ponte_auth_token::tenant_hash(&ponte_core::TenantId::parse(TENANT).unwrap()));
    assert_eq!(deletion.requested_by, "ops-ana");
    assert!(deletion.finish_time.is_some());
    assert_eq!(deletion.revoked, ["bling"]);
    let erased: BTreeMap<String, i64> = deletion.tables.iter().map(|t| (t.table.clone(), t.rows)).collect();
    // At least every row seen before (the merchant's sale was still being worked on meanwhile).
    for (table, n) in before.iter().filter(|(_, n)| **n > 0) {
        assert!(erased.get(table).is_some_and(|e| e >= n), "the record's count of {table}: {erased:?}");
    }
    assert!(erased.get("gateway.inbox_deliveries").is_some_and(|n| *n > 0));
    assert!(deletion.redis_keys > 0);
    let record: String = sqlx::query_scalar(
        "SELECT tenant_hash || requested_by || erased_json || revoked FROM auth_token.tenant_deletions",
    )
    .fetch_one(&mut pg)
    .await
    .unwrap();
    assert!(!record.contains(TENANT), "the record names the tenant: {record}");

    // A rerun answers the record; the tenant is gone; a tenant that never was is NOT_FOUND.
    let again = auth
        .delete_tenant(DeleteTenantRequest { tenant_id: TENANT.into(), requested_by: "ops-ana".into() })
        .await
        .expect("a rerun")
        .into_inner()
        .deletion
        .unwrap();
    assert_eq!(
        (&again.tenant_hash, &again.requested_by, again.start_time, again.finish_time),
        (&deletion.tenant_hash, &deletion.requested_by, deletion.start_time, deletion.finish_time)
    );
    assert!(rows_of(&mut pg, TENANT).await.values().all(|n| *n == 0));
    let gone = auth.get_tenant(GetTenantRequest { tenant_id: TENANT.into() }).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let never = auth
        .delete_tenant(DeleteTenantRequest { tenant_id: "nunca".into(), requested_by: "ops".into() })
        .await
        .unwrap_err();
    assert_eq!(never.code(), tonic::Code::NotFound);
    let unnamed =
        auth.delete_tenant(DeleteTenantRequest { tenant_id: NEIGHBOUR.into(), requested_by: " ".into() }).await;
    let unnamed = unnamed.unwrap_err();
    assert_eq!(unnamed.code(), tonic::Code::InvalidArgument);
    assert!(unnamed.message().contains("requested_by"), "{}", unnamed.message());
}

#[tokio::test]
async fn a_deletion_interrupted_by_a_service_that_does_not_answer_is_finished_by_a_rerun() {
    // The gateway's inbox is not running: the deletion stops there, the tenant still exists.
    let specs = [
        &ponte_auth_token::SPEC,
        &ponte_mapping::SPEC,
        &ponte_catalog_sync::SPEC,
        &ponte_sales_ingest::SPEC,
        &ponte_shipping_status::SPEC,
    ];
    let mesh = Mesh::start(&specs).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    auth.create_tenant(ponte_proto::v1::CreateTenantRequest { tenant_id: TENANT.into(), display_name: "Loja".into() })
        .await
        .unwrap();
    let mut sales = SalesIngestServiceClient::new(mesh.channel("sales-ingest").await);
    sales
        .update_sales_settings(UpdateSalesSettingsRequest {
            settings: Some(ponte_proto::v1::SalesSettings { tenant_id: TENANT.into(), ..Default::default() }),
        })
        .await
        .unwrap();
    let failed = auth
        .delete_tenant(DeleteTenantRequest { tenant_id: TENANT.into(), requested_by: "ops".into() })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), tonic::Code::Unavailable);
    assert!(failed.message().contains("gateway"), "{}", failed.message());
    auth.get_tenant(GetTenantRequest { tenant_id: TENANT.into() }).await.expect("the tenant is still there");
    let mut pg = PgConnection::connect(mesh.database_url.url()).await.unwrap();
    let sales_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sales_ingest.sales_settings").fetch_one(&mut pg).await.unwrap();
    assert_eq!(sales_rows, 0, "what was reached before the failure is erased");

    // With the inbox up (and another auth-token replica, reaching it), the rerun finishes.
    let more = mesh.join(&[&ponte_auth_token::SPEC, &ponte_gateway::SPEC], mesh.env.clone()).await;
    let mut auth2 = AuthTokenServiceClient::new(more.channel("auth-token").await);
    let done = auth2
        .delete_tenant(DeleteTenantRequest { tenant_id: TENANT.into(), requested_by: "ops".into() })
        .await
        .expect("the rerun finishes")
        .into_inner()
        .deletion
        .unwrap();
    assert!(done.finish_time.is_some());
    let erased: BTreeMap<String, i64> = done.tables.iter().map(|t| (t.table.clone(), t.rows)).collect();
    assert_eq!(erased.get("sales_ingest.sales_settings"), Some(&1), "both attempts are counted: {erased:?}");
    assert_eq!(erased.get("auth_token.tenants"), Some(&1));
    let records: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM auth_token.tenant_deletions").fetch_one(&mut pg).await.unwrap();
    assert_eq!(records, 1, "one deletion, one record");
    let left = rows_of(&mut pg, TENANT).await;
    assert!(left.values().all(|n| *n == 0), "{left:?}");
    more.shutdown().await;
    mesh.shutdown().await;
}

#[tokio::test]
async fn bling_s_revocation_endpoint_needs_the_app_s_credentials_and_accepts_a_token_it_no_longer_knows() {
    use ponte_connectors::bling::{BlingConfig, BlingOAuth};
    let bling = ponte_sandbox::bling::Bling::new(ponte_sandbox::bling::Config::default()).spawn(None).await.unwrap();
    let cfg = bling.bling.config().clone();
    let http = ponte_connectors::http::client();
    let app = BlingOAuth::new(http.clone(), BlingConfig::at(&bling.base_url, &cfg.client_id, &cfg.client_secret));
    app.revoke("a-token-bling-never-issued", "refresh_token").await.expect("nothing left to revoke is not an error");
    let forged = BlingOAuth::new(http, BlingConfig::at(&bling.base_url, &cfg.client_id, "not-the-secret"));
    let e = forged.revoke("a-token", "refresh_token").await.unwrap_err();
    assert!(e.to_string().contains("invalid_client") || e.to_string().contains("credentials"), "{e}");
    assert_eq!(bling.bling.stats().revocations, 0);
}
