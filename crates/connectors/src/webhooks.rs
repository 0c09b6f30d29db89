//! What the JSON webhook bodies of every sender share, read leniently: a signed body is kept
//! even when a field is malformed, so each field reads as "present and of its type, or absent"
//! instead of failing the whole body, and the reader can name the field that is missing. Each
//! sender's envelope and event types live in its own module (`bling::webhooks`,
//! `cplug::webhooks`, `envios360::webhooks`; Bitrix24's form in `bitrix24::events`).

use std::fmt;

use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::Value;

/// Why a body is not a JSON object.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not JSON ({0})")]
    NotJson(serde_json::Error),
    #[error("the body is not a JSON object")]
    NotObject,
}

/// Reads `body` as the envelope `T`, whose fields are all [`lenient`]: any JSON object is one.
pub fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => T::deserialize(v).map_err(BodyError::NotJson),
        Ok(_) => Err(BodyError::NotObject),
        Err(e) => Err(BodyError::NotJson(e)),
    }
}

/// `#[serde(default, deserialize_with = "crate::webhooks::lenient")]`: the field as a `T`, or
/// `None` when it is absent, null or not a `T`.
pub fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(T::deserialize(Value::deserialize(d)?).ok())
}

/// An id as senders write them: a whole JSON number (`16059781281`) or non-blank text of at
/// most 128 characters (`"V-000123"`), kept trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(String);

impl Id {
    pub const MAX_LEN: usize = 128;

    /// The id in `v`, if it holds one.
    pub fn of(v: &Value) -> Option<Self> {
        match v {
            Value::Number(n) if n.is_u64() || n.is_i64() => Some(Self(n.to_string())),
            Value::String(s) if !s.trim().is_empty() && s.len() <= Self::MAX_LEN => Some(Self(s.trim().to_owned())),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::of(&v).ok_or_else(|| serde::de::Error::custom(format!("{v} is not an id")))
    }
}

/// The envelope of the webhooks whose contract ponte defines (CPLUG's sales, 360Envios's
/// statuses): `{event_id, event, occurred_at, …}`, the rest of the body read as `T`. Every field
/// is read leniently: one that is missing or malformed is `None`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContractEvent<T> {
    /// Stable across the sender's retries.
    #[serde(default, deserialize_with = "lenient")]
    pub event_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub event: Option<String>,
    /// RFC 3339, with an offset.
    #[serde(default, deserialize_with = "lenient")]
    pub occurred_at: Option<String>,
    #[serde(flatten)]
    pub body: T,
}

impl<T: DeserializeOwned> ContractEvent<T> {
    pub fn parse(body: &[u8]) -> Result<Self, BodyError> {
        parse_object(body)
    }
}

impl<T> ContractEvent<T> {
    /// `occurred_at` as Unix milliseconds.
    pub fn occurred_ms(&self) -> Option<i64> {
        self.occurred_at.as_deref().and_then(unix_ms)
    }
}

/// A sender's event type name that is not one of those listed for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{event}' is not a {sender} event type ponte knows")]
pub struct UnknownEventType {
    pub sender: &'static str,
    pub event: String,
}

/// Declares a sender's event types, each wire name written once: the enum, `ALL`, `as_str`,
/// `Display` and `FromStr` (exact names, as the sender spells them).
macro_rules! event_types {
    ($(#[$meta:meta])* $name:ident of $sender:literal { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every type, in the order listed.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The name on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::webhooks::UnknownEventType;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|t| t.as_str() == s).ok_or_else(|| $crate::webhooks::UnknownEventType {
                    sender: $sender,
                    event: s.to_owned(),
                })
            }
        }
    };
}
pub(crate) use event_types;

/// An RFC 3339 time (`2026-03-02T14:05:11-03:00`) as Unix milliseconds.
pub fn unix_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Envelope {
        #[serde(default, deserialize_with = "lenient")]
        name: Option<String>,
        #[serde(default, deserialize_with = "lenient")]
        id: Option<Id>,
    }

    #[test]
    fn malformed_fields_read_as_absent_and_the_body_still_parses() {
        let e: Envelope = parse_object(br#"{"name": 7, "id": {"x": 1}}"#).unwrap();
        assert_eq!((e.name, e.id), (None, None));
        let e: Envelope = parse_object(br#"{"name": "loja", "id": " V-1 "}"#).unwrap();
        assert_eq!((e.name.as_deref(), e.id.as_ref().map(Id::as_str)), (Some("loja"), Some("V-1")));
        let e: Envelope = parse_object(br#"{"id": 16059781281}"#).unwrap();
        assert_eq!(e.id.unwrap().as_str(), "16059781281");
        assert!(parse_object::<Envelope>(br#"{"id": "   "}"#).unwrap().id.is_none());
        assert!(
            parse_object::<Envelope>(format!(r#"{{"id": "{}"}}"#, "x".repeat(129)).as_bytes()).unwrap().id.is_none()
        );
        assert!(parse_object::<Envelope>(br#"{"id": 1.5}"#).unwrap().id.is_none());
    }

    #[test]
    fn bodies_that_are_not_objects_say_so() {
        assert!(matches!(parse_object::<Envelope>(b"[1]"), Err(BodyError::NotObject)));
        let err = parse_object::<Envelope>(b"{not json").unwrap_err();
        assert!(err.to_string().starts_with("the body is not JSON ("), "{err}");
    }

    #[test]
    fn times_are_read_with_their_offset() {
        assert_eq!(unix_ms("2026-03-02T14:05:11-03:00"), Some(1_772_471_111_000));
        assert_eq!(unix_ms("2025-01-10T12:18:46Z"), Some(1_736_511_526_000));
        assert_eq!(unix_ms("2025-01-10"), None);
    }
}
