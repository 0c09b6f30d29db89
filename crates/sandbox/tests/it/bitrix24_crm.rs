//! The Bitrix24 portal's CRM methods over real HTTP: products with string numbers, `XML_ID`
//! and `PROPERTY_<n>`, filters and 50-row pages with `next`/`total`, deals with
//! `ORIGINATOR_ID`/`ORIGIN_ID`, product rows, and the documented error bodies.

use ponte_sandbox::bitrix24::{self, Config, Handle};
use serde_json::{Value, json};

use crate::support::post_json;

/// A method through the incoming webhook.
async fn call(portal: &Handle, method: &str, params: Value) -> (u16, Value) {
    post_json(&format!("{}{method}.json", portal.webhook_url), &params).await
}

#[tokio::test]
async fn products_keep_numbers_as_strings_and_carry_xml_id_and_properties() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let bling_id = portal.define_property("Bling ID", "BLING_ID", false);
    let prop = format!("PROPERTY_{bling_id}");
    let (status, added) = call(
        &portal,
        "crm.product.add",
        json!({"fields": {"NAME": "Camiseta azul M", "PRICE": 59.9, "CURRENCY_ID": "BRL", "XML_ID": "16059781281",
                          "ACTIVE": "Y", "SORT": 500, prop.clone(): {"value": "16059781281"}}}),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    let id = added["result"].as_u64().expect("add answers the new id as a number");
    assert!(added["time"]["start"].is_number() && added["time"]["date_start"].is_string());

    let (_, got) = call(&portal, "crm.product.get", json!({"id": id.to_string()})).await;
    let p = &got["result"];
    assert_eq!(p["ID"], id.to_string());
    assert_eq!((p["PRICE"].as_str(), p["SORT"].as_str()), (Some("59.9"), Some("500")), "numbers come back as strings");
    assert_eq!(p["XML_ID"], "16059781281");
    assert_eq!(p["CODE"], "camiseta_azul_m", "a symbolic code is derived from the name");
    assert_eq!(p[&prop]["value"], "16059781281");
    assert!(p[&prop]["valueId"].is_string());

    let (status, updated) =
        call(&portal, "crm.product.update", json!({"id": id, "fields": {"PRICE": "64.90", "ACTIVE": "N"}})).await;
    assert_eq!((status, &updated["result"]), (200, &json!(true)));
    let stored = portal.product(id).unwrap();
    assert_eq!((stored["PRICE"].as_str(), stored["ACTIVE"].as_str()), (Some("64.9"), Some("N")));
    assert_eq!(stored["NAME"], "Camiseta azul M", "only the fields passed change");

    assert_eq!(
        call(&portal, "crm.product.update", json!({"id": 999, "fields": {"NAME": "x"}})).await,
        (400, json!({"error": "", "error_description": "Not found"}))
    );
    assert_eq!(call(&portal, "crm.product.get", json!({"id": 999})).await.0, 400);
    let (status, no_name) = call(&portal, "crm.product.add", json!({"fields": {"PRICE": 1}})).await;
    assert_eq!((status, no_name["error"].as_str()), (400, Some("")));
    assert!(no_name["error_description"].as_str().unwrap().contains("NAME"));
    let (status, bad_price) = call(&portal, "crm.product.add", json!({"fields": {"NAME": "x", "PRICE": "abc"}})).await;
    assert_eq!((status, bad_price["error_description"].as_str()), (400, Some("Field 'PRICE' must be a number.")));

    let (status, deleted) = call(&portal, "crm.product.delete", json!({"id": id})).await;
    assert_eq!((status, &deleted["result"]), (200, &json!(true)));
    assert!(portal.products().is_empty());
    assert_eq!(call(&portal, "crm.product.delete", json!({"id": id})).await.0, 400);
}

