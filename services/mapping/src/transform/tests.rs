use std::{collections::BTreeMap, str::FromStr};

use ponte_proto::v1 as pb;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::*;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn vmap(pairs: &[(&str, &str)], pass_unmapped: bool) -> Transform {
    Transform::ValueMap(ValueMap {
        values: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        pass_unmapped,
    })
}

fn numfmt(decimals: u32, sep: char) -> Transform {
    Transform::NumberFormat(NumberFormat { decimals, decimal_separator: sep })
}

fn one(rule: Rule, source: Value) -> Result<Map<String, Value>, ValueError> {
    forward(&[rule], &obj(source))
}

#[test]
fn value_map_replaces_and_refuses_or_passes_unmapped_values() {
    let r = Rule::new("m", "situacao", "ACTIVE", &[vmap(&[("A", "Y"), ("I", "N")], false)]);
    assert_eq!(one(r.clone(), json!({"situacao": "A"})).unwrap(), obj(json!({"ACTIVE": "Y"})));
    assert_eq!(one(r.clone(), json!({"situacao": "I"})).unwrap(), obj(json!({"ACTIVE": "N"})));
    let err = one(r.clone(), json!({"situacao": "E"})).unwrap_err();
    assert_eq!(err.field, "situacao");
    assert!(err.message.contains("'E' has no entry"), "{}", err.message);
    assert_eq!(inverse(std::slice::from_ref(&r), &obj(json!({"ACTIVE": "N"}))).unwrap(), obj(json!({"situacao": "I"})));
    assert!(inverse(&[r], &obj(json!({"ACTIVE": "maybe"}))).is_err());

    let pass = Rule::new("m", "tipo", "TYPE", &[vmap(&[("P", "product")], true)]);
    assert_eq!(one(pass.clone(), json!({"tipo": "S"})).unwrap(), obj(json!({"TYPE": "S"})));
    // Numbers are looked up by their text.
    let n = Rule::new("m", "un", "U", &[vmap(&[("1", "one")], false)]);
    assert_eq!(one(n, json!({"un": 1})).unwrap(), obj(json!({"U": "one"})));
}

#[test]
fn absent_and_null_fields_write_nothing_unless_a_step_supplies_a_value() {
    let plain = Rule::new("m", "nome", "NAME", &[]);
    assert!(one(plain.clone(), json!({})).unwrap().is_empty());
    assert!(one(plain, json!({"nome": null})).unwrap().is_empty());
    let dflt = Rule::new("m", "unidade", "MEASURE", &[Transform::DefaultValue(Text { value: "UN".into() })]);
    assert_eq!(one(dflt.clone(), json!({})).unwrap(), obj(json!({"MEASURE": "UN"})));
    assert_eq!(one(dflt.clone(), json!({"unidade": "  "})).unwrap(), obj(json!({"MEASURE": "UN"})));
    assert_eq!(one(dflt, json!({"unidade": "CX"})).unwrap(), obj(json!({"MEASURE": "CX"})));
    let constant = Rule::new("m", "x", "CURRENCY_ID", &[Transform::Constant(Text { value: "BRL".into() })]);
    assert_eq!(one(constant, json!({"x": "USD"})).unwrap(), obj(json!({"CURRENCY_ID": "BRL"})));
}

