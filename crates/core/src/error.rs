//! The one error type every ponte service answers with, and its mapping to `tonic::Status`.
//! Caller mistakes name the field; internal failures are logged with detail and answered
//! without it, so no secret or stack of internals reaches a caller.

use std::time::Duration;

use tonic::{Code, Status};

/// Metadata key carrying how long a caller should wait before retrying, in milliseconds.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// The longest status message sent: gRPC metadata is limited (16 KiB by default), and a
/// message that long helps nobody.
const MAX_MESSAGE: usize = 1024;

/// A caller's value as an error message shows it: in single quotes, cut to its first 32
/// characters, so a huge bad value never makes a huge error.
pub fn quote(raw: &str) -> String {
    const MAX: usize = 32;
    let mut chars = raw.chars();
    let head: String = chars.by_ref().take(MAX).collect();
    if chars.next().is_some() { format!("'{head}…'") } else { format!("'{head}'") }
}

/// `message` cut to [`MAX_MESSAGE`] bytes at a character boundary.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller sent a bad value; `field` names it (`sale.items[2].sku`).
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the state does not allow it (e.g. a reused OAuth state).
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency is down or rate-limited; retrying later will work.
    #[error("{message}")]
    Unavailable { message: String, retry_after: Option<Duration> },
    #[error("{0}")]
    Unimplemented(String),
    /// Anything else: logged in full, answered as "internal error".
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), message: message.into() }
    }

    pub fn unavailable(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::Unavailable { message: message.into(), retry_after }
    }

    /// A copy of an error shared by several callers (a cache's single-flight load): the same
    /// answer, with an internal error's detail kept as text.
    pub fn cloned(&self) -> Self {
        match self {
            Self::InvalidArgument { field, message } => Self::invalid(field.clone(), message.clone()),
            Self::NotFound(m) => Self::NotFound(m.clone()),
            Self::AlreadyExists(m) => Self::AlreadyExists(m.clone()),
            Self::FailedPrecondition(m) => Self::FailedPrecondition(m.clone()),
            Self::PermissionDenied(m) => Self::PermissionDenied(m.clone()),
            Self::Unavailable { message, retry_after } => Self::unavailable(message.clone(), *retry_after),
            Self::Unimplemented(m) => Self::Unimplemented(m.clone()),
            Self::Internal(e) => Self::Internal(anyhow::anyhow!("{e:#}")),
        }
    }

    /// Requires a non-empty string field.
    pub fn require<'a>(field: &str, value: &'a str) -> Result<&'a str, Self> {
        let v = value.trim();
        if v.is_empty() { Err(Self::invalid(field, "is required")) } else { Ok(v) }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::unavailable("the database is unavailable", Some(Duration::from_secs(1)))
            }
            // PostgreSQL stores no NUL character in text: only a caller's value can hold one
            // (22021 character_not_in_repertoire, 22P05 untranslatable_character).
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
                Self::invalid("request", "a text field holds a NUL character, which ponte cannot store")
            }
            _ => Self::Internal(e.into()),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidArgument { .. } => Status::invalid_argument(bounded(e.to_string())),
            ServiceError::NotFound(m) => Status::not_found(bounded(m)),
            ServiceError::AlreadyExists(m) => Status::already_exists(bounded(m)),
            ServiceError::FailedPrecondition(m) => Status::failed_precondition(bounded(m)),
            ServiceError::PermissionDenied(m) => Status::permission_denied(bounded(m)),
            ServiceError::Unimplemented(m) => Status::unimplemented(bounded(m)),
            ServiceError::Unavailable { message, retry_after } => {
                let mut status = Status::unavailable(bounded(message));
                if let Some(wait) = retry_after
                    && let Ok(v) = wait.as_millis().to_string().parse()
                {
                    status.metadata_mut().insert(RETRY_AFTER_MS, v);
                }
                status
            }
            ServiceError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error");
                Status::new(Code::Internal, "internal error")
            }
        }
    }
}

