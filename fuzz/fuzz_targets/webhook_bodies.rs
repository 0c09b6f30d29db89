//! Any body, from any of the four senders, read as the gateway reads it after the signature:
//! an event (possibly unusable, with the reason), its subscribers and the payload stored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ponte_gateway::sources::{SourceKind, WebhookSource};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let kind = [SourceKind::Bling, SourceKind::Envios360, SourceKind::Cplug, SourceKind::Bitrix24][usize::from(which % 4)];
    let event = kind.parse(body);
    assert!(!event.source_event_id.is_empty(), "every event gets an id");
    let _ = kind.routes(&event.event_type);
    if kind == SourceKind::Bitrix24 {
        let stored = ponte_gateway::sources::Bitrix24::stored_payload(body);
        let form = ponte_connectors::bitrix24::events::EventForm::parse(&stored);
        assert!(form.application_token().is_none(), "the application token is never stored");
    }
});
