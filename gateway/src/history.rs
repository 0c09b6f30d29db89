//! One record's whole history (`InboxService.GetRecordHistory`): the inbox's own events for
//! the entity (received, delivered to whom, with what outcome, why dead) merged with the history
//! the owning service keeps: catalog-sync's event log for products and orders, sales-ingest's
//! sale history for sales, shipping-status's shipment history for orders. Each entry carries
//! the trace that handled it and, when `PONTE_TRACE_URL_TEMPLATE` is set, its link in the
//! operator's tracing UI.

use ponte_core::{
    TenantId,
    config::ConfigError,
    db::Database,
    error::{ServiceError, quote},
    grpc::TracedChannel,
    service::Deps,
    time::to_timestamp,
};
use ponte_proto::v1::{
    GetEntityHistoryRequest, GetSaleRequest, GetShipmentRequest, RecordHistoryEntry,
    catalog_sync_service_client::CatalogSyncServiceClient, sales_ingest_service_client::SalesIngestServiceClient,
    shipping_status_service_client::ShippingStatusServiceClient,
};
use tonic::Code;

/// The most inbox events one record's history reads (its newest).
const MAX_EVENTS: i64 = 200;

/// How long a service has to answer with its part of a history.
const SERVICE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

fn ask<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(SERVICE_DEADLINE);
    r
}

/// Where a record's history is read.
#[derive(Clone)]
pub struct Histories {
    catalog_sync: CatalogSyncServiceClient<TracedChannel>,
    sales_ingest: SalesIngestServiceClient<TracedChannel>,
    shipping_status: ShippingStatusServiceClient<TracedChannel>,
    trace_url: Option<TraceUrl>,
}

/// `PONTE_TRACE_URL_TEMPLATE`: a URL with `{trace_id}` where the trace id goes.
#[derive(Clone, Debug)]
pub struct TraceUrl(String);

impl TraceUrl {
    pub const VAR: &str = "PONTE_TRACE_URL_TEMPLATE";

    pub fn parse(template: &str) -> Result<Self, ConfigError> {
        if !template.contains("{trace_id}") {
            return Err(ConfigError::new(
                Self::VAR,
                "must contain {trace_id}, e.g. https://grafana/explore?traceId={trace_id}",
            ));
        }
        if !(template.starts_with("https://") || template.starts_with("http://")) {
            return Err(ConfigError::new(Self::VAR, format!("{} is not an http(s) URL", quote(template))));
        }
        Ok(Self(template.to_owned()))
    }

    pub fn render(&self, trace_id: &str) -> String {
        self.0.replace("{trace_id}", trace_id)
    }
}

/// A stable sort by time. Within one millisecond a delivery's outcome, which the gateway
/// records when the subscriber answers, comes after what the subscriber did; other entries of
/// one time keep the order their source gave them.
fn oldest_first(entries: &mut [RecordHistoryEntry]) {
    let is_delivery_outcome =
        |e: &RecordHistoryEntry| e.component == "gateway" && e.action.starts_with("delivered to ");
    entries.sort_by_key(|e| (e.time.map(|t| (t.seconds, t.nanos)), is_delivery_outcome(e)));
}

/// The trace id in a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), if it has one.
pub fn trace_id_of(traceparent: &str) -> String {
    let mut parts = traceparent.split('-');
    match (parts.next(), parts.next()) {
        (Some(_), Some(id)) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id != "0".repeat(32) => {
            id.to_owned()
        }
        _ => String::new(),
    }
}

impl Histories {
    pub fn new(deps: &Deps) -> Result<Self, ConfigError> {
        // Unset by default: histories then carry trace ids without links.
        let template = deps.env.get_or(TraceUrl::VAR, "");
        let trace_url = (!template.is_empty()).then(|| TraceUrl::parse(template)).transpose()?;
        Ok(Self {
            catalog_sync: CatalogSyncServiceClient::new(deps.catalog_sync_channel()?),
            sales_ingest: SalesIngestServiceClient::new(deps.sales_ingest_channel()?),
            shipping_status: ShippingStatusServiceClient::new(deps.shipping_status_channel()?),
            trace_url,
        })
    }

