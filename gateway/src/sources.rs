//! The four webhook senders behind one template ([`WebhookSource`]): how each signs its
//! requests, where its tenant comes from, what its event id and entity key are, and which
//! services subscribe to its events. Bodies are read through each sender's wire types in
//! `ponte_connectors`; everything after the template (dedupe, store, dispatch) is shared and
//! lives elsewhere.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use ponte_connectors::{
    bitrix24::events::{self as bitrix24, EventForm},
    bling::webhooks::{self as bling, Envelope},
    cplug::webhooks::{self as cplug, SaleEvent},
    envios360::webhooks::{self as envios360, StatusEvent},
    webhooks::{BodyError, ContractEvent},
};
use ponte_proto::v1::Provider;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::subscribers::Route;

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
    /// No ponte service subscribes to its type: it is recorded as ignored, not as a dead letter.
    pub unsubscribed: bool,
}

/// One sender's scheme. The pipeline calls these in a fixed order: content type, signature
/// (before anything in the body is trusted), then [`WebhookSource::parse`].
pub trait WebhookSource: Send + Sync + 'static {
    const KIND: SourceKind;
    /// The `source` column and metrics label.
    const NAME: &'static str = Self::KIND.name();
    const PROVIDER: Provider = Self::KIND.provider();
    const TENANCY: Tenancy = Self::KIND.tenancy();
    const CONTENT_TYPE: &'static str;

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
    const ALL: [Self; 4] = [Self::Bling, Self::Envios360, Self::Cplug, Self::Bitrix24];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn from_provider(p: Provider) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.provider() == p)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Bling => "bling",
            Self::Envios360 => "envios360",
            Self::Cplug => "cplug",
            Self::Bitrix24 => "bitrix24",
        }
    }

    pub const fn provider(self) -> Provider {
        match self {
            Self::Bling => Provider::Bling,
            Self::Envios360 => Provider::Envios360,
            Self::Cplug => Provider::Cplug,
            Self::Bitrix24 => Provider::Bitrix24,
        }
    }

    pub const fn tenancy(self) -> Tenancy {
        match self {
            Self::Bling => Tenancy::Account,
            Self::Envios360 | Self::Cplug | Self::Bitrix24 => Tenancy::Path,
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

/// A text field worth keeping: trimmed, not blank, at most 200 bytes.
fn usable(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty() && s.len() <= 200)
}

/// Reads the envelope of the contracts ponte defines (360Envios, CPLUG): event id, type and
/// time, then the entity through `entity` (which object depends on the type).
fn parse_contract_event<T>(
    body: &[u8],
    parsed: Result<ContractEvent<T>, BodyError>,
    routes: fn(&str) -> &'static [Route],
    entity: impl FnOnce(&str, &ContractEvent<T>) -> Result<String, String>,
) -> Event {
    let v = match parsed {
        Ok(v) => v,
        Err(e) => return unusable(body, e.to_string()),
    };
    let Some(id) = usable(&v.event_id) else { return unusable(body, "event_id is missing") };
    let mut ev = Event { source_event_id: id.to_owned(), ..Event::default() };
    let Some(kind) = usable(&v.event) else {
        ev.unusable = Some("event is missing".into());
        return ev;
    };
    ev.event_type = kind.to_owned();
    ev.occurred = v.occurred_ms();
    ev.unsubscribed = routes(kind).is_empty();
    ev.unusable = if ev.unsubscribed {
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
/// client secret.
pub struct Bling;

impl WebhookSource for Bling {
    const KIND: SourceKind = SourceKind::Bling;
    const CONTENT_TYPE: &'static str = "application/json";

    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
        verify_hmac_sha256(key, headers, "x-bling-signature-256", body)
    }

    fn parse(body: &[u8]) -> Event {
        let v = match Envelope::parse(body) {
            Ok(v) => v,
            Err(e) => return unusable(body, e.to_string()),
        };
        let Some(id) = usable(&v.event_id) else { return unusable(body, "eventId is missing") };
        let mut ev = Event {
            source_event_id: id.to_owned(),
            account: usable(&v.company_id).unwrap_or_default().to_owned(),
            occurred: v.occurred_ms(),
            ..Event::default()
        };
        let kind = usable(&v.event).unwrap_or_default();
        ev.event_type = kind.to_owned();
        ev.unusable = match (kind.parse::<bling::EventType>().ok(), v.version.as_deref()) {
            _ if !kind.contains('.') => Some("event is missing or not '<resource>.<action>'".into()),
            _ if ev.account.is_empty() => Some("companyId is missing".into()),
            (_, Some(version)) if version != bling::VERSION => {
                Some(format!("payload version '{version}' is not supported (set the hook to version 1)"))
            }
            // Every type ponte knows has subscribers.
            (None, _) => {
                ev.unsubscribed = true;
                Some(format!("no ponte service subscribes to '{kind}' events"))
            }
            _ if ev.occurred.is_none() => Some("date is missing or not an ISO 8601 time".into()),
            (Some(kind), _) => match v.data_id() {
                Some(entity) => {
                    ev.entity_key = format!("{}:{entity}", kind.resource().as_str());
                    None
                }
                None => Some("data.id is missing or not an id".into()),
            },
        };
        ev
    }

    fn routes(event_type: &str) -> &'static [Route] {
        use bling::EventType::*;
        match event_type.parse() {
            Ok(ProductCreated | ProductDeleted) => &[Route::CATALOG],
            Ok(ProductUpdated) => &[Route::CATALOG_COALESCED],
            Ok(OrderCreated | OrderDeleted) => &[Route::CATALOG, Route::SHIPPING],
            Ok(OrderUpdated) => &[Route::CATALOG_COALESCED, Route::SHIPPING],
            Err(_) => &[],
        }
    }
}

/// 360Envios status webhooks: `X-360-Signature`, keyed with the tenant's webhook secret.
pub struct Envios360;

impl WebhookSource for Envios360 {
    const KIND: SourceKind = SourceKind::Envios360;
    const CONTENT_TYPE: &'static str = "application/json";

    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
        verify_hmac_sha256(key, headers, "x-360-signature", body)
    }

    fn parse(body: &[u8]) -> Event {
        // The Bling id (`external_id`) is the entity, so a Bling order's own events and its
        // shipping status changes reach shipping-status one at a time, in order.
        parse_contract_event(body, StatusEvent::parse(body), Self::routes, |kind, v: &StatusEvent| {
            let subject = kind.parse::<envios360::EventType>().map_err(|e| e.to_string())?.subject();
            v.external_id(subject)
                .map(|id| format!("{}:{id}", subject.as_str()))
                .ok_or_else(|| format!("{}.external_id is missing", subject.as_str()))
        })
    }

    fn routes(event_type: &str) -> &'static [Route] {
        match event_type.parse::<envios360::EventType>() {
            Ok(_) => &[Route::SHIPPING],
            Err(_) => &[],
        }
    }
}