#[test]
fn number_format_rounds_half_away_from_zero_in_decimal_arithmetic() {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    assert_eq!(format_decimal(d("59.9"), 2, '.'), "59.90");
    assert_eq!(format_decimal(d("59.9"), 2, ','), "59,90");
    assert_eq!(format_decimal(d("0.125"), 2, '.'), "0.13");
    assert_eq!(format_decimal(d("-0.125"), 2, '.'), "-0.13");
    assert_eq!(format_decimal(d("-0.001"), 2, '.'), "0.00");
    assert_eq!(format_decimal(d("1234"), 0, ','), "1234");
    assert_eq!(format_decimal(d("2.5"), 0, '.'), "3");
    // The extremes format without overflowing; what Decimal cannot hold is refused, not wrapped.
    assert!(format_decimal(Decimal::MAX, MAX_DECIMALS, ',').starts_with("79228162514264337593543950335"));
    assert_eq!(parse_decimal("1e40"), None);
    assert_eq!(parse_decimal("123456789012345678901234567890123"), None);
    // 0.1 + 0.2 in f64 is 0.30000000000000004; the text is what gets rounded.
    let r = Rule::new("m", "preco", "PRICE", &[numfmt(2, ',')]);
    assert_eq!(one(r.clone(), json!({"preco": 0.1 + 0.2})).unwrap(), obj(json!({"PRICE": "0,30"})));
    assert_eq!(one(r.clone(), json!({"preco": "12.345"})).unwrap(), obj(json!({"PRICE": "12,35"})));
    assert_eq!(one(r.clone(), json!({"preco": 1e21})).unwrap(), obj(json!({"PRICE": "1000000000000000000000,00"})));
    assert!(one(r.clone(), json!({"preco": ""})).unwrap().is_empty());
    let err = one(r.clone(), json!({"preco": "abc"})).unwrap_err();
    assert!(err.message.contains("'abc' is not a number"), "{}", err.message);
    assert!(one(r.clone(), json!({"preco": true})).is_err());
    // Back: the text parses into a JSON number, whole numbers as integers.
    assert_eq!(
        inverse(std::slice::from_ref(&r), &obj(json!({"PRICE": "59,90"}))).unwrap(),
        obj(json!({"preco": 59.9}))
    );
    assert_eq!(inverse(std::slice::from_ref(&r), &obj(json!({"PRICE": "60,00"}))).unwrap(), obj(json!({"preco": 60})));
    assert!(inverse(&[r], &obj(json!({"PRICE": "sessenta"}))).is_err());
}

#[test]
fn truncate_counts_characters_not_bytes() {
    let r = Rule::new("m", "nome", "NAME", &[Transform::Truncate(Truncate { max_chars: 4 })]);
    assert_eq!(one(r.clone(), json!({"nome": "Açaí gelado"})).unwrap(), obj(json!({"NAME": "Açaí"})));
    assert_eq!(one(r.clone(), json!({"nome": "Pé"})).unwrap(), obj(json!({"NAME": "Pé"})));
    assert_eq!(one(r.clone(), json!({"nome": 1234567})).unwrap(), obj(json!({"NAME": "1234"})));
    assert!(one(r, json!({"nome": ["a"]})).unwrap_err().message.contains("list or an object"));
}

#[test]
fn concatenate_joins_the_value_and_its_source_fields_skipping_blanks() {
    let r = Rule::new(
        "m",
        "nome",
        "NAME",
        &[Transform::Concatenate(Concatenate {
            source_fields: vec!["marca".into(), "dimensoes.cor".into(), "nada".into()],
            separator: " - ".into(),
        })],
    );
    let src = json!({"nome": "Camiseta", "marca": "Hering", "dimensoes": {"cor": "azul"}, "nada": ""});
    assert_eq!(one(r.clone(), src).unwrap(), obj(json!({"NAME": "Camiseta - Hering - azul"})));
    assert_eq!(one(r.clone(), json!({"marca": "Hering"})).unwrap(), obj(json!({"NAME": "Hering"})));
    assert!(one(r, json!({})).unwrap().is_empty());
}

#[test]
fn dotted_paths_read_and_write_nested_objects() {
    let r = Rule::new("m", "estoque.minimo", "stock.min", &[]);
    assert_eq!(one(r.clone(), json!({"estoque": {"minimo": 3}})).unwrap(), obj(json!({"stock": {"min": 3}})));
    assert!(one(r.clone(), json!({"estoque": 3})).unwrap().is_empty());
    let clash = [Rule::new("a", "a", "x", &[]), Rule::new("b", "b", "x.y", &[])];
    assert!(forward(&clash, &obj(json!({"a": 1, "b": 2}))).is_err());
}

