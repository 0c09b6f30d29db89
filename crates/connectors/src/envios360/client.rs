//! HTTP glue for 360Envios: bearer token per merchant, every call on the token's shared budget
//! (5 requests/s, through the mesh's limiter, so every replica together stays under it),
//! classified errors, and creates that are safe to retry (a 409 names the existing id; a lookup
//! by `external_id` finds an order a timed-out create may have made).

use std::{sync::Arc, time::Duration};

use ponte_core::ratelimit::{self, Priority, Quota, RateLimitError, RateLimiter};
use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::{
    SYSTEM,
    types::{ErrorEnvelope, NewProduct, Order, OrderBody, OrderList, OrderRef, Product},
};
use crate::{error::ConnectorError, http::read};

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(String),
    /// The `external_id` existed already: this is its id.
    Existing(String),
}

impl Created {
    pub fn id(&self) -> &str {
        match self {
            Created::New(id) | Created::Existing(id) => id,
        }
    }
}

#[derive(Clone)]
pub struct Envios360Client {
    http: reqwest::Client,
    base: String,
    limiter: Arc<dyn RateLimiter>,
    quota: Quota,
    max_wait: Duration,
}

enum Failure {
    Conflict(String),
    Other(ConnectorError),
}

impl Envios360Client {
    /// `base` is the API root, e.g. `https://api.360envios.com.br/v1`; every call takes a slot
    /// of its token's budget `quota` (`Quota::envios360()`) from `limiter` first.
    pub fn new(http: reqwest::Client, base: &str, limiter: Arc<dyn RateLimiter>, quota: Quota) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned(), limiter, quota, max_wait: Duration::from_secs(30) }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Failure> {
        // A client span per call, its time including the wait for the token's budget.
        let span = tracing::info_span!(
            "envios360.request",
            otel.name = %format!("360Envios {method}"),
            otel.kind = "client",
            http.request.method = %method,
            url.path = %path,
            http.response.status_code = tracing::field::Empty,
            ponte.ratelimit.wait_ms = tracing::field::Empty,
        );
        async move {
            let waited = std::time::Instant::now();
            ratelimit::acquire(&*self.limiter, &budget_key(token), self.quota, Priority::Live, self.max_wait)
                .await
                .map_err(|e| {
                    let message = match e {
                        RateLimitError::Unavailable(m) => m,
                        other => other.to_string(),
                    };
                    Failure::Other(ConnectorError::RateLimited { system: SYSTEM, message, retry_after: None })
                })?;
            tracing::Span::current().record("ponte.ratelimit.wait_ms", waited.elapsed().as_millis() as u64);
            let (operation, req) = crate::http::bearer_request(&self.http, &self.base, token, method, path, body);
            let resp = crate::http::send("envios360", &operation, req)
                .await
                .map_err(|e| Failure::Other(ConnectorError::transport(SYSTEM, e)))?;
            let (status, retry_after, bytes) = read(SYSTEM, resp).await.map_err(Failure::Other)?;
            tracing::Span::current().record("http.response.status_code", status.as_u16());
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::Other(ConnectorError::Protocol { system: SYSTEM, message: format!("{path}: {e}") })
                });
            }
            let parsed = serde_json::from_slice::<ErrorEnvelope>(&bytes).ok().map(|e| e.error);
            if status == StatusCode::CONFLICT
                && let Some(id) = parsed.as_ref().and_then(|e| e.id.clone())
            {
                return Err(Failure::Conflict(id));
            }
            Err(Failure::Other(error_from(status, retry_after, parsed)))
        }
        .instrument(span)
        .await
    }

    async fn create<B: Serialize>(&self, token: &str, path: &str, body: &B) -> Result<Created, ConnectorError> {
        match self.call::<B, OrderRef>(token, Method::POST, path, Some(body)).await {
            Ok(r) => Ok(Created::New(r.id)),
            Err(Failure::Conflict(id)) => Ok(Created::Existing(id)),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    async fn plain<B: Serialize, T: DeserializeOwned>(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ConnectorError> {
        self.call(token, method, path, body).await.map_err(|f| match f {
            Failure::Conflict(id) => ConnectorError::Rejected {
                system: SYSTEM,
                status: 409,
                message: format!("conflicts with {id}"),
                fields: vec![],
            },
            Failure::Other(e) => e,
        })
    }

    /// Sends a product for approval; an existing `external_id` returns its id.
    pub async fn create_product(&self, token: &str, p: &NewProduct) -> Result<Created, ConnectorError> {
        self.create(token, "/products", p).await
    }

    pub async fn product(&self, token: &str, id: &str) -> Result<Product, ConnectorError> {
        self.plain::<(), _>(token, Method::GET, &format!("/products/{}", enc(id)), None).await
    }

    /// Creates an order; an existing `external_id` (a retried create) returns its id.
    pub async fn create_order(&self, token: &str, o: &OrderBody) -> Result<Created, ConnectorError> {
        self.create(token, "/orders", o).await
    }

    /// Forwards a Bling edit; 422 once the order is in transit or later.
    pub async fn update_order(&self, token: &str, id: &str, o: &OrderBody) -> Result<(), ConnectorError> {
        self.plain::<_, serde_json::Value>(token, Method::PUT, &format!("/orders/{}", enc(id)), Some(o))
            .await
            .map(|_| ())
    }

    pub async fn order(&self, token: &str, id: &str) -> Result<Order, ConnectorError> {
        self.plain::<(), _>(token, Method::GET, &format!("/orders/{}", enc(id)), None).await
    }

    /// The order made for a Bling order, if any.
    pub async fn find_order(&self, token: &str, external_id: &str) -> Result<Option<Order>, ConnectorError> {
        let list: OrderList =
            self.plain::<(), _>(token, Method::GET, &format!("/orders?external_id={}", enc(external_id)), None).await?;
        Ok(list.data.into_iter().find(|o| o.external_id == external_id))
    }

    /// Cancels; 422 when already delivered.
    pub async fn cancel_order(&self, token: &str, id: &str) -> Result<OrderRef, ConnectorError> {
        self.plain::<(), _>(token, Method::POST, &format!("/orders/{}/cancel", enc(id)), None).await
    }
}

/// The limiter's key of a token's budget: a digest, so that no token is written to Redis.
fn budget_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("envios360:{}", hex::encode(&digest[..12]))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn error_from(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Option<super::types::ErrorBody>,
) -> ConnectorError {
    let message = body.as_ref().map(|b| format!("{}: {}", b.code, b.message)).unwrap_or_else(|| status.to_string());
    match status.as_u16() {
        429 => ConnectorError::RateLimited { system: SYSTEM, message, retry_after },
        401 => ConnectorError::InvalidToken { system: SYSTEM, message },
        404 => ConnectorError::NotFound { system: SYSTEM, message },
        500..=599 => ConnectorError::Unavailable { system: SYSTEM, message },
        code => ConnectorError::Rejected {
            system: SYSTEM,
            status: code,
            message,
            fields: body
                .map(|b| b.fields.into_iter().map(|f| format!("{}: {}", f.field, f.message)).collect())
                .unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::{OrderStatus, StatusWebhook};
    use super::*;

    #[test]
    fn statuses_only_move_forward_and_cancel_only_before_transit() {
        use OrderStatus::*;
        assert!(Received.can_move_to(InPackingList));
        assert!(Received.can_move_to(Delivered));
        assert!(!InTransit.can_move_to(AwaitingShipment));
        assert!(!Delivered.can_move_to(Delivered));
        assert!(AwaitingShipment.can_move_to(Cancelled));
        assert!(!InTransit.can_move_to(Cancelled));
        assert!(!Cancelled.can_move_to(Delivered));
    }

    #[test]
    fn the_documented_webhook_parses() {
        let body = r#"{"event_id":"5f0c1c3e-1","event":"order.status_changed","occurred_at":"2026-03-02T14:05:11Z",
          "order":{"id":"o_81723","external_id":"12345678","status":"in_transit","previous_status":"awaiting_shipment",
                   "tracking_code":"AA123456789BR","tracking_url":"https://t.example/AA123456789BR"}}"#;
        let w: StatusWebhook = serde_json::from_str(body).unwrap();
        let o = w.order.unwrap();
        assert_eq!((o.status, o.previous_status), (OrderStatus::InTransit, Some(OrderStatus::AwaitingShipment)));
    }

    #[test]
    fn errors_are_classified_with_their_fields() {
        let body = super::super::types::ErrorBody {
            code: "validation".into(),
            message: "invalid".into(),
            fields: vec![super::super::types::FieldError {
                field: "address.zip".into(),
                message: "is required".into(),
            }],
            id: None,
        };
        let ConnectorError::Rejected { fields, status, .. } = error_from(StatusCode::BAD_REQUEST, None, Some(body))
        else {
            panic!("not a rejection")
        };
        assert_eq!((status, fields), (400, vec!["address.zip: is required".to_owned()]));
        let limited = error_from(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(1)), None);
        assert!(matches!(limited, ConnectorError::RateLimited { retry_after: Some(_), .. }));
    }
}
