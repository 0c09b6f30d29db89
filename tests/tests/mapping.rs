//! The mapping service end to end over gRPC, on real PostgreSQL: stores, situações, field
//! mappings with transforms and `TranslateProduct`, the link registry, the audit trail of every
//! table, and the YAML export/import that `ponte mapping` runs.

use std::time::Duration;

use ponte_core::structs::{from_struct, to_struct};
use ponte_mapping::document;
use ponte_proto::v1::{
    ConcatenateTransform, CreateFieldMappingRequest, CreatePaymentMethodMapRequest, CreateSituacaoMapRequest,
    CreateStoreMapRequest, CreateTenantRequest, DeleteFieldMappingRequest, DeleteSituacaoMapRequest,
    DeleteStoreMapRequest, EntityKind, EntityLink, FieldMapping, LinkRequest, ListAuditEntriesRequest,
    ListFieldMappingsRequest, ListSituacaoMapsRequest, ListStoreMapsRequest, MappingDirection, MappingTarget,
    NumberFormatTransform, PaymentMethodMap, Provider, ResolveRequest, ResolveStoreRequest, ShippingStatus,
    SituacaoMap, StoreMap, Transform, TranslateDirection, TranslateProductRequest, TranslateSituacaoRequest,
    TruncateTransform, ValueMapTransform, auth_token_service_client::AuthTokenServiceClient,
    mapping_service_client::MappingServiceClient, transform::Kind, translate_situacao_request::From as SituacaoFrom,
};
use ponte_tests::{Mesh, eventually};
use serde_json::{Value, json};
use tonic::{Code, Status, transport::Channel};

type Client = MappingServiceClient<Channel>;

/// A mesh of auth-token and mapping with tenants `loja` and `outra`.
async fn start() -> (Mesh, Client) {
    let mesh = Mesh::start(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC]).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    for t in ["loja", "outra"] {
        auth.create_tenant(CreateTenantRequest { tenant_id: t.into(), display_name: t.into() }).await.unwrap();
    }
    let client = MappingServiceClient::new(mesh.channel("mapping").await);
    (mesh, client)
}

fn as_actor<T>(message: T, actor: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert("x-ponte-actor", actor.parse().unwrap());
    req
}

#[track_caller]
fn refused(result: Result<impl std::fmt::Debug, Status>, code: Code, message_start: &str) -> String {
    let s = result.expect_err("the call should have been refused");
    assert_eq!(s.code(), code, "{}", s.message());
    assert!(s.message().starts_with(message_start), "expected '{message_start}…', got '{}'", s.message());
    s.message().to_owned()
}

fn store(tenant: &str, id: &str, loja: i64, deposito: i64) -> CreateStoreMapRequest {
    CreateStoreMapRequest {
        map: Some(StoreMap {
            tenant_id: tenant.into(),
            cplug_store_id: id.into(),
            bling_loja_id: loja,
            bling_deposito_id: deposito,
            create_time: None,
        }),
    }
}

fn situacao(id: i64, name: &str, status: ShippingStatus, releases: bool) -> CreateSituacaoMapRequest {
    CreateSituacaoMapRequest {
        map: Some(SituacaoMap {
            tenant_id: "loja".into(),
            bling_situacao_id: id,
            bling_situacao_name: name.into(),
            shipping_status: status as i32,
            releases_to_shipping: releases,
            create_time: None,
        }),
    }
}

fn mapping(
    target: MappingTarget,
    bling: &str,
    field: &str,
    direction: MappingDirection,
    transforms: Vec<Kind>,
) -> CreateFieldMappingRequest {
    CreateFieldMappingRequest {
        mapping: Some(FieldMapping {
            tenant_id: "loja".into(),
            target: target as i32,
            bling_field: bling.into(),
            target_field: field.into(),
            direction: direction as i32,
            transforms: transforms.into_iter().map(|k| Transform { kind: Some(k) }).collect(),
            ..Default::default()
        }),
    }
}

fn number_format(decimals: u32, separator: &str) -> Kind {
    Kind::NumberFormat(NumberFormatTransform { decimals, decimal_separator: separator.into() })
}

fn value_map(pairs: &[(&str, &str)]) -> Kind {
    Kind::ValueMap(ValueMapTransform {
        values: pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        pass_unmapped: false,
    })
}

async fn translate(c: &mut Client, direction: TranslateDirection, fields: Value) -> Result<Value, Status> {
    let r = c
        .translate_product(TranslateProductRequest {
            tenant_id: "loja".into(),
            direction: direction as i32,
            fields: Some(to_struct(&fields)),
        })
        .await?;
    Ok(from_struct(&r.into_inner().fields.unwrap_or_default()))
}

