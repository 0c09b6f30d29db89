//! One REST call to the portal, whichever way it came in (an incoming-webhook URL or an OAuth
//! app's token): the per-portal leaky bucket (2/s, burst 50, then 503 `QUERY_LIMIT_EXCEEDED`),
//! scopes, the per-method operating-time budget (429 `OPERATION_TIME_LIMIT`), `batch`, the
//! methods themselves (`crm.*`, `event.*`, `scope`, `app.info`), the events their changes raise,
//! and the answer with its `time` object.

use std::time::Instant;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{
    batch,
    crm::{self, Crm, MethodError, Reply},
    params::{get as param, request_params, text},
    portal::{Binding, Bitrix24, Credential, Inner, error, method_error, portal_offset, scope_of},
    tokens::AccessError,
};

impl Bitrix24 {
    /// Charges `seconds` of handler time to `method` for both credentials (the operating-time
    /// budget; past 480 s in 10 minutes the method answers 429 `OPERATION_TIME_LIMIT`).
    pub fn charge_operating(&self, method: &str, seconds: f64) {
        let now = self.now();
        let mut inner = self.inner.lock();
        for cred in [Credential::Webhook, Credential::App] {
            charge(&mut inner, cred, method, seconds, now);
        }
    }
    /// The leaky bucket: one more request, or refused when it would overflow.
    fn admit(&self) -> bool {
        let now = self.now();
        let mut inner = self.inner.lock();
        if let Some(last) = inner.bucket_at {
            let secs = (now - last).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            inner.bucket_level = (inner.bucket_level - secs * self.config.per_second).max(0.0);
        }
        inner.bucket_at = Some(now);
        if inner.bucket_level + 1.0 > self.config.burst {
            inner.stats.query_limit_exceeded += 1;
            return false;
        }
        inner.bucket_level += 1.0;
        true
    }

