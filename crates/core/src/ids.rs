//! Identifiers that must not be mixed up, validated once where they enter ponte: a tenant's
//! id ([`TenantId`]) and a Bling resource id ([`BlingId`]). Inside ponte a function that takes
//! one of these never re-checks it; one that takes a `&str` has not been told which it is.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::error::{ServiceError, quote};

/// A tenant's id: 1 to 63 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit
/// (it appears in URLs, Redis keys and Kubernetes labels).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// Why a raw value is not an id; `Display` quotes at most a short prefix of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is required")]
    Empty,
    #[error("{0} must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'")]
    Tenant(String),
    #[error("{0} is not a Bling id (a whole number greater than 0)")]
    Bling(String),
}

impl TenantId {
    pub const MAX_LEN: usize = 63;

    /// Checks `raw` as a tenant id.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        let ok_len = raw.len() <= Self::MAX_LEN;
        let ok_chars = raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let ok_ends = !raw.starts_with('-') && !raw.ends_with('-');
        if ok_len && ok_chars && ok_ends { Ok(Self(raw.to_owned())) } else { Err(IdError::Tenant(quote(raw))) }
    }

    /// Checks the request field `field` as a tenant id; the error names the field.
    pub fn field(field: &str, raw: &str) -> Result<Self, ServiceError> {
        Self::parse(raw).map_err(|e| ServiceError::invalid(field, e.to_string()))
    }

    /// A tenant id read back from ponte's own storage, where only checked ids are written.
    pub fn from_stored(raw: String) -> Self {
        debug_assert!(Self::parse(&raw).is_ok(), "stored tenant id {raw:?} is not valid");
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for TenantId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TenantId {
    type Error = IdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> Self {
        t.0
    }
}

/// The id of a Bling resource (product, order, contact, situação, …): a positive integer that
/// Bling sends as a number and, in some places, as text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlingId(i64);

impl BlingId {
    /// `Some` for a positive id.
    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(Self(id))
    }

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        raw.parse::<i64>().ok().and_then(Self::new).ok_or_else(|| IdError::Bling(quote(raw)))
    }

    /// Checks the request field `field` as a Bling id; the error names the field.
    pub fn field(field: &str, raw: &str) -> Result<Self, ServiceError> {
        Self::parse(raw).map_err(|e| ServiceError::invalid(field, e.to_string()))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for BlingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for BlingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlingId({})", self.0)
    }
}

impl FromStr for BlingId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_dns_label_rule() {
        for ok in ["loja-1", "a", "0", &"a".repeat(63)] {
            assert_eq!(TenantId::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(TenantId::parse(""), Err(IdError::Empty));
        for bad in ["Loja", "-a", "a-", "a b", "ação", &"a".repeat(64)] {
            assert!(TenantId::parse(bad).is_err(), "{bad} accepted");
        }
        let e = TenantId::field("tenant_id", "Loja Centro").unwrap_err().to_string();
        assert_eq!(
            e,
            "tenant_id: 'Loja Centro' must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'"
        );
    }

    #[test]
    fn a_long_bad_value_is_quoted_by_a_short_prefix_only() {
        let e = TenantId::field("tenant_id", &"X".repeat(16_000)).unwrap_err().to_string();
        assert!(e.len() < 200, "{} characters", e.len());
        assert!(e.starts_with("tenant_id: 'XXXX") && e.contains('…'), "{e}");
    }

    #[test]
    fn bling_ids_are_positive_integers() {
        assert_eq!(BlingId::parse("16059781281").unwrap().get(), 16_059_781_281);
        for bad in ["0", "-3", "1.5", "abc", " 7"] {
            assert!(BlingId::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(serde_json::to_string(&BlingId::new(9).unwrap()).unwrap(), "9");
        let t: TenantId = serde_json::from_str("\"loja\"").unwrap();
        assert_eq!(t.as_str(), "loja");
        assert!(serde_json::from_str::<TenantId>("\"Loja\"").is_err());
    }
}
