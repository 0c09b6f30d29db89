//! `POST /webhooks/...`: the shared pipeline every [`WebhookSource`] goes through.
//!
//! In order: content type (415), size (413), signature (401; nothing is stored for a request
//! that fails it), then the event: deduplicated on (source, event id), first through a Redis
//! key that is only set once the event's row is committed (a duplicate is answered 200 at
//! once), then by the inbox's unique constraint; classified (tenant, subscribers), and committed to the
//! inbox before the 2xx. A signed event ponte cannot use is stored as a dead letter and answered
//! 2xx too: an error makes Bling switch the hook off for every merchant.
//!
//! Redis is the fast path only. When it fails, requests go straight to the database, whose
//! unique (source, event id) decides what is a duplicate, and Redis is left alone for a second
//! so an outage does not add its timeout to every request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use ponte_core::{
    TenantId,
    idempotency::IdempotencyStore,
    telemetry::{current_traceparent, set_parent_from_traceparent},
    time::now_millis,
};
use serde_json::json;
use tracing::Instrument;

use crate::{
    inbox::{EventState, NewEvent, STORE_TIMEOUT, Stored, Writer, clean},
    lookups::{Lookup, Lookups, Secret},
    metrics::{self, RejectLabels, SourceLabels},
    problem::Problem,
    routing::classify,
    sources::{Bitrix24, Bling, Cplug, Envios360, Tenancy, WebhookSource},
};

/// The largest body accepted (1 MiB).
pub const MAX_BODY: usize = 1 << 20;

/// Everything the webhook routes share.
pub struct Ingest {
    pub writer: Writer,
    pub lookups: Lookups,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// `PONTE_BLING_CLIENT_SECRET`: the key Bling signs every account's webhooks with.
    pub bling_secret: Option<Secret>,
    /// How long a (source, event id) key is kept in Redis.
    pub dedupe_ttl: Duration,
    /// Redis is skipped until this time (Unix ms) after it failed.
    redis_skip_until: AtomicI64,
}

impl Ingest {
    pub fn new(
        writer: Writer,
        lookups: Lookups,
        idempotency: Arc<dyn IdempotencyStore>,
        bling_secret: Option<Secret>,
        dedupe_ttl: Duration,
    ) -> Self {
        Self { writer, lookups, idempotency, bling_secret, dedupe_ttl, redis_skip_until: AtomicI64::new(0) }
    }

    /// Whether the key is set: `Some(true)` only after an earlier request committed the event;
    /// `None`: Redis did not answer.
    async fn seen(&self, key: &str) -> Option<bool> {
        if now_millis() < self.redis_skip_until.load(Ordering::Relaxed) {
            return None;
        }
        match self.idempotency.seen(key).await {
            Ok(seen) => Some(seen),
            Err(e) => {
                self.redis_unavailable(&e);
                None
            }
        }
    }

    /// Sets the key once the event's row is committed (or found committed), so later copies
    /// are answered from Redis.
    async fn remember(&self, key: &str) {
        if now_millis() < self.redis_skip_until.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.idempotency.claim(key, self.dedupe_ttl).await {
            self.redis_unavailable(&e);
        }
    }

    fn redis_unavailable(&self, e: &dyn std::fmt::Display) {
        self.redis_skip_until.store(now_millis() + 1000, Ordering::Relaxed);
        tracing::warn!(error = %e, "Redis did not answer; deduplicating through the database alone");
    }
}

/// Makes `span` a child of the sender's trace context, when it sent one.
fn set_parent(span: &tracing::Span, headers: &HeaderMap) {
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        set_parent_from_traceparent(span, tp);
    }
}

pub async fn bling(State(ingest): State<Arc<Ingest>>, headers: HeaderMap, body: Body) -> Response {
    receive::<Bling>(&ingest, None, headers, body).await
}

/// The URL's tenant segment; empty (no tenant, refused as unsigned) when it does not decode.
fn path_tenant(tenant: Result<Path<String>, PathRejection>) -> String {
    tenant.map(|Path(t)| t).unwrap_or_default()
}

pub async fn envios360(
    State(ingest): State<Arc<Ingest>>,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive::<Envios360>(&ingest, Some(&path_tenant(tenant)), headers, body).await
}

pub async fn cplug(
    State(ingest): State<Arc<Ingest>>,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive::<Cplug>(&ingest, Some(&path_tenant(tenant)), headers, body).await
}

pub async fn bitrix24(
    State(ingest): State<Arc<Ingest>>,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive::<Bitrix24>(&ingest, Some(&path_tenant(tenant)), headers, body).await
}

