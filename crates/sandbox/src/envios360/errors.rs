//! The contract's error envelope, `{"error":{"code","message","fields":[{"field","message"}]}}`:
//! 400 for invalid fields or JSON, 401, 404, 409 with the existing `id`, 422 for a state that
//! does not allow the call, 429 with `Retry-After`.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::store::FieldError;

pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    error_with(status, code, message, &[])
}

pub fn error_with(status: StatusCode, code: &str, message: &str, fields: &[FieldError]) -> Response {
    let fields: Vec<Value> = fields.iter().map(|f| json!({"field": f.field, "message": f.message})).collect();
    (status, Json(json!({"error": {"code": code, "message": message, "fields": fields}}))).into_response()
}

pub fn rate_limited(retry_after: u64) -> Response {
    (
        [(header::RETRY_AFTER, retry_after.to_string())],
        error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests: 5 per second per token"),
    )
        .into_response()
}

pub fn validation(errors: &[FieldError]) -> Response {
    error_with(StatusCode::BAD_REQUEST, "validation_error", "The request has invalid fields", errors)
}

pub fn conflict(id: &Value, what: &str) -> Response {
    let body = json!({"error": {"code": "duplicate_external_id", "message": format!("A {what} with this external_id exists"),
                                "fields": [{"field": "external_id", "message": "already exists"}], "id": id},
                      "id": id});
    (StatusCode::CONFLICT, Json(body)).into_response()
}
