//! The Bitrix24 portal's limits over real HTTP: the leaky bucket (burst 50, 2/s, then 503
//! `QUERY_LIMIT_EXCEEDED`), a batch counting as one request, the per-method operating-time
//! budget (429 `OPERATION_TIME_LIMIT`), and faults in Bitrix24's own error shape.

use std::time::Duration;

use ponte_sandbox::bitrix24::{self, Config};
use serde_json::{Value, json};

async fn burst(url: &str, n: usize) -> Vec<(u16, Value)> {
    let http = reqwest::Client::new();
    let calls = (0..n).map(|_| async {
        let r = http.post(url).json(&json!({})).send().await.expect("the portal answers");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    });
    futures::future::join_all(calls).await
}

#[tokio::test]
async fn a_burst_gets_exactly_the_excess_over_fifty_rejected() {
    let portal = bitrix24::spawn(Config::default()).await.unwrap();
    let url = format!("{}crm.product.list.json", portal.webhook_url);
    let answers = burst(&url, 70).await;
    let rejected: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 503).map(|(_, b)| b).collect();
    assert_eq!(rejected.len(), 20, "70 sent at once, 50 fit in the bucket");
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 50);
    for body in rejected {
        assert_eq!(body["error"], "QUERY_LIMIT_EXCEEDED");
        assert_eq!(body["error_description"], "Too many requests");
    }
    let stats = portal.stats();
    assert_eq!((stats.requests, stats.query_limit_exceeded), (50, 20));

    // The bucket drains 2 a second: 5 seconds later exactly 10 more fit.
    portal.clock().advance(Duration::from_secs(5));
    let answers = burst(&url, 15).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 10);
    assert_eq!(answers.iter().filter(|(s, _)| *s == 503).count(), 5);

    let admin: Value = reqwest::get(format!("{}/__admin/stats", portal.base_url)).await.unwrap().json().await.unwrap();
    assert_eq!(admin["query_limit_exceeded"], 25, "the admin stats count the rejections");
}

#[tokio::test]
async fn a_faster_clock_drains_the_bucket_faster() {
    // 600 sandbox seconds per real second: 1200 drained a second, so a burst never fills it
    // for long; the limits themselves are unchanged.
    let portal = bitrix24::spawn(Config { time_scale: 600.0, ..Config::default() }).await.unwrap();
    let url = format!("{}crm.product.list.json", portal.webhook_url);
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let answers = burst(&url, 50).await;
        assert!(answers.iter().all(|(s, _)| *s == 200));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http.post(&url).json(&json!({})).send().await.unwrap().status(), 200);
    assert_eq!(portal.stats().query_limit_exceeded, 0);
}

#[tokio::test]
async fn a_batch_of_fifty_commands_is_one_request() {
    let portal = bitrix24::spawn(Config::default()).await.unwrap();
    let cmd: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("p{i}"), json!(format!("crm.product.add?fields[NAME]=P{i}")))).collect();
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let r = http.post(format!("{}batch.json", portal.webhook_url)).json(&json!({"cmd": cmd})).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(portal.products().len(), 150);
    let stats = portal.stats();
    assert_eq!((stats.requests, stats.batches), (3, 3));
    assert_eq!(stats.methods["crm.product.add"], 150, "each command still counts against its method");
}

#[tokio::test]
async fn a_method_over_its_operating_time_answers_429_while_others_work() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let http = reqwest::Client::new();
    let call = |method: &str| http.post(format!("{}{method}.json", portal.webhook_url)).json(&json!({})).send();

    let ok: Value = call("crm.product.list").await.unwrap().json().await.unwrap();
    assert!(ok["time"]["operating"].is_number() && ok["time"]["operating_reset_at"].is_number(), "{ok}");

    let charged = http
        .post(format!("{}/__admin/operating", portal.base_url))
        .json(&json!({"method": "crm.product.list", "seconds": 481}))
        .send()
        .await
        .unwrap();
    assert_eq!(charged.status(), 204);
    let blocked = call("crm.product.list").await.unwrap();
    assert_eq!(blocked.status(), 429);
    assert_eq!(blocked.json::<Value>().await.unwrap()["error"], "OPERATION_TIME_LIMIT");
    assert_eq!(call("crm.deal.list").await.unwrap().status(), 200, "other methods keep working");

    // The budget is per method inside a batch too.
    let batch: Value = http
        .post(format!("{}batch.json", portal.webhook_url))
        .json(&json!({"cmd": {"l": "crm.product.list", "d": "crm.deal.list"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch["result"]["result_error"]["l"]["error"], "OPERATION_TIME_LIMIT", "{batch}");
    assert!(batch["result"]["result"]["d"].is_array());

    // The oldest bucket drops out after ten minutes.
    portal.clock().advance(Duration::from_secs(601));
    assert_eq!(call("crm.product.list").await.unwrap().status(), 200);
    assert_eq!(portal.stats().operation_time_limit, 2);
}

#[tokio::test]
async fn faults_answer_in_bitrix24s_shape_and_spare_the_admin_routes() {
    let portal = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let http = reqwest::Client::new();
    let faults = format!("{}/__admin/faults", portal.base_url);
    let list = format!("{}crm.product.list.json", portal.webhook_url);

    http.put(&faults).json(&json!({"error_rate": 1.0})).send().await.unwrap();
    let r = http.post(&list).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "INTERNAL_SERVER_ERROR");
    assert_eq!(http.get(format!("{}/__admin/state", portal.base_url)).send().await.unwrap().status(), 200);

    http.put(&faults).json(&json!({"storm": 2})).send().await.unwrap();
    let statuses: Vec<u16> = {
        let mut s = vec![];
        for _ in 0..3 {
            s.push(http.post(&list).json(&json!({})).send().await.unwrap().status().as_u16());
        }
        s
    };
    assert_eq!(statuses, [503, 503, 200], "a storm of QUERY_LIMIT_EXCEEDED, then normal answers");
}
