//! HTTP glue for CPLUG: bearer tokens from the password grant, classified errors.

use std::{fmt, time::Duration};

use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    BULK_LIMIT, SYSTEM,
    types::{Bulk, BulkResponse, BulkResult, ErrorBody, PasswordGrant, Product, ProductPage, TokenResponse, Upserted},
};
use crate::{error::ConnectorError, http::read};

/// The merchant's CPLUG API credentials.
#[derive(Clone)]
pub struct CplugCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for CplugCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CplugCredentials")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A token from the password grant.
#[derive(Clone, PartialEq, Eq)]
pub struct CplugToken {
    pub access_token: String,
    pub expires_in: Duration,
}

impl fmt::Debug for CplugToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CplugToken").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct CplugClient {
    http: reqwest::Client,
    base: String,
}

impl CplugClient {
    /// `base` is the API root, e.g. `https://api.connectplug.com.br/api/v3`.
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned() }
    }

    /// The password grant. A 401 here means the credentials are wrong: the merchant must fix them.
    pub async fn token(&self, c: &CplugCredentials) -> Result<CplugToken, ConnectorError> {
        let grant = PasswordGrant {
            grant_type: "password",
            client_id: &c.client_id,
            client_secret: &c.client_secret,
            username: &c.username,
            password: &c.password,
        };
        let req = self.http.post(format!("{}/oauth/token", self.base)).json(&grant);
        let resp = crate::http::send("cplug", "POST /oauth/token", req)
            .await
            .map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST {
            return Err(ConnectorError::InvalidGrant {
                system: SYSTEM,
                message: format!("the CPLUG credentials were refused ({})", message_of(&body)),
            });
        }
        if !status.is_success() {
            return Err(error_from(status, None, &body));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("token answer: {e}") })?;
        Ok(CplugToken { access_token: t.access_token, expires_in: Duration::from_secs(t.expires_in.unwrap_or(3600)) })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Option<T>, ConnectorError> {
        let (operation, req) = crate::http::bearer_request(&self.http, &self.base, token, method, path, body);
        let resp =
            crate::http::send("cplug", &operation, req).await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        let (status, retry_after, bytes) = read(SYSTEM, resp).await?;
        if !status.is_success() {
            return Err(error_from(status, retry_after, &bytes));
        }
        if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("{path}: {e}") })
    }

    /// Creates or updates one product by its Bling id.
    pub async fn upsert(&self, token: &str, product: &Product) -> Result<Upserted, ConnectorError> {
        let path = format!("/products/{}", urlencode(&product.external_id));
        self.call(token, Method::PUT, &path, Some(product))
            .await?
            .ok_or_else(|| ConnectorError::Protocol { system: SYSTEM, message: "empty upsert answer".into() })
    }

    /// Upserts many products, at most [`BULK_LIMIT`] a call; per-item results in input order.
    pub async fn upsert_bulk(&self, token: &str, products: &[Product]) -> Result<Vec<BulkResult>, ConnectorError> {
        let mut results = Vec::with_capacity(products.len());
        for chunk in products.chunks(BULK_LIMIT) {
            let resp: BulkResponse = self
                .call(token, Method::PUT, "/bulks/products", Some(&Bulk { items: chunk }))
                .await?
                .ok_or_else(|| ConnectorError::Protocol { system: SYSTEM, message: "empty bulk answer".into() })?;
            results.extend(resp.results);
        }
        Ok(results)
    }

    /// One page of the products CPLUG holds (100 a page).
    pub async fn list(&self, token: &str, page: u32) -> Result<ProductPage, ConnectorError> {
        let path = format!("/products?page={page}&per_page=100");
        self.call::<(), _>(token, Method::GET, &path, None)
            .await?
            .ok_or_else(|| ConnectorError::Protocol { system: SYSTEM, message: "empty list answer".into() })
    }

    pub async fn delete(&self, token: &str, external_id: &str) -> Result<(), ConnectorError> {
        let path = format!("/products/{}", urlencode(external_id));
        self.call::<(), serde_json::Value>(token, Method::DELETE, &path, None).await.map(|_| ())
    }
}

