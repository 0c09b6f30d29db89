//! `ponte mapping import`'s YAML: any text is a document or an error; a document that reads and
//! validates writes back to YAML that reads again as the same document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ponte_mapping::document::{from_yaml, to_yaml, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(doc) = from_yaml(text) else { return };
    if validate(&doc).is_err() {
        return;
    }
    let Ok(yaml) = to_yaml(&doc, "fuzz") else { return };
    let again = from_yaml(&yaml).expect("ponte's own YAML reads back");
    assert_eq!(again, doc, "the document changed on its way through YAML");
});
