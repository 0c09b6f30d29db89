//! Outbound events of the Bitrix24 portal: form-encoded posts in PHP-array notation with
//! `auth[application_token]`, raised by changes made by a person in the CRM and through the
//! API, sent once (no retries), to the outgoing webhook and to handlers bound by the app.

use std::{collections::BTreeMap, time::Duration};

use ponte_sandbox::bitrix24::{self, Config};
use serde_json::{Value, json};

use crate::support::{Hook, Receiver};

/// A handler that answers every post with `status`.
async fn handler(status: u16) -> (Receiver, String) {
    let rx = Receiver::answering(0, status, status).await;
    let url = rx.url.clone();
    (rx, url)
}

/// Each post's content type and form fields.
fn posts(seen: &[Hook]) -> Vec<(String, BTreeMap<String, String>)> {
    seen.iter().map(|h| (h.header("content-type"), h.form())).collect()
}

#[tokio::test]
async fn a_person_editing_a_product_posts_a_form_encoded_event() {
    let (rx, url) = handler(200).await;
    let cfg = Config { event_url: Some(url), ..Config::for_tests() };
    let portal = bitrix24::spawn(cfg.clone()).await.unwrap();
    let id = portal.seed_product(json!({"NAME": "Caneca", "XML_ID": "bling-9"})).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.seen().is_empty(), "seeding raises no event");

    let r = reqwest::Client::new()
        .post(format!("{}/__admin/ui/crm.product.update", portal.base_url))
        .json(&json!({"id": id, "fields": {"NAME": "Caneca 2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = posts(&rx.wait_for(1).await);
    assert_eq!(seen.len(), 1);
    let (ct, form) = &seen[0];
    assert_eq!(ct, "application/x-www-form-urlencoded");
    assert_eq!(form["event"], "ONCRMPRODUCTUPDATE");
    assert_eq!(form["data[FIELDS][ID]"], id.to_string());
    assert_eq!(form["auth[application_token]"], cfg.application_token);
    assert_eq!(form["auth[domain]"], cfg.domain);
    assert_eq!(form["auth[member_id]"], cfg.member_id);
    assert_eq!(form["auth[client_endpoint]"], portal.client_endpoint());
    assert!(form.get("auth[access_token]").is_none(), "an outgoing webhook gets no tokens");
    assert!(form["ts"].parse::<i64>().is_ok());
    assert_eq!(portal.product(id).unwrap()["NAME"], "Caneca 2");

    // The helper does the same.
    let new = portal.create_product_in_ui(json!({"NAME": "Prato"})).unwrap();
    let seen = posts(&rx.wait_for(2).await);
    assert_eq!(
        (seen[1].1["event"].as_str(), seen[1].1["data[FIELDS][ID]"].clone()),
        ("ONCRMPRODUCTADD", new.to_string())
    );
}

#[tokio::test]
async fn api_changes_raise_events_unless_switched_off() {
    let (rx, url) = handler(200).await;
    let portal = bitrix24::spawn(Config { event_url: Some(url.clone()), ..Config::for_tests() }).await.unwrap();
    let http = reqwest::Client::new();
    http.post(format!("{}crm.deal.add.json", portal.webhook_url))
        .json(&json!({"fields": {"TITLE": "A"}}))
        .send()
        .await
        .unwrap();
    let seen = posts(&rx.wait_for(1).await);
    assert_eq!(seen[0].1["event"], "ONCRMDEALADD");

    let (quiet_rx, quiet_url) = handler(200).await;
    let quiet =
        bitrix24::spawn(Config { event_url: Some(quiet_url), events_on_api_changes: false, ..Config::for_tests() })
            .await
            .unwrap();
    http.post(format!("{}crm.product.add.json", quiet.webhook_url))
        .json(&json!({"fields": {"NAME": "A"}}))
        .send()
        .await
        .unwrap();
    quiet.edit_product_in_ui(1, json!({"NAME": "B"})).unwrap();
    quiet_rx.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = posts(&quiet_rx.seen());
    assert_eq!(seen.iter().map(|(_, f)| f["event"].clone()).collect::<Vec<_>>(), ["ONCRMPRODUCTUPDATE"]);
}

#[tokio::test]
async fn a_failed_post_is_logged_never_resent_and_drops_can_be_injected() {
    let (rx, url) = handler(500).await;
    let portal = bitrix24::spawn(Config { event_url: Some(url), ..Config::for_tests() }).await.unwrap();
    let id = portal.create_product_in_ui(json!({"NAME": "Copo"})).unwrap();
    rx.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.seen().len(), 1, "Bitrix24 does not retry");
    let log = portal.events();
    assert_eq!((log.len(), log[0].status, log[0].id), (1, Some(500), id));

    reqwest::Client::new()
        .put(format!("{}/__admin/faults", portal.base_url))
        .json(&json!({"webhook_drop_rate": 1.0}))
        .send()
        .await
        .unwrap();
    portal.edit_product_in_ui(id, json!({"NAME": "Copo 2"})).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.seen().len(), 1, "the event was dropped");
    let log: Value = reqwest::get(format!("{}/__admin/events", portal.base_url)).await.unwrap().json().await.unwrap();
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert!(log[1]["status"].is_null());
}

#[tokio::test]
async fn handlers_bound_by_the_app_get_events_with_its_tokens_and_install_hands_over_the_pair() {
    let (rx, url) = handler(200).await;
    let cfg = Config::for_tests();
    let portal = bitrix24::spawn(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();

    let installed: Value = http
        .post(format!("{}/__admin/install", portal.base_url))
        .json(&json!({"handler": url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let install = rx.wait_for(1).await[0].form();
    assert_eq!(install["event"], "ONAPPINSTALL");
    assert_eq!(install["auth[application_token]"], cfg.application_token);
    assert_eq!(install["auth[refresh_token]"], installed["refresh_token"].as_str().unwrap());
    let access = install["auth[access_token]"].clone();

    let bind = |event: &str| {
        http.post(format!("{}event.bind", portal.client_endpoint()))
            .json(&json!({"auth": access, "event": event, "handler": url}))
            .send()
    };
    let bound: Value = bind("ONCRMDEALUPDATE").await.unwrap().json().await.unwrap();
    assert_eq!(bound["result"], true);
    let again: Value = bind("ONCRMDEALUPDATE").await.unwrap().json().await.unwrap();
    assert_eq!(again["error"], "ERROR_HANDLER_ALREADY_EXIST");

    let deal = portal.seed_deal(json!({"TITLE": "A"})).unwrap();
    portal.as_person("crm.deal.update", json!({"id": deal, "fields": {"STAGE_ID": "WON"}})).unwrap();
    let seen = posts(&rx.wait_for(2).await);
    let event = &seen[1].1;
    assert_eq!(event["event"], "ONCRMDEALUPDATE");
    assert_eq!(event["event_handler_id"], portal.bindings()[0].id.to_string());
    let token = event["auth[access_token]"].clone();
    let listed: Value = reqwest::get(format!("{}crm.deal.get?auth={token}&id={deal}", portal.client_endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["result"]["STAGE_ID"], "WON", "the event's token works for re-reading the deal");
}

#[tokio::test]
async fn the_app_installs_at_its_configured_path_and_app_info_names_the_app_of_a_token() {
    let (rx, url) = handler(200).await;
    let cfg = Config { install_url: Some(url), ..Config::for_tests() };
    let portal = bitrix24::spawn(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let r = http.post(format!("{}/__admin/install", portal.base_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (ct, install) = posts(&rx.wait_for(1).await)[0].clone();
    assert_eq!((ct.as_str(), install["event"].as_str()), ("application/x-www-form-urlencoded", "ONAPPINSTALL"));
    assert_eq!(install["auth[member_id]"], cfg.member_id);
    assert_eq!(install["auth[client_endpoint]"], portal.client_endpoint());

    let info: Value = http
        .post(format!("{}app.info", portal.client_endpoint()))
        .json(&json!({"auth": install["auth[access_token]"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["result"]["CODE"], cfg.client_id);
    assert_eq!((info["result"]["STATUS"].as_str(), info["result"]["INSTALLED"].as_bool()), (Some("L"), Some(true)));
    let forged = http
        .post(format!("{}app.info", portal.client_endpoint()))
        .json(&json!({"auth": "0123456789abcdef0123456789abcdef"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"], "invalid_token");
    let webhook: Value =
        http.post(format!("{}app.info.json", portal.webhook_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(webhook["error"], "WRONG_AUTH_TYPE", "an incoming webhook belongs to no app");

    // Without an installation path, an install must name where to post.
    let bare = bitrix24::spawn(Config::for_tests()).await.unwrap();
    let r = http.post(format!("{}/__admin/install", bare.base_url)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(bare.install().is_none());
}
