//! The mesh's foundation end to end: every service over real gRPC on TCP, PostgreSQL and Redis.

use std::time::Duration;

use ponte_proto::v1::{
    CreatePaymentMethodMapRequest, CreateTenantRequest, DeletePaymentMethodMapRequest, GetShipmentRequest,
    GetSyncSettingsRequest, GetTenantRequest, ListAuditEntriesRequest, ListPaymentMethodMapsRequest,
    ListTenantsRequest, PaymentMethodMap, SyncSettings, TranslatePaymentMethodRequest, UpdateSyncSettingsRequest,
    auth_token_service_client::AuthTokenServiceClient, catalog_sync_service_client::CatalogSyncServiceClient,
    mapping_service_client::MappingServiceClient, shipping_status_service_client::ShippingStatusServiceClient,
};
use ponte_sandbox::bling::FORMAS;
use ponte_tests::{Mesh, TcpProxy, eventually, webhooks::BlingWorld};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

fn all() -> Vec<&'static ponte_core::service::ServiceSpec> {
    vec![
        &ponte_auth_token::SPEC,
        &ponte_mapping::SPEC,
        &ponte_catalog_sync::SPEC,
        &ponte_sales_ingest::SPEC,
        &ponte_shipping_status::SPEC,
        &ponte_gateway::SPEC,
    ]
}

async fn status(ch: ponte_tests::Channel, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(ch);
    let resp = health.check(HealthCheckRequest { service: service.into() }).await.expect("health check");
    resp.into_inner().status()
}