#[tokio::test]
async fn stores_map_to_a_bling_loja_and_deposito_once_per_cplug_store() {
    let (mesh, mut c) = start().await;
    let created = c.create_store_map(as_actor(store("loja", " loja-centro ", 203, 14), "ana")).await.unwrap();
    let created = created.into_inner().map.unwrap();
    assert_eq!(created.cplug_store_id, "loja-centro");
    assert!(created.create_time.is_some());
    c.create_store_map(store("loja", "loja-shopping", 204, 15)).await.unwrap();
    // Another tenant may use the same store id.
    c.create_store_map(store("outra", "loja-centro", 9, 9)).await.unwrap();

    refused(c.create_store_map(store("loja", "loja-centro", 1, 1)).await, Code::AlreadyExists, "store 'loja-centro'");
    refused(c.create_store_map(store("ghost", "x", 1, 1)).await, Code::NotFound, "tenant 'ghost'");
    refused(c.create_store_map(store("loja", " ", 1, 1)).await, Code::InvalidArgument, "map.cplug_store_id: ");
    refused(c.create_store_map(store("loja", "x", 0, 1)).await, Code::InvalidArgument, "map.bling_loja_id: ");
    refused(c.create_store_map(store("loja", "x", 1, -3)).await, Code::InvalidArgument, "map.bling_deposito_id: ");
    refused(c.create_store_map(CreateStoreMapRequest { map: None }).await, Code::InvalidArgument, "map: ");

    let resolved = c
        .resolve_store(ResolveStoreRequest { tenant_id: "loja".into(), cplug_store_id: "loja-centro".into() })
        .await
        .unwrap()
        .into_inner()
        .map
        .unwrap();
    assert_eq!((resolved.bling_loja_id, resolved.bling_deposito_id), (203, 14));
    let listed = c.list_store_maps(ListStoreMapsRequest { tenant_id: "loja".into() }).await.unwrap().into_inner();
    assert_eq!(
        listed.maps.iter().map(|m| m.cplug_store_id.as_str()).collect::<Vec<_>>(),
        ["loja-centro", "loja-shopping"]
    );

    c.delete_store_map(as_actor(
        DeleteStoreMapRequest { tenant_id: "loja".into(), cplug_store_id: "loja-centro".into() },
        "bruno",
    ))
    .await
    .unwrap();
    let gone = c.resolve_store(ResolveStoreRequest { tenant_id: "loja".into(), cplug_store_id: "loja-centro".into() });
    refused(gone.await, Code::NotFound, "store 'loja-centro' of tenant 'loja' has no Bling loja");
    let again =
        c.delete_store_map(DeleteStoreMapRequest { tenant_id: "loja".into(), cplug_store_id: "loja-centro".into() });
    refused(again.await, Code::NotFound, "store 'loja-centro'");
    // The other tenant's map is untouched.
    let other =
        c.resolve_store(ResolveStoreRequest { tenant_id: "outra".into(), cplug_store_id: "loja-centro".into() });
    assert_eq!(other.await.unwrap().into_inner().map.unwrap().bling_loja_id, 9);
    mesh.shutdown().await;
}