    /// One authenticated REST call.
    pub(super) fn serve(&self, cred: Credential, method: &str, params: Map<String, Value>) -> Response {
        let method = method.trim_end_matches(".json").to_ascii_lowercase();
        if !self.admit() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "QUERY_LIMIT_EXCEEDED", "Too many requests");
        }
        let started = self.now();
        self.inner.lock().stats.requests += 1;
        let (outcome, operating) = if method == "batch" {
            self.inner.lock().stats.batches += 1;
            let run = batch::commands(&params).map(|(commands, halt)| {
                let result = batch::run(commands, halt, |m, p| {
                    let t0 = self.now();
                    let (outcome, _) = self.exec(cred, m, p.clone());
                    let t1 = self.now();
                    (outcome, time_json(t0, t1, None))
                });
                Reply { result, total: None, next: None, events: vec![] }
            });
            (run, None)
        } else {
            self.exec(cred, &method, params)
        };
        let finished = self.now();
        match outcome {
            Ok(reply) => {
                let mut body = Map::new();
                body.insert("result".into(), reply.result);
                if let Some(n) = reply.next {
                    body.insert("next".into(), json!(n));
                }
                if let Some(t) = reply.total {
                    body.insert("total".into(), json!(t));
                }
                body.insert("time".into(), time_json(started, finished, operating));
                Json(Value::Object(body)).into_response()
            }
            Err(e) => method_error(&e),
        }
    }

    /// Runs one method for `cred` (on its own or inside a batch): scope, operating budget,
    /// the method, its events. The operating seconds and reset time go into `time`.
    fn exec(
        &self,
        cred: Credential,
        method: &str,
        params: Map<String, Value>,
    ) -> (Result<Reply, MethodError>, Option<(f64, i64)>) {
        let method = method.to_ascii_lowercase();
        if !Crm::knows(&method) && !method.starts_with("event.") && method != "scope" && method != "app.info" {
            return (Err(MethodError::new(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!")), None);
        }
        let scopes = match cred {
            Credential::Webhook => &self.config.webhook_scopes,
            Credential::App => &self.config.app_scopes,
        };
        if let Some(scope) = scope_of(&method)
            && !scopes.iter().any(|s| s == scope)
        {
            let e = MethodError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "The request requires higher privileges than provided by the webhook token",
            );
            return (Err(e), None);
        }
        let now = self.now();
        {
            let mut inner = self.inner.lock();
            *inner.stats.methods.entry(method.clone()).or_default() += 1;
            let (used, _) = operating(&mut inner, cred, &method, now);
            if used > self.config.operating_limit {
                inner.stats.operation_time_limit += 1;
                let e = MethodError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "OPERATION_TIME_LIMIT",
                    "Method is blocked due to operation time limit.",
                );
                return (Err(e), None);
            }
        }
        let started = Instant::now();
        let outcome = match method.as_str() {
            "scope" => {
                let scopes: Vec<Value> = scopes.iter().map(|s| json!(s)).collect();
                Ok(Reply { result: Value::Array(scopes), total: None, next: None, events: vec![] })
            }
            "app.info" => self.app_info(cred),
            m if m.starts_with("event.") => self.event_method(cred, m, &params),
            m => {
                let local = self.local_now();
                self.inner.lock().crm.call(m, &params, local)
            }
        };
        if let Ok(reply) = &outcome {
            self.applied(&reply.events);
        }
        let spent = started.elapsed().as_secs_f64();
        let used = {
            let mut inner = self.inner.lock();
            charge(&mut inner, cred, &method, spent, now);
            operating(&mut inner, cred, &method, now)
        };
        if let Ok(reply) = &outcome
            && self.config.events_on_api_changes
        {
            for (event, id) in &reply.events {
                self.raise(event, *id);
            }
        }
        (outcome, Some(used))
    }

    /// `app.info`: the app the calling token was issued to, with the fields the official page
    /// documents (`CODE` is the app's client id). Application auth only: an incoming webhook
    /// belongs to no app.
    fn app_info(&self, cred: Credential) -> Result<Reply, MethodError> {
        if cred == Credential::Webhook {
            return Err(app_context_required());
        }
        let result = json!({"ID": "1", "CODE": self.config.client_id, "VERSION": 1, "STATUS": "L", "INSTALLED": true,
                            "PAYMENT_EXPIRED": "N", "DAYS": null, "LICENSE": "br_project"});
        Ok(Reply { result, total: None, next: None, events: vec![] })
    }

    /// `event.bind`, `event.unbind`, `event.get`: application auth only.
    fn event_method(&self, cred: Credential, method: &str, params: &Map<String, Value>) -> Result<Reply, MethodError> {
        if cred == Credential::Webhook {
            return Err(app_context_required());
        }
        let event = param(params, "event").and_then(text).unwrap_or_default().to_ascii_uppercase();
        let handler = param(params, "handler").and_then(text).unwrap_or_default();
        let mut inner = self.inner.lock();
        let reply = |result: Value| Reply { result, total: None, next: None, events: vec![] };
        match method {
            "event.bind" => {
                if event.is_empty() || handler.is_empty() {
                    return Err(MethodError::new(
                        StatusCode::BAD_REQUEST,
                        "ERROR_ARGUMENT",
                        "Argument 'event' and 'handler' are required",
                    ));
                }
                if !handler.starts_with("http://") && !handler.starts_with("https://") {
                    return Err(MethodError::new(StatusCode::BAD_REQUEST, "ERROR_HANDLER_URL", "Wrong handler URL"));
                }
                if inner.bindings.iter().any(|b| b.event == event && b.handler == handler) {
                    return Err(MethodError::new(
                        StatusCode::BAD_REQUEST,
                        "ERROR_HANDLER_ALREADY_EXIST",
                        "Handler already exists!",
                    ));
                }
                inner.next_binding += 1;
                let id = inner.next_binding + 200;
                let event_type = param(params, "event_type").and_then(text).unwrap_or_else(|| "online".into());
                inner.bindings.push(Binding { id, event, handler, event_type });
                Ok(reply(json!(true)))
            }
            "event.unbind" => {
                let before = inner.bindings.len();
                inner.bindings.retain(|b| !(b.event == event && (handler.is_empty() || b.handler == handler)));
                Ok(reply(json!({"count": before - inner.bindings.len()})))
            }
            "event.get" => {
                let list: Vec<Value> = inner
                    .bindings
                    .iter()
                    .map(|b| json!({"event": b.event, "handler": b.handler, "auth_type": "0", "offline": 0}))
                    .collect();
                Ok(reply(Value::Array(list)))
            }
            _ => Err(MethodError::new(StatusCode::NOT_FOUND, "ERROR_METHOD_NOT_FOUND", "Method not found!")),
        }
    }
}