/// `tenant` is the URL's tenant segment (path sources).
async fn receive<S: WebhookSource>(ingest: &Ingest, tenant: Option<&str>, headers: HeaderMap, body: Body) -> Response {
    let span = tracing::info_span!(
        "webhook.receive",
        otel.name = %format!("POST /webhooks/{}", S::NAME),
        otel.kind = "server",
        http.request.method = "POST",
        http.route = %format!("/webhooks/{}", S::NAME),
        source = S::NAME,
        http.response.status_code = tracing::field::Empty,
    );
    set_parent(&span, &headers);
    let started = Instant::now();
    let m = metrics::get();
    m.received.get_or_create(&SourceLabels { source: S::NAME }).inc();
    // A malformed tenant cannot have a secret: it is refused as unsigned, without asking auth-token.
    let tenant = tenant.and_then(|t| TenantId::parse(t).ok());
    let resp = match pipeline::<S>(ingest, tenant.as_ref(), &headers, body).instrument(span.clone()).await {
        Ok(resp) => {
            m.ack_latency.get_or_create(&SourceLabels { source: S::NAME }).observe(started.elapsed().as_secs_f64());
            resp
        }
        Err(problem) => {
            m.rejected.get_or_create(&RejectLabels { source: S::NAME, status: problem.status.as_u16() }).inc();
            if problem.status.is_server_error() {
                tracing::warn!(parent: &span, status = problem.status.as_u16(), detail = %problem.detail, "webhook not stored");
            } else {
                tracing::info!(parent: &span, status = problem.status.as_u16(), detail = %problem.detail, "webhook refused");
            }
            problem.into_response()
        }
    };
    span.record("http.response.status_code", resp.status().as_u16());
    resp
}

/// Whether the request's media type is `expected` (parameters such as charset are ignored).
pub(crate) fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(expected))
}

pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "The body is too large",
            format!("webhook bodies are limited to {MAX_BODY} bytes"),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "The body could not be read",
            format!("reading the body failed: {e}"),
        )),
    }
}

/// Whether the request was signed with `S`'s key (for `tenant`). A tenant's secret can change
/// (a Bitrix24 re-install, new credentials) while this gateway still holds the old one: a
/// request that a cached secret does not verify, or that found none, is checked again against
/// the current one, fetched at most once a second.
async fn verified<S: WebhookSource>(
    ingest: &Ingest,
    tenant: Option<&TenantId>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<bool, Problem> {
    let cached = signing_key::<S>(ingest, tenant, false).await;
    if let Ok(key) = &cached
        && S::verify(key.expose(), headers, body)
    {
        return Ok(true);
    }
    if S::TENANCY == Tenancy::Account {
        return cached.map(|_| false);
    }
    let key = signing_key::<S>(ingest, tenant, true).await?;
    Ok(S::verify(key.expose(), headers, body))
}

/// The key `S`'s requests must be signed with; with `recheck`, a cached secret over a second
/// old is asked for again.
async fn signing_key<S: WebhookSource>(
    ingest: &Ingest,
    tenant: Option<&TenantId>,
    recheck: bool,
) -> Result<Secret, Problem> {
    match S::TENANCY {
        Tenancy::Account => ingest.bling_secret.clone().ok_or_else(|| {
            Problem::unavailable("Bling webhooks are not configured here (PONTE_BLING_CLIENT_SECRET is not set)", None)
        }),
        Tenancy::Path => {
            let Some(tenant) = tenant else {
                return Err(Problem::unauthorized(format!("no {} webhook secret is known for this URL", S::NAME)));
            };
            let lookup = if recheck {
                ingest.lookups.recheck_webhook_secret(tenant, S::PROVIDER).await
            } else {
                ingest.lookups.webhook_secret(tenant, S::PROVIDER).await
            };
            match lookup {
                Lookup::Found(secret) => Ok(secret),
                // The same answer as a bad signature: a caller learns nothing about which
                // tenants exist.
                Lookup::Missing(_) => {
                    Err(Problem::unauthorized(format!("no {} webhook secret is known for this URL", S::NAME)))
                }
                Lookup::Unavailable { message, retry_after } => Err(Problem::unavailable(
                    format!("the signature cannot be checked right now: {message}"),
                    retry_after,
                )),
            }
        }
    }
}

fn stored_headers(headers: &HeaderMap) -> String {
    let mut kept = serde_json::Map::new();
    for name in ["content-type", "content-length", "user-agent", "x-request-id"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            kept.insert(name.to_owned(), json!(v));
        }
    }
    serde_json::Value::Object(kept).to_string()
}