#[tokio::test]
async fn situacoes_translate_both_ways_with_one_release_and_one_situacao_per_status() {
    let (mesh, mut c) = start().await;
    c.create_situacao_map(situacao(15, "Em andamento", ShippingStatus::Received, true)).await.unwrap();
    c.create_situacao_map(situacao(24, "Em romaneio", ShippingStatus::InPackingList, false)).await.unwrap();
    c.create_situacao_map(situacao(9, "Atendido", ShippingStatus::Delivered, false)).await.unwrap();

    let m = refused(
        c.create_situacao_map(situacao(15, "Outra", ShippingStatus::Cancelled, false)).await,
        Code::AlreadyExists,
        "situação 15",
    );
    assert!(m.contains("Em andamento"), "{m}");
    let m = refused(
        c.create_situacao_map(situacao(30, "Romaneio 2", ShippingStatus::InPackingList, false)).await,
        Code::AlreadyExists,
        "SHIPPING_STATUS_IN_PACKING_LIST",
    );
    assert!(m.contains("24"), "{m}");
    let m = refused(
        c.create_situacao_map(situacao(31, "Liberado", ShippingStatus::AwaitingShipment, true)).await,
        Code::AlreadyExists,
        "tenant 'loja' already releases orders to shipping",
    );
    assert!(m.contains("15 'Em andamento'"), "{m}");
    refused(
        c.create_situacao_map(situacao(32, "X", ShippingStatus::Unspecified, false)).await,
        Code::InvalidArgument,
        "map.shipping_status: ",
    );
    refused(
        c.create_situacao_map(situacao(32, "  ", ShippingStatus::InTransit, false)).await,
        Code::InvalidArgument,
        "map.bling_situacao_name: ",
    );
    refused(
        c.create_situacao_map(situacao(0, "X", ShippingStatus::InTransit, false)).await,
        Code::InvalidArgument,
        "map.bling_situacao_id: ",
    );

    let from = |f: SituacaoFrom| TranslateSituacaoRequest { tenant_id: "loja".into(), from: Some(f) };
    let by_id = c.translate_situacao(from(SituacaoFrom::BlingSituacaoId(24))).await.unwrap().into_inner();
    assert_eq!(by_id.map.unwrap().shipping_status(), ShippingStatus::InPackingList);
    let by_status = c
        .translate_situacao(from(SituacaoFrom::ShippingStatus(ShippingStatus::Delivered as i32)))
        .await
        .unwrap()
        .into_inner()
        .map
        .unwrap();
    assert_eq!((by_status.bling_situacao_id, by_status.bling_situacao_name.as_str()), (9, "Atendido"));
    let released = c.translate_situacao(from(SituacaoFrom::BlingSituacaoId(15))).await.unwrap().into_inner();
    assert!(released.map.unwrap().releases_to_shipping);
    refused(c.translate_situacao(from(SituacaoFrom::BlingSituacaoId(77))).await, Code::NotFound, "Bling situação 77");
    refused(
        c.translate_situacao(from(SituacaoFrom::ShippingStatus(ShippingStatus::InTransit as i32))).await,
        Code::NotFound,
        "SHIPPING_STATUS_IN_TRANSIT",
    );
    refused(
        c.translate_situacao(TranslateSituacaoRequest { tenant_id: "loja".into(), from: None }).await,
        Code::InvalidArgument,
        "from: ",
    );
    refused(
        c.translate_situacao(TranslateSituacaoRequest {
            tenant_id: "ghost".into(),
            from: Some(SituacaoFrom::BlingSituacaoId(15)),
        })
        .await,
        Code::NotFound,
        "tenant 'ghost'",
    );

    // Deleting the releasing situação frees the release (and its status) for another.
    c.delete_situacao_map(DeleteSituacaoMapRequest { tenant_id: "loja".into(), bling_situacao_id: 15 }).await.unwrap();
    c.create_situacao_map(situacao(31, "Liberado", ShippingStatus::Received, true)).await.unwrap();
    let listed = c.list_situacao_maps(ListSituacaoMapsRequest { tenant_id: "loja".into() }).await.unwrap().into_inner();
    assert_eq!(listed.maps.iter().map(|m| m.bling_situacao_id).collect::<Vec<_>>(), [9, 24, 31]);
    refused(
        c.delete_situacao_map(DeleteSituacaoMapRequest { tenant_id: "loja".into(), bling_situacao_id: 15 }).await,
        Code::NotFound,
        "situação 15",
    );
    mesh.shutdown().await;
}

