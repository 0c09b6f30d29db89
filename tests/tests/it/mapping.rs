//! The mapping service end to end over gRPC, on real PostgreSQL: stores, situações, field
//! mappings with transforms and `TranslateProduct`, the link registry, the audit trail of every
//! table, and the YAML export/import that `ponte mapping` runs. Every Bling id a map names is
//! checked against the tenant's account in the Bling sandbox: ids it has are accepted, others
//! refused naming the field, one created after the list was read is found by reading it again,
//! a tenant without Bling is told to connect it, and a Bling that cannot answer makes the write
//! UNAVAILABLE with nothing stored. An import reads each Bling list once.

use std::time::Duration;

use ponte_core::{
    error::retry_after,
    structs::{from_struct, to_struct},
};
use ponte_mapping::document;
use ponte_proto::v1::{
    BatchLinkRequest, BatchResolveRequest, ConcatenateTransform, CreateFieldMappingRequest,
    CreatePaymentMethodMapRequest, CreateSituacaoMapRequest, CreateStoreMapRequest, CreateTenantRequest,
    DeleteFieldMappingRequest, DeleteSituacaoMapRequest, DeleteStoreMapRequest, EntityKind, EntityLink, FieldMapping,
    GetAccessTokenRequest, LinkRequest, ListAuditEntriesRequest, ListFieldMappingsRequest,
    ListPaymentMethodMapsRequest, ListSituacaoMapsRequest, ListStoreMapsRequest, MappingDirection, MappingTarget,
    NumberFormatTransform, PaymentMethodMap, Provider, ResolveRequest, ResolveStoreRequest, ShippingStatus,
    SituacaoMap, StoreMap, Transform, TranslateDirection, TranslateProductRequest, TranslateSituacaoRequest,
    TruncateTransform, ValueMapTransform, auth_token_service_client::AuthTokenServiceClient,
    mapping_service_client::MappingServiceClient, transform::Kind, translate_situacao_request::From as SituacaoFrom,
};
use ponte_sandbox::{
    bling::{CANAL_PDV, Config, DEPOSITO_GERAL, DEPOSITOS, FORMAS, MODULO_VENDAS},
    common::FaultSettings,
};
use ponte_tests::Channel;
use ponte_tests::{eventually, redis_url, webhooks::BlingWorld};
use serde_json::{Value, json};
use tonic::{Code, Status};

type Client = MappingServiceClient<Channel>;

/// The sandbox account's formas de pagamento (Dinheiro, Cartão de crédito, Cartão de débito, Pix).
const DINHEIRO: i64 = FORMAS[0].0;
const CREDITO: i64 = FORMAS[1].0;
const DEBITO: i64 = FORMAS[2].0;
const PIX: i64 = FORMAS[3].0;
/// Its other depósito, beside the general one.
const DEPOSITO_CENTRO: i64 = DEPOSITOS[1].0;

/// The Bling sandbox, a mesh of auth-token and mapping, tenant `loja` connected to the
/// sandbox's account and tenant `outra` without Bling.
async fn start() -> (BlingWorld, Client) {
    // The sandbox takes any pace: the tests' own calls to it do not spend ponte's budget.
    let config = Config { per_second: 1000, ..Config::default() };
    let world = BlingWorld::start_with(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], config, &redis_url()).await;
    AuthTokenServiceClient::new(world.mesh.channel("auth-token").await)
        .create_tenant(CreateTenantRequest { tenant_id: "outra".into(), display_name: "outra".into() })
        .await
        .unwrap();
    let client = MappingServiceClient::new(world.mesh.channel("mapping").await);
    (world, client)
}