fn accepted(status: &str, event_id: Option<&str>, note: Option<&str>) -> Response {
    let mut body = json!({ "status": status });
    if let Some(id) = event_id {
        body["eventId"] = json!(id);
    }
    if let Some(note) = note {
        body["reason"] = json!(note);
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn pipeline<S: WebhookSource>(
    ingest: &Ingest,
    tenant: Option<&TenantId>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    if !content_type_is(headers, S::CONTENT_TYPE) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
            format!("{} webhooks must be sent as {}", S::NAME, S::CONTENT_TYPE),
        ));
    }
    let body = read_body(headers, body).await?;
    if !verified::<S>(ingest, tenant, headers, &body).await? {
        return Err(Problem::unauthorized(format!("the {} signature is missing or does not match the body", S::NAME)));
    }
    let event = S::parse(&body);
    let m = metrics::get();
    let dedupe_key = format!("inbox:{}:{}", S::NAME, event.source_event_id);
    // Redis only ever holds keys of committed events: a request that dies before its commit
    // leaves nothing behind that would turn the sender's retry away.
    if ingest.seen(&dedupe_key).await == Some(true) {
        m.duplicate.get_or_create(&SourceLabels { source: S::NAME }).inc();
        return Ok(accepted("duplicate", None, None));
    }
    let verdict = classify(S::KIND, &event, tenant, &ingest.lookups).await;
    let row = NewEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        source: S::NAME,
        source_event_id: clean(&event.source_event_id),
        tenant: verdict.tenant().cloned(),
        account: clean(&event.account),
        event_type: clean(&event.event_type),
        entity_key: clean(&event.entity_key),
        state: verdict.state(),
        dead_reason: verdict.dead_reason().to_owned(),
        payload: S::stored_payload(&body),
        headers_json: stored_headers(headers),
        traceparent: current_traceparent().unwrap_or_default(),
        occurred_time: event.occurred,
        receive_time: now_millis(),
        routes: verdict.routes(),
    };
    let event_id = row.event_id.clone();
    let stored = tokio::time::timeout(STORE_TIMEOUT, ingest.writer.store(row)).await;
    match stored {
        Ok(Ok(Stored::Inserted)) => {
            ingest.remember(&dedupe_key).await;
            m.stored.get_or_create(&SourceLabels { source: S::NAME }).inc();
            if verdict.state() == EventState::Ignored {
                metrics::ignored(S::NAME);
                tracing::info!(reason = %verdict.dead_reason(), "signed event stored as ignored");
                Ok(accepted("ignored", Some(&event_id), Some(verdict.dead_reason())))
            } else if verdict.state() == EventState::Dead {
                metrics::dead(S::NAME, metrics::DeadReason::Unusable);
                tracing::info!(reason = %verdict.dead_reason(), "signed event stored as a dead letter");
                Ok(accepted("dead_letter", Some(&event_id), Some(verdict.dead_reason())))
            } else {
                Ok(accepted("stored", Some(&event_id), None))
            }
        }
        Ok(Ok(Stored::Duplicate)) => {
            ingest.remember(&dedupe_key).await;
            m.duplicate.get_or_create(&SourceLabels { source: S::NAME }).inc();
            Ok(accepted("duplicate", None, None))
        }
        Ok(Err(e)) => {
            // Nothing of this request is committed: the sender's retry gets through.
            Err(Problem::unavailable(e.0, Some(Duration::from_secs(1))))
        }
        Err(_) => {
            // The commit may still land; the retry then finds the row and is a duplicate.
            Err(Problem::unavailable("the inbox did not commit in time", Some(Duration::from_secs(1))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_ignore_parameters_and_case() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "Application/JSON; charset=utf-8".parse().unwrap());
        assert!(content_type_is(&h, "application/json"));
        assert!(!content_type_is(&h, "application/x-www-form-urlencoded"));
        assert!(!content_type_is(&HeaderMap::new(), "application/json"));
    }

    #[tokio::test]
    async fn oversize_bodies_are_refused_declared_or_not() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, (MAX_BODY + 1).to_string().parse().unwrap());
        let err = read_body(&h, Body::from("x")).await.unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        let err = read_body(&HeaderMap::new(), Body::from(vec![b'x'; MAX_BODY + 1])).await.unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(read_body(&HeaderMap::new(), Body::from(vec![b'x'; MAX_BODY])).await.unwrap().len(), MAX_BODY);
    }
}