#[tokio::test]
async fn field_mappings_validate_transforms_and_translate_products_three_ways() {
    let (mesh, mut c) = start().await;
    use MappingDirection::{OneWay, TwoWay};
    use MappingTarget::{Bitrix24, Cplug};

    // Every tenant starts with the fixed Bitrix24 set, which cannot be deleted.
    let listed = c
        .list_field_mappings(ListFieldMappingsRequest { tenant_id: "loja".into(), target: 0 })
        .await
        .unwrap()
        .into_inner()
        .mappings;
    let fixed: Vec<(&str, &str, bool)> =
        listed.iter().map(|m| (m.bling_field.as_str(), m.target_field.as_str(), m.builtin)).collect();
    assert_eq!(
        fixed,
        [
            ("id", "PROPERTY_BLING_ID", true),
            ("nome", "NAME", true),
            ("codigo", "XML_ID", true),
            ("preco", "PRICE", true),
            ("situacao", "ACTIVE", true)
        ]
    );
    assert!(listed.iter().all(|m| m.direction() == TwoWay && m.target() == Bitrix24));
    refused(
        c.delete_field_mapping(DeleteFieldMappingRequest {
            tenant_id: "loja".into(),
            mapping_id: "builtin-nome".into(),
        })
        .await,
        Code::InvalidArgument,
        "mapping_id: 'builtin-nome' is part of the fixed Bitrix24 set",
    );

    // Bad transforms are refused, naming the step and field.
    refused(
        c.create_field_mapping(mapping(
            Bitrix24,
            "preco",
            "PROPERTY_7",
            OneWay,
            vec![value_map(&[("1", "2")]), number_format(2, ";")],
        ))
        .await,
        Code::InvalidArgument,
        r#"mapping.transforms[1].number_format.decimal_separator: must be "." or ","#,
    );
    let m = refused(
        c.create_field_mapping(mapping(
            Bitrix24,
            "descricaoCurta",
            "PROPERTY_8",
            TwoWay,
            vec![Kind::Truncate(TruncateTransform { max_chars: 40 })],
        ))
        .await,
        Code::InvalidArgument,
        "mapping.transforms[0].truncate: cannot be inverted",
    );
    assert!(m.contains("ONE_WAY"), "{m}");
    refused(
        c.create_field_mapping(mapping(
            Bitrix24,
            "tipo",
            "PROPERTY_9",
            TwoWay,
            vec![value_map(&[("P", "x"), ("S", "x")])],
        ))
        .await,
        Code::InvalidArgument,
        "mapping.transforms[0].value_map: cannot be inverted: it maps both 'P' and 'S' to 'x'",
    );
    refused(
        c.create_field_mapping(mapping(Cplug, "nome", "name", TwoWay, vec![])).await,
        Code::InvalidArgument,
        "mapping.direction: ",
    );
    refused(
        c.create_field_mapping(mapping(Bitrix24, "nome", "a.b", OneWay, vec![])).await,
        Code::InvalidArgument,
        "mapping.target_field: ",
    );
    refused(
        c.create_field_mapping(mapping(
            Bitrix24,
            "nome",
            "PROPERTY_1",
            OneWay,
            vec![Kind::Truncate(TruncateTransform { max_chars: 0 })],
        ))
        .await,
        Code::InvalidArgument,
        "mapping.transforms[0].truncate.max_chars: ",
    );
    let mut ghost = mapping(Cplug, "nome", "name", OneWay, vec![]);
    ghost.mapping.as_mut().unwrap().tenant_id = "ghost".into();
    refused(c.create_field_mapping(ghost).await, Code::NotFound, "tenant 'ghost'");
    // The fixed set's target fields and two-way Bling fields are taken.
    refused(
        c.create_field_mapping(mapping(Bitrix24, "marca", "NAME", OneWay, vec![])).await,
        Code::AlreadyExists,
        "Bitrix24 field 'NAME'",
    );
    refused(
        c.create_field_mapping(mapping(Bitrix24, "nome", "PROPERTY_11", TwoWay, vec![])).await,
        Code::AlreadyExists,
        "Bling field 'nome'",
    );

    // The tenant's own mappings.
    let price_text = c
        .create_field_mapping(as_actor(
            mapping(Bitrix24, "fornecedor.precoCusto", "PROPERTY_120", TwoWay, vec![number_format(2, ",")]),
            "ana",
        ))
        .await
        .unwrap()
        .into_inner()
        .mapping
        .unwrap();
    assert!(!price_text.builtin && price_text.mapping_id.len() == 36 && price_text.create_time.is_some());
    c.create_field_mapping(mapping(
        Bitrix24,
        "formato",
        "PROPERTY_121",
        TwoWay,
        vec![value_map(&[("S", "simples"), ("V", "com variações")])],
    ))
    .await
    .unwrap();
    c.create_field_mapping(mapping(
        Bitrix24,
        "nome",
        "PROPERTY_122",
        OneWay,
        vec![
            Kind::Concatenate(ConcatenateTransform { source_fields: vec!["codigo".into()], separator: " / ".into() }),
            Kind::Truncate(TruncateTransform { max_chars: 16 }),
        ],
    ))
    .await
    .unwrap();
    c.create_field_mapping(mapping(Cplug, "id", "external_id", OneWay, vec![])).await.unwrap();
    c.create_field_mapping(mapping(Cplug, "preco", "price", OneWay, vec![number_format(2, ".")])).await.unwrap();
    c.create_field_mapping(mapping(Cplug, "estoque.minimo", "stock.min", OneWay, vec![])).await.unwrap();
    refused(
        c.create_field_mapping(mapping(Bitrix24, "preco", "PROPERTY_123", TwoWay, vec![number_format(2, ",")])).await,
        Code::AlreadyExists,
        "Bling field 'preco' of tenant 'loja' already has a two-way Bitrix24 mapping (to 'PRICE', mapping builtin-preco)",
    );
    refused(
        c.create_field_mapping(mapping(Bitrix24, "gtin", "PROPERTY_120", OneWay, vec![])).await,
        Code::AlreadyExists,
        "Bitrix24 field 'PROPERTY_120'",
    );

    let product = json!({"id": 16059781281_i64, "nome": "Camiseta azul M", "codigo": "CAM-AZ-M", "preco": 59.9,
                         "situacao": "A", "formato": "V", "estoque": {"minimo": 2}, "unidade": "UN",
                         "fornecedor": {"precoCusto": 31.5, "codigo": "F-1"}});
    let b24 = translate(&mut c, TranslateDirection::BlingToBitrix24, product.clone()).await.unwrap();
    assert_eq!(
        b24,
        json!({"PROPERTY_BLING_ID": 16059781281_i64, "NAME": "Camiseta azul M", "XML_ID": "CAM-AZ-M", "PRICE": 59.9,
               "ACTIVE": "Y", "PROPERTY_120": "31,50", "PROPERTY_121": "com variações",
               "PROPERTY_122": "Camiseta azul M "})
    );
    // Back through the inverse of the two-way mappings: every two-way Bling field as it was.
    let back = translate(&mut c, TranslateDirection::Bitrix24ToBling, b24).await.unwrap();
    assert_eq!(
        back,
        json!({"id": 16059781281_i64, "nome": "Camiseta azul M", "codigo": "CAM-AZ-M", "preco": 59.9, "situacao": "A",
               "formato": "V", "fornecedor": {"precoCusto": 31.5}})
    );
    let from_bitrix = translate(
        &mut c,
        TranslateDirection::Bitrix24ToBling,
        json!({"ID": "410", "NAME": "Caneca", "ACTIVE": "N", "PROPERTY_120": "12,50", "SORT": "500"}),
    )
    .await
    .unwrap();
    assert_eq!(from_bitrix, json!({"nome": "Caneca", "situacao": "I", "fornecedor": {"precoCusto": 12.5}}));
    let cplug = translate(&mut c, TranslateDirection::BlingToCplug, product.clone()).await.unwrap();
    assert_eq!(cplug, json!({"external_id": 16059781281_i64, "price": "59.90", "stock": {"min": 2}}));

    // A value the mapping cannot take is the caller's mistake, named by field.
    let excluded = translate(&mut c, TranslateDirection::BlingToBitrix24, json!({"situacao": "E"})).await;
    refused(excluded, Code::InvalidArgument, "fields.situacao: 'E' has no entry in the value map");
    let garbled = translate(&mut c, TranslateDirection::Bitrix24ToBling, json!({"PROPERTY_120": "doze"})).await;
    refused(garbled, Code::InvalidArgument, "fields.PROPERTY_120: 'doze' is not a number");
    refused(translate(&mut c, TranslateDirection::Unspecified, json!({})).await, Code::InvalidArgument, "direction: ");

    // Deleting a mapping takes it out of the next translation at once.
    c.delete_field_mapping(DeleteFieldMappingRequest {
        tenant_id: "loja".into(),
        mapping_id: price_text.mapping_id.clone(),
    })
    .await
    .unwrap();
    let b24 = translate(&mut c, TranslateDirection::BlingToBitrix24, product.clone()).await.unwrap();
    assert!(b24.get("PROPERTY_120").is_none(), "{b24}");
    refused(
        c.delete_field_mapping(DeleteFieldMappingRequest {
            tenant_id: "loja".into(),
            mapping_id: price_text.mapping_id,
        })
        .await,
        Code::NotFound,
        "field mapping",
    );
    let cplug_only = c
        .list_field_mappings(ListFieldMappingsRequest { tenant_id: "loja".into(), target: Cplug as i32 })
        .await
        .unwrap()
        .into_inner()
        .mappings;
    assert_eq!(
        cplug_only.iter().map(|m| m.target_field.as_str()).collect::<Vec<_>>(),
        ["external_id", "price", "stock.min"]
    );
    mesh.shutdown().await;
}