/// The refusal of a method that needs an app, called through an incoming webhook. Documented
/// for placement.bind and event.bind alike; the HTTP status is not.
fn app_context_required() -> MethodError {
    MethodError::new(StatusCode::UNAUTHORIZED, "WRONG_AUTH_TYPE", "Application context required")
}

/// Adds handler seconds to the (credential, method) budget: into the bucket of the current
/// minute, or a new one.
fn charge(inner: &mut Inner, cred: Credential, method: &str, seconds: f64, now: DateTime<Utc>) {
    let buckets = inner.operating.entry((cred, method.to_owned())).or_default();
    let minute = now.timestamp() / 60;
    match buckets.last_mut() {
        Some((start, secs)) if start.timestamp() / 60 == minute => *secs += seconds,
        _ => buckets.push((now, seconds)),
    }
}

/// The seconds used in the last 10 minutes and when the oldest bucket drops out.
fn operating(inner: &mut Inner, cred: Credential, method: &str, now: DateTime<Utc>) -> (f64, i64) {
    let window = chrono::Duration::minutes(10);
    let buckets = inner.operating.entry((cred, method.to_owned())).or_default();
    buckets.retain(|(start, _)| *start + window > now);
    let used = buckets.iter().map(|(_, s)| s).sum();
    let reset = buckets.first().map_or(now, |(start, _)| *start + window);
    (used, reset.timestamp())
}

/// Bitrix24's `time` object.
fn time_json(start: DateTime<Utc>, finish: DateTime<Utc>, operating: Option<(f64, i64)>) -> Value {
    let secs = |t: DateTime<Utc>| t.timestamp_micros() as f64 / 1e6;
    let duration = secs(finish) - secs(start);
    let date = |t: DateTime<Utc>| crm::stamp(t.with_timezone(&portal_offset()));
    let (used, reset) = operating.unwrap_or((0.0, finish.timestamp()));
    json!({"start": secs(start), "finish": secs(finish), "duration": duration, "processing": duration,
           "date_start": date(start), "date_finish": date(finish), "operating_reset_at": reset, "operating": used})
}

pub async fn webhook_call(
    State(b): State<Bitrix24>,
    Path((user, code, method)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if user != b.config.webhook_user.to_string() || code != b.config.webhook_code {
        return error(StatusCode::UNAUTHORIZED, "NO_AUTH_FOUND", "Wrong authorization data");
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    b.serve(Credential::Webhook, &method, request_params(q.as_deref(), ct, &body))
}

pub async fn oauth_call(
    State(b): State<Bitrix24>,
    Path(method): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let mut params = request_params(q.as_deref(), ct, &body);
    let token = params.remove("auth").as_ref().and_then(text);
    let now = b.now();
    let checked = b.inner.lock().tokens.check(token.as_deref(), now);
    match checked {
        Ok(()) => b.serve(Credential::App, &method, params),
        Err(AccessError::Missing) => error(StatusCode::UNAUTHORIZED, "NO_AUTH_FOUND", "Wrong authorization data"),
        Err(AccessError::Invalid) => {
            error(StatusCode::UNAUTHORIZED, "invalid_token", "The access token provided is invalid.")
        }
        Err(AccessError::Expired) => {
            error(StatusCode::UNAUTHORIZED, "expired_token", "The access token provided has expired.")
        }
    }
}
