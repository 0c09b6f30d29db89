//! Any signature header against any body and key: verification answers yes or no, never panics
//! (header values that are not ASCII, odd lengths, missing prefixes, huge values).
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let key_len = usize::from(data[0]) % data.len();
    let (key, rest) = data[1..].split_at(key_len.min(data.len() - 1));
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (header, body) = rest.split_at(split);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(header) {
        headers.insert("x-signature", v);
    }
    let _ = ponte_gateway::sources::verify_hmac_sha256(key, &headers, "x-signature", body);
});
