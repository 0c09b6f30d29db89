//! The JSON envelopes of Bling, CPLUG and 360Envios webhooks: any bytes are read into an event
//! or refused with a reason; the fields the gateway uses never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ponte_connectors::{
    bling::webhooks::Envelope,
    cplug::webhooks::SaleEvent,
    envios360::webhooks::{StatusEvent, Subject},
};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Envelope::parse(data) {
        let _ = (e.occurred_ms(), e.data_id());
    }
    if let Ok(e) = SaleEvent::parse(data) {
        let _ = (e.occurred_ms(), e.sale_id());
    }
    if let Ok(e) = StatusEvent::parse(data) {
        let _ = (e.occurred_ms(), e.external_id(Subject::Order), e.external_id(Subject::Product));
    }
});
