use ponte_core::error::ServiceError;
use ponte_proto::v1::{FieldMapping, MappingDirection, MappingTarget};
use serde_json::{Value, json};

use super::{
    rules::TenantRules,
    spec::{Direction, Spec, Target, builtins, check_conflicts, overlaps},
    table::all_of,
};
use crate::transform;

#[test]
fn the_builtins_translate_the_fixed_bitrix24_set_both_ways() {
    let rules = TenantRules::compile(&all_of(vec![]));
    let product = json!({"id": 16059781281_i64, "nome": "Camiseta azul M", "codigo": "CAM-AZ-M", "preco": 59.9,
                         "situacao": "A", "formato": "S"});
    let Value::Object(p) = product else { unreachable!() };
    let b24 = transform::forward(&rules.to_bitrix24, &p).unwrap();
    assert_eq!(
        Value::Object(b24.clone()),
        json!({"PROPERTY_BLING_ID": 16059781281_i64, "NAME": "Camiseta azul M", "XML_ID": "CAM-AZ-M",
               "PRICE": 59.9, "ACTIVE": "Y"})
    );
    let back = transform::inverse(&rules.from_bitrix24, &b24).unwrap();
    let mut expected = p.clone();
    expected.remove("formato");
    assert_eq!(back, expected);
    assert!(rules.to_cplug.is_empty());
    for (_, spec) in builtins() {
        spec.validate("mapping").unwrap();
    }
}

#[test]
fn conflicts_name_what_is_already_mapped() {
    let existing = all_of(vec![]);
    let spec = |bling: &str, target: &str, direction| Spec {
        target: Target::Bitrix24,
        bling_field: bling.into(),
        target_field: target.into(),
        direction,
        transforms: vec![],
    };
    let dup = check_conflicts("t", &spec("marca", "NAME", Direction::OneWay), &existing).unwrap_err();
    assert!(matches!(&dup, ServiceError::AlreadyExists(m) if m.contains("'NAME'") && m.contains("builtin-nome")));
    let two = check_conflicts("t", &spec("nome", "PROPERTY_7", Direction::TwoWay), &existing).unwrap_err();
    assert!(matches!(&two, ServiceError::AlreadyExists(m) if m.contains("Bling field 'nome'")), "{two}");
    // One way, the same Bling field may feed several targets.
    check_conflicts("t", &spec("nome", "PROPERTY_7", Direction::OneWay), &existing).unwrap();
    let nested = [("m1".to_owned(), Spec { target: Target::Cplug, ..spec("estoque", "stock", Direction::OneWay) })];
    let over = Spec { target: Target::Cplug, ..spec("estoque.minimo", "stock.min", Direction::OneWay) };
    assert_eq!(
        check_conflicts("t", &over, &nested).unwrap_err().to_string(),
        "mapping.target_field: 'stock.min' overlaps 'stock' (mapping m1)"
    );
    assert!(overlaps("a.b", "a") && overlaps("a", "a") && !overlaps("ab", "a") && !overlaps("a.b", "a.c"));
}

#[test]
fn two_way_cplug_mappings_and_builtin_flags_are_refused() {
    let mut m = FieldMapping {
        target: MappingTarget::Cplug as i32,
        bling_field: "nome".into(),
        target_field: "name".into(),
        direction: MappingDirection::TwoWay as i32,
        ..Default::default()
    };
    assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.direction: "));
    m.direction = MappingDirection::OneWay as i32;
    assert!(Spec::from_proto("mapping", &m).is_ok());
    m.builtin = true;
    assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.builtin: "));
    m.builtin = false;
    m.direction = 0;
    assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.direction: "));
    m.direction = MappingDirection::OneWay as i32;
    m.target = MappingTarget::Bitrix24 as i32;
    m.target_field = "a.b".into();
    assert!(Spec::from_proto("mapping", &m).unwrap_err().to_string().starts_with("mapping.target_field: "));
}
