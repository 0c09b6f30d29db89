use chrono::{DateTime, FixedOffset, TimeZone};
use serde_json::{Map, Value, json};

use super::{list::Condition, model::Crm};

fn now() -> DateTime<FixedOffset> {
    FixedOffset::west_opt(3 * 3600).and_then(|o| o.with_ymd_and_hms(2026, 3, 2, 11, 5, 11).single()).unwrap()
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn filters_understand_the_documented_prefixes() {
    let row = params(json!({"ID": "12", "NAME": "Camiseta Azul", "XML_ID": "bling-1", "PRICE": "59.9"}));
    let m = |k: &str, v: Value| Condition::parse(k).matches(&row, &v);
    assert!(m("XML_ID", json!("bling-1")) && !m("XML_ID", json!("bling-10")));
    assert!(m(">ID", json!(11)) && !m(">ID", json!("12")) && m(">=ID", json!("12")));
    assert!(m("@ID", json!(["1", "12"])) && m("!@ID", json!(["1", "2"])));
    assert!(m("%NAME", json!("azul")) && m("=%NAME", json!("Cami%")) && !m("=%NAME", json!("Azul%")));
    assert!(m("!XML_ID", json!("x")) && m("PRICE", json!(59.90)));
    assert!(m("=DESCRIPTION", json!("")), "an empty value matches an unset field");
}

#[test]
fn property_values_keep_their_ids_and_can_be_removed() {
    let mut crm = Crm::default();
    let pid = crm.define_property("Bling ID", "BLING_ID", "S", true);
    let key = format!("PROPERTY_{pid}");
    let id = crm.add_product(&params(json!({"NAME": "A", key.clone(): [{"valueId": 0, "value": "x"}]})), now());
    let id = id.unwrap();
    let first = crm.product(id).unwrap()[&key].clone();
    let vid = first[0]["valueId"].clone();
    crm.update_product(
        id,
        &params(json!({key.clone(): [{"valueId": vid, "value": "y"}, {"valueId": 0, "value": "z"}]})),
        now(),
    )
    .unwrap();
    let after = crm.product(id).unwrap()[&key].clone();
    assert_eq!(after[0], json!({"valueId": vid, "value": "y"}));
    assert_eq!(after[1]["value"], "z");
    crm.update_product(id, &params(json!({key.clone(): [{"valueId": vid, "value": {"remove": "Y"}}]})), now()).unwrap();
    assert_eq!(crm.product(id).unwrap()[&key], Value::Null);
}

#[test]
fn rows_set_the_opportunity_in_decimals() {
    let mut crm = Crm::default();
    let deal = crm.add_deal(&Map::new(), now()).unwrap();
    let p = params(json!({"id": deal, "rows": [{"PRODUCT_NAME": "A", "PRICE": 59.9, "QUANTITY": 2},
                                               {"PRODUCT_NAME": "B", "PRICE": "0.1", "QUANTITY": "3"}]}));
    crm.call("crm.deal.productrows.set", &p, now()).unwrap();
    assert_eq!(crm.deal(deal).unwrap()["OPPORTUNITY"], "120.10");
    let huge = params(json!({"id": deal, "rows": [{"PRODUCT_NAME": "A", "PRICE": 1e27, "QUANTITY": 1e27}]}));
    let e = crm.call("crm.deal.productrows.set", &huge, now()).unwrap_err();
    assert_eq!((e.code.as_str(), e.description.as_str()), ("ERROR_CORE", "The rows add up to too large an amount<br>"));
    assert_eq!(crm.deal_rows(deal).len(), 2, "a refused set keeps the rows");
}
