//! Bling's JSON exactly as it sends it (Portuguese names included).

use serde::{Deserialize, Serialize};

/// `POST /oauth/token` success.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    /// Seconds; some answers name it `token_validate`.
    #[serde(alias = "token_validate", default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Rotates: every refresh returns a new one and the old one dies.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// The v3 error envelope: `{"error":{"type","message","description","fields"?}}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// An open set: `VALIDATION_ERROR`, `TOO_MANY_REQUESTS`, `invalid_token`, `invalid_grant`, …
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub fields: Vec<FieldError>,
    /// Rate limit answers: the limit hit and its period ("second" or "day").
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub period: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FieldError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub msg: String,
    #[serde(default)]
    pub element: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub collection: Vec<FieldError>,
}

/// The flat OAuth error shape some token answers use: `{"error":"invalid_grant","error_description":…}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FlatOAuthError {
    pub error: String,
    #[serde(default)]
    pub error_description: String,
}

/// `{"data": T}`, the success envelope.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Data<T> {
    pub data: T,
}

/// `GET /empresas/me/dados-basicos`: the account; `id` equals webhooks' `companyId`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct EmpresaDadosBasicos {
    pub id: String,
    #[serde(default)]
    pub nome: String,
    #[serde(default)]
    pub cnpj: String,
    #[serde(default)]
    pub email: String,
    #[serde(default, rename = "dataContrato")]
    pub data_contrato: Option<String>,
}
