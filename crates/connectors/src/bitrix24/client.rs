//! HTTP glue for Bitrix24. Every call takes a slot from the portal's shared budget first
//! (2 requests/s, burst 50, across every replica: a batch counts as one).

use std::{sync::Arc, time::Duration};

use ponte_core::{
    ratelimit::{self, Priority, Quota, RateLimitError, RateLimiter},
    telemetry::traced,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{
    BATCH_LIMIT, SYSTEM,
    types::{BatchResult, Envelope, ErrorBody, as_string},
};
use crate::error::ConnectorError;
use tracing::Instrument;

/// How a portal is called.
#[derive(Clone)]
pub enum Bitrix24Auth {
    /// An incoming webhook: `https://{portal}/rest/{user}/{code}/`; the code is the secret.
    Webhook { base: String },
    /// An OAuth app: the token goes in the body as `auth`.
    OAuth { client_endpoint: String, access_token: String },
}

impl std::fmt::Debug for Bitrix24Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Webhook { .. } => f.write_str("Bitrix24Auth::Webhook(***)"),
            Self::OAuth { client_endpoint, .. } => write!(f, "Bitrix24Auth::OAuth({client_endpoint}, ***)"),
        }
    }
}

impl Bitrix24Auth {
    fn url(&self, method: &str) -> String {
        let base = match self {
            Self::Webhook { base } => base,
            Self::OAuth { client_endpoint, .. } => client_endpoint,
        };
        format!("{}/{method}.json", base.trim_end_matches('/'))
    }

    fn is_webhook(&self) -> bool {
        matches!(self, Self::Webhook { .. })
    }
}

/// One command of a `batch`: `method?php-style-query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCommand {
    pub key: String,
    pub method: String,
    pub params: Value,
}

impl BatchCommand {
    pub fn new(key: impl Into<String>, method: impl Into<String>, params: Value) -> Self {
        Self { key: key.into(), method: method.into(), params }
    }

    fn encode(&self) -> String {
        let q = php_query(&self.params);
        if q.is_empty() { self.method.clone() } else { format!("{}?{q}", self.method) }
    }
}

/// Encodes JSON as a PHP-style query string (`fields[NAME]=x&select[]=ID`), as `batch`
/// commands carry their parameters. `$result[...]` references pass through unescaped.
pub fn php_query(params: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}[{k}]") };
                    walk(&key, v, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::Null => out.push(format!("{}=", enc(prefix))),
            Value::Bool(b) => out.push(format!("{}={}", enc(prefix), if *b { "Y" } else { "N" })),
            Value::Number(n) => out.push(format!("{}={n}", enc(prefix))),
            Value::String(s) if s.starts_with("$result[") => out.push(format!("{}={s}", enc(prefix))),
            Value::String(s) => out.push(format!("{}={}", enc(prefix), enc(s))),
        }
    }
    fn enc(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace("%5B", "[").replace("%5D", "]")
    }
    let mut out = Vec::new();
    walk("", params, &mut out);
    out.join("&")
}

#[derive(Clone)]
pub struct Bitrix24Client {
    http: reqwest::Client,
    limiter: Arc<dyn RateLimiter>,
    quota: Quota,
    max_wait: Duration,
}

impl Bitrix24Client {
    pub fn new(http: reqwest::Client, limiter: Arc<dyn RateLimiter>, quota: Quota) -> Self {
        Self { http, limiter, quota, max_wait: Duration::from_secs(60) }
    }