#[tokio::test]
async fn another_replica_sees_a_new_mapping_within_the_cache_time() {
    let (mesh, mut c) = start().await;
    let replica = mesh.replica(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], Default::default()).await;
    let mut other = MappingServiceClient::new(replica.channel("mapping").await);
    let product = json!({"nome": "Caneca", "marca": "Tramontina"});
    // The replica compiles and caches the tenant's mappings now.
    let before = translate(&mut other, TranslateDirection::BlingToBitrix24, product.clone()).await.unwrap();
    assert!(before.get("PROPERTY_300").is_none());
    c.create_field_mapping(mapping(MappingTarget::Bitrix24, "marca", "PROPERTY_300", MappingDirection::OneWay, vec![]))
        .await
        .unwrap();
    let seen = eventually(ponte_mapping::RULES_TTL + Duration::from_secs(2), || {
        let (mut other, product) = (other.clone(), product.clone());
        async move {
            let now = translate(&mut other, TranslateDirection::BlingToBitrix24, product).await.unwrap();
            now.get("PROPERTY_300") == Some(&json!("Tramontina"))
        }
    })
    .await;
    assert!(seen, "the replica never saw the new mapping");
    replica.shutdown().await;
    mesh.shutdown().await;
}

fn link(kind: EntityKind, a: (Provider, &str), b: (Provider, &str)) -> LinkRequest {
    LinkRequest {
        link: Some(EntityLink {
            tenant_id: "loja".into(),
            kind: kind as i32,
            system_a: a.0 as i32,
            id_a: a.1.into(),
            system_b: b.0 as i32,
            id_b: b.1.into(),
            create_time: None,
        }),
    }
}