#[tokio::test]
async fn every_service_reports_serving_and_lists_itself_through_reflection() {
    let mesh = Mesh::start(&all()).await;
    for spec in all() {
        let ch = mesh.channel(spec.name).await;
        for name in std::iter::once("").chain(spec.grpc_services.iter().copied()) {
            let ok = eventually(Duration::from_secs(5), || {
                let ch = ch.clone();
                async move { status(ch, name).await == ServingStatus::Serving }
            })
            .await;
            assert!(ok, "{} did not report SERVING for '{name}'", spec.name);
        }
        // Reflection v1alpha (what grpcurl speaks) lists exactly this server's services.
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut refl = ServerReflectionClient::new(ch.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = refl.server_reflection_info(tokio_stream::iter([req])).await.expect("reflection").into_inner();
        let msg = stream.message().await.expect("reflection answer").expect("one answer");
        let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
            panic!("unexpected answer")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for svc in spec.grpc_services {
            assert!(names.iter().any(|n| n == svc), "{} reflection lists {names:?}", spec.name);
        }
        assert!(!names.iter().any(|n| spec.grpc_services.iter().all(|s| s != n) && n.starts_with("ponte.")));
    }
    mesh.shutdown().await;
}

#[tokio::test]
async fn tenants_are_created_once_listed_in_pages_and_validated() {
    let mesh = Mesh::start(&[&ponte_auth_token::SPEC]).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    for i in 0..5 {
        auth.create_tenant(CreateTenantRequest { tenant_id: format!("loja-{i}"), display_name: format!("Loja {i}") })
            .await
            .expect("create");
    }
    let dup = auth
        .create_tenant(CreateTenantRequest { tenant_id: "loja-1".into(), display_name: String::new() })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert!(dup.message().contains("loja-1"));

    let bad = auth.create_tenant(CreateTenantRequest { tenant_id: "Loja Centro".into(), ..Default::default() }).await;
    let bad = bad.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("tenant_id: "), "{}", bad.message());

    let got = auth.get_tenant(GetTenantRequest { tenant_id: "loja-3".into() }).await.unwrap().into_inner();
    assert_eq!(got.tenant.unwrap().display_name, "Loja 3");
    let missing = auth.get_tenant(GetTenantRequest { tenant_id: "loja-9".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = auth
            .list_tenants(ListTenantsRequest { page_size: 2, page_token: token.clone() })
            .await
            .unwrap()
            .into_inner();
        assert!(page.tenants.len() <= 2);
        seen.extend(page.tenants.into_iter().map(|t| t.tenant_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["loja-0", "loja-1", "loja-2", "loja-3", "loja-4"]);
    let garbage = auth.list_tenants(ListTenantsRequest { page_size: 2, page_token: "%%".into() }).await.unwrap_err();
    assert_eq!(garbage.code(), Code::InvalidArgument);
    assert!(garbage.message().starts_with("page_token"));
    mesh.shutdown().await;
}

#[tokio::test]
async fn mapping_asks_auth_token_about_tenants_and_audits_every_change() {
    // Tenant "loja", its Bling account in the sandbox, whose formas de pagamento the maps name.
    let world = BlingWorld::start(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC]).await;
    let mut mapping = MappingServiceClient::new(world.mesh.channel("mapping").await);
    let [dinheiro, credito, debito, pix] = FORMAS.map(|f| f.0);

    let map = |method: &str, id: i64, default: bool| CreatePaymentMethodMapRequest {
        map: Some(PaymentMethodMap {
            tenant_id: "loja".into(),
            cplug_method: method.into(),
            bling_forma_pagamento_id: id,
            is_default: default,
            create_time: None,
        }),
        validate_only: false,
    };
    let unknown = mapping
        .create_payment_method_map(CreatePaymentMethodMapRequest {
            map: Some(PaymentMethodMap { tenant_id: "ghost".into(), ..map("PIX", pix, false).map.unwrap() }),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("ghost"));

    let mut req = tonic::Request::new(map("CREDITO", credito, false));
    req.metadata_mut().insert("x-ponte-actor", "ana@loja".parse().unwrap());
    mapping.create_payment_method_map(req).await.unwrap();
    mapping.create_payment_method_map(map("DINHEIRO", dinheiro, true)).await.unwrap();
    let dup = mapping.create_payment_method_map(map("CREDITO", debito, false)).await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let second_default = mapping.create_payment_method_map(map("PIX", pix, true)).await.unwrap_err();
    assert_eq!(second_default.code(), Code::AlreadyExists);
    assert!(second_default.message().contains("default"), "{}", second_default.message());
    let bad = mapping.create_payment_method_map(map("DEBITO", 0, false)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("map.bling_forma_pagamento_id"), "{}", bad.message());

    let t = |m: &str| TranslatePaymentMethodRequest {
        tenant_id: "loja".into(),
        cplug_method: m.into(),
        cplug_store_id: "loja-centro".into(),
    };
    let own = mapping.translate_payment_method(t("CREDITO")).await.unwrap().into_inner();
    assert_eq!((own.bling_forma_pagamento_id, own.used_default), (credito, false));
    let fallback = mapping.translate_payment_method(t("VALE")).await.unwrap().into_inner();
    assert_eq!((fallback.bling_forma_pagamento_id, fallback.used_default), (dinheiro, true));

    mapping
        .delete_payment_method_map(DeletePaymentMethodMapRequest {
            tenant_id: "loja".into(),
            cplug_method: "DINHEIRO".into(),
        })
        .await
        .unwrap();
    let unmapped = mapping.translate_payment_method(t("VALE")).await.unwrap_err();
    assert_eq!(unmapped.code(), Code::NotFound);
    assert!(
        unmapped.message().contains("'VALE' of store 'loja-centro' has no Bling mapping"),
        "{}",
        unmapped.message()
    );

    let listed = mapping
        .list_payment_method_maps(ListPaymentMethodMapsRequest { tenant_id: "loja".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.maps.iter().map(|m| m.cplug_method.as_str()).collect::<Vec<_>>(), ["CREDITO"]);

    let audit = mapping
        .list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "loja".into(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.entries.len(), 2);
    assert_eq!((audit.entries[0].action.as_str(), audit.entries[0].key.as_str()), ("delete", "DINHEIRO"));
    assert!(audit.entries[0].previous_value.contains(&dinheiro.to_string()));
    assert!(audit.entries[0].new_value.is_empty());
    let rest = mapping
        .list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "loja".into(),
            page_size: 2,
            page_token: audit.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!((rest.entries[0].key.as_str(), rest.entries[0].actor.as_str()), ("CREDITO", "ana@loja"));
    assert!(rest.next_page_token.is_empty());
    world.mesh.shutdown().await;
}

#[tokio::test]
async fn sync_settings_default_then_persist() {
    let mesh = Mesh::start(&[&ponte_auth_token::SPEC, &ponte_catalog_sync::SPEC]).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    let mut catalog = CatalogSyncServiceClient::new(mesh.channel("catalog-sync").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: String::new() }).await.unwrap();
    let get = || GetSyncSettingsRequest { tenant_id: "loja".into() };
    let defaults = catalog.get_sync_settings(get()).await.unwrap().into_inner().settings.unwrap();
    assert!(defaults.bling_create_creates_in_bitrix24 && defaults.bling_update_updates_bitrix24);
    assert!(!defaults.bitrix24_export_to_bling);
    let wanted = SyncSettings { bling_update_updates_bitrix24: false, catalog_to_cplug: true, ..defaults };
    catalog.update_sync_settings(UpdateSyncSettingsRequest { settings: Some(wanted.clone()) }).await.unwrap();
    assert_eq!(catalog.get_sync_settings(get()).await.unwrap().into_inner().settings.unwrap(), wanted);
    let ghost = catalog.get_sync_settings(GetSyncSettingsRequest { tenant_id: "ghost".into() }).await.unwrap_err();
    assert_eq!(ghost.code(), Code::NotFound);
    let missing = catalog.update_sync_settings(UpdateSyncSettingsRequest { settings: None }).await.unwrap_err();
    assert_eq!((missing.code(), missing.message()), (Code::InvalidArgument, "settings: is required"));
    mesh.shutdown().await;
}

#[tokio::test]
async fn every_rpc_is_built_and_an_empty_request_names_its_field() {
    // Services implement each RPC explicitly (no default stubs): an empty request is the
    // caller's mistake, answered INVALID_ARGUMENT naming the field, never UNIMPLEMENTED.
    let mesh = Mesh::start(&[&ponte_shipping_status::SPEC]).await;
    let mut shipping = ShippingStatusServiceClient::new(mesh.channel("shipping-status").await);
    let err = shipping.get_shipment(GetShipmentRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().starts_with("tenant_id: "), "{}", err.message());
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_is_down_is_unavailable_not_internal() {
    // mapping without auth-token: the tenant check cannot be answered.
    let mesh = Mesh::start(&[&ponte_mapping::SPEC]).await;
    let mut mapping = MappingServiceClient::new(mesh.channel("mapping").await);
    let err =
        mapping.list_payment_method_maps(ListPaymentMethodMapsRequest { tenant_id: "loja".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(ponte_core::error::retry_after(&err).is_some());
    mesh.shutdown().await;
}

#[tokio::test]
async fn health_follows_redis_going_away_and_coming_back() {
    let proxy = TcpProxy::start(ponte_tests::redis_addr()).await;
    let mesh =
        Mesh::start_with(&[&ponte_auth_token::SPEC], &format!("redis://{}", proxy.addr), Default::default()).await;
    let ch = mesh.channel("auth-token").await;
    let is = |want: ServingStatus| {
        let ch = ch.clone();
        move || {
            let ch = ch.clone();
            async move { status(ch, "ponte.v1.AuthTokenService").await == want }
        }
    };
    assert!(eventually(Duration::from_secs(5), is(ServingStatus::Serving)).await);
    proxy.cut();
    assert!(eventually(Duration::from_secs(15), is(ServingStatus::NotServing)).await, "still SERVING without Redis");
    proxy.restore();
    assert!(eventually(Duration::from_secs(15), is(ServingStatus::Serving)).await, "not SERVING after Redis returned");
    mesh.shutdown().await;
}

#[tokio::test]
async fn the_link_registry_is_unique_both_ways_and_resolves_both_ways() {
    use ponte_proto::v1::{EntityKind, EntityLink, LinkRequest, Provider, ResolveRequest};
    let mesh = Mesh::start(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC]).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    let mut mapping = MappingServiceClient::new(mesh.channel("mapping").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: String::new() }).await.unwrap();
    let link = |bling: &str, bitrix: &str| LinkRequest {
        link: Some(EntityLink {
            tenant_id: "loja".into(),
            kind: EntityKind::Product as i32,
            system_a: Provider::Bling as i32,
            id_a: bling.into(),
            system_b: Provider::Bitrix24 as i32,
            id_b: bitrix.into(),
            create_time: None,
        }),
    };
    assert!(mapping.link(link("16059781281", "410")).await.unwrap().into_inner().created);
    assert!(
        !mapping.link(link("16059781281", "410")).await.unwrap().into_inner().created,
        "the same link again is a no-op"
    );
    assert_eq!(mapping.link(link("16059781281", "411")).await.unwrap_err().code(), Code::AlreadyExists);
    assert_eq!(mapping.link(link("99", "410")).await.unwrap_err().code(), Code::AlreadyExists);
    let resolve = |from: Provider, id: &str, to: Provider| ResolveRequest {
        tenant_id: "loja".into(),
        kind: EntityKind::Product as i32,
        from_system: from as i32,
        from_id: id.into(),
        to_system: to as i32,
    };
    let r = mapping.resolve(resolve(Provider::Bling, "16059781281", Provider::Bitrix24)).await.unwrap().into_inner();
    assert_eq!(r.id, "410");
    let back = mapping.resolve(resolve(Provider::Bitrix24, "410", Provider::Bling)).await.unwrap().into_inner();
    assert_eq!(back.id, "16059781281");
    let none = mapping.resolve(resolve(Provider::Bling, "1", Provider::Bitrix24)).await.unwrap_err();
    assert_eq!(none.code(), Code::NotFound);
    let bad = mapping
        .resolve(ResolveRequest { kind: 0, ..resolve(Provider::Bling, "1", Provider::Bitrix24) })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("kind"));
    mesh.shutdown().await;
}