    /// Calls `method` on `portal` (its domain, the budget's key) with JSON `params`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        method: &str,
        params: &Value,
    ) -> Result<Envelope<T>, ConnectorError> {
        // A client span per call (the URL is never recorded: a webhook URL holds its secret).
        let span = tracing::info_span!(
            "bitrix24.request",
            otel.name = %format!("Bitrix24 {method}"),
            otel.kind = "client",
            rpc.method = %method,
            ponte.portal = %portal,
            http.response.status_code = tracing::field::Empty,
            ponte.ratelimit.wait_ms = tracing::field::Empty,
        );
        self.call_in_span(auth, portal, priority, method, params).instrument(span).await
    }

    async fn call_in_span<T: DeserializeOwned>(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        method: &str,
        params: &Value,
    ) -> Result<Envelope<T>, ConnectorError> {
        let waited = std::time::Instant::now();
        ratelimit::acquire(&*self.limiter, &format!("bitrix24:{portal}"), self.quota, priority, self.max_wait)
            .await
            .map_err(|e| match e {
                RateLimitError::Unavailable(m) => ConnectorError::Unavailable { system: SYSTEM, message: m },
                other => ConnectorError::RateLimited { system: SYSTEM, message: other.to_string(), retry_after: None },
            })?;
        tracing::Span::current().record("ponte.ratelimit.wait_ms", waited.elapsed().as_millis() as u64);
        let mut body = params.clone();
        if let (Bitrix24Auth::OAuth { access_token, .. }, Value::Object(m)) = (auth, &mut body) {
            m.insert("auth".into(), Value::String(access_token.clone()));
        }
        let resp = traced(self.http.post(auth.url(method)))
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        let status = resp.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let bytes = resp.bytes().await.map_err(|e| ConnectorError::transport(SYSTEM, e))?;
        if !status.is_success() {
            return Err(error_from(status, &bytes, auth.is_webhook()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::Protocol { system: SYSTEM, message: format!("{method}: {e}") })
    }

    /// Runs commands through `batch`, 50 a call, in order. With `halt`, a failing command stops
    /// its call's remaining commands. Never retried as a whole: callers retry what failed.
    pub async fn batch(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        commands: &[BatchCommand],
        halt: bool,
    ) -> Result<BatchResult, ConnectorError> {
        let mut all = BatchResult::default();
        for chunk in commands.chunks(BATCH_LIMIT) {
            let cmd: serde_json::Map<String, Value> =
                chunk.iter().map(|c| (c.key.clone(), Value::String(c.encode()))).collect();
            let params = json!({"halt": if halt { 1 } else { 0 }, "cmd": cmd});
            let env: Envelope<BatchResult> = self.call(auth, portal, priority, "batch", &params).await?;
            all.result.extend(env.result.result);
            all.result_error.extend(env.result.result_error);
            all.result_total.extend(env.result.result_total);
            all.result_next.extend(env.result.result_next);
        }
        Ok(all)
    }

    /// Every row of a list method, 50 at a time, following `next`.
    pub async fn list_all(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        method: &str,
        params: &Value,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut rows = Vec::new();
        let mut start = 0_u64;
        loop {
            let mut p = params.clone();
            if let Value::Object(m) = &mut p {
                m.insert("start".into(), json!(start));
            }
            let page: Envelope<Vec<Value>> = self.call(auth, portal, priority, method, &p).await?;
            rows.extend(page.result);
            match page.next {
                Some(next) if next > start => start = next,
                _ => return Ok(rows),
            }
        }
    }

    /// The product whose `XML_ID` ("External code") is `xml_id`, if any.
    pub async fn find_product_by_xml_id(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        xml_id: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, ConnectorError> {
        self.find_product_by(auth, portal, priority, "XML_ID", xml_id).await
    }

    /// The first product whose `field` (a plain field or a `PROPERTY_<n>`) holds `value`, with
    /// its properties.
    pub async fn find_product_by(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        field: &str,
        value: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, ConnectorError> {
        let params = json!({"filter": {field: value}, "select": ["*", "PROPERTY_*"]});
        let page: Envelope<Vec<serde_json::Map<String, Value>>> =
            self.call(auth, portal, priority, "crm.product.list", &params).await?;
        // The filter is applied by the portal; the check here guards against a portal that
        // ignores an unknown filter key and answers every product.
        Ok(page.result.into_iter().find(|p| field_values(p.get(field)).iter().any(|v| v == value)))
    }

    /// The `PROPERTY_<n>` key of the portal's product property with symbolic code `code`,
    /// created (a string property named `name`) when the portal has none. `n` differs per
    /// portal, so it is discovered, never configured.
    pub async fn product_property_key(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        code: &str,
        name: &str,
    ) -> Result<String, ConnectorError> {
        let props = self.list_all(auth, portal, priority, "crm.product.property.list", &json!({})).await?;
        let found = props.iter().find(|p| {
            let is = |k: &str, want: &str| p.get(k).and_then(as_string).is_some_and(|v| v.eq_ignore_ascii_case(want));
            is("CODE", code) || is("NAME", name)
        });
        let id = match found.and_then(|p| p.get("ID")).and_then(as_string) {
            Some(id) => id,
            None => {
                let fields = json!({"NAME": name, "CODE": code, "ACTIVE": "Y", "PROPERTY_TYPE": "S", "MULTIPLE": "N"});
                let env: Envelope<Value> =
                    self.call(auth, portal, priority, "crm.product.property.add", &json!({"fields": fields})).await?;
                as_string(&env.result).ok_or_else(|| ConnectorError::Protocol {
                    system: SYSTEM,
                    message: "crm.product.property.add returned no id".into(),
                })?
            }
        };
        Ok(format!("PROPERTY_{id}"))
    }

    /// Creates a product; returns its id.
    pub async fn add_product(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        fields: &Value,
    ) -> Result<String, ConnectorError> {
        let env: Envelope<Value> =
            self.call(auth, portal, priority, "crm.product.add", &json!({"fields": fields})).await?;
        as_string(&env.result).ok_or_else(|| ConnectorError::Protocol {
            system: SYSTEM,
            message: "crm.product.add returned no id".into(),
        })
    }

    pub async fn update_product(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        id: &str,
        fields: &Value,
    ) -> Result<(), ConnectorError> {
        let _: Envelope<Value> =
            self.call(auth, portal, priority, "crm.product.update", &json!({"id": id, "fields": fields})).await?;
        Ok(())
    }

    /// The deal ponte made for a Bling order (`ORIGINATOR_ID` = "bling", `ORIGIN_ID` = the order id).
    pub async fn find_deal_by_origin(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        originator: &str,
        origin_id: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let params = json!({"filter": {"ORIGINATOR_ID": originator, "ORIGIN_ID": origin_id}, "select": ["ID"]});
        let page: Envelope<Vec<Value>> = self.call(auth, portal, priority, "crm.deal.list", &params).await?;
        Ok(page.result.first().and_then(|d| d.get("ID")).and_then(as_string))
    }

    /// Replaces a deal's product rows.
    pub async fn set_deal_rows(
        &self,
        auth: &Bitrix24Auth,
        portal: &str,
        priority: Priority,
        deal_id: &str,
        rows: &[Value],
    ) -> Result<(), ConnectorError> {
        let _: Envelope<Value> = self
            .call(auth, portal, priority, "crm.deal.productrows.set", &json!({"id": deal_id, "rows": rows}))
            .await?;
        Ok(())
    }
}

/// A field's values as text: one for a plain field, each `value` of a product property (read
/// back as `{"valueId": .., "value": ..}`, or a list of those when multiple).
pub fn field_values(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().flat_map(|i| field_values(Some(i))).collect(),
        Some(Value::Object(m)) => field_values(m.get("value")),
        Some(other) => as_string(other).into_iter().collect(),
    }
}

/// Classifies a non-2xx answer by its error code (compared case-insensitively: Bitrix24 mixes
/// cases, and two different 503s mean different things).
pub fn error_from(status: StatusCode, body: &[u8], webhook: bool) -> ConnectorError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let code = parsed.as_ref().map(ErrorBody::code).unwrap_or_default();
    let desc = parsed.as_ref().map(|e| e.error_description.clone()).unwrap_or_default();
    let message = if code.is_empty() { desc.clone() } else { format!("{code}: {desc}") };
    match code.to_ascii_uppercase().as_str() {
        // Refused before it ran: always safe to retry.
        "QUERY_LIMIT_EXCEEDED" => ConnectorError::RateLimited { system: SYSTEM, message, retry_after: None },
        "OPERATION_TIME_LIMIT" => {
            ConnectorError::RateLimited { system: SYSTEM, message, retry_after: Some(Duration::from_secs(60)) }
        }
        "OVERLOAD_LIMIT" | "INTERNAL_SERVER_ERROR" | "ERROR_UNEXPECTED_ANSWER" => {
            ConnectorError::Unavailable { system: SYSTEM, message }
        }
        "EXPIRED_TOKEN" | "INVALID_TOKEN" => ConnectorError::InvalidToken { system: SYSTEM, message },
        // A wrong webhook code cannot be refreshed: the merchant must give a new URL.
        "NO_AUTH_FOUND" if webhook => ConnectorError::InvalidGrant { system: SYSTEM, message },
        "NO_AUTH_FOUND" => ConnectorError::InvalidToken { system: SYSTEM, message },
        "INVALID_GRANT" | "PORTAL_DELETED" | "PAYMENT_REQUIRED" => {
            ConnectorError::InvalidGrant { system: SYSTEM, message }
        }
        "" if desc.to_ascii_lowercase().contains("not found") => ConnectorError::NotFound { system: SYSTEM, message },
        _ if status.is_server_error() => {
            ConnectorError::Unavailable { system: SYSTEM, message: format!("{status}: {message}") }
        }
        _ if status == StatusCode::NOT_FOUND => ConnectorError::NotFound { system: SYSTEM, message },
        _ => ConnectorError::Rejected { system: SYSTEM, status: status.as_u16(), message, fields: vec![] },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitrix24::types::BatchResult;

    #[test]
    fn batch_commands_are_php_style_queries() {
        let c = BatchCommand::new(
            "p1",
            "crm.product.add",
            json!({"fields": {"NAME": "Camiseta azul M", "PRICE": 59.9, "XML_ID": "16059781281", "ACTIVE": true}}),
        );
        assert_eq!(
            c.encode(),
            // In the order given: Bitrix24 reads parameters (and batch commands) in sequence.
            "crm.product.add?fields[NAME]=Camiseta+azul+M&fields[PRICE]=59.9&fields[XML_ID]=16059781281&fields[ACTIVE]=Y"
        );
        let r = BatchCommand::new("d", "crm.deal.get", json!({"id": "$result[p1]", "select": ["ID", "TITLE"]}));
        assert_eq!(r.encode(), "crm.deal.get?id=$result[p1]&select[0]=ID&select[1]=TITLE");
    }

    #[test]
    fn batch_results_accept_php_empty_arrays() {
        let body = r#"{"result":{"p1":"410","p2":true},"result_error":[],"result_total":[],"result_next":[]}"#;
        let r: BatchResult = serde_json::from_str(body).unwrap();
        assert_eq!(r.result["p1"], "410");
        assert!(r.result_error.is_empty());
        let with_error = r#"{"result":[],"result_error":{"p3":{"error":"insufficient_scope","error_description":""}},
            "result_total":{"l":120},"result_next":{"l":50}}"#;
        let r: BatchResult = serde_json::from_str(with_error).unwrap();
        assert_eq!(r.result_error["p3"].code(), "insufficient_scope");
        assert_eq!((r.result_total["l"], r.result_next["l"]), (120, 50));
    }

    #[test]
    fn error_codes_are_classified_case_insensitively() {
        let e = |status: u16, body: &str, webhook: bool| {
            error_from(StatusCode::from_u16(status).unwrap(), body.as_bytes(), webhook)
        };
        assert!(matches!(
            e(503, r#"{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}"#, true),
            ConnectorError::RateLimited { .. }
        ));
        assert!(matches!(
            e(503, r#"{"error":"OVERLOAD_LIMIT","error_description":""}"#, true),
            ConnectorError::Unavailable { .. }
        ));
        assert!(matches!(
            e(401, r#"{"error":"expired_token","error_description":"The access token provided has expired"}"#, false),
            ConnectorError::InvalidToken { .. }
        ));
        assert!(matches!(
            e(401, r#"{"error":"NO_AUTH_FOUND","error_description":""}"#, true),
            ConnectorError::InvalidGrant { .. }
        ));
        assert!(matches!(
            e(400, r#"{"error":"","error_description":"Not found"}"#, true),
            ConnectorError::NotFound { .. }
        ));
        assert!(matches!(
            e(400, r#"{"error":200040300010,"error_description":"Access Denied"}"#, true),
            ConnectorError::Rejected { status: 400, .. }
        ));
        assert!(matches!(
            e(429, r#"{"error":"OPERATION_TIME_LIMIT","error_description":""}"#, true),
            ConnectorError::RateLimited { retry_after: Some(_), .. }
        ));
    }
}