/// Each product's own answer in a bulk upsert's `results` (which may come in any order): done,
/// refused with CPLUG's reason, or left out of the answer.
pub fn bulk_outcomes(products: &[Product], results: &[BulkResult]) -> Vec<Result<(), ConnectorError>> {
    let by_id: std::collections::HashMap<&str, &Option<String>> =
        results.iter().map(|r| (r.external_id.as_str(), &r.error)).collect();
    products
        .iter()
        .map(|p| match by_id.get(p.external_id.as_str()) {
            Some(None) => Ok(()),
            Some(Some(error)) => Err(ConnectorError::Rejected {
                system: SYSTEM,
                status: 422,
                message: format!("product {}: {error}", p.external_id),
                fields: Vec::new(),
            }),
            None => Err(ConnectorError::Protocol {
                system: SYSTEM,
                message: format!("the bulk answer left out product {}", p.external_id),
            }),
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn message_of(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body).map(|e| e.message).unwrap_or_else(|_| "no message".into())
}

/// Classifies a non-2xx answer.
pub fn error_from(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> ConnectorError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let message = parsed.as_ref().map(|e| e.message.clone()).unwrap_or_else(|| format!("{status}"));
    match status.as_u16() {
        429 => ConnectorError::RateLimited { system: SYSTEM, message, retry_after },
        401 => ConnectorError::InvalidToken { system: SYSTEM, message },
        404 => ConnectorError::NotFound { system: SYSTEM, message },
        500..=599 => ConnectorError::Unavailable { system: SYSTEM, message: format!("{status}: {message}") },
        code => ConnectorError::Rejected {
            system: SYSTEM,
            status: code,
            message,
            fields: parsed
                .map(|e| {
                    e.errors.into_iter().flat_map(|(f, ms)| ms.into_iter().map(move |m| format!("{f}: {m}"))).collect()
                })
                .unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_fields_and_the_retry_wait() {
        let body = br#"{"message":"The given data was invalid.","errors":{"sku":["is required"],"price":["must be positive"]}}"#;
        let ConnectorError::Rejected { status, fields, .. } = error_from(StatusCode::UNPROCESSABLE_ENTITY, None, body)
        else {
            panic!("not a rejection");
        };
        assert_eq!(status, 422);
        assert_eq!(fields, ["price: must be positive", "sku: is required"]);
        let limited = error_from(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(3)), b"{}");
        assert_eq!(
            limited,
            ConnectorError::RateLimited {
                system: SYSTEM,
                message: String::new(),
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert!(matches!(error_from(StatusCode::SERVICE_UNAVAILABLE, None, b""), ConnectorError::Unavailable { .. }));
    }

    #[test]
    fn a_bulk_answer_is_read_item_by_item() {
        let product = |id: &str| Product {
            external_id: id.into(),
            sku: id.into(),
            name: id.into(),
            price: rust_decimal::Decimal::ONE,
            active: true,
            unit: "UN".into(),
            parent_external_id: None,
            variation: None,
        };
        let body =
            r#"{"results":[{"external_id":"2","error":"price must be positive"},{"external_id":"1","id":"p_1"}]}"#;
        let answer: BulkResponse = serde_json::from_str(body).unwrap();
        let outcomes = bulk_outcomes(&[product("1"), product("2"), product("3")], &answer.results);
        assert_eq!(outcomes[0], Ok(()));
        assert!(matches!(&outcomes[1], Err(ConnectorError::Rejected { status: 422, message, .. })
            if message == "product 2: price must be positive"));
        assert!(matches!(&outcomes[2], Err(ConnectorError::Protocol { .. })));
    }

    #[test]
    fn products_serialize_as_the_contract_shows() {
        let p = Product {
            external_id: "16059781281".into(),
            sku: "CAM-AZ-M".into(),
            name: "Camiseta azul M".into(),
            price: rust_decimal::Decimal::new(5990, 2),
            active: true,
            unit: "UN".into(),
            parent_external_id: Some("16059781200".into()),
            variation: Some(super::super::types::Variation {
                name: "Azul M".into(),
                attributes: [("cor".to_owned(), "azul".to_owned()), ("tamanho".to_owned(), "M".to_owned())].into(),
            }),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["price"], serde_json::json!(59.90));
        assert_eq!(v["variation"]["attributes"]["tamanho"], "M");
        let simple = Product { parent_external_id: None, variation: None, ..p };
        let v = serde_json::to_value(&simple).unwrap();
        assert!(v.get("parent_external_id").is_none() && v.get("variation").is_none());
    }
}