/// Creates something in the tenant's Bling account, as the merchant would (`POST path`); its id.
async fn create_in_bling(w: &BlingWorld, path: &str, body: Value) -> i64 {
    let token = AuthTokenServiceClient::new(w.mesh.channel("auth-token").await)
        .get_access_token(GetAccessTokenRequest {
            tenant_id: "loja".into(),
            provider: Provider::Bling as i32,
            rejected_token_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let url = format!("{}{path}", w.bling.base_url);
    let created: Value =
        reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap().json().await.unwrap();
    created["data"]["id"].as_i64().unwrap_or_else(|| panic!("not created: {created}"))
}

/// The API requests the Bling sandbox has answered.
fn bling_requests(w: &BlingWorld) -> u64 {
    w.bling.bling.stats().api_requests
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

fn payment(tenant: &str, method: &str, forma: i64, default: bool) -> CreatePaymentMethodMapRequest {
    CreatePaymentMethodMapRequest {
        map: Some(PaymentMethodMap {
            tenant_id: tenant.into(),
            cplug_method: method.into(),
            bling_forma_pagamento_id: forma,
            is_default: default,
            create_time: None,
        }),
        validate_only: false,
    }
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
        validate_only: false,
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
        validate_only: false,
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
    let (w, mut c) = start().await;
    let created = c.create_store_map(as_actor(store("loja", " loja-centro ", CANAL_PDV, DEPOSITO_CENTRO), "ana"));
    let created = created.await.unwrap().into_inner().map.unwrap();
    assert_eq!(created.cplug_store_id, "loja-centro");
    assert!(created.create_time.is_some());
    c.create_store_map(store("loja", "loja-shopping", CANAL_PDV, DEPOSITO_GERAL)).await.unwrap();

    refused(
        c.create_store_map(store("loja", "loja-centro", CANAL_PDV, DEPOSITO_GERAL)).await,
        Code::AlreadyExists,
        "store 'loja-centro'",
    );
    refused(c.create_store_map(store("ghost", "x", 1, 1)).await, Code::NotFound, "tenant 'ghost'");
    refused(c.create_store_map(store("loja", " ", 1, 1)).await, Code::InvalidArgument, "map.cplug_store_id: ");
    refused(c.create_store_map(store("loja", "x", 0, 1)).await, Code::InvalidArgument, "map.bling_loja_id: ");
    refused(c.create_store_map(store("loja", "x", 1, -3)).await, Code::InvalidArgument, "map.bling_deposito_id: ");
    refused(
        c.create_store_map(CreateStoreMapRequest { map: None, validate_only: false }).await,
        Code::InvalidArgument,
        "map: ",
    );
    // The loja and the depósito must be the account's.
    refused(
        c.create_store_map(store("loja", "x", 203, DEPOSITO_GERAL)).await,
        Code::InvalidArgument,
        "map.bling_loja_id: 203 is not a canal de venda (loja) of this Bling account",
    );
    refused(
        c.create_store_map(store("loja", "x", CANAL_PDV, 14)).await,
        Code::InvalidArgument,
        "map.bling_deposito_id: 14 is not a depósito of this Bling account",
    );

    let resolved = c
        .resolve_store(ResolveStoreRequest { tenant_id: "loja".into(), cplug_store_id: "loja-centro".into() })
        .await
        .unwrap()
        .into_inner()
        .map
        .unwrap();
    assert_eq!((resolved.bling_loja_id, resolved.bling_deposito_id), (CANAL_PDV, DEPOSITO_CENTRO));
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
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn situacoes_translate_both_ways_with_one_release_and_one_situacao_per_status() {
    let (w, mut c) = start().await;
    // "Em romaneio" is the merchant's own situação; the others are Bling's defaults.
    let romaneio = json!({"idModuloSistema": MODULO_VENDAS, "nome": "Em romaneio", "idHerdado": 15, "cor": "#1E90FF"});
    let romaneio = create_in_bling(&w, "/situacoes", romaneio).await;
    c.create_situacao_map(situacao(15, "Em andamento", ShippingStatus::Received, true)).await.unwrap();
    c.create_situacao_map(situacao(romaneio, "Em romaneio", ShippingStatus::InPackingList, false)).await.unwrap();
    c.create_situacao_map(situacao(9, "Atendido", ShippingStatus::Delivered, false)).await.unwrap();

    let m = refused(
        c.create_situacao_map(situacao(15, "Outra", ShippingStatus::Cancelled, false)).await,
        Code::AlreadyExists,
        "situação 15",
    );
    assert!(m.contains("Em andamento"), "{m}");
    let m = refused(
        c.create_situacao_map(situacao(18, "Venda agenciada", ShippingStatus::InPackingList, false)).await,
        Code::AlreadyExists,
        "SHIPPING_STATUS_IN_PACKING_LIST",
    );
    assert!(m.contains(&romaneio.to_string()), "{m}");
    let m = refused(
        c.create_situacao_map(situacao(21, "Em digitação", ShippingStatus::AwaitingShipment, true)).await,
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
    refused(
        c.create_situacao_map(situacao(77, "Fantasma", ShippingStatus::InTransit, false)).await,
        Code::InvalidArgument,
        "map.bling_situacao_id: 77 is not a situação of the Vendas module of this Bling account",
    );

    let from = |f: SituacaoFrom| TranslateSituacaoRequest { tenant_id: "loja".into(), from: Some(f) };
    let by_id = c.translate_situacao(from(SituacaoFrom::BlingSituacaoId(romaneio))).await.unwrap().into_inner();
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
    c.create_situacao_map(situacao(6, "Em aberto", ShippingStatus::Received, true)).await.unwrap();
    let listed = c.list_situacao_maps(ListSituacaoMapsRequest { tenant_id: "loja".into() }).await.unwrap().into_inner();
    assert_eq!(listed.maps.iter().map(|m| m.bling_situacao_id).collect::<Vec<_>>(), [6, 9, romaneio]);
    refused(
        c.delete_situacao_map(DeleteSituacaoMapRequest { tenant_id: "loja".into(), bling_situacao_id: 15 }).await,
        Code::NotFound,
        "situação 15",
    );
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn field_mappings_validate_transforms_and_translate_products_three_ways() {
    let (w, mut c) = start().await;
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
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn another_replica_sees_a_new_mapping_within_the_cache_time() {
    let (w, mut c) = start().await;
    let replica = w.mesh.replica(&[&ponte_auth_token::SPEC, &ponte_mapping::SPEC], Default::default()).await;
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
    w.mesh.shutdown().await;
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
    let (w, mut c) = start().await;
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
    refused(
        c.link(link(EntityKind::Unspecified, (Bling, "1"), (Cplug, "2"))).await,
        Code::InvalidArgument,
        "link.kind: ",
    );
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
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn batch_links_hold_or_say_why_each_one_was_refused_and_batch_resolve_answers_the_linked() {
    let (w, mut c) = start().await;
    use EntityKind::Product;
    use Provider::{Bitrix24, Bling};
    let one = |a: &str, b: &str| link(Product, (Bling, a), (Bitrix24, b)).link.unwrap();
    c.link(link(Product, (Bling, "1"), (Bitrix24, "101"))).await.unwrap();
    let results = c
        .batch_link(BatchLinkRequest {
            links: vec![
                one("1", "101"), // already there
                one("2", "102"), // new
                one("3", "101"), // 101 is Bling 1's
                one("2", "103"), // Bling 2 was linked by this very batch
                one("4", "104"), // new
                one("450", "1450"),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let got: Vec<(bool, &str)> = results.iter().map(|r| (r.created, r.conflict.as_str())).collect();
    assert_eq!(
        got,
        [
            (false, ""),
            (true, ""),
            (false, "product bitrix24 '101' is already linked to bling '1'"),
            (false, "product bling '2' is already linked to bitrix24 '102'"),
            (true, ""),
            (true, ""),
        ]
    );
    assert_eq!(results[1].link.as_ref().unwrap().id_b, "102");
    // Each new link is audited, and only those.
    let audited = c
        .list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "loja".into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let mut keys: Vec<&str> = audited.iter().filter(|e| e.table == "link").map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "product bitrix24:101 bling:1",
            "product bitrix24:102 bling:2",
            "product bitrix24:104 bling:4",
            "product bitrix24:1450 bling:450"
        ]
    );

    let ids = |from: Provider, ids: &[&str], to: Provider| BatchResolveRequest {
        tenant_id: "loja".into(),
        kind: Product as i32,
        from_system: from as i32,
        from_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        to_system: to as i32,
    };
    let found = c.batch_resolve(ids(Bling, &["1", "2", "3", "4"], Bitrix24)).await.unwrap().into_inner().ids;
    let expected: std::collections::HashMap<String, String> =
        [("1", "101"), ("2", "102"), ("4", "104")].map(|(a, b)| (a.to_owned(), b.to_owned())).into();
    assert_eq!(found, expected, "Bling 3 is not linked");
    let back = c.batch_resolve(ids(Bitrix24, &["104", "999"], Bling)).await.unwrap().into_inner().ids;
    assert_eq!(back.into_iter().collect::<Vec<_>>(), [("104".to_owned(), "4".to_owned())]);
    let many: Vec<String> = (0..600).map(|n| n.to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    // 600 ids go in more than one statement; 1, 2, 4 and 450 are linked.
    assert_eq!(c.batch_resolve(ids(Bling, &many, Bitrix24)).await.unwrap().into_inner().ids.len(), 4);

    // Bad batches are refused whole, naming the item.
    let mut elsewhere = one("5", "105");
    elsewhere.tenant_id = "outra".into();
    let bad = c.batch_link(BatchLinkRequest { links: vec![one("6", "106"), elsewhere] }).await;
    refused(bad, Code::InvalidArgument, "links[1].tenant_id: ");
    let bad = c.batch_link(BatchLinkRequest { links: vec![one("6", "106"), one(" ", "107")] }).await;
    refused(bad, Code::InvalidArgument, "links[1].id_a: ");
    let too_many = BatchLinkRequest { links: (0..1001).map(|n| one(&n.to_string(), &n.to_string())).collect() };
    refused(c.batch_link(too_many).await, Code::InvalidArgument, "links: at most 1000");
    refused(c.batch_resolve(ids(Bling, &["1", ""], Bitrix24)).await, Code::InvalidArgument, "from_ids[1]: ");
    assert!(c.batch_resolve(ids(Bling, &["6"], Bitrix24)).await.unwrap().into_inner().ids.is_empty());
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn the_audit_trail_covers_every_table_with_actor_and_before_and_after() {
    let (w, mut c) = start().await;
    c.create_payment_method_map(as_actor(payment("loja", "PIX", PIX, false), "ana")).await.unwrap();
    c.create_store_map(as_actor(store("loja", "loja-centro", CANAL_PDV, DEPOSITO_CENTRO), "bruno")).await.unwrap();
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
    c.create_payment_method_map(payment("loja", "VALE", 5, false)).await.unwrap_err();
    // Another tenant's change is not in this tenant's trail.
    let mut other = mapping(MappingTarget::Cplug, "nome", "name", MappingDirection::OneWay, vec![]);
    other.mapping.as_mut().unwrap().tenant_id = "outra".into();
    c.create_field_mapping(other).await.unwrap();

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
        json!({"cplug_store_id": "loja-centro", "bling_loja_id": CANAL_PDV, "bling_deposito_id": DEPOSITO_CENTRO})
    );
    assert_eq!(value(&entries[3].new_value), Value::Null);
    assert_eq!(value(&entries[4].new_value)["bling_deposito_id"], DEPOSITO_CENTRO);
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
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn export_and_import_round_trip_through_yaml_and_a_dry_run_changes_nothing() {
    let (w, mut c) = start().await;
    c.create_payment_method_map(payment("loja", "CREDITO", CREDITO, true)).await.unwrap();
    c.create_store_map(store("loja", "loja-centro", CANAL_PDV, DEPOSITO_GERAL)).await.unwrap();
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

    // Into a tenant without Bling, a dry run lists every entry as a create, and it and the import
    // stop before any change: the Bling ids cannot be checked.
    let empty = document::read(&mut c, "outra").await.unwrap();
    let changes = document::plan(&empty, &parsed).unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("+ ")), "{lines:#?}");
    let store_line = format!(
        r#"+ stores loja-centro: {{"cplug_store_id":"loja-centro","bling_loja_id":{CANAL_PDV},"bling_deposito_id":{DEPOSITO_GERAL}}}"#
    );
    assert!(lines.contains(&store_line), "{lines:#?}");
    let err = format!("{:#}", document::check(&mut c, "outra", &changes, "import-test").await.unwrap_err());
    assert!(err.contains("FailedPrecondition") && err.contains("Bling must be connected first"), "{err}");
    let err = format!("{:#}", document::apply(&mut c, "outra", &changes, "import-test").await.unwrap_err());
    assert!(err.contains("(no change was made)"), "{err}");
    assert_eq!(document::read(&mut c, "outra").await.unwrap().document, empty.document);

    // Emptied by an import of empty sections, then given the exported file: the same YAML again.
    let nothing =
        document::from_yaml("version: 1\npayment_methods: []\nstores: []\nsituacoes: []\nfield_mappings: []\n")
            .unwrap();
    let changes = document::plan(&document::read(&mut c, "loja").await.unwrap(), &nothing).unwrap();
    assert_eq!(changes.len(), 6, "{changes:#?}");
    document::apply(&mut c, "loja", &changes, "import-test").await.unwrap();
    let emptied = document::read(&mut c, "loja").await.unwrap();
    let changes = document::plan(&emptied, &parsed).unwrap();
    // What a dry run does: the service checks every entry and nothing changes.
    document::check(&mut c, "loja", &changes, "import-test").await.unwrap();
    assert_eq!(document::read(&mut c, "loja").await.unwrap().document, emptied.document);
    document::apply(&mut c, "loja", &changes, "import-test").await.unwrap();
    let copied = document::read(&mut c, "loja").await.unwrap();
    assert_eq!(document::to_yaml(&copied.document, "loja").unwrap(), yaml, "the import exports the same YAML");
    assert!(document::plan(&copied, &parsed).unwrap().is_empty(), "importing the same file again changes nothing");

    // An edited file: one store changed, a field mapping dropped, situações left out (untouched).
    let edited = yaml
        .replace(&format!("bling_deposito_id: {DEPOSITO_GERAL}"), &format!("bling_deposito_id: {DEPOSITO_CENTRO}"))
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
    document::apply(&mut c, "loja", &changes, "import-test").await.unwrap();
    let after = document::read(&mut c, "loja").await.unwrap();
    assert_eq!(after.document.stores.as_ref().unwrap()[0].bling_deposito_id, DEPOSITO_CENTRO);
    assert_eq!(after.document.situacoes.as_ref().unwrap().len(), 2);
    let targets: Vec<&str> =
        after.document.field_mappings.as_ref().unwrap().iter().map(|f| f.target_field.as_str()).collect();
    assert_eq!(targets, ["price"]);
    let audit = c
        .list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "loja".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(audit.entries[0].actor, "import-test");

    // A file naming an id the Bling account does not have is refused before anything changes.
    let unknown = edited
        .replace(&format!("bling_forma_pagamento_id: {CREDITO}"), "bling_forma_pagamento_id: 7001")
        .replace(&format!("bling_deposito_id: {DEPOSITO_CENTRO}"), &format!("bling_deposito_id: {DEPOSITO_GERAL}"));
    let changes = document::plan(&after, &document::from_yaml(&unknown).unwrap()).unwrap();
    assert_eq!(changes.len(), 4, "{changes:#?}");
    let err = format!("{:#}", document::apply(&mut c, "loja", &changes, "import-test").await.unwrap_err());
    assert!(err.starts_with("+ payment_methods CREDITO: "), "{err}");
    assert!(
        err.contains("map.bling_forma_pagamento_id: 7001 is not a forma de pagamento of this Bling account"),
        "{err}"
    );
    assert!(err.contains("(no change was made)"), "{err}");
    assert_eq!(document::read(&mut c, "loja").await.unwrap().document, after.document);

    // A bad file is refused whole, naming the entry, before anything changes.
    let bad = document::from_yaml(&edited.replace("decimal_separator: '.'", "decimal_separator: ';'")).unwrap();
    let err = document::plan(&copied, &bad).unwrap_err().to_string();
    assert_eq!(err, r#"field_mappings[0].transforms[0].number_format.decimal_separator: must be "." or ",""#);
    let err = document::read(&mut c, "ghost").await.unwrap_err().to_string();
    assert!(err.contains("NotFound") && err.contains("ghost"), "{err}");
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn payment_methods_name_formas_de_pagamento_of_the_tenants_bling_account() {
    let (w, mut c) = start().await;
    let before = bling_requests(&w);
    let created = c.create_payment_method_map(payment("loja", "CREDITO", CREDITO, false)).await.unwrap();
    assert_eq!(created.into_inner().map.unwrap().bling_forma_pagamento_id, CREDITO);
    c.create_payment_method_map(payment("loja", "DEBITO", DEBITO, false)).await.unwrap();
    assert_eq!(bling_requests(&w) - before, 1, "the list read for the first map serves the second");

    // An id the account does not have is looked for in a fresh list, then refused.
    refused(
        c.create_payment_method_map(payment("loja", "VALE", 123, false)).await,
        Code::InvalidArgument,
        "map.bling_forma_pagamento_id: 123 is not a forma de pagamento of this Bling account",
    );
    assert_eq!(bling_requests(&w) - before, 2);
    // Local mistakes are refused before Bling is asked.
    refused(
        c.create_payment_method_map(payment("loja", "VALE", 0, false)).await,
        Code::InvalidArgument,
        "map.bling_forma_pagamento_id: must be a Bling id",
    );
    assert_eq!(bling_requests(&w) - before, 2);

    // validate_only checks the map, its Bling id included, and stores nothing.
    let mut check = payment("loja", " PIX ", PIX, true);
    check.validate_only = true;
    let checked = c.create_payment_method_map(check).await.unwrap().into_inner().map.unwrap();
    assert_eq!((checked.cplug_method.as_str(), checked.create_time), ("PIX", None));
    let mut check = payment("loja", "VALE", 123, false);
    check.validate_only = true;
    refused(c.create_payment_method_map(check).await, Code::InvalidArgument, "map.bling_forma_pagamento_id: 123 ");

    let listed = c
        .list_payment_method_maps(ListPaymentMethodMapsRequest { tenant_id: "loja".into() })
        .await
        .unwrap()
        .into_inner()
        .maps;
    assert_eq!(listed.iter().map(|m| m.cplug_method.as_str()).collect::<Vec<_>>(), ["CREDITO", "DEBITO"]);
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn an_id_created_in_bling_after_its_list_was_read_is_found_by_reading_it_again() {
    let (w, mut c) = start().await;
    c.create_payment_method_map(payment("loja", "DINHEIRO", DINHEIRO, true)).await.unwrap();
    c.create_situacao_map(situacao(15, "Em andamento", ShippingStatus::Received, true)).await.unwrap();

    // The merchant adds a forma de pagamento and a situação in Bling, within the lists' cache time.
    let vale = json!({"descricao": "Vale-Troca", "tipoPagamento": 21, "finalidade": 3, "destino": 1});
    let vale = create_in_bling(&w, "/formas-pagamentos", vale).await;
    let romaneio = json!({"idModuloSistema": MODULO_VENDAS, "nome": "Em romaneio", "idHerdado": 15, "cor": "#1E90FF"});
    let romaneio = create_in_bling(&w, "/situacoes", romaneio).await;

    let before = bling_requests(&w);
    c.create_payment_method_map(payment("loja", "VALE_TROCA", vale, false)).await.unwrap();
    assert_eq!(bling_requests(&w) - before, 1, "one fresh read of the formas de pagamento");
    c.create_situacao_map(situacao(romaneio, "Em romaneio", ShippingStatus::InPackingList, false)).await.unwrap();
    assert_eq!(bling_requests(&w) - before, 3, "one fresh read of the modules and one of the Vendas situações");
    let translated = c
        .translate_situacao(TranslateSituacaoRequest {
            tenant_id: "loja".into(),
            from: Some(SituacaoFrom::ShippingStatus(ShippingStatus::InPackingList as i32)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(translated.map.unwrap().bling_situacao_id, romaneio);
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn a_tenant_without_bling_is_told_to_connect_it_first() {
    let (w, mut c) = start().await;
    let before = bling_requests(&w);
    let m = refused(
        c.create_payment_method_map(payment("outra", "PIX", PIX, false)).await,
        Code::FailedPrecondition,
        "Bling must be connected first: map.bling_forma_pagamento_id is checked against the tenant's Bling account",
    );
    assert!(m.contains("ponte connections connect bling --tenant outra"), "{m}");
    refused(
        c.create_store_map(store("outra", "loja-centro", CANAL_PDV, DEPOSITO_GERAL)).await,
        Code::FailedPrecondition,
        "Bling must be connected first: map.bling_loja_id ",
    );
    let mut other = situacao(15, "Em andamento", ShippingStatus::Received, true);
    other.map.as_mut().unwrap().tenant_id = "outra".into();
    refused(
        c.create_situacao_map(other).await,
        Code::FailedPrecondition,
        "Bling must be connected first: map.bling_situacao_id ",
    );
    assert_eq!(bling_requests(&w), before);
    let stored = document::read(&mut c, "outra").await.unwrap().document;
    assert!(stored.payment_methods.unwrap().is_empty() && stored.stores.unwrap().is_empty());
    assert!(stored.situacoes.unwrap().is_empty());
    // What names no Bling id needs no Bling connection.
    let mut own = mapping(MappingTarget::Cplug, "nome", "name", MappingDirection::OneWay, vec![]);
    own.mapping.as_mut().unwrap().tenant_id = "outra".into();
    c.create_field_mapping(own).await.unwrap();
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn a_bling_that_cannot_answer_makes_the_write_unavailable_and_stores_nothing() {
    let (w, mut c) = start().await;
    let faults = w.bling.bling.faults();

    faults.set(FaultSettings { error_rate: 1.0, ..FaultSettings::default() });
    let down = c.create_payment_method_map(payment("loja", "PIX", PIX, false)).await.unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{}", down.message());
    assert!(
        down.message()
            .starts_with("map.bling_forma_pagamento_id cannot be checked now: reading the formas de pagamento"),
        "{}",
        down.message()
    );
    assert_eq!(retry_after(&down), Some(Duration::from_secs(1)));

    // Bling's 429 (its per-second limit, spent by another app of the merchant's).
    faults.set(FaultSettings { storm: 1, ..FaultSettings::default() });
    let limited = c.create_store_map(store("loja", "loja-centro", CANAL_PDV, DEPOSITO_GERAL)).await.unwrap_err();
    assert_eq!(limited.code(), Code::Unavailable, "{}", limited.message());
    assert!(limited.message().contains("Bling rate limit"), "{}", limited.message());
    assert_eq!(retry_after(&limited), Some(Duration::from_secs(1)));

    let stored = document::read(&mut c, "loja").await.unwrap().document;
    assert!(stored.payment_methods.unwrap().is_empty() && stored.stores.unwrap().is_empty(), "nothing unchecked");
    let audit = c
        .list_audit_entries(ListAuditEntriesRequest {
            tenant_id: "loja".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(audit.entries.is_empty());

    // Retried once Bling answers, the same writes go through.
    faults.set(FaultSettings::default());
    c.create_payment_method_map(payment("loja", "PIX", PIX, false)).await.unwrap();
    c.create_store_map(store("loja", "loja-centro", CANAL_PDV, DEPOSITO_GERAL)).await.unwrap();
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn an_import_reads_each_bling_list_once_however_many_rows_it_has() {
    use document::{Document, PaymentMethod, Situacao, Status, Store};
    let (w, mut c) = start().await;
    let methods: Vec<PaymentMethod> = (0..20)
        .map(|i| PaymentMethod {
            cplug_method: format!("METODO-{i:02}"),
            bling_forma_pagamento_id: FORMAS[i % FORMAS.len()].0,
            is_default: i == 0,
        })
        .collect();
    let wanted = Document {
        version: document::VERSION,
        payment_methods: Some(methods),
        stores: None,
        situacoes: None,
        field_mappings: None,
    };
    let before = bling_requests(&w);
    let changes = document::plan(&document::read(&mut c, "loja").await.unwrap(), &wanted).unwrap();
    assert_eq!(changes.len(), 20);
    document::apply(&mut c, "loja", &changes, "import-test").await.unwrap();
    assert_eq!(bling_requests(&w) - before, 1, "one read of the formas de pagamento for 20 rows");

    let stores: Vec<Store> = (0..8)
        .map(|i| Store {
            cplug_store_id: format!("loja-{i}"),
            bling_loja_id: CANAL_PDV,
            bling_deposito_id: DEPOSITOS[i % DEPOSITOS.len()].0,
        })
        .collect();
    let situacao = |id, name: &str, shipping_status, releases_to_shipping| Situacao {
        bling_situacao_id: id,
        bling_situacao_name: name.into(),
        shipping_status,
        releases_to_shipping,
    };
    let situacoes = vec![
        situacao(15, "Em andamento", Status::Received, true),
        situacao(24, "Verificado", Status::AwaitingShipment, false),
        situacao(9, "Atendido", Status::Delivered, false),
        situacao(12, "Cancelado", Status::Cancelled, false),
    ];
    let wanted = Document { stores: Some(stores), situacoes: Some(situacoes), payment_methods: None, ..wanted };
    let before = bling_requests(&w);
    let changes = document::plan(&document::read(&mut c, "loja").await.unwrap(), &wanted).unwrap();
    assert_eq!(changes.len(), 12);
    document::apply(&mut c, "loja", &changes, "import-test").await.unwrap();
    assert_eq!(
        bling_requests(&w) - before,
        4,
        "one read each of the canais de venda, the depósitos, the modules and the Vendas situações"
    );
    let stored = document::read(&mut c, "loja").await.unwrap().document;
    assert_eq!((stored.payment_methods.unwrap().len(), stored.stores.unwrap().len()), (20, 8));
    w.mesh.shutdown().await;
}

#[tokio::test]
async fn concurrent_writes_share_one_read_of_a_list() {
    let (w, c) = start().await;
    let before = bling_requests(&w);
    let writes = (0..12).map(|i| {
        let mut c = c.clone();
        async move { c.create_payment_method_map(payment("loja", &format!("M-{i:02}"), FORMAS[i % 4].0, false)).await }
    });
    for written in futures::future::join_all(writes).await {
        written.unwrap();
    }
    assert_eq!(bling_requests(&w) - before, 1, "twelve writes at once, one read of the formas de pagamento");
    w.mesh.shutdown().await;
}
