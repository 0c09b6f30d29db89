//! A CPLUG sale as the point of sale sends it: any JSON becomes a sale or a field error, never a
//! panic, whatever the numbers (huge, negative, fractional) or the shapes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = ponte_connectors::cplug::sales::to_sale(&value, Some(0));
    let _ = ponte_connectors::cplug::sales::to_sale(&value, None);
});
