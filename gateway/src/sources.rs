//! The four webhook senders behind one template ([`WebhookSource`]): how each signs its
//! requests, where its tenant comes from, what its event id and entity key are, and which
//! services subscribe to its events. Everything after the template (dedupe, store, dispatch)
//! is shared and lives elsewhere.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use ponte_proto::v1::Provider;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A ponte service that handles inbox events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subscriber {
    CatalogSync,
    SalesIngest,
    ShippingStatus,
}

impl Subscriber {
    pub const ALL: [Subscriber; 3] = [Self::CatalogSync, Self::SalesIngest, Self::ShippingStatus];

    pub fn name(self) -> &'static str {
        match self {
            Self::CatalogSync => "catalog-sync",
            Self::SalesIngest => "sales-ingest",
            Self::ShippingStatus => "shipping-status",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One subscription: who gets an event type, and whether queued events of one entity may be
/// collapsed into the newest (right where the handler re-reads the source, wrong where every
/// event is a fact of its own, like a sale or a cancellation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub subscriber: Subscriber,
    pub coalesce: bool,
}

const CATALOG: Route = Route { subscriber: Subscriber::CatalogSync, coalesce: false };
const CATALOG_COALESCED: Route = Route { subscriber: Subscriber::CatalogSync, coalesce: true };
const SALES: Route = Route { subscriber: Subscriber::SalesIngest, coalesce: false };
const SHIPPING: Route = Route { subscriber: Subscriber::ShippingStatus, coalesce: false };

/// Where a sender's tenant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy {
    /// The URL names it (`/webhooks/cplug/{tenant}`); the signing key is that tenant's secret.
    Path,
    /// One URL serves every merchant: the tenant is whoever connected the account the event
    /// names (Bling `companyId`); the signing key is the app's client secret.
    Account,
}

/// What a verified body says, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The sender's event id, or `sha256:<hex of the body>` when it has none (so a retry of
    /// the same unusable body is still stored once).
    pub source_event_id: String,
    pub event_type: String,
    /// `<kind>:<id>`; empty when unknown.
    pub entity_key: String,
    /// When the sender says it happened (Unix ms).
    pub occurred: Option<i64>,
    /// The sender's account (Bling `companyId`, Bitrix24 domain); empty when none.
    pub account: String,
    /// Why the event cannot be delivered, when it cannot.
    pub unusable: Option<String>,
}

/// One sender's scheme. The pipeline calls these in a fixed order: content type, signature
/// (before anything in the body is trusted), then [`WebhookSource::parse`].
pub trait WebhookSource: Send + Sync + 'static {
    const PROVIDER: Provider;
    /// The `source` column and metrics label.
    const NAME: &'static str;
    const CONTENT_TYPE: &'static str;
    const TENANCY: Tenancy;

    /// Whether the request was signed with `key`, checked in constant time.
    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool;

    /// Reads the event from a verified body.
    fn parse(body: &[u8]) -> Event;

    /// Who subscribes to an event type (empty: nobody, so the event is a dead letter).
    fn routes(event_type: &str) -> &'static [Route];

    /// The body as stored: the raw body, minus anything secret a sender puts in it.
    fn stored_payload(body: &[u8]) -> Vec<u8> {
        body.to_vec()
    }
}

/// A source named at run time (a stored row's `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Bling,
    Envios360,
    Cplug,
    Bitrix24,
}

