//! The bearer token a ponte client presents (see [`crate::identity`] for the server side).
//! Kept apart from the configuration it is read with, which holds one.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::config_error::ConfigError;

/// The client side: adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Default)]
pub struct BearerToken(Option<Arc<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "BearerToken(<redacted>)" } else { "BearerToken(None)" })
    }
}

impl PartialEq for BearerToken {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for BearerToken {}

impl BearerToken {
    pub fn none() -> Self {
        Self(None)
    }

    /// `token` as a bearer header; `var` names where it came from for the error.
    pub fn new(var: &str, token: &str) -> Result<Self, ConfigError> {
        let token = token.trim();
        if token.is_empty() {
            return Ok(Self(None));
        }
        let mut v = tonic::metadata::MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ConfigError::new(var, "is not a valid token (printable ASCII only)"))?;
        v.set_sensitive(true);
        Ok(Self(Some(Arc::new(v))))
    }

    /// Adds the header to `req`.
    pub fn apply<T>(&self, req: &mut tonic::Request<T>) {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", (**v).clone());
        }
    }
}
