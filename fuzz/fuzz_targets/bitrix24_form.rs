//! Bitrix24's form-encoded events (and the installation post): any bytes are a form; reading
//! its fields never panics and the form kept for storage holds no credential.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ponte_connectors::bitrix24::events::EventForm;

fuzz_target!(|data: &[u8]| {
    let form = EventForm::parse(data);
    let _ = (form.event(), form.entity_id(), form.ts(), form.domain(), form.auth("member_id"));
    let kept = EventForm::parse(&form.without_credentials());
    assert!(kept.application_token().is_none(), "the application token survived");
});
