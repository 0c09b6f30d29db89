use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::{
    fields::{self, Direction, Spec, Target},
    transform::{Concatenate, NumberFormat, Text, Transform, Truncate, ValueMap},
};

fn sample() -> Document {
    Document {
        version: VERSION,
        payment_methods: Some(vec![
            PaymentMethod { cplug_method: "CREDITO".into(), bling_forma_pagamento_id: 1234, is_default: false },
            PaymentMethod { cplug_method: "yes".into(), bling_forma_pagamento_id: 7, is_default: true },
        ]),
        stores: Some(vec![Store { cplug_store_id: "007".into(), bling_loja_id: 203, bling_deposito_id: 14 }]),
        situacoes: Some(vec![
            Situacao {
                bling_situacao_id: 15,
                bling_situacao_name: "Em andamento".into(),
                shipping_status: Status::Received,
                releases_to_shipping: true,
            },
            Situacao {
                bling_situacao_id: 24,
                bling_situacao_name: "Em romaneio: lote #2".into(),
                shipping_status: Status::InPackingList,
                releases_to_shipping: false,
            },
        ]),
        field_mappings: Some(vec![
            Spec {
                target: Target::Bitrix24,
                bling_field: "marca".into(),
                target_field: "PROPERTY_104".into(),
                direction: Direction::TwoWay,
                transforms: vec![Transform::ValueMap(ValueMap {
                    values: [("N".into(), "no".into()), ("Y".into(), "null".into()), ("~".into(), "1.0".into())].into(),
                    pass_unmapped: false,
                })],
            },
            Spec {
                target: Target::Cplug,
                bling_field: "nome".into(),
                target_field: "variation.name".into(),
                direction: Direction::OneWay,
                transforms: vec![
                    Transform::Concatenate(Concatenate {
                        source_fields: vec!["codigo".into()],
                        separator: " - ".into(),
                    }),
                    Transform::Truncate(Truncate { max_chars: 60 }),
                    Transform::DefaultValue(Text { value: "sem nome\n\"ação\"".into() }),
                    Transform::NumberFormat(NumberFormat { decimals: 2, decimal_separator: ',' }),
                    Transform::Constant(Text { value: String::new() }),
                ],
            },
        ]),
    }
}

#[test]
fn yaml_round_trips_and_reads_like_the_proto() {
    let doc = sample();
    let yaml = to_yaml(&doc, "loja-1").unwrap();
    assert!(yaml.starts_with("# ponte mapping export of tenant 'loja-1'\n"), "{yaml}");
    assert!(yaml.contains("- value_map:"), "{yaml}");
    assert!(yaml.contains("shipping_status: in_packing_list"), "{yaml}");
    assert!(yaml.contains("direction: two_way"), "{yaml}");
    assert_eq!(from_yaml(&yaml).unwrap(), doc);
    validate(&doc).unwrap();
}

#[test]
fn unknown_keys_other_versions_and_absent_sections() {
    assert!(from_yaml("version: 1\nstores: []\nstorez: []\n").is_err());
    assert!(from_yaml("version: 2\n").unwrap_err().to_string().contains("version 2"));
    let typo = "version: 1\nfield_mappings:\n- target: cplug\n  bling_field: a\n  target_field: b\n  \
                direction: one_way\n  transforms:\n  - truncate: {max_char: 3}\n";
    assert!(from_yaml(typo).is_err());
    let only_stores = from_yaml("version: 1\nstores: []\n").unwrap();
    assert_eq!(only_stores.stores, Some(vec![]));
    assert_eq!(only_stores.payment_methods, None);
}

