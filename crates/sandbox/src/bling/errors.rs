//! Bling's answers: `{"data": …}` for what succeeded and the v3 error envelope
//! `{"error":{"type","message","description","fields"?}}` for every refusal, including those a
//! web framework would otherwise answer in plain text: a body that is not a JSON object, a path
//! id that is not a number, a route or method Bling does not have.

use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// A handler's answer: `Err` short-circuits with a refusal (`?`).
pub type Answer = Result<Response, Response>;

pub fn error(status: StatusCode, kind: &str, message: &str, description: &str) -> Response {
    (status, Json(json!({"error": {"type": kind, "message": message, "description": description}}))).into_response()
}

pub fn data(status: StatusCode, value: Value) -> Response {
    (status, Json(json!({"data": value}))).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// 404 `RESOURCE_NOT_FOUND` for a record the account does not hold.
pub fn not_found(description: &str) -> Response {
    error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "Recurso não encontrado", description)
}

/// One entry of `error.fields`.
pub fn field(code: i64, element: &str, msg: &str) -> Value {
    json!({"code": code, "msg": msg, "element": element})
}

/// One entry of `error.fields` of a module (`VENDAS`, `PRODUTOS`, `CONTATOS`, …).
pub fn field_in(namespace: &str, code: i64, element: &str, msg: &str) -> Value {
    json!({"code": code, "msg": msg, "element": element, "namespace": namespace})
}

/// 400 `VALIDATION_ERROR` with the fields at fault.
pub fn validation(fields: Vec<Value>) -> Response {
    validation_as(
        "Não foi possível salvar o registro",
        "O registro não pode ser salvo, pois ocorreram problemas em sua validação.",
        fields,
    )
}

pub fn validation_as(message: &str, description: &str, fields: Vec<Value>) -> Response {
    let body = json!({"error": {"type": "VALIDATION_ERROR", "message": message, "description": description,
                                "fields": fields}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub fn server_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "SERVER_ERROR",
        "Não foi possível executar a operação",
        "Um erro interno ocorreu.",
    )
}

/// The per-second 429 (Bling sends no `Retry-After`); `limit` and `period` sit inside `error`.
pub fn too_many(limit: u64, period: &str, description: &str) -> Response {
    let body = json!({"error": {"type": "TOO_MANY_REQUESTS", "message": "Limite de requisições atingido.",
                                "description": description, "limit": limit, "period": period}});
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

pub fn rate_limited() -> Response {
    too_many(3, "second", "O limite de requisições por segundo foi atingido, tente novamente mais tarde.")
}

const NOT_FOUND_DESCRIPTION: &str =
    "O recurso requisitado não foi encontrado. Verifique se o endpoint solicitado está correto.";

/// A path Bling does not serve.
pub async fn unknown_route() -> Response {
    not_found(NOT_FOUND_DESCRIPTION)
}

/// A path Bling serves, with a method it does not take.
pub async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "Método não permitido",
        "O método HTTP utilizado não é suportado por este recurso.",
    )
}

/// Path ids; one that is not a number names no resource (404, as an unknown route).
pub struct Ids<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Ids<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(Ids(t)),
            Err(_) => Err(not_found(NOT_FOUND_DESCRIPTION)),
        }
    }
}

/// A request body that must be a JSON object.
pub struct Body(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| invalid_body())?;
        let nothing = || {
            error(
                StatusCode::BAD_REQUEST,
                "MISSING_REQUIRED_FIELD_ERROR",
                "Não foi possível executar a operação",
                "Nenhum dado foi informado na requisição.",
            )
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(nothing());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) if m.is_empty() => Err(nothing()),
            Ok(Value::Object(m)) => Ok(Body(m)),
            _ => Err(invalid_body()),
        }
    }
}

fn invalid_body() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST_BODY",
        "Não foi possível executar a operação",
        "O corpo da requisição não é um JSON válido.",
    )
}