/// The wait a status asks for through [`RETRY_AFTER_MS`], if any.
pub fn retry_after(status: &Status) -> Option<Duration> {
    status
        .metadata()
        .get(RETRY_AFTER_MS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// Whether a failed gRPC call may succeed when tried again. CANCELLED is what a caller sees
/// when the peer process goes away mid-call (killed, or its connection cut): the peer never
/// refused the request, so it is tried again like UNAVAILABLE.
///
/// So is any status the client made itself from a failure of the connection under the call
/// ([`from_the_connection`]), whatever its code: a peer stopping gracefully answers a call it
/// had not yet taken with an HTTP/2 GOAWAY or RST_STREAM without a gRPC status, which tonic
/// reports as INTERNAL ("h2 protocol error"); the peer never saw the request, let alone refused
/// it. A status the peer sent (in its trailers) carries no source, so its INTERNAL stays final.
pub fn is_retriable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Unknown
            | Code::Cancelled
    ) || from_the_connection(status)
}

/// Whether `status` is the client's own account of a transport failure (an HTTP/2 reset, a
/// GOAWAY, a connection closed mid-call) rather than an answer from the peer: tonic keeps the
/// transport error as the status's source; statuses decoded from a peer's trailers have none.
pub fn from_the_connection(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_the_field() {
        let s: Status = ServiceError::invalid("sale.items[0].sku", "is required").into();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "sale.items[0].sku: is required");
    }

    #[test]
    fn unavailable_carries_the_wait() {
        let s: Status = ServiceError::unavailable("bling rate limit", Some(Duration::from_millis(340))).into();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(retry_after(&s), Some(Duration::from_millis(340)));
        assert!(is_retriable(&s));
    }

    #[test]
    fn an_http2_reset_or_goaway_without_a_grpc_status_is_retried_and_a_peer_s_internal_is_not() {
        // What tonic makes of a stream reset or a GOAWAY from a peer that is stopping: INTERNAL,
        // with the HTTP/2 error as its source.
        for reason in [h2::Reason::NO_ERROR, h2::Reason::INTERNAL_ERROR, h2::Reason::PROTOCOL_ERROR] {
            let s = Status::from_error(Box::new(h2::Error::from(reason)));
            assert_eq!(s.code(), Code::Internal, "{reason:?}");
            assert!(s.message().starts_with("h2 protocol error"), "{}", s.message());
            assert!(from_the_connection(&s) && is_retriable(&s), "{reason:?} must be retried");
        }
        // The same code sent by the peer itself is its verdict.
        let sent = Status::internal("catalog-sync: could not read the product");
        assert!(!from_the_connection(&sent) && !is_retriable(&sent));
        let refused = Status::from_header_map(&{
            let mut h = http::HeaderMap::new();
            h.insert("grpc-status", "13".parse().unwrap());
            h.insert("grpc-message", "boom".parse().unwrap());
            h
        })
        .unwrap();
        assert_eq!(refused.code(), Code::Internal);
        assert!(!is_retriable(&refused), "a peer's INTERNAL in its trailers is final");
    }

    #[test]
    fn a_call_cut_off_with_its_peer_is_retried_and_refusals_are_not() {
        for code in [Code::Cancelled, Code::Unavailable, Code::DeadlineExceeded, Code::Aborted] {
            assert!(is_retriable(&Status::new(code, "x")), "{code:?} must be retried");
        }
        for code in [Code::InvalidArgument, Code::NotFound, Code::FailedPrecondition, Code::PermissionDenied] {
            assert!(!is_retriable(&Status::new(code, "x")), "{code:?} is permanent");
        }
    }

    #[test]
    fn messages_are_bounded_and_values_quoted_by_a_prefix() {
        assert_eq!(quote("loja"), "'loja'");
        assert_eq!(quote(&"é".repeat(40)), format!("'{}…'", "é".repeat(32)));
        let s: Status = ServiceError::NotFound("ç".repeat(10_000)).into();
        assert!(s.message().len() <= MAX_MESSAGE + 3, "{}", s.message().len());
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let s: Status = ServiceError::Internal(anyhow::anyhow!("token abc123 rejected")).into();
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("abc123"));
    }
}
