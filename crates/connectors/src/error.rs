//! How a call to an outside system failed, classified for retrying.

use std::time::Duration;

use ponte_core::retry::{Class, Classify};

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

impl ConnectorError {
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