    /// The record's history, oldest first.
    pub async fn of(&self, db: &Database, tenant: &str, entity: &str) -> Result<Vec<RecordHistoryEntry>, ServiceError> {
        let tenant = TenantId::field("tenant_id", tenant)?;
        let (kind, id) = match entity.split_once(':') {
            Some((k, i)) if !k.is_empty() && !i.is_empty() && entity.len() <= 200 => (k, i),
            _ => {
                return Err(ServiceError::invalid(
                    "entity",
                    "must be '<kind>:<id>', e.g. 'product:16059781281', 'order:456' or 'sale:V-1001'",
                ));
            }
        };
        let mut entries = inbox(db, &tenant, entity).await?;
        match kind {
            "product" | "order" | "bitrix24_product" => entries.extend(self.catalog_sync(&tenant, entity).await),
            "sale" => entries.extend(self.sale(&tenant, id).await),
            _ => {}
        }
        if kind == "order" {
            let order: i64 = id
                .parse()
                .map_err(|_| ServiceError::invalid("entity", format!("{} is not a Bling order id", quote(id))))?;
            entries.extend(self.shipment(&tenant, order).await);
        }
        oldest_first(&mut entries);
        if let Some(t) = &self.trace_url {
            for e in entries.iter_mut().filter(|e| !e.trace_id.is_empty()) {
                e.trace_url = t.render(&e.trace_id);
            }
        }
        Ok(entries)
    }

    async fn catalog_sync(&self, tenant: &TenantId, entity: &str) -> Vec<RecordHistoryEntry> {
        let req = GetEntityHistoryRequest { tenant_id: tenant.to_string(), entity: entity.to_owned() };
        match self.catalog_sync.clone().get_entity_history(ask(req)).await {
            Ok(r) => r.into_inner().entries,
            Err(s) => unreadable("catalog-sync", &s),
        }
    }

    async fn sale(&self, tenant: &TenantId, sale_id: &str) -> Vec<RecordHistoryEntry> {
        let req = GetSaleRequest { tenant_id: tenant.to_string(), sale_id: sale_id.to_owned() };
        match self.sales_ingest.clone().get_sale(ask(req)).await {
            Ok(r) => r
                .into_inner()
                .record
                .map(|r| r.history)
                .unwrap_or_default()
                .into_iter()
                .map(|h| RecordHistoryEntry {
                    time: h.time,
                    component: "sales-ingest".into(),
                    action: h.action,
                    outcome: h.outcome,
                    detail: h.detail,
                    event_id: String::new(),
                    trace_id: h.trace_id,
                    trace_url: String::new(),
                })
                .collect(),
            Err(s) => unreadable("sales-ingest", &s),
        }
    }

    async fn shipment(&self, tenant: &TenantId, bling_order_id: i64) -> Vec<RecordHistoryEntry> {
        let req = GetShipmentRequest { tenant_id: tenant.to_string(), bling_order_id };
        match self.shipping_status.clone().get_shipment(ask(req)).await {
            Ok(r) => r
                .into_inner()
                .shipment
                .map(|s| s.history)
                .unwrap_or_default()
                .into_iter()
                .map(|h| RecordHistoryEntry {
                    time: h.time,
                    component: "shipping-status".into(),
                    action: if h.trigger.is_empty() { h.action } else { format!("{}: {}", h.trigger, h.action) },
                    outcome: ponte_proto::v1::EventOutcome::try_from(h.outcome)
                        .map_or("unspecified", |o| o.label())
                        .to_owned(),
                    detail: h.detail,
                    event_id: h.event_id,
                    trace_id: h.trace_id,
                    trace_url: String::new(),
                })
                .collect(),
            Err(s) => unreadable("shipping-status", &s),
        }
    }
}

/// A service that has no record of the entity adds nothing; one that could not be asked says so
/// in the history, so the rest of it is still shown.
fn unreadable(component: &str, s: &tonic::Status) -> Vec<RecordHistoryEntry> {
    if s.code() == Code::NotFound {
        return Vec::new();
    }
    tracing::warn!(component, code = ?s.code(), error = %s.message(), "could not read a record's history");
    vec![RecordHistoryEntry {
        time: Some(to_timestamp(ponte_core::time::now_millis())),
        component: component.into(),
        action: "history not available".into(),
        outcome: "unavailable".into(),
        detail: format!("{component} did not answer ({:?}): {}", s.code(), s.message()),
        ..Default::default()
    }]
}