fn resolve(kind: EntityKind, from: Provider, id: &str, to: Provider) -> ResolveRequest {
    ResolveRequest {
        tenant_id: "loja".into(),
        kind: kind as i32,
        from_system: from as i32,
        from_id: id.into(),
        to_system: to as i32,
    }
}

#[tokio::test]
async fn links_are_idempotent_unique_both_ways_and_resolve_both_directions() {
    let (mesh, mut c) = start().await;
    use EntityKind::{Order, Product};
    use Provider::{Bitrix24, Bling, Cplug, Envios360};
    assert!(c.link(link(Product, (Bling, "16059781281"), (Bitrix24, "410"))).await.unwrap().into_inner().created);
    // The same pair again, either way round, changes nothing.
    assert!(!c.link(link(Product, (Bling, "16059781281"), (Bitrix24, "410"))).await.unwrap().into_inner().created);
    assert!(!c.link(link(Product, (Bitrix24, "410"), (Bling, "16059781281"))).await.unwrap().into_inner().created);
    let m = refused(
        c.link(link(Product, (Bling, "16059781281"), (Bitrix24, "411"))).await,
        Code::AlreadyExists,
        "product bling '16059781281' is already linked to bitrix24 '410'",
    );
    assert!(!m.is_empty());
    refused(
        c.link(link(Product, (Bling, "999"), (Bitrix24, "410"))).await,
        Code::AlreadyExists,
        "product bitrix24 '410' is already linked to bling '16059781281'",
    );
    // Other kinds and other systems are separate registries.
    c.link(link(Product, (Bling, "16059781281"), (Cplug, "p-1"))).await.unwrap();
    c.link(link(Order, (Bling, "410"), (Envios360, "410"))).await.unwrap();
    refused(c.link(link(Product, (Bling, "1"), (Bling, "2"))).await, Code::InvalidArgument, "link.system_b: ");
    refused(c.link(link(EntityKind::Unspecified, (Bling, "1"), (Cplug, "2"))).await, Code::InvalidArgument, "kind: ");
    refused(c.link(link(Product, (Bling, " "), (Cplug, "2"))).await, Code::InvalidArgument, "link.id_a: ");

    let id = |r: tonic::Response<ponte_proto::v1::ResolveResponse>| r.into_inner().id;
    assert_eq!(id(c.resolve(resolve(Product, Bling, "16059781281", Bitrix24)).await.unwrap()), "410");
    assert_eq!(id(c.resolve(resolve(Product, Bitrix24, "410", Bling)).await.unwrap()), "16059781281");
    assert_eq!(id(c.resolve(resolve(Product, Cplug, "p-1", Bling)).await.unwrap()), "16059781281");
    assert_eq!(id(c.resolve(resolve(Order, Envios360, "410", Bling)).await.unwrap()), "410");
    refused(c.resolve(resolve(Order, Bling, "16059781281", Bitrix24)).await, Code::NotFound, "'16059781281'");
    refused(c.resolve(resolve(Product, Bitrix24, "410", Cplug)).await, Code::NotFound, "'410'");
    let mut ghost = resolve(Product, Bling, "1", Bitrix24);
    ghost.tenant_id = "ghost".into();
    refused(c.resolve(ghost).await, Code::NotFound, "tenant 'ghost'");
    mesh.shutdown().await;
}

