//! Bling's v1 webhooks: `{eventId, date, version, event, companyId, data}` signed
//! `X-Bling-Signature-256: sha256=<hex HMAC-SHA256(client secret, raw body)>`, retried with
//! doubling waits until a 2xx; after the last failed attempt the resource's hook is switched off
//! and nothing more is sent for it. Also the `data` payloads of products and orders.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::store::Bling;
use crate::common::Retry;

impl Bling {
    /// Sends a v1 webhook for a change to `resource` (`product`, `order`) to the configured URL.
    pub fn emit(&self, resource: &str, action: &str, data: Value) {
        let Some(url) = self.config.webhook_url.clone() else { return };
        if self.inner.lock().stats.hooks_disabled.iter().any(|r| r == resource) {
            return;
        }
        let date = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = json!({"eventId": uuid::Uuid::now_v7().to_string(), "date": date, "version": "v1",
            "event": format!("{resource}.{action}"), "companyId": self.config.company_id, "data": data})
        .to_string();
        let retry = Retry {
            attempts: self.config.webhook_attempts,
            backoff: self.config.webhook_backoff.div_f64(self.config.time_scale.max(1e-9)),
            give_up: Duration::MAX,
            // Bling wants a 2xx within five seconds.
            timeout: Duration::from_secs(5),
        };
        let (me, resource) = (self.clone(), resource.to_owned());
        let secret = &self.config.client_secret;
        self.rt.outbox.post_signed_json(&url, "x-bling-signature-256", secret, body, retry, move |attempt| {
            let mut inner = me.inner.lock();
            if attempt.delivered() {
                inner.stats.webhooks_delivered += 1;
            } else if attempt.last && !inner.stats.hooks_disabled.contains(&resource) {
                inner.stats.hooks_disabled.push(resource.clone());
            }
        });
    }
}

/// The product payload of a v1 webhook (no media, as Bling sends it).
pub fn product(p: &Value) -> Value {
    let mut out = json!({"id": p["id"], "nome": p["nome"], "codigo": p["codigo"].as_str().unwrap_or_default(),
        "tipo": p["tipo"], "situacao": p["situacao"], "preco": p["preco"],
        "unidade": p["unidade"].as_str().unwrap_or_default(), "formato": p["formato"]});
    if let Some(parent) = p["variacao"]["produtoPai"]["id"].as_i64() {
        out["idProdutoPai"] = json!(parent);
    }
    out
}

/// The order payload of a v1 webhook.
pub fn order(o: &Value) -> Value {
    json!({"id": o["id"], "data": o["data"], "numero": o["numero"], "numeroLoja": o["numeroLoja"], "total": o["total"],
        "contato": {"id": o["contato"]["id"]}, "vendedor": {"id": o["vendedor"]["id"].as_i64().unwrap_or(0)},
        "loja": {"id": o["loja"]["id"]}, "situacao": o["situacao"]})
}