#[tokio::test]
async fn lists_filter_order_select_and_page_by_fifty() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    for i in 1..=120 {
        portal
            .seed_product(json!({"NAME": format!("Produto {i}"), "XML_ID": format!("bling-{i}"), "PRICE": i}))
            .unwrap();
    }
    let (_, first) = call(&portal, "crm.product.list", json!({})).await;
    assert_eq!(first["result"].as_array().unwrap().len(), 50);
    assert_eq!((first["total"].as_u64(), first["next"].as_u64()), (Some(120), Some(50)));
    let (_, last) = call(&portal, "crm.product.list", json!({"start": 100})).await;
    assert_eq!(last["result"].as_array().unwrap().len(), 20);
    assert_eq!(last["total"], 120);
    assert!(last.get("next").is_none(), "no next on the last page: {last}");
    let (_, uncounted) =
        call(&portal, "crm.product.list", json!({"start": -1, "filter": {">ID": 100}, "order": {"ID": "ASC"}})).await;
    assert_eq!(uncounted["result"].as_array().unwrap().len(), 20);
    assert_eq!(uncounted["total"], 0, "start=-1 skips the count");
    assert!(uncounted.get("next").is_none());

    // A PHP-style query string, as GET callers send it.
    let url = format!(
        "{}crm.product.list.json?filter[XML_ID]=bling-77&select[]=ID&select[]=NAME&select[]=XML_ID",
        portal.webhook_url
    );
    let found: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(found["result"], json!([{"ID": "77", "NAME": "Produto 77", "XML_ID": "bling-77"}]));
    assert_eq!(found["total"], 1);

    let (_, cheap) = call(
        &portal,
        "crm.product.list",
        json!({"filter": {"<=PRICE": 3, "%NAME": "produto"}, "order": {"PRICE": "DESC"}, "select": ["ID", "PRICE"]}),
    )
    .await;
    assert_eq!(
        cheap["result"],
        json!([{"ID": "3", "PRICE": "3"}, {"ID": "2", "PRICE": "2"}, {"ID": "1", "PRICE": "1"}])
    );
    let (_, some) =
        call(&portal, "crm.product.list", json!({"filter": {"@ID": ["5", "7"], "!XML_ID": "bling-7"}})).await;
    assert_eq!(some["result"].as_array().unwrap().iter().map(|p| p["ID"].clone()).collect::<Vec<_>>(), [json!("5")]);
    let (_, none) = call(&portal, "crm.product.list", json!({"filter": {"XML_ID": "bling-999"}})).await;
    assert_eq!((none["result"].clone(), none["total"].clone()), (json!([]), json!(0)));

    assert_eq!(
        call(&portal, "crm.product.list", json!({"filter": "XML_ID=1"})).await,
        (400, json!({"error": "", "error_description": "Parameter 'filter' must be array."}))
    );
}

#[tokio::test]
async fn properties_appear_in_lists_only_when_selected() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let colours = portal.define_property("Cores", "CORES", true);
    let key = format!("PROPERTY_{colours}");
    let (_, add) = call(
        &portal,
        "crm.product.add",
        json!({"fields": {"NAME": "Caneca", key.clone(): [{"valueId": 0, "value": "azul"}, {"valueId": 0, "value": "verde"}]}}),
    )
    .await;
    let id = add["result"].as_u64().unwrap();
    let (_, plain) = call(&portal, "crm.product.list", json!({})).await;
    assert!(plain["result"][0].get(&key).is_none(), "standard fields only by default");
    let (_, with) =
        call(&portal, "crm.product.list", json!({"select": ["*", "PROPERTY_*"], "filter": {key.clone(): "verde"}}))
            .await;
    let values = with["result"][0][&key].as_array().expect("a multiple property lists its values").clone();
    assert_eq!(values.iter().map(|v| v["value"].clone()).collect::<Vec<_>>(), [json!("azul"), json!("verde")]);

    // Keep "azul" by its valueId, remove "verde", add "preto".
    let (azul, verde) = (values[0]["valueId"].clone(), values[1]["valueId"].clone());
    call(
        &portal,
        "crm.product.update",
        json!({"id": id, "fields": {key.clone(): [{"valueId": azul, "value": "azul"}, {"valueId": verde, "value": {"remove": "Y"}}, {"value": "preto"}]}}),
    )
    .await;
    let after = portal.product(id).unwrap()[&key].clone();
    assert_eq!(after[0], json!({"valueId": azul, "value": "azul"}));
    assert_eq!(after[1]["value"], "preto");
    assert_eq!(after.as_array().unwrap().len(), 2);

    let (_, props) = call(&portal, "crm.product.property.list", json!({})).await;
    assert_eq!(props["result"][0]["CODE"], "CORES");
    assert_eq!(props["result"][0]["MULTIPLE"], "Y");
}

