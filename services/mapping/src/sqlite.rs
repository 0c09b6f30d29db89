//! `ponte dev` runs on SQLite: every table's queries, on a migrated SQLite file.

use ponte_core::{TenantId, db::Database};
use ponte_proto::v1::{
    EntityKind, EntityLink, MappingDirection, MappingTarget, PaymentMethodMap, Provider, ShippingStatus, SituacaoMap,
    StoreMap, TranslateDirection, translate_situacao_request::From as SituacaoFrom,
};
use serde_json::json;

use crate::{
    SPEC, audit,
    depara::{self, Depara, Key},
    fields, links,
    payment_methods::{self, Method},
    situacoes::{self, Situacao},
    stores::{self, Store},
    transform,
};

/// Checks `map` as a create call would, then stores it.
async fn create<T: Depara>(
    db: &Database,
    t: &TenantId,
    map: T::Proto,
) -> Result<depara::Stored<T>, ponte_core::ServiceError> {
    depara::create(db, t, T::prepare("map", map)?, "a").await
}

#[tokio::test]
async fn every_table_reads_and_writes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::sqlite_in(dir.path(), "mapping").await.unwrap();
    db.migrate(SPEC.migrations).await.unwrap();
    let t = &TenantId::parse("loja").unwrap();
    let outra = &TenantId::parse("outra").unwrap();

    let pm = |m: &str, id, d| PaymentMethodMap {
        tenant_id: t.to_string(),
        cplug_method: m.into(),
        bling_forma_pagamento_id: id,
        is_default: d,
        create_time: None,
    };
    create::<Method>(&db, t, pm("CREDITO", 1, false)).await.unwrap();
    create::<Method>(&db, t, pm("DINHEIRO", 2, true)).await.unwrap();
    assert!(create::<Method>(&db, t, pm("PIX", 3, true)).await.is_err());
    let listed = depara::list::<Method>(&db, t).await.unwrap();
    assert_eq!(listed.iter().map(|m| m.map.is_default).collect::<Vec<_>>(), [false, true]);
    let (forma, used_default) = payment_methods::translate(&db, t, "VALE", "").await.unwrap();
    assert_eq!((forma.get(), used_default), (2, true));

    let store = StoreMap {
        tenant_id: t.to_string(),
        cplug_store_id: "centro".into(),
        bling_loja_id: 7,
        bling_deposito_id: 8,
        create_time: None,
    };
    create::<Store>(&db, t, store.clone()).await.unwrap();
    // Another tenant may use the same store id.
    create::<Store>(&db, outra, StoreMap { tenant_id: "outra".into(), bling_deposito_id: 9, ..store }).await.unwrap();
    assert_eq!(stores::resolve(&db, t, "centro").await.unwrap().map.bling_deposito_id.get(), 8);
    depara::delete::<Store>(&db, t, Key::Text("centro"), "a").await.unwrap();
    assert!(depara::list::<Store>(&db, t).await.unwrap().is_empty());
    assert_eq!(stores::resolve(&db, outra, "centro").await.unwrap().map.bling_deposito_id.get(), 9);

    let sit = |id, status: ShippingStatus, r| SituacaoMap {
        tenant_id: t.to_string(),
        bling_situacao_id: id,
        bling_situacao_name: format!("s{id}"),
        shipping_status: status as i32,
        releases_to_shipping: r,
        create_time: None,
    };
    create::<Situacao>(&db, t, sit(15, ShippingStatus::Received, true)).await.unwrap();
    create::<Situacao>(&db, t, sit(16, ShippingStatus::Delivered, false)).await.unwrap();
    assert!(create::<Situacao>(&db, t, sit(17, ShippingStatus::Cancelled, true)).await.is_err());
    let back = situacoes::translate(&db, t, Some(SituacaoFrom::ShippingStatus(ShippingStatus::Received as i32)))
        .await
        .unwrap()
        .map;
    assert!(back.releases_to_shipping && back.bling_situacao_id.get() == 15);
    let fifteen = depara::bling_id("bling_situacao_id", 15).unwrap();
    depara::delete::<Situacao>(&db, t, Key::Bling(fifteen), "a").await.unwrap();
    assert_eq!(depara::list::<Situacao>(&db, t).await.unwrap().len(), 1);

    let rules = fields::RuleCache::default();
    let m = ponte_proto::v1::FieldMapping {
        target: MappingTarget::Cplug as i32,
        bling_field: "preco".into(),
        target_field: "price".into(),
        direction: MappingDirection::OneWay as i32,
        transforms: vec![
            transform::Transform::NumberFormat(transform::NumberFormat { decimals: 2, decimal_separator: ',' })
                .to_proto(),
        ],
        ..Default::default()
    };
    let spec = fields::Spec::from_proto("mapping", &m).unwrap();
    let created = fields::create(&db, &rules, t, spec, "a").await.unwrap();
    let out = fields::translate(
        &db,
        &rules,
        t,
        TranslateDirection::BlingToCplug as i32,
        Some(&ponte_core::structs::to_struct(&json!({"preco": 5}))),
    )
    .await
    .unwrap();
    assert_eq!(ponte_core::structs::from_struct(&out), json!({"price": "5,00"}));
    assert_eq!(fields::list(&db, t, Some(fields::Target::Cplug)).await.unwrap().len(), 1);
    fields::delete(&db, &rules, t, &created.mapping_id, "a").await.unwrap();

    let l = EntityLink {
        tenant_id: t.to_string(),
        kind: EntityKind::Product as i32,
        system_a: Provider::Bling as i32,
        id_a: "1".into(),
        system_b: Provider::Bitrix24 as i32,
        id_b: "2".into(),
        create_time: None,
    };
    assert!(links::link(&db, t, &l, "a").await.unwrap());
    assert!(!links::link(&db, t, &l, "a").await.unwrap());
    let resolved = links::resolve(&db, t, l.kind, l.system_b, "2", l.system_a).await.unwrap();
    assert_eq!(resolved.as_deref(), Some("1"));

    let (entries, _) = audit::list(&db, t, 100, "").await.unwrap();
    let mut tables: Vec<&str> = entries.iter().map(|e| e.table.as_str()).collect();
    tables.dedup();
    assert_eq!(tables, ["link", "field_mapping", "situacao", "store", "payment_method"]);
}
