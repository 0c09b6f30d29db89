//! What to do after one delivery attempt: done, retry at a time (the wait the service asked
//! for, or an exponential backoff with full jitter), or give up with a dead letter.

use ponte_core::error::{is_retriable, retry_after};
use ponte_proto::v1::EventOutcome;

use super::config::DispatchConfig;

/// What became of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    Delivered {
        outcome: EventOutcome,
        detail: String,
    },
    Retry {
        at: i64,
        error: String,
    },
    /// `exhausted`: out of attempts (the service kept failing); otherwise it refused the event
    /// for good.
    Dead {
        error: String,
        exhausted: bool,
    },
}

impl Completion {
    /// The same, with its error prefixed by the service that answered it.
    pub fn answered_by(self, subscriber: &str) -> Self {
        match self {
            Self::Retry { at, error } => Self::Retry { at, error: format!("{subscriber}: {error}") },
            Self::Dead { error, exhausted } => Self::Dead { error: format!("{subscriber}: {error}"), exhausted },
            done => done,
        }
    }
}

/// What to do after attempt number `attempt` answered `answer`, at `now` (Unix ms).
pub fn plan(
    answer: Result<(EventOutcome, String), tonic::Status>,
    attempt: u32,
    cfg: &DispatchConfig,
    now: i64,
) -> Completion {
    let status = match answer {
        Ok((outcome, detail)) => return Completion::Delivered { outcome, detail },
        Err(status) => status,
    };
    let error = format!("{:?}: {}", status.code(), status.message());
    // A call cut off with its connection comes back CANCELLED from the client, and one reset by
    // a service that is stopping (HTTP/2 GOAWAY or RST_STREAM, no gRPC status) INTERNAL: the
    // service never refused either, and `is_retriable` retries both.
    if !is_retriable(&status) {
        Completion::Dead { error: format!("{error} (not retriable)"), exhausted: false }
    } else if attempt >= cfg.max_attempts {
        Completion::Dead { error: format!("{error} (gave up after {attempt} attempts)"), exhausted: true }
    } else {
        let wait = retry_after(&status).unwrap_or_else(|| cfg.backoff.backoff(attempt));
        Completion::Retry { at: now + wait.as_millis() as i64, error }
    }
}

#[cfg(test)]
mod tests {
    use ponte_core::config::Env;

    use super::*;

    #[test]
    fn failures_are_retried_after_the_wait_asked_for_or_a_backoff_then_given_up() {
        let cfg = DispatchConfig::from_env(&Env::from_pairs([("PONTE_DISPATCH_MAX_ATTEMPTS", "3")])).unwrap();
        let mut asked = tonic::Status::unavailable("bling rate limit");
        asked.metadata_mut().insert(ponte_core::error::RETRY_AFTER_MS, "7000".parse().unwrap());
        assert_eq!(
            plan(Err(asked.clone()), 1, &cfg, 1_000),
            Completion::Retry { at: 8_000, error: "Unavailable: bling rate limit".into() }
        );
        let Completion::Retry { at, .. } = plan(Err(tonic::Status::unavailable("down")), 2, &cfg, 1_000) else {
            panic!("not retried")
        };
        assert!((1_000..=2_000).contains(&at), "backoff of attempt 2 is at most 2 x 500 ms: {at}");
        assert!(matches!(plan(Err(tonic::Status::cancelled("cut")), 1, &cfg, 0), Completion::Retry { .. }));
        assert_eq!(
            plan(Err(asked), 3, &cfg, 0),
            Completion::Dead {
                error: "Unavailable: bling rate limit (gave up after 3 attempts)".into(),
                exhausted: true
            }
        );
        assert_eq!(
            plan(Err(tonic::Status::invalid_argument("event.tenant_id: is required")), 1, &cfg, 0),
            Completion::Dead {
                error: "InvalidArgument: event.tenant_id: is required (not retriable)".into(),
                exhausted: false
            }
        );
        assert_eq!(
            plan(Ok((EventOutcome::Stale, "older".into())), 1, &cfg, 0),
            Completion::Delivered { outcome: EventOutcome::Stale, detail: "older".into() }
        );
    }

    #[test]
    fn errors_name_the_service_that_answered() {
        let dead = Completion::Dead { error: "Internal: boom (not retriable)".into(), exhausted: false };
        assert_eq!(
            dead.answered_by("catalog-sync"),
            Completion::Dead { error: "catalog-sync: Internal: boom (not retriable)".into(), exhausted: false }
        );
        let done = Completion::Delivered { outcome: EventOutcome::Applied, detail: "ok".into() };
        assert_eq!(
            done.answered_by("x"),
            Completion::Delivered { outcome: EventOutcome::Applied, detail: "ok".into() }
        );
    }
}
