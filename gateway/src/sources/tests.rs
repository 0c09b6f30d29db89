use super::*;

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn bling_signatures_are_checked_against_the_raw_body() {
    let body = br#"{"eventId":"e1"}"#;
    let mut h = HeaderMap::new();
    h.insert("x-bling-signature-256", sign("s3cret", body).parse().unwrap());
    assert!(Bling::verify(b"s3cret", &h, body));
    assert!(!Bling::verify(b"other", &h, body));
    assert!(!Bling::verify(b"s3cret", &h, br#"{"eventId":"e2"}"#));
    h.insert("x-bling-signature-256", "sha256=zz".parse().unwrap());
    assert!(!Bling::verify(b"s3cret", &h, body));
    assert!(!Bling::verify(b"s3cret", &HeaderMap::new(), body));
}

#[test]
fn the_documented_bling_example_verifies() {
    // contracts/bling-v3.md §7: the doc's hash is HMAC-SHA256 of the body under the secret.
    let body = br#"{"eventId":"01945027-150e-72b4-e7cf-4943a042cd9c"}"#;
    let mut h = HeaderMap::new();
    h.insert("x-bling-signature-256", sign("client-secret", body).parse().unwrap());
    assert!(Bling::verify(b"client-secret", &h, body));
}

#[test]
fn bling_events_name_their_entity_and_time() {
    let body = br#"{"eventId":"01945027-150e-72b4-e7cf-4943a042cd9c","date":"2025-01-10T12:18:46Z","version":"v1",
        "event":"product.updated","companyId":"d4475854366a36c86a37e792f9634a51","data":{"id":16059781281,"nome":"Copo"}}"#;
    let ev = Bling::parse(body);
    assert_eq!(ev.unusable, None);
    assert_eq!(ev.source_event_id, "01945027-150e-72b4-e7cf-4943a042cd9c");
    assert_eq!(ev.entity_key, "product:16059781281");
    assert_eq!(ev.account, "d4475854366a36c86a37e792f9634a51");
    assert_eq!(ev.occurred, Some(1_736_511_526_000));
    assert_eq!(Bling::routes("order.updated").len(), 2);
}

#[test]
fn unusable_bling_events_say_why() {
    for (body, why) in [
        (&b"not json"[..], "not JSON"),
        (br#"{"date":"x"}"#, "eventId is missing"),
        (br#"{"eventId":"e","event":"stock.updated","companyId":"c","version":"v1","date":"2025-01-10T12:18:46Z"}"#, "no ponte service subscribes to 'stock.updated'"),
        (br#"{"eventId":"e","event":"product.updated","companyId":"c","version":"v1","date":"2025-01-10T12:18:46Z","data":{}}"#, "data.id"),
        (br#"{"eventId":"e","event":"product.updated","version":"v1","data":{"id":1}}"#, "companyId"),
        (br#"{"eventId":"e","event":"product.updated","companyId":"c","version":"v2","data":{"id":1}}"#, "version 'v2'"),
    ] {
        let ev = Bling::parse(body);
        let reason = ev.unusable.unwrap_or_default();
        assert!(reason.contains(why), "{reason} vs {why}");
        assert!(!ev.source_event_id.is_empty());
    }
    assert!(Bling::parse(b"x").source_event_id.starts_with("sha256:"));
}

#[test]
fn envios360_and_cplug_events_parse() {
    let ev = Envios360::parse(
        br#"{"event_id":"5f0c","event":"order.status_changed","occurred_at":"2026-03-02T14:05:11Z",
            "order":{"id":"o_81723","external_id":"12345678","status":"in_transit"}}"#,
    );
    assert_eq!((ev.unusable, ev.entity_key.as_str()), (None, "order:12345678"));
    let ev = Cplug::parse(
        br#"{"event_id":"b1d7","event":"sale.cancelled","occurred_at":"2026-03-02T14:05:11-03:00","sale":{"id":"V-000123"}}"#,
    );
    assert_eq!((ev.unusable, ev.entity_key.as_str()), (None, "sale:V-000123"));
    assert_eq!(ev.occurred, Some(1_772_471_111_000));
    let ev = Cplug::parse(br#"{"event_id":"b1d7","event":"sale.refunded","occurred_at":"2026-03-02T14:05:11Z"}"#);
    assert!(ev.unusable.unwrap().contains("sale.refunded"));
}

#[test]
fn bitrix24_events_are_checked_by_token_and_stored_without_it() {
    let body = b"event=ONCRMPRODUCTUPDATE&event_handler_id=1&data%5BFIELDS%5D%5BID%5D=759&ts=1736405807\
        &auth%5Bdomain%5D=loja.bitrix24.com.br&auth%5Bapplication_token%5D=tok123&auth%5Baccess_token%5D=at";
    assert!(Bitrix24::verify(b"tok123", &HeaderMap::new(), body));
    assert!(!Bitrix24::verify(b"tok124", &HeaderMap::new(), body));
    let ev = Bitrix24::parse(body);
    assert_eq!(ev.unusable, None);
    assert_eq!(ev.source_event_id, "ONCRMPRODUCTUPDATE:759:1736405807");
    assert_eq!(ev.entity_key, "bitrix24_product:759");
    let stored = String::from_utf8(Bitrix24::stored_payload(body)).unwrap();
    assert!(!stored.contains("tok123") && !stored.contains("access_token"), "{stored}");
    assert!(stored.contains("auth%5Bdomain%5D=loja.bitrix24.com.br"), "{stored}");
    assert_eq!(Bitrix24::parse(stored.as_bytes()).entity_key, "bitrix24_product:759");
    let deal = Bitrix24::parse(b"event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D=1&ts=1");
    assert!(deal.unusable.unwrap().contains("ONCRMDEALUPDATE"));
}

#[test]
fn unusable_360_and_cplug_events_say_why_and_keep_their_id() {
    for (body, why) in [
        (&b"[1]"[..], "not a JSON object"),
        (br#"{"event":"sale.completed"}"#, "event_id is missing"),
        (br#"{"event_id":"s1","occurred_at":"2026-03-02T14:05:11Z"}"#, "event is missing"),
        (br#"{"event_id":"s1","event":"sale.completed","sale":{"id":"V-1"}}"#, "occurred_at is missing"),
        (
            br#"{"event_id":"s1","event":"sale.completed","occurred_at":"2026-03-02T14:05:11Z","sale":{}}"#,
            "sale.id is missing",
        ),
    ] {
        let reason = Cplug::parse(body).unusable.unwrap_or_default();
        assert!(reason.contains(why), "{reason} vs {why}");
    }
    let ev = Envios360::parse(
        br#"{"event_id":"p1","event":"product.approval_changed","occurred_at":"2026-03-02T14:05:11Z","order":{"external_id":"1"}}"#,
    );
    assert_eq!((ev.source_event_id.as_str(), ev.unusable.as_deref()), ("p1", Some("product.external_id is missing")));
    let ev = Envios360::parse(
        br#"{"event_id":"p2","event":"product.approval_changed","occurred_at":"2026-03-02T14:05:11Z","product":{"external_id":77}}"#,
    );
    assert_eq!((ev.unusable, ev.entity_key.as_str()), (None, "product:77"));
}

#[test]
fn every_event_type_the_senders_list_has_subscribers() {
    use ponte_connectors::{
        bitrix24::events, bling::webhooks as bling, cplug::webhooks as cplug, envios360::webhooks as envios360,
    };
    for t in bling::EventType::ALL {
        assert!(!Bling::routes(t.as_str()).is_empty(), "{t}");
    }
    for t in events::EventType::ALL {
        assert!(!Bitrix24::routes(t.as_str()).is_empty(), "{t}");
    }
    for t in cplug::EventType::ALL {
        assert_eq!(Cplug::routes(t.as_str()), [Route::SALES]);
    }
    for t in envios360::EventType::ALL {
        assert_eq!(Envios360::routes(t.as_str()), [Route::SHIPPING]);
    }
    assert_eq!(Bling::routes("order.updated"), [Route::CATALOG_COALESCED, Route::SHIPPING]);
    for kind in SourceKind::ALL {
        assert_eq!(SourceKind::from_name(kind.name()), Some(kind));
        assert_eq!(SourceKind::from_provider(kind.provider()), Some(kind));
    }
}