#[tokio::test]
async fn the_audit_trail_covers_every_table_with_actor_and_before_and_after() {
    let (mesh, mut c) = start().await;
    c.create_payment_method_map(as_actor(
        CreatePaymentMethodMapRequest {
            map: Some(PaymentMethodMap {
                tenant_id: "loja".into(),
                cplug_method: "PIX".into(),
                bling_forma_pagamento_id: 5,
                is_default: false,
                create_time: None,
            }),
        },
        "ana",
    ))
    .await
    .unwrap();
    c.create_store_map(as_actor(store("loja", "loja-centro", 203, 14), "bruno")).await.unwrap();
    c.delete_store_map(as_actor(
        DeleteStoreMapRequest { tenant_id: "loja".into(), cplug_store_id: "loja-centro".into() },
        "carla",
    ))
    .await
    .unwrap();
    c.create_situacao_map(as_actor(situacao(15, "Em andamento", ShippingStatus::Received, true), "davi"))
        .await
        .unwrap();
    let fm = c
        .create_field_mapping(as_actor(
            mapping(MappingTarget::Bitrix24, "marca", "PROPERTY_5", MappingDirection::OneWay, vec![]),
            "eva",
        ))
        .await
        .unwrap()
        .into_inner()
        .mapping
        .unwrap();
    c.link(as_actor(link(EntityKind::Product, (Provider::Bling, "7"), (Provider::Bitrix24, "8")), "flow"))
        .await
        .unwrap();
    // Repeating a link records nothing; a refused change records nothing.
    c.link(as_actor(link(EntityKind::Product, (Provider::Bling, "7"), (Provider::Bitrix24, "8")), "flow"))
        .await
        .unwrap();
    c.create_store_map(store("loja", "x", 0, 1)).await.unwrap_err();
    // Another tenant's change is not in this tenant's trail.
    c.create_store_map(store("outra", "y", 1, 1)).await.unwrap();

    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_audit_entries(ListAuditEntriesRequest { tenant_id: "loja".into(), page_size: 2, page_token: token })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 2);
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let seen: Vec<(&str, &str, &str, &str)> =
        entries.iter().map(|e| (e.table.as_str(), e.action.as_str(), e.actor.as_str(), e.key.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("link", "create", "flow", "product bitrix24:8 bling:7"),
            ("field_mapping", "create", "eva", fm.mapping_id.as_str()),
            ("situacao", "create", "davi", "15"),
            ("store", "delete", "carla", "loja-centro"),
            ("store", "create", "bruno", "loja-centro"),
            ("payment_method", "create", "ana", "PIX"),
        ]
    );
    let value = |s: &str| -> Value { if s.is_empty() { Value::Null } else { serde_json::from_str(s).unwrap() } };
    assert_eq!(
        value(&entries[3].previous_value),
        json!({"cplug_store_id": "loja-centro", "bling_loja_id": 203, "bling_deposito_id": 14})
    );
    assert_eq!(value(&entries[3].new_value), Value::Null);
    assert_eq!(value(&entries[4].new_value)["bling_deposito_id"], 14);
    assert_eq!(value(&entries[2].new_value)["shipping_status"], "SHIPPING_STATUS_RECEIVED");
    assert_eq!(
        value(&entries[1].new_value),
        json!({"target": "bitrix24", "bling_field": "marca", "target_field": "PROPERTY_5", "direction": "one_way"})
    );
    assert_eq!(value(&entries[0].new_value)["id_b"], "7");
    assert!(entries.iter().all(|e| e.tenant_id == "loja" && e.create_time.is_some()));

    c.delete_field_mapping(as_actor(
        DeleteFieldMappingRequest { tenant_id: "loja".into(), mapping_id: fm.mapping_id.clone() },
        "eva",
    ))
    .await
    .unwrap();
    c.delete_situacao_map(DeleteSituacaoMapRequest { tenant_id: "loja".into(), bling_situacao_id: 15 }).await.unwrap();
    let latest = c
        .list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "loja".into(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(
        (latest[0].table.as_str(), latest[0].action.as_str(), latest[0].actor.as_str()),
        ("situacao", "delete", "unknown")
    );
    assert_eq!(value(&latest[0].previous_value)["bling_situacao_name"], "Em andamento");
    assert_eq!((latest[1].table.as_str(), latest[1].action.as_str()), ("field_mapping", "delete"));
    assert_eq!(value(&latest[1].previous_value)["target_field"], "PROPERTY_5");
    refused(
        c.list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "ghost".into(),
            page_size: 0,
            page_token: String::new(),
        })
        .await,
        Code::NotFound,
        "tenant 'ghost'",
    );
    mesh.shutdown().await;
}

