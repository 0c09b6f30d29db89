//! The till: sales rung up at any store of an account (a customer or none, several payments
//! with installments) and cancelled, each pushed to the account's webhook URL as
//! `sale.completed` / `sale.cancelled`, signed `X-Cplug-Signature: sha256=<hex>` with the
//! account's secret and retried with the same `event_id` and bytes until answered 2xx.

use serde_json::{Value, json};

use super::{
    pdv::{Cplug, Delivery, brasilia},
    store::{self, Errors, Sale},
};
use crate::common::{Retry, sign};

impl Cplug {
    /// Rings up a sale at the till of the first account and pushes `sale.completed`. See
    /// [`store::sale`] for the fields; `id`, `number`, `store_id`, `register_id` and payments
    /// are filled in when absent. Returns the sale and the event id.
    pub fn ring_up(&self, sale: Value) -> Result<(Sale, String), Errors> {
        self.ring_up_for(&self.config.username.clone(), sale)
    }

    pub fn ring_up_for(&self, username: &str, body: Value) -> Result<(Sale, String), Errors> {
        let (sale, target) = {
            let mut inner = self.inner.lock();
            let Some(account) = inner.accounts.get_mut(username) else {
                return Err(Errors::from([("account".to_owned(), vec![format!("No account {username}.")])]));
            };
            let names = |sku: &str| {
                account
                    .products
                    .values()
                    .find(|(_, p)| p["sku"] == sku)
                    .and_then(|(_, p)| p["name"].as_str().map(str::to_owned))
            };
            let mut sale = store::sale(&body, names)?;
            if sale.id.is_empty() || sale.number == 0 {
                account.next_sale += 1;
            }
            if sale.number == 0 {
                sale.number = account.next_sale;
            }
            if sale.id.is_empty() {
                sale.id = format!("V-{:06}", sale.number);
            }
            if account.sales.contains_key(&sale.id) {
                return Err(Errors::from([("id".to_owned(), vec!["The id has already been taken.".to_owned()])]));
            }
            if sale.store_id.is_empty() {
                sale.store_id = self.config.store_id.clone();
            }
            if sale.register_id.is_empty() {
                sale.register_id = "caixa-1".into();
            }
            account.sales.insert(sale.id.clone(), sale.clone());
            (sale, (account.webhook_url.clone(), account.webhook_secret.clone()))
        };
        let event_id = self.push(target, "sale.completed", &sale);
        Ok((sale, event_id))
    }

    /// Cancels a completed sale of the first account and pushes `sale.cancelled`. The event id.
    pub fn cancel_sale(&self, sale_id: &str) -> Result<String, String> {
        self.cancel_sale_for(&self.config.username.clone(), sale_id)
    }

    pub fn cancel_sale_for(&self, username: &str, sale_id: &str) -> Result<String, String> {
        let (sale, target) = {
            let mut inner = self.inner.lock();
            let account = inner.accounts.get_mut(username).ok_or_else(|| format!("no account {username}"))?;
            let sale = account.sales.get_mut(sale_id).ok_or_else(|| format!("no sale {sale_id}"))?;
            if sale.cancelled {
                return Err(format!("sale {sale_id} is already cancelled"));
            }
            sale.cancelled = true;
            (sale.clone(), (account.webhook_url.clone(), account.webhook_secret.clone()))
        };
        Ok(self.push(target, "sale.cancelled", &sale))
    }

    /// A sale webhook as the till would push it: `(headers, raw body)`, signed with the
    /// first account's secret. `event` is `sale.completed` or `sale.cancelled`.
    pub fn sale_webhook(&self, event_id: &str, event: &str, sale: Value) -> (Vec<(String, String)>, String) {
        let body = self.event_body(event_id, event, sale);
        let signature = sign(&self.config.webhook_secret, body.as_bytes());
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-cplug-signature".to_owned(), format!("sha256={signature}")),
        ];
        (headers, body)
    }

    fn event_body(&self, event_id: &str, event: &str, sale: Value) -> String {
        let occurred_at = self.rt.clock.now().with_timezone(&brasilia()).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
        let v = json!({"event_id": event_id, "event": event, "occurred_at": occurred_at, "sale": sale});
        store::to_json_text(&v)
    }

    /// Delivers a sale event in the background until a 2xx, waiting longer after each
    /// failure; the event id stays the same across attempts. Returns it.
    fn push(&self, (url, secret): (Option<String>, String), event: &str, sale: &Sale) -> String {
        let event_id = uuid::Uuid::new_v4().to_string();
        let Some(url) = url else { return event_id };
        let body = self.event_body(&event_id, event, sale.to_json());
        let c = &self.config;
        let retry = Retry {
            attempts: c.webhook_attempts,
            backoff: c.webhook_backoff,
            give_up: c.webhook_give_up,
            timeout: c.webhook_timeout,
        };
        let (me, event, id, sale_id) = (self.clone(), event.to_owned(), event_id.clone(), sale.id.clone());
        let copies = self.rt.outbox.post_signed_json(&url, "x-cplug-signature", &secret, body, retry, move |a| {
            me.inner.lock().deliveries.push(Delivery {
                event_id: id.clone(),
                event: event.clone(),
                sale_id: sale_id.clone(),
                attempt: a.number,
                status: a.status,
            });
        });
        let mut inner = self.inner.lock();
        inner.stats.webhooks += 1;
        if copies == 0 {
            inner.stats.webhooks_dropped += 1;
        }
        event_id
    }
}