#[test]
fn validation_names_the_step_and_field() {
    let bad = |t: Transform| validate("mapping.transforms", &[vmap(&[("A", "Y")], false), t]).unwrap_err();
    assert_eq!(
        bad(numfmt(2, ';')).to_string(),
        r#"mapping.transforms[1].number_format.decimal_separator: must be "." or ",""#
    );
    assert_eq!(bad(numfmt(11, '.')).to_string(), "mapping.transforms[1].number_format.decimals: must be at most 10");
    assert_eq!(
        bad(Transform::Truncate(Truncate { max_chars: 0 })).to_string(),
        "mapping.transforms[1].truncate.max_chars: must be at least 1"
    );
    let concat = Transform::Concatenate(Concatenate {
        source_fields: vec!["ok".into(), "no way".into()],
        separator: " ".into(),
    });
    assert!(bad(concat).to_string().starts_with("mapping.transforms[1].concatenate.source_fields[1]: "));
    assert_eq!(
        bad(Transform::ValueMap(ValueMap { values: BTreeMap::new(), pass_unmapped: false })).to_string(),
        "mapping.transforms[1].value_map.values: must map at least one value"
    );
    let proto_sep = pb::Transform {
        kind: Some(pb::transform::Kind::NumberFormat(pb::NumberFormatTransform {
            decimals: 2,
            decimal_separator: ";".into(),
        })),
    };
    assert_eq!(
        Transform::from_proto("mapping.transforms[1]", &proto_sep).unwrap_err().to_string(),
        r#"mapping.transforms[1].number_format.decimal_separator: must be "." or ",""#
    );
    assert!(Transform::from_proto("t[0]", &pb::Transform { kind: None }).is_err());
    assert!(check_path("f", "estoque.minimo", false).is_ok());
    assert!(check_path("f", "estoque..minimo", false).is_err());
    assert!(check_path("f", "PROPERTY_104", true).is_ok());
    assert!(check_path("f", "a.b", true).is_err());
}

#[test]
fn only_invertible_steps_pass_the_two_way_check() {
    let ok = [vmap(&[("A", "Y"), ("I", "N")], false), numfmt(2, ',')];
    assert!(check_invertible("mapping.transforms", &ok).is_ok());
    let cases = [
        (Transform::Truncate(Truncate { max_chars: 3 }), "mapping.transforms[1].truncate: "),
        (
            Transform::Concatenate(Concatenate { source_fields: vec!["a".into()], separator: String::new() }),
            "mapping.transforms[1].concatenate: ",
        ),
        (Transform::Constant(Text { value: "x".into() }), "mapping.transforms[1].constant: "),
        (Transform::DefaultValue(Text { value: "x".into() }), "mapping.transforms[1].default_value: "),
        (vmap(&[("A", "Y"), ("B", "Y")], false), "mapping.transforms[1].value_map: "),
        (vmap(&[("A", "Y")], true), "mapping.transforms[1].value_map: "),
    ];
    for (t, prefix) in cases {
        let e = check_invertible("mapping.transforms", &[numfmt(2, '.'), t]).unwrap_err().to_string();
        assert!(e.starts_with(prefix) && e.contains("cannot be inverted"), "{e}");
    }
    // A permutation passes even with pass_unmapped: nothing it produces can also pass through.
    assert!(check_invertible("t", &[vmap(&[("A", "B"), ("B", "A")], true)]).is_ok());
}