/// CPLUG sale pushes: `X-Cplug-Signature`, keyed with the tenant's webhook secret.
pub struct Cplug;

impl WebhookSource for Cplug {
    const KIND: SourceKind = SourceKind::Cplug;
    const CONTENT_TYPE: &'static str = "application/json";

    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
        verify_hmac_sha256(key, headers, "x-cplug-signature", body)
    }

    fn parse(body: &[u8]) -> Event {
        parse_contract_event(body, SaleEvent::parse(body), Self::routes, |_, v: &SaleEvent| {
            v.sale_id().map(|id| format!("sale:{id}")).ok_or_else(|| "sale.id is missing".to_owned())
        })
    }

    fn routes(event_type: &str) -> &'static [Route] {
        match event_type.parse::<cplug::EventType>() {
            Ok(_) => &[Route::SALES],
            Err(_) => &[],
        }
    }
}

/// Bitrix24 outbound events: form-encoded, authenticated by `auth[application_token]` (no
/// HMAC), carrying only the entity id.
pub struct Bitrix24;

impl WebhookSource for Bitrix24 {
    const KIND: SourceKind = SourceKind::Bitrix24;
    const CONTENT_TYPE: &'static str = "application/x-www-form-urlencoded";

    fn verify(key: &[u8], _headers: &HeaderMap, body: &[u8]) -> bool {
        let form = EventForm::parse(body);
        let Some(token) = form.application_token() else { return false };
        // Digests first, so the comparison takes the same time whatever the lengths.
        Sha256::digest(token.as_bytes()).ct_eq(&Sha256::digest(key)).into()
    }

    fn parse(body: &[u8]) -> Event {
        let form = EventForm::parse(body);
        let Some(kind) = form.event().map(str::to_ascii_uppercase) else {
            return unusable(body, "event is missing");
        };
        let id = form.entity_id().filter(|id| id.len() <= 64);
        let ts = form.ts();
        // Bitrix24 events carry no id: the event, the entity and the second it happened name
        // one change (two changes in the same second need one re-read, which is what they get).
        let mut ev = Event {
            source_event_id: match (id, ts) {
                (Some(id), Some(ts)) => format!("{kind}:{id}:{ts}"),
                _ => body_id(body),
            },
            event_type: kind.clone(),
            occurred: ts.map(|t| t * 1000),
            account: form.domain().unwrap_or_default().to_owned(),
            ..Event::default()
        };
        ev.unsubscribed = Self::routes(&kind).is_empty();
        ev.unusable = if ev.unsubscribed {
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
        use bitrix24::EventType::*;
        match event_type.parse() {
            Ok(CrmProductAdd | CrmProductDelete | CatalogProductAdd | CatalogProductDelete) => &[Route::CATALOG],
            Ok(CrmProductUpdate | CatalogProductUpdate) => &[Route::CATALOG_COALESCED],
            Err(_) => &[],
        }
    }

    /// Bitrix24 puts the application token (and, for app subscriptions, access and refresh
    /// tokens) in the body; the inbox keeps none of them.
    fn stored_payload(body: &[u8]) -> Vec<u8> {
        EventForm::parse(body).without_credentials()
    }
}

#[cfg(test)]
mod tests;
