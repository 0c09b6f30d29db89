//! What a browser brings back to `GET /oauth/{provider}/callback` (any path segment and query)
//! and what the providers answer to the code exchange (Bling's and CPLUG's token JSON,
//! Bitrix24's portal domain): each reads into a request or a refusal, never a panic, and a
//! refusal's page quotes at most a short prefix of what was sent.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use ponte_gateway::oauth::callback_request;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (provider, query) = text.split_once('?').unwrap_or(("bling", &text));
    if let Ok(q) = serde_urlencoded::from_str::<HashMap<String, String>>(query) {
        match callback_request(provider, &q) {
            Ok(req) => assert!(!req.state.is_empty(), "a request always carries its state"),
            Err(refusal) => assert!(refusal.detail.len() < 200, "a refusal quotes a short prefix"),
        }
    }
    match ponte_auth_token::portal_domain("domain", &text) {
        Ok(domain) => assert!(domain.len() <= 253 && !domain.is_empty()),
        Err(e) => assert!(e.to_string().len() < 300, "the error quotes a short prefix"),
    }
    let _ = serde_json::from_slice::<ponte_connectors::bling::types::TokenResponse>(data);
    let _ = serde_json::from_slice::<ponte_connectors::cplug::types::TokenResponse>(data);
});