#[test]
fn transforms_serialize_as_their_oneof_names() {
    let t = vec![vmap(&[("A", "Y")], false), numfmt(2, ','), Transform::Constant(Text { value: "BRL".into() })];
    let j = serde_json::to_value(&t).unwrap();
    assert_eq!(
        j,
        json!([{"value_map": {"values": {"A": "Y"}, "pass_unmapped": false}},
               {"number_format": {"decimals": 2, "decimal_separator": ","}},
               {"constant": {"value": "BRL"}}])
    );
    assert_eq!(serde_json::from_value::<Vec<Transform>>(j).unwrap(), t);
    for t in &t {
        assert_eq!(&Transform::from_proto("t", &t.to_proto()).unwrap(), t);
    }
}

/// One generated invertible mapping and a value its source field may hold.
#[derive(Debug, Clone)]
struct Case {
    transforms: Vec<Transform>,
    value: Option<Value>,
}

fn money() -> impl Strategy<Value = (u32, Value)> {
    (0u32..=4, any::<i64>()).prop_map(|(decimals, units)| {
        // Any number with at most `decimals` places (within Decimal's range).
        let d = Decimal::new(units % 10_i64.pow(15), decimals);
        (decimals, decimal_to_json(d))
    })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(|i| json!(i)),
        any::<bool>().prop_map(Value::Bool),
        prop::collection::vec(any::<u8>(), 0..3).prop_map(|v| json!(v)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let plain = prop::option::of(scalar()).prop_map(|value| Case { transforms: vec![], value });
    let number = (money(), any::<bool>(), any::<bool>()).prop_map(|((decimals, v), comma, present)| Case {
        transforms: vec![numfmt(decimals, if comma { ',' } else { '.' })],
        value: present.then_some(v),
    });
    // One-to-one: distinct keys (a set) onto distinct values (the same set shuffled, or fresh).
    let one_to_one = (prop::collection::btree_set("[A-Za-z0-9 ]{1,6}", 1..6), any::<u64>(), any::<bool>())
        .prop_flat_map(|(keys, seed, permute)| {
            let keys: Vec<String> = keys.into_iter().collect();
            let n = keys.len();
            (Just(keys), Just(seed), Just(permute), 0..n, any::<bool>())
        })
        .prop_map(|(keys, seed, permute, pick, present)| {
            let n = keys.len();
            let rot = (seed as usize) % n;
            let values: Vec<String> = if permute {
                (0..n).map(|i| keys[(i + rot) % n].clone()).collect()
            } else {
                (0..n).map(|i| format!("v{i}-{}", seed % 97)).collect()
            };
            let map: BTreeMap<String, String> = keys.iter().cloned().zip(values).collect();
            Case {
                transforms: vec![Transform::ValueMap(ValueMap { values: map, pass_unmapped: permute })],
                value: present.then(|| Value::String(keys[pick].clone())),
            }
        });
    prop_oneof![plain, number, one_to_one]
}

const BLING_FIELDS: [&str; 8] =
    ["id", "nome", "codigo", "preco", "situacao", "estoque.minimo", "estoque.maximo", "dimensoes.largura"];

proptest! {
    /// Bling → target → Bling gives back exactly the fields the two-way mappings cover.
    #[test]
    fn invertible_mappings_round_trip(cases in prop::collection::vec(case(), 1..=BLING_FIELDS.len()),
                                      extra in ".{0,8}") {
        let mut rules = Vec::new();
        let mut product = Map::new();
        for (i, c) in cases.iter().enumerate() {
            validate("t", &c.transforms).unwrap();
            check_invertible("t", &c.transforms).unwrap();
            let target = format!("PROPERTY_{}", 100 + i);
            let rule = Rule::new(&format!("m{i}"), BLING_FIELDS[i], &target, &c.transforms);
            if let Some(v) = &c.value {
                prop_assert!(rule.bling.set(&mut product, v.clone()));
            }
            rules.push(rule);
        }
        let there = forward(&rules, &product).unwrap();
        let mut with_noise = there.clone();
        with_noise.insert("UNMAPPED".into(), Value::String(extra));
        let back = inverse(&rules, &with_noise).unwrap();
        prop_assert_eq!(back, product);
    }
}