#[derive(sqlx::FromRow)]
struct EventRow {
    event_id: String,
    source: String,
    event_type: String,
    state: String,
    dead_reason: String,
    traceparent: String,
    receive_time: i64,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    event_id: String,
    subscriber: String,
    state: String,
    attempts: i64,
    last_error: String,
    outcome: String,
    detail: String,
    delivered_time: Option<i64>,
    create_time: i64,
}

/// The inbox's events for the entity and their deliveries.
async fn inbox(db: &Database, tenant: &TenantId, entity: &str) -> Result<Vec<RecordHistoryEntry>, ServiceError> {
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT event_id, source, event_type, state, dead_reason, traceparent, receive_time FROM inbox_events \
         WHERE tenant_id = $1 AND entity_key = $2 ORDER BY receive_time DESC, event_id DESC LIMIT $3",
    )
    .bind(tenant.as_str())
    .bind(entity)
    .bind(MAX_EVENTS)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for e in events.into_iter().rev() {
        let trace_id = trace_id_of(&e.traceparent);
        let deliveries: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT event_id, subscriber, state, attempts, last_error, outcome, detail, delivered_time, create_time \
             FROM inbox_deliveries WHERE event_id = $1 ORDER BY subscriber",
        )
        .bind(&e.event_id)
        .fetch_all(db.pool())
        .await?;
        out.push(RecordHistoryEntry {
            time: Some(to_timestamp(e.receive_time)),
            component: "gateway".into(),
            action: format!("received {} {}", e.source, e.event_type),
            outcome: e.state,
            detail: e.dead_reason,
            event_id: e.event_id.clone(),
            trace_id: trace_id.clone(),
            trace_url: String::new(),
        });
        for d in deliveries {
            let detail = match (d.detail.is_empty(), d.last_error.is_empty()) {
                (false, _) => d.detail,
                (true, false) => d.last_error,
                _ => String::new(),
            };
            let action = if d.attempts > 1 {
                format!("delivered to {} ({} attempts)", d.subscriber, d.attempts)
            } else {
                format!("delivered to {}", d.subscriber)
            };
            out.push(RecordHistoryEntry {
                time: Some(to_timestamp(d.delivered_time.unwrap_or(d.create_time))),
                component: "gateway".into(),
                action,
                outcome: if d.outcome.is_empty() { d.state } else { d.outcome },
                detail,
                event_id: d.event_id,
                trace_id: trace_id.clone(),
                trace_url: String::new(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_outcome_follows_what_the_subscriber_did_in_the_same_millisecond() {
        let at = |ms: i64, component: &str, action: &str| RecordHistoryEntry {
            time: Some(to_timestamp(ms)),
            component: component.into(),
            action: action.into(),
            ..Default::default()
        };
        let mut entries = vec![
            at(10, "gateway", "received bling product.updated"),
            at(20, "gateway", "delivered to catalog-sync"),
            at(20, "catalog-sync", "handled bling product.updated"),
            at(15, "catalog-sync", "read the product"),
        ];
        oldest_first(&mut entries);
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "received bling product.updated",
                "read the product",
                "handled bling product.updated",
                "delivered to catalog-sync"
            ]
        );
    }

    #[test]
    fn the_trace_id_comes_out_of_a_traceparent() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(trace_id_of(""), "");
        assert_eq!(trace_id_of("garbage"), "");
        assert_eq!(trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), "");
    }

    #[test]
    fn the_trace_url_template_needs_the_placeholder() {
        let t = TraceUrl::parse("https://grafana/explore?traceId={trace_id}").unwrap();
        assert_eq!(t.render("abc"), "https://grafana/explore?traceId=abc");
        let err = TraceUrl::parse("https://grafana/explore").unwrap_err();
        assert!(err.to_string().contains("PONTE_TRACE_URL_TEMPLATE"), "{err}");
        assert!(TraceUrl::parse("javascript:{trace_id}").is_err());
    }
}
