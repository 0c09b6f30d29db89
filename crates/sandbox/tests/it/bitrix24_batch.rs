//! `batch` on the Bitrix24 portal: `$result[...]` references between commands, `halt`, the
//! 50-command cap, no nested batch, and the answer shaped as PHP writes it.

use ponte_sandbox::bitrix24::{self, Config, Handle};
use serde_json::{Value, json};

use crate::support::post_json;

async fn batch(portal: &Handle, body: Value) -> (u16, Value) {
    post_json(&format!("{}batch.json", portal.webhook_url), &body).await
}

#[tokio::test]
async fn later_commands_read_earlier_results() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    for i in 1..=60 {
        portal.seed_product(json!({"NAME": format!("Seed {i}"), "XML_ID": format!("s-{i}")})).unwrap();
    }
    let (status, body) = batch(
        &portal,
        json!({"halt": 0, "cmd": {
            "p": "crm.product.add?fields[NAME]=Camiseta+azul+M&fields[PRICE]=59.9&fields[XML_ID]=16059781281",
            "found": "crm.product.list?filter[XML_ID]=16059781281&select[]=ID&select[]=NAME",
            "d": "crm.deal.add?fields[TITLE]=Pedido+de+$result[found][0][NAME]&fields[ORIGIN_ID]=$result[p]",
            "rows": "crm.deal.productrows.set?id=$result[d]&rows[0][PRODUCT_ID]=$result[p]&rows[0][PRICE]=59.9&rows[0][QUANTITY]=2",
            "deal": "crm.deal.get?id=$result[d]",
            "all": "crm.product.list?select[]=ID"
        }}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = &body["result"];
    let product = r["result"]["p"].as_u64().expect("an int id");
    assert_eq!(r["result"]["found"][0]["ID"], product.to_string());
    assert_eq!(r["result"]["deal"]["TITLE"], "Pedido de Camiseta azul M", "a reference inside text");
    assert_eq!(r["result"]["deal"]["ORIGIN_ID"], product.to_string());
    assert_eq!(r["result"]["deal"]["OPPORTUNITY"], "119.80");
    assert_eq!(r["result_error"], json!([]), "an empty map is a PHP empty array");
    assert_eq!(r["result_total"], json!({"found": 1, "all": 61}));
    assert_eq!(r["result_next"], json!({"all": 50}));
    assert!(r["result_time"]["deal"]["duration"].is_number());
    assert!(body["time"]["start"].is_number());
    let deal: u64 = r["result"]["d"].as_u64().unwrap();
    assert_eq!(portal.deal_rows(deal)[0]["PRODUCT_NAME"], "Camiseta azul M", "the row took the product's name");
}

#[tokio::test]
async fn halt_stops_at_the_first_failure_and_without_it_every_command_runs() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let cmd = json!({
        "a": "crm.deal.add?fields[TITLE]=A",
        "bad": "crm.product.get?id=999999",
        "c": "crm.deal.get?id=$result[a]"
    });
    let (status, halted) = batch(&portal, json!({"halt": 1, "cmd": cmd})).await;
    assert_eq!(status, 200, "a failing command does not fail the batch");
    let r = &halted["result"];
    assert_eq!(r["result_error"], json!({"bad": {"error": "", "error_description": "Not found"}}));
    assert!(r["result"].get("c").is_none() && r["result_error"].get("c").is_none(), "later commands appear nowhere");
    assert!(r["result"]["a"].is_u64());

    let (_, all) = batch(&portal, json!({"halt": 0, "cmd": cmd})).await;
    let r = &all["result"];
    assert_eq!(r["result"]["c"]["TITLE"], "A");
    assert_eq!(r["result_error"]["bad"]["error_description"], "Not found");
    assert_eq!(portal.deals().len(), 2);
}

#[tokio::test]
async fn fifty_commands_at_most_and_no_batch_inside_a_batch() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let cmd = |n: usize| -> serde_json::Map<String, Value> {
        (0..n).map(|i| (format!("c{i}"), json!(format!("crm.deal.add?fields[TITLE]=D{i}")))).collect()
    };
    let (status, ok) = batch(&portal, json!({"cmd": cmd(50)})).await;
    assert_eq!(status, 200);
    assert_eq!(ok["result"]["result"].as_object().unwrap().len(), 50);
    let (status, refused) = batch(&portal, json!({"cmd": cmd(51)})).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "ERROR_BATCH_LENGTH_EXCEEDED");
    assert_eq!(portal.deals().len(), 50, "a refused batch runs nothing");

    let (_, nested) =
        batch(&portal, json!({"cmd": {"inner": "batch?cmd[x]=crm.deal.list", "ok": "crm.deal.list"}})).await;
    assert_eq!(nested["result"]["result_error"]["inner"]["error"], "ERROR_BATCH_METHOD_NOT_ALLOWED");
    assert!(nested["result"]["result"]["ok"].is_array());
}

#[tokio::test]
async fn a_command_list_answers_lists_and_a_get_batch_is_double_encoded() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let (_, listed) =
        batch(&portal, json!({"cmd": ["crm.deal.add?fields[TITLE]=X", "crm.deal.get?id=$result[0]"]})).await;
    let r = &listed["result"];
    assert!(r["result"].is_array(), "keys 0..n come back as a list: {listed}");
    assert_eq!(r["result"][1]["TITLE"], "X");

    // cmd[k]=<url-encoded "method?query">, the whole pair URL-encoded again.
    let inner: String = url::form_urlencoded::byte_serialize(b"crm.deal.get?id=1").collect();
    let url = format!("{}batch.json?halt=0&cmd[g]={inner}", portal.webhook_url);
    let got: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(got["result"]["result"]["g"]["TITLE"], "X");
}
