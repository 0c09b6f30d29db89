//! CPLUG's error body, `{"message": "...", "errors": {"field": ["..."]}}`, with the statuses
//! the contract gives: 401, 404, 422 (the given data was invalid), 429 with `Retry-After`, 5xx.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::store::Errors;

pub fn error(status: StatusCode, message: &str, errors: &Errors) -> Response {
    (status, Json(json!({"message": message, "errors": errors}))).into_response()
}

pub fn plain(status: StatusCode, message: &str) -> Response {
    error(status, message, &Errors::new())
}

pub fn invalid(errors: &Errors) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, "The given data was invalid.", errors)
}

pub fn one(field: &str, message: &str) -> Errors {
    Errors::from([(field.to_owned(), vec![message.to_owned()])])
}

pub fn too_many(retry_after: u64) -> Response {
    ([(header::RETRY_AFTER, retry_after.to_string())], plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts."))
        .into_response()
}