#[tokio::test]
async fn export_and_import_round_trip_through_yaml_and_a_dry_run_changes_nothing() {
    let (mesh, mut c) = start().await;
    c.create_payment_method_map(CreatePaymentMethodMapRequest {
        map: Some(PaymentMethodMap {
            tenant_id: "loja".into(),
            cplug_method: "CREDITO".into(),
            bling_forma_pagamento_id: 7001,
            is_default: true,
            create_time: None,
        }),
    })
    .await
    .unwrap();
    c.create_store_map(store("loja", "loja-centro", 203, 14)).await.unwrap();
    c.create_situacao_map(situacao(15, "Em andamento", ShippingStatus::Received, true)).await.unwrap();
    c.create_situacao_map(situacao(24, "Em romaneio: lote #2", ShippingStatus::InPackingList, false)).await.unwrap();
    c.create_field_mapping(mapping(
        MappingTarget::Bitrix24,
        "formato",
        "PROPERTY_121",
        MappingDirection::TwoWay,
        vec![value_map(&[("S", "yes"), ("V", "no")])],
    ))
    .await
    .unwrap();
    c.create_field_mapping(mapping(
        MappingTarget::Cplug,
        "nome",
        "variation.name",
        MappingDirection::OneWay,
        vec![
            Kind::Concatenate(ConcatenateTransform { source_fields: vec!["codigo".into()], separator: " - ".into() }),
            Kind::Truncate(TruncateTransform { max_chars: 60 }),
            number_format(3, ","),
        ],
    ))
    .await
    .unwrap();

    let exported = document::read(&mut c, "loja").await.unwrap().document;
    let yaml = document::to_yaml(&exported, "loja").unwrap();
    let parsed = document::from_yaml(&yaml).unwrap();
    assert_eq!(parsed, exported);
    assert_eq!(parsed.field_mappings.as_ref().unwrap().len(), 2, "builtins are not exported:\n{yaml}");

    // A dry run into the other tenant lists every entry as a create and changes nothing.
    let empty = document::read(&mut c, "outra").await.unwrap();
    let changes = document::plan(&empty, &parsed).unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("+ ")), "{lines:#?}");
    assert!(
        lines.contains(
            &r#"+ stores loja-centro: {"cplug_store_id":"loja-centro","bling_loja_id":203,"bling_deposito_id":14}"#
                .to_owned()
        )
    );
    let still_empty = document::read(&mut c, "outra").await.unwrap().document;
    assert_eq!(still_empty, empty.document);

    document::apply(&mut c, "outra", &changes, "import-test").await.unwrap();
    let copied = document::read(&mut c, "outra").await.unwrap();
    assert_eq!(document::to_yaml(&copied.document, "loja").unwrap(), yaml, "the copy exports the same YAML");
    assert!(document::plan(&copied, &parsed).unwrap().is_empty(), "importing the same file again changes nothing");

    // An edited file: one store changed, a field mapping dropped, situações left out (untouched).
    let edited = yaml
        .replace("bling_deposito_id: 14", "bling_deposito_id: 15")
        .lines()
        .take_while(|l| !l.starts_with("situacoes:"))
        .collect::<Vec<_>>()
        .join("\n");
    let edited = format!(
        "{edited}\nfield_mappings:\n- target: cplug\n  bling_field: preco\n  target_field: price\n  direction: one_way\n  \
         transforms:\n  - number_format: {{decimals: 2, decimal_separator: '.'}}\n"
    );
    let wanted = document::from_yaml(&edited).unwrap();
    let changes = document::plan(&copied, &wanted).unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(lines[0].starts_with("- stores loja-centro: "), "{lines:#?}");
    assert!(lines.iter().filter(|l| l.starts_with("- field_mappings ")).count() == 2, "{lines:#?}");
    document::apply(&mut c, "outra", &changes, "import-test").await.unwrap();
    let after = document::read(&mut c, "outra").await.unwrap().document;
    assert_eq!(after.stores.unwrap()[0].bling_deposito_id, 15);
    assert_eq!(after.situacoes.unwrap().len(), 2);
    assert_eq!(after.field_mappings.unwrap().iter().map(|f| f.target_field.as_str()).collect::<Vec<_>>(), ["price"]);
    let audit = c
        .list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "outra".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.entries[0].actor, "import-test");

    // A bad file is refused whole, naming the entry, before anything changes.
    let bad = document::from_yaml(&edited.replace("decimal_separator: '.'", "decimal_separator: ';'")).unwrap();
    let err = document::plan(&copied, &bad).unwrap_err().to_string();
    assert_eq!(err, r#"field_mappings[0].transforms[0].number_format.decimal_separator: must be "." or ",""#);
    let err = document::read(&mut c, "ghost").await.unwrap_err().to_string();
    assert!(err.contains("NotFound") && err.contains("ghost"), "{err}");
    mesh.shutdown().await;
}
