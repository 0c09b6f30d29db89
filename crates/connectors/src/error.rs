//! How a call to an outside system failed, classified for retrying, and what a service
//! answers for it: the one conversion every service uses ([`From<ConnectorError>`] for
//! `ServiceError`).

use std::time::Duration;

use ponte_core::{
    access::TokenRefusal,
    error::ServiceError,
    retry::{Class, Classify},
};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConnectorError {
    /// Too many requests: wait (how long, when the system said) and try again.
    #[error("{system} rate limit: {message}")]
    RateLimited { system: &'static str, message: String, retry_after: Option<Duration> },
    /// The daily request budget of the account is spent.
    #[error("{system} daily request budget is spent: {message}")]
    BudgetExhausted { system: &'static str, message: String, renews_in: Option<Duration> },
    /// The access token was refused (expired or invalid): get a fresh one and try again.
    #[error("{system} refused the access token: {message}")]
    InvalidToken { system: &'static str, message: String },
    /// The grant is gone (refresh token rejected, code reused): the merchant must authorize again.
    #[error("{system} refused the grant: {message}")]
    InvalidGrant { system: &'static str, message: String },
    /// The request was refused for its content; retrying it as is cannot help.
    #[error("{system} refused the request ({status}): {message}")]
    Rejected { system: &'static str, status: u16, message: String, fields: Vec<String> },
    #[error("{system} has no such resource: {message}")]
    NotFound { system: &'static str, message: String },
    /// A fault on the other side or on the way (5xx, timeout, connection): retry later.
    #[error("{system} is unavailable: {message}")]
    Unavailable { system: &'static str, message: String },
    /// The answer could not be understood.
    #[error("{system} answered unexpectedly: {message}")]
    Protocol { system: &'static str, message: String },
}

impl Classify for ConnectorError {
    fn class(&self) -> Class {
        match self {
            Self::RateLimited { retry_after, .. } => Class::RateLimited(*retry_after),
            Self::Unavailable { .. } => Class::Retriable,
            Self::BudgetExhausted { .. }
            | Self::InvalidToken { .. }
            | Self::InvalidGrant { .. }
            | Self::Rejected { .. }
            | Self::NotFound { .. }
            | Self::Protocol { .. } => Class::Permanent,
        }
    }
}

impl TokenRefusal for ConnectorError {
    fn token_refused(&self) -> bool {
        matches!(self, Self::InvalidToken { .. })
    }
}

/// The wait a service asks its caller for when an outside system is busy and said nothing.
const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// What a service answers when an outside call failed: a wait-and-retry (`Unavailable`) for what
/// passes with time, `FailedPrecondition` for what a person must fix (a revoked grant, a
/// refused record: the caller parks its work with the reason), `NotFound` for what is gone.
impl From<ConnectorError> for ServiceError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::RateLimited { retry_after, .. } => {
                let wait = retry_after.unwrap_or(DEFAULT_WAIT);
                ServiceError::unavailable(e.to_string(), Some(wait))
            }
            ConnectorError::Unavailable { .. } => ServiceError::unavailable(e.to_string(), None),
            ConnectorError::BudgetExhausted { renews_in, .. } => ServiceError::unavailable(e.to_string(), renews_in),
            ConnectorError::NotFound { .. } => ServiceError::NotFound(e.to_string()),
            ConnectorError::Rejected { ref fields, .. } if !fields.is_empty() => {
                ServiceError::FailedPrecondition(format!("{e}: {}", fields.join("; ")))
            }
            ConnectorError::InvalidGrant { .. }
            | ConnectorError::InvalidToken { .. }
            | ConnectorError::Rejected { .. }
            | ConnectorError::Protocol { .. } => ServiceError::FailedPrecondition(e.to_string()),
        }
    }
}

/// A failure on the way to an outside system: the system's own answer, or ponte's (a token
/// that could not be had, a mapping that failed). What [`AccessTokens::with_token`] retries.
///
/// [`AccessTokens::with_token`]: ponte_core::access::AccessTokens::with_token
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Outside(#[from] ConnectorError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A copy for each caller sharing one failed load (a cache's single-flight).
impl Clone for CallError {
    fn clone(&self) -> Self {
        match self {
            Self::Outside(e) => Self::Outside(e.clone()),
            Self::Service(e) => Self::Service(e.cloned()),
        }
    }
}

impl TokenRefusal for CallError {
    fn token_refused(&self) -> bool {
        matches!(self, Self::Outside(e) if e.token_refused())
    }
}

impl From<CallError> for ServiceError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Outside(e) => e.into(),
            CallError::Service(e) => e,
        }
    }
}

impl ConnectorError {
    /// Whether the outside system said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether the same request may succeed later as it is: a rate limit, a fault on the way,
    /// or a token that a renewal fixes. What is left is about the request itself.
    pub fn is_transient(&self) -> bool {
        self.token_refused() || !matches!(self.class(), Class::Permanent)
    }

    /// What the outside system said, without the system's name and the kind of failure.
    pub fn message(&self) -> &str {
        match self {
            Self::RateLimited { message, .. }
            | Self::BudgetExhausted { message, .. }
            | Self::InvalidToken { message, .. }
            | Self::InvalidGrant { message, .. }
            | Self::Rejected { message, .. }
            | Self::NotFound { message, .. }
            | Self::Unavailable { message, .. }
            | Self::Protocol { message, .. } => message,
        }
    }

    /// A transport failure (connect, timeout, reset) as the retriable error it is.
    pub fn transport(system: &'static str, e: reqwest::Error) -> Self {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        // The URL is left out: it may carry a webhook secret (Bitrix24 incoming webhooks).
        Self::Unavailable { system, message: format!("{what}: {}", e.without_url()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_those_a_later_try_may_pass() {
        let rate = ConnectorError::RateLimited { system: "X", message: "slow down".into(), retry_after: None };
        let down = ConnectorError::Unavailable { system: "X", message: "503".into() };
        let token = ConnectorError::InvalidToken { system: "X", message: "expired".into() };
        let refused =
            ConnectorError::Rejected { system: "X", status: 400, message: "NAME: required".into(), fields: vec![] };
        let grant = ConnectorError::InvalidGrant { system: "X", message: "revoked".into() };
        assert_eq!(
            [&rate, &down, &token, &refused, &grant].map(ConnectorError::is_transient),
            [true, true, true, false, false]
        );
        assert_eq!(refused.message(), "NAME: required");
        let shared = CallError::Outside(token);
        assert!(shared.clone().token_refused());
        let service = CallError::Service(ServiceError::FailedPrecondition("mapping".into())).clone();
        assert!(matches!(ServiceError::from(service), ServiceError::FailedPrecondition(m) if m == "mapping"));
    }
}