#[test]
fn validation_names_the_entry_in_the_document() {
    let mut doc = sample();
    doc.stores.as_mut().unwrap()[0].bling_deposito_id = 0;
    assert!(validate(&doc).unwrap_err().to_string().starts_with("stores[0].bling_deposito_id: "));
    let mut doc = sample();
    doc.payment_methods.as_mut().unwrap()[0].bling_forma_pagamento_id = -1;
    assert!(validate(&doc).unwrap_err().to_string().starts_with("payment_methods[0].bling_forma_pagamento_id: "));
    let mut doc = sample();
    doc.payment_methods.as_mut().unwrap()[0].is_default = true;
    assert!(validate(&doc).unwrap_err().to_string().starts_with("payment_methods[1].is_default: "));
    let mut doc = sample();
    doc.situacoes.as_mut().unwrap()[1].shipping_status = Status::Received;
    assert!(validate(&doc).unwrap_err().to_string().starts_with("situacoes[1].shipping_status: repeats"));
    let mut doc = sample();
    let fm = doc.field_mappings.as_mut().unwrap();
    fm[0].transforms.push(Transform::Truncate(Truncate { max_chars: 3 }));
    assert!(validate(&doc).unwrap_err().to_string().starts_with("field_mappings[0].transforms[1].truncate: "));
    let mut doc = sample();
    let fm = doc.field_mappings.as_mut().unwrap();
    fm[0].target_field = "NAME".into();
    assert!(validate(&doc).unwrap_err().to_string().contains("builtin-nome"));
    let mut doc = sample();
    let fm = doc.field_mappings.as_mut().unwrap();
    fm.push(fm[1].clone());
    assert!(validate(&doc).unwrap_err().to_string().starts_with("field_mappings[2]: "));
    // A builtin written out as it is changes nothing.
    let mut doc = sample();
    doc.field_mappings.as_mut().unwrap().push(fields::builtins().remove(1).1);
    validate(&doc).unwrap();
}

#[test]
fn the_plan_deletes_what_is_gone_and_recreates_what_changed() {
    let current = Current { document: sample(), field_mapping_ids: HashMap::new() };
    assert_eq!(plan(&current, &sample()).unwrap(), vec![]);
    let mut wanted = sample();
    wanted.stores.as_mut().unwrap()[0].bling_deposito_id = 15;
    wanted.payment_methods.as_mut().unwrap().remove(0);
    wanted.situacoes = None;
    let mut builtin_too = wanted.field_mappings.clone().unwrap();
    builtin_too.push(fields::builtins().remove(0).1);
    wanted.field_mappings = Some(builtin_too);
    let changes = plan(&current, &wanted).unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            r#"- payment_methods CREDITO: {"cplug_method":"CREDITO","bling_forma_pagamento_id":1234,"is_default":false}"#,
            r#"- stores 007: {"cplug_store_id":"007","bling_loja_id":203,"bling_deposito_id":14}"#,
            r#"+ stores 007: {"cplug_store_id":"007","bling_loja_id":203,"bling_deposito_id":15}"#,
        ]
    );
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(vec![
            "", "Y", "N", "yes", "no", "on", "off", "null", "~", "1.0", "0x1F", "007", "-", "- a", ": b", "#c", "'q'",
            "\"dq\"", " lead", "trail ", "a\nb", "\t", "…", "ação"
        ])
        .prop_map(str::to_owned),
    ]
}

proptest! {
    /// Whatever the strings hold, YAML gives back the same document.
    #[test]
    fn any_document_round_trips_through_yaml(
        methods in prop::collection::vec((text(), any::<i64>(), any::<bool>()), 0..4),
        stores in prop::collection::vec((text(), any::<i64>(), any::<i64>()), 0..3),
        names in prop::collection::vec((any::<i64>(), text(), any::<bool>()), 0..3),
        values in prop::collection::btree_map(text(), text(), 0..4),
        strings in prop::collection::vec(text(), 4),
        n in any::<u32>(),
        comma in any::<bool>(),
    ) {
        let doc = Document {
            version: VERSION,
            payment_methods: Some(methods.into_iter().map(|(m, id, d)| PaymentMethod {
                cplug_method: m, bling_forma_pagamento_id: id, is_default: d }).collect()),
            stores: Some(stores.into_iter().map(|(s, l, d)| Store {
                cplug_store_id: s, bling_loja_id: l, bling_deposito_id: d }).collect()),
            situacoes: Some(names.into_iter().map(|(id, name, r)| Situacao {
                bling_situacao_id: id, bling_situacao_name: name, shipping_status: Status::Delivered,
                releases_to_shipping: r }).collect()),
            field_mappings: Some(vec![Spec {
                target: Target::Cplug,
                bling_field: strings[0].clone(),
                target_field: strings[1].clone(),
                direction: Direction::OneWay,
                transforms: vec![
                    Transform::ValueMap(ValueMap { values, pass_unmapped: comma }),
                    Transform::Concatenate(Concatenate {
                        source_fields: vec![strings[2].clone()],
                        separator: strings[3].clone(),
                    }),
                    Transform::NumberFormat(NumberFormat { decimals: n, decimal_separator: if comma { ',' } else { '.' } }),
                    Transform::Truncate(Truncate { max_chars: n }),
                    Transform::Constant(Text { value: strings[3].clone() }),
                ],
            }]),
        };
        let yaml = to_yaml(&doc, "t").unwrap();
        prop_assert_eq!(from_yaml(&yaml).unwrap(), doc);
    }
}
