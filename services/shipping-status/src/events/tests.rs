use ponte_core::time::to_timestamp;

use super::*;

fn event() -> InboundEvent {
    InboundEvent {
        event_id: "0193-e".into(),
        tenant_id: "loja".into(),
        source: Provider::Bling as i32,
        source_event_id: "b-1".into(),
        event_type: "order.updated".into(),
        entity_key: "order:12345678".into(),
        occurred_at: Some(to_timestamp(1_700_000_000_000)),
        ..Default::default()
    }
}

#[test]
fn bad_events_name_the_field() {
    type Mutate = Box<dyn Fn(&mut InboundEvent)>;
    for (mutate, field) in [
        (Box::new(|e: &mut InboundEvent| e.event_id.clear()) as Mutate, "event.event_id"),
        (Box::new(|e: &mut InboundEvent| e.tenant_id = "Loja Centro!".into()), "event.tenant_id"),
        (Box::new(|e: &mut InboundEvent| e.source = Provider::Cplug as i32), "event.source"),
        (Box::new(|e: &mut InboundEvent| e.event_type = "product.updated".into()), "event.event_type"),
        (Box::new(|e: &mut InboundEvent| e.entity_key = "product:12345678".into()), "event.entity_key"),
        (Box::new(|e: &mut InboundEvent| e.entity_key = "order:abc".into()), "event.entity_key"),
        (Box::new(|e: &mut InboundEvent| e.occurred_at = None), "event.occurred_at"),
    ] {
        let mut e = event();
        mutate(&mut e);
        let err = check(&e).err().unwrap_or_else(|| panic!("{field} accepted"));
        assert!(err.to_string().starts_with(field), "{err}");
    }
    let c = check(&event()).unwrap();
    assert_eq!((c.kind, c.id.get()), (Kind::Bling(bling::EventType::OrderUpdated), 12345678));
    let hub = InboundEvent {
        source: Provider::Envios360 as i32,
        event_type: "product.approval_changed".into(),
        entity_key: "product:16059781281".into(),
        ..event()
    };
    assert_eq!(check(&hub).unwrap().kind.flow(), Flow::Status);
}

#[test]
fn an_order_events_situacao_and_total_are_read_for_echoes() {
    let body = br#"{"eventId":"e","date":"2026-03-02T14:00:00Z","version":"v1","event":"order.updated","companyId":"c",
        "data":{"id":9,"total":129.8,"situacao":{"id":501,"valor":3}}}"#;
    let s = sent(body, 7);
    assert_eq!((s.situacao, s.total, s.occurred), (Some(501), Some(Decimal::new(1298, 1)), 7));
    assert_eq!(sent(b"not json", 7), Sent { occurred: 7, ..Sent::default() });
}