impl SourceKind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            Bling::NAME => Self::Bling,
            Envios360::NAME => Self::Envios360,
            Cplug::NAME => Self::Cplug,
            Bitrix24::NAME => Self::Bitrix24,
            _ => return None,
        })
    }

    pub fn from_provider(p: Provider) -> Option<Self> {
        Some(match p {
            Provider::Bling => Self::Bling,
            Provider::Envios360 => Self::Envios360,
            Provider::Cplug => Self::Cplug,
            Provider::Bitrix24 => Self::Bitrix24,
            Provider::Unspecified => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bling => Bling::NAME,
            Self::Envios360 => Envios360::NAME,
            Self::Cplug => Cplug::NAME,
            Self::Bitrix24 => Bitrix24::NAME,
        }
    }

    pub fn provider(self) -> Provider {
        match self {
            Self::Bling => Bling::PROVIDER,
            Self::Envios360 => Envios360::PROVIDER,
            Self::Cplug => Cplug::PROVIDER,
            Self::Bitrix24 => Bitrix24::PROVIDER,
        }
    }

    pub fn tenancy(self) -> Tenancy {
        match self {
            Self::Bling => Bling::TENANCY,
            Self::Envios360 => Envios360::TENANCY,
            Self::Cplug => Cplug::TENANCY,
            Self::Bitrix24 => Bitrix24::TENANCY,
        }
    }

    pub fn parse(self, body: &[u8]) -> Event {
        match self {
            Self::Bling => Bling::parse(body),
            Self::Envios360 => Envios360::parse(body),
            Self::Cplug => Cplug::parse(body),
            Self::Bitrix24 => Bitrix24::parse(body),
        }
    }

    pub fn routes(self, event_type: &str) -> &'static [Route] {
        match self {
            Self::Bling => Bling::routes(event_type),
            Self::Envios360 => Envios360::routes(event_type),
            Self::Cplug => Cplug::routes(event_type),
            Self::Bitrix24 => Bitrix24::routes(event_type),
        }
    }
}

/// `sha256=<hex>` in `header`: HMAC-SHA256 of the raw body under `key`, compared in constant time.
pub fn verify_hmac_sha256(key: &[u8], headers: &HeaderMap, header: &str, body: &[u8]) -> bool {
    let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) else { return false };
    let Some(hex_sig) = value.trim().strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return false };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The id of a body without one of its own.
fn body_id(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn unusable(body: &[u8], reason: impl Into<String>) -> Event {
    Event { source_event_id: body_id(body), unusable: Some(reason.into()), ..Event::default() }
}

/// An RFC 3339 time as Unix ms.
fn rfc3339(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok().map(|t| t.timestamp_millis())
}

/// An id given as a JSON number or a non-empty string.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() && s.len() <= 128 => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn str_of<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty() && s.len() <= 200)
}

/// Reads `{event id, type, time}` the way 360Envios and CPLUG both send them, then the entity
/// through `entity` (the field and kind depend on the event type).
fn parse_json_event(
    body: &[u8],
    routes: fn(&str) -> &'static [Route],
    entity: fn(&str, &Value) -> Result<String, String>,
) -> Event {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return unusable(body, "the body is not a JSON object"),
        Err(e) => return unusable(body, format!("the body is not JSON ({e})")),
    };
    let Some(id) = str_of(&v, "event_id") else { return unusable(body, "event_id is missing") };
    let mut ev = Event { source_event_id: id.to_owned(), ..Event::default() };
    let Some(kind) = str_of(&v, "event") else {
        ev.unusable = Some("event is missing".into());
        return ev;
    };
    ev.event_type = kind.to_owned();
    ev.occurred = rfc3339(&v["occurred_at"]);
    ev.unusable = if routes(kind).is_empty() {
        Some(format!("no ponte service subscribes to '{kind}' events"))
    } else if ev.occurred.is_none() {
        Some("occurred_at is missing or not an RFC 3339 time".into())
    } else {
        match entity(kind, &v) {
            Ok(key) => {
                ev.entity_key = key;
                None
            }
            Err(why) => Some(why),
        }
    };
    ev
}

/// Bling v3 webhooks: one URL for every account, `X-Bling-Signature-256` keyed with the app's
/// client secret, `{eventId, date, version, event, companyId, data}`.
pub struct Bling;

