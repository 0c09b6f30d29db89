//! What the hub does on its own: moves orders along the forward-only life cycle (a tracking
//! code once labels are generated) and approves or rejects products, each step pushed to the
//! merchant's webhook URL as `order.status_changed` / `product.approval_changed`, signed
//! `X-360-Signature: sha256=<hex>` and retried with the same `event_id` and bytes until a 2xx.

use serde_json::json;

use super::{
    hub::{Delivery, Envios360, timestamp},
    store::{self, STATUSES},
};
use crate::common::Retry;

impl Envios360 {
    /// The hub moves an order to `status` (forward only; `cancelled` only before transit) and
    /// pushes `order.status_changed`. Returns the event id.
    pub fn set_status(&self, order_id: &str, status: &str) -> Result<String, String> {
        self.move_order(order_id, |_| Ok(status.to_owned()))
    }

    /// The next step of an order's life cycle; the new status and the event id.
    pub fn advance(&self, order_id: &str) -> Result<(String, String), String> {
        let mut next = String::new();
        let event_id = self.move_order(order_id, |current| {
            let at = store::rank(current).ok_or_else(|| format!("an order {current} has no next status"))?;
            next = STATUSES.get(at + 1).ok_or_else(|| format!("an order {current} has no next status"))?.to_string();
            Ok(next.clone())
        })?;
        Ok((next, event_id))
    }

    fn move_order(&self, order_id: &str, to: impl FnOnce(&str) -> Result<String, String>) -> Result<String, String> {
        let now = self.rt.clock.now();
        let (merchant, body, event_id) = {
            let mut inner = self.inner.lock();
            let m = inner.order_owner(order_id).ok_or_else(|| format!("no order {order_id}"))?;
            let order = m.orders.get_mut(order_id).ok_or_else(|| format!("no order {order_id}"))?;
            let previous = order["status"].as_str().unwrap_or("received").to_owned();
            let status = to(&previous)?;
            store::allowed(&previous, &status).map_err(|e| e.to_string())?;
            order["status"] = json!(status);
            order["updated_at"] = json!(timestamp(now));
            if status == "awaiting_shipment" || (status == "in_transit" && order["tracking_code"].is_null()) {
                // Labels are generated at this step: the parcel gets its tracking code.
                let code = format!("AA{:09}BR", rand::random::<u32>() % 1_000_000_000);
                order["tracking_url"] = json!(format!("{}{code}", self.config.tracking_url_base));
                order["tracking_code"] = json!(code);
            }
            let event_id = uuid::Uuid::new_v4().to_string();
            let body = json!({"event_id": event_id, "event": "order.status_changed", "occurred_at": timestamp(now),
                "order": {"id": order["id"], "external_id": order["external_id"], "status": status,
                          "previous_status": previous, "tracking_code": order["tracking_code"],
                          "tracking_url": order["tracking_url"]}});
            let merchant = (m.webhook_url.clone(), m.webhook_secret.clone());
            (merchant, body.to_string(), event_id)
        };
        self.push(merchant, "order.status_changed", event_id.clone(), body);
        Ok(event_id)
    }

    /// The hub approves or rejects a product and pushes `product.approval_changed`. Returns
    /// the event id.
    pub fn set_approval(&self, product_id: &str, approved: bool, reason: Option<&str>) -> Result<String, String> {
        let now = self.rt.clock.now();
        let (merchant, body, event_id) = {
            let mut inner = self.inner.lock();
            let m = inner.product_owner(product_id).ok_or_else(|| format!("no product {product_id}"))?;
            let p = m.products.get_mut(product_id).ok_or_else(|| format!("no product {product_id}"))?;
            let status = if approved { "approved" } else { "rejected" };
            p["approval_status"] = json!(status);
            let mut product = json!({"id": p["id"], "external_id": p["external_id"], "approval_status": status});
            if approved {
                if let Some(o) = p.as_object_mut() {
                    o.remove("rejection_reason");
                }
            } else {
                let reason = reason.unwrap_or("Rejected by the 360 team");
                p["rejection_reason"] = json!(reason);
                product["rejection_reason"] = json!(reason);
            }
            p["updated_at"] = json!(timestamp(now));
            let event_id = uuid::Uuid::new_v4().to_string();
            let body = json!({"event_id": event_id, "event": "product.approval_changed",
                              "occurred_at": timestamp(now), "product": product});
            ((m.webhook_url.clone(), m.webhook_secret.clone()), body.to_string(), event_id)
        };
        self.push(merchant, "product.approval_changed", event_id.clone(), body);
        Ok(event_id)
    }

    pub fn approve_product(&self, product_id: &str) -> Result<String, String> {
        self.set_approval(product_id, true, None)
    }

    pub fn reject_product(&self, product_id: &str, reason: &str) -> Result<String, String> {
        self.set_approval(product_id, false, Some(reason))
    }

    /// Delivers a webhook in the background until a 2xx, waiting longer after each failure.
    fn push(&self, (url, secret): (Option<String>, String), event: &str, event_id: String, body: String) {
        let Some(url) = url else { return };
        let c = &self.config;
        let retry = Retry {
            attempts: c.webhook_attempts,
            backoff: c.webhook_backoff,
            give_up: c.webhook_give_up,
            timeout: c.webhook_timeout,
        };
        let (me, event) = (self.clone(), event.to_owned());
        let copies = self.rt.outbox.post_signed_json(&url, "x-360-signature", &secret, body, retry, move |a| {
            me.inner.lock().deliveries.push(Delivery {
                event_id: event_id.clone(),
                event: event.clone(),
                attempt: a.number,
                status: a.status,
            });
        });
        let mut inner = self.inner.lock();
        inner.stats.webhooks += 1;
        if copies == 0 {
            inner.stats.webhooks_dropped += 1;
        }
    }
}