#[tokio::test]
async fn deals_link_to_their_source_and_their_rows_set_the_amount() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let (_, add) = call(
        &portal,
        "crm.deal.add",
        json!({"fields": {"TITLE": "Pedido 123", "ORIGINATOR_ID": "bling", "ORIGIN_ID": "16100000001", "CURRENCY_ID": "BRL"},
               "params": {"REGISTER_SONET_EVENT": "N"}}),
    )
    .await;
    let deal = add["result"].as_u64().expect("an int id");
    let (_, got) = call(&portal, "crm.deal.get", json!({"id": deal})).await;
    let d = &got["result"];
    assert_eq!(
        (d["STAGE_ID"].as_str(), d["CATEGORY_ID"].as_str(), d["OPPORTUNITY"].as_str()),
        (Some("NEW"), Some("0"), Some("0.00"))
    );
    assert_eq!(d["STAGE_SEMANTIC_ID"], "P");
    assert!(d["COMMENTS"].is_null(), "unset fields are null");

    let (_, found) = call(
        &portal,
        "crm.deal.list",
        json!({"filter": {"ORIGINATOR_ID": "bling", "ORIGIN_ID": "16100000001"}, "select": ["ID"]}),
    )
    .await;
    assert_eq!(found["result"], json!([{"ID": deal.to_string()}]));

    let rows = json!([{"PRODUCT_NAME": "Camiseta azul M", "PRICE": 59.9, "QUANTITY": 2},
                      {"PRODUCT_ID": 0, "PRODUCT_NAME": "Frete", "PRICE": "15.00"}]);
    let (status, set) = call(&portal, "crm.deal.productrows.set", json!({"id": deal, "rows": rows})).await;
    assert_eq!((status, &set["result"]), (200, &json!(true)));
    assert_eq!(portal.deal(deal).unwrap()["OPPORTUNITY"], "134.80", "the rows decide the amount");
    let (_, listed) = call(&portal, "crm.deal.productrows.get", json!({"id": deal})).await;
    let listed = listed["result"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0]["QUANTITY"].as_str(), listed[1]["QUANTITY"].as_str()), (Some("2"), Some("1")));
    assert_eq!(listed[0]["OWNER_TYPE"], "D");

    // The set replaces all rows.
    call(&portal, "crm.deal.productrows.set", json!({"id": deal, "rows": [{"PRODUCT_NAME": "Caneca", "PRICE": 10}]}))
        .await;
    assert_eq!(portal.deal_rows(deal).len(), 1);
    let (status, bad) = call(
        &portal,
        "crm.deal.productrows.set",
        json!({"id": deal, "rows": [{"PRODUCT_NAME": "x", "DISCOUNT_TYPE_ID": 2}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"], "ERROR_CORE");
    assert!(bad["error_description"].as_str().unwrap().ends_with("<br>"));
    assert_eq!(portal.deal_rows(deal).len(), 1, "a refused set changes nothing");

    call(&portal, "crm.deal.update", json!({"id": deal, "fields": {"STAGE_ID": "WON"}})).await;
    let won = portal.deal(deal).unwrap();
    assert_eq!((won["STAGE_SEMANTIC_ID"].as_str(), won["CLOSED"].as_str()), (Some("S"), Some("Y")));
    assert_eq!(won["TITLE"], "Pedido 123");
    assert_eq!(
        call(&portal, "crm.deal.get", json!({"id": 4242})).await,
        (400, json!({"error": "", "error_description": "Not found"}))
    );
    assert_eq!(call(&portal, "crm.deal.update", json!({"id": 4242, "fields": {}})).await.0, 400);
}

#[tokio::test]
async fn deal_user_fields_exist_once_created() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let (_, uf) = call(
        &portal,
        "crm.deal.userfield.add",
        json!({"fields": {"USER_TYPE_ID": "string", "FIELD_NAME": "BLING_ORDER_ID"}}),
    )
    .await;
    assert!(uf["result"].as_u64().is_some(), "{uf}");
    let (_, add) =
        call(&portal, "crm.deal.add", json!({"fields": {"UF_CRM_BLING_ORDER_ID": "555", "UF_CRM_UNKNOWN": "x"}})).await;
    let deal = portal.deal(add["result"].as_u64().unwrap()).unwrap();
    assert_eq!(deal["UF_CRM_BLING_ORDER_ID"], "555");
    assert!(deal.get("UF_CRM_UNKNOWN").is_none(), "a field nobody created is ignored");
    let (_, listed) = call(&portal, "crm.deal.list", json!({})).await;
    assert_eq!(listed["result"][0]["UF_CRM_BLING_ORDER_ID"], "555", "deals list user fields by default");
    let (_, only_id) = call(&portal, "crm.deal.list", json!({"select": ["ID"]})).await;
    assert!(only_id["result"][0].get("UF_CRM_BLING_ORDER_ID").is_none());
}

#[tokio::test]
async fn admin_routes_seed_data_and_show_what_the_portal_holds() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let http = reqwest::Client::new();
    let seeded: Value = http
        .post(format!("{}/__admin/seed", portal.base_url))
        .json(&json!({"properties": [{"name": "Bling ID", "code": "BLING_ID"}],
                      "products": [{"NAME": "Caneca", "XML_ID": "b-1"}, {"NAME": "Prato"}],
                      "deals": [{"TITLE": "Pedido 1", "ORIGIN_ID": "9"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seeded["products"], json!([1, 2]));
    assert_eq!(seeded["deals"], json!([1]));
    let deal = seeded["deals"][0].as_u64().unwrap();
    call(&portal, "crm.deal.productrows.set", json!({"id": deal, "rows": [{"PRODUCT_ID": 1, "PRICE": 12.5}]})).await;

    let state: Value =
        http.get(format!("{}/__admin/state", portal.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["products"][0]["XML_ID"], "b-1");
    assert_eq!(state["deals"][0]["PRODUCT_ROWS"][0]["PRODUCT_NAME"], "Caneca");
    assert_eq!(state["deals"][0]["OPPORTUNITY"], "12.50");
    assert_eq!(state["properties"][0]["CODE"], "BLING_ID");
    let bad = http
        .post(format!("{}/__admin/seed", portal.base_url))
        .json(&json!({"products": [{"PRICE": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "a product without a name is refused as the API would");
}