impl WebhookSource for Bling {
    const PROVIDER: Provider = Provider::Bling;
    const NAME: &'static str = "bling";
    const CONTENT_TYPE: &'static str = "application/json";
    const TENANCY: Tenancy = Tenancy::Account;

    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
        verify_hmac_sha256(key, headers, "x-bling-signature-256", body)
    }

    fn parse(body: &[u8]) -> Event {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return unusable(body, "the body is not a JSON object"),
            Err(e) => return unusable(body, format!("the body is not JSON ({e})")),
        };
        let Some(id) = str_of(&v, "eventId") else { return unusable(body, "eventId is missing") };
        let mut ev = Event {
            source_event_id: id.to_owned(),
            account: str_of(&v, "companyId").unwrap_or_default().to_owned(),
            occurred: rfc3339(&v["date"]),
            ..Event::default()
        };
        let kind = str_of(&v, "event").unwrap_or_default();
        ev.event_type = kind.to_owned();
        ev.unusable = match (kind.split_once('.'), v.get("version").and_then(Value::as_str)) {
            (None, _) => Some("event is missing or not '<resource>.<action>'".into()),
            _ if ev.account.is_empty() => Some("companyId is missing".into()),
            (_, Some(version)) if version != "v1" => {
                Some(format!("payload version '{version}' is not supported (set the hook to version 1)"))
            }
            _ if Self::routes(kind).is_empty() => Some(format!("no ponte service subscribes to '{kind}' events")),
            _ if ev.occurred.is_none() => Some("date is missing or not an ISO 8601 time".into()),
            (Some((resource, _)), _) => match id_of(&v["data"]["id"]) {
                Some(entity) => {
                    ev.entity_key = format!("{resource}:{entity}");
                    None
                }
                None => Some("data.id is missing or not an id".into()),
            },
        };
        ev
    }

    fn routes(event_type: &str) -> &'static [Route] {
        match event_type {
            "product.created" | "product.deleted" => &[CATALOG],
            "product.updated" => &[CATALOG_COALESCED],
            "order.created" | "order.deleted" => &[CATALOG, SHIPPING],
            "order.updated" => &[CATALOG_COALESCED, SHIPPING],
            _ => &[],
        }
    }
}

/// 360Envios status webhooks: `X-360-Signature`, keyed with the tenant's webhook secret.
pub struct Envios360;

impl WebhookSource for Envios360 {
    const PROVIDER: Provider = Provider::Envios360;
    const NAME: &'static str = "envios360";
    const CONTENT_TYPE: &'static str = "application/json";
    const TENANCY: Tenancy = Tenancy::Path;

    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
        verify_hmac_sha256(key, headers, "x-360-signature", body)
    }

    fn parse(body: &[u8]) -> Event {
        // The Bling order id (`external_id`) is the entity, so a Bling order's own events and
        // its shipping status changes reach shipping-status one at a time, in order.
        parse_json_event(body, Self::routes, |kind, v| {
            let (object, kind) = if kind.starts_with("order.") { ("order", "order") } else { ("product", "product") };
            id_of(&v[object]["external_id"])
                .map(|id| format!("{kind}:{id}"))
                .ok_or_else(|| format!("{object}.external_id is missing"))
        })
    }

    fn routes(event_type: &str) -> &'static [Route] {
        match event_type {
            "order.status_changed" | "product.approval_changed" => &[SHIPPING],
            _ => &[],
        }
    }
}

/// CPLUG sale pushes: `X-Cplug-Signature`, keyed with the tenant's webhook secret.
pub struct Cplug;

impl WebhookSource for Cplug {
    const PROVIDER: Provider = Provider::Cplug;
    const NAME: &'static str = "cplug";
    const CONTENT_TYPE: &'static str = "application/json";
    const TENANCY: Tenancy = Tenancy::Path;

    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
        verify_hmac_sha256(key, headers, "x-cplug-signature", body)
    }

    fn parse(body: &[u8]) -> Event {
        parse_json_event(body, Self::routes, |_, v| {
            id_of(&v["sale"]["id"]).map(|id| format!("sale:{id}")).ok_or_else(|| "sale.id is missing".to_owned())
        })
    }

    fn routes(event_type: &str) -> &'static [Route] {
        match event_type {
            "sale.completed" | "sale.cancelled" => &[SALES],
            _ => &[],
        }
    }
}

/// Bitrix24 outbound events: form-encoded, authenticated by `auth[application_token]` (no
/// HMAC), carrying only the entity id.
pub struct Bitrix24;

impl Bitrix24 {
    /// The body's fields, in PHP-array notation (`auth[application_token]`).
    pub(crate) fn form(body: &[u8]) -> Option<Vec<(String, String)>> {
        serde_urlencoded::from_bytes(body).ok()
    }
}

/// A form field's trimmed value; `None` when absent or blank.
pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

impl WebhookSource for Bitrix24 {
    const PROVIDER: Provider = Provider::Bitrix24;
    const NAME: &'static str = "bitrix24";
    const CONTENT_TYPE: &'static str = "application/x-www-form-urlencoded";
    const TENANCY: Tenancy = Tenancy::Path;

    fn verify(key: &[u8], _headers: &HeaderMap, body: &[u8]) -> bool {
        let Some(form) = Self::form(body) else { return false };
        let Some(token) = field(&form, "auth[application_token]") else { return false };
        // Digests first, so the comparison takes the same time whatever the lengths.
        Sha256::digest(token.as_bytes()).ct_eq(&Sha256::digest(key)).into()
    }

    fn parse(body: &[u8]) -> Event {
        let Some(form) = Self::form(body) else { return unusable(body, "the body is not form-encoded") };
        let Some(kind) = field(&form, "event").map(str::to_ascii_uppercase) else {
            return unusable(body, "event is missing");
        };
        let id = field(&form, "data[FIELDS][ID]").filter(|id| id.len() <= 64);
        let ts = field(&form, "ts").and_then(|t| t.parse::<i64>().ok());
        // Bitrix24 events carry no id: the event, the entity and the second it happened name
        // one change (two changes in the same second need one re-read, which is what they get).
        let mut ev = Event {
            source_event_id: match (id, ts) {
                (Some(id), Some(ts)) => format!("{kind}:{id}:{ts}"),
                _ => body_id(body),
            },
            event_type: kind.clone(),
            occurred: ts.map(|t| t * 1000),
            account: field(&form, "auth[domain]").unwrap_or_default().to_owned(),
            ..Event::default()
        };
        ev.unusable = if Self::routes(&kind).is_empty() {
            Some(format!("no ponte service subscribes to '{kind}' events"))
        } else if ts.is_none() {
            Some("ts is missing or not a Unix time".into())
        } else if let Some(id) = id {
            ev.entity_key = format!("bitrix24_product:{id}");
            None
        } else {
            Some("data[FIELDS][ID] is missing".into())
        };
        ev
    }

    fn routes(event_type: &str) -> &'static [Route] {
        match event_type {
            "ONCRMPRODUCTADD" | "ONCRMPRODUCTDELETE" | "CATALOG.PRODUCT.ON.ADD" | "CATALOG.PRODUCT.ON.DELETE" => {
                &[CATALOG]
            }
            "ONCRMPRODUCTUPDATE" | "CATALOG.PRODUCT.ON.UPDATE" => &[CATALOG_COALESCED],
            _ => &[],
        }
    }

    /// Bitrix24 puts the application token (and, for app subscriptions, access and refresh
    /// tokens) in the body; the inbox keeps none of them.
    fn stored_payload(body: &[u8]) -> Vec<u8> {
        let Some(form) = Self::form(body) else { return body.to_vec() };
        let kept: Vec<(String, String)> = form
            .into_iter()
            .filter(|(k, _)| !k.starts_with("auth[") || k == "auth[domain]" || k == "auth[member_id]")
            .collect();
        serde_urlencoded::to_string(kept).map(String::into_bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
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
}
