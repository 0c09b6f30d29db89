//! The lines of the merchant's "data sync" tab that other services own: the sales flow
//! (sales-ingest) and the shipping flows (shipping-status), asked of them so that one
//! `GetSyncStatus` answers the whole tab. A service that does not answer in time still gets its
//! lines, with the reason as their last error, rather than failing the whole tab.

use std::time::Duration;

use ponte_core::{TenantId, grpc::TracedChannel, time::now_millis};
use ponte_proto::v1::{
    Flow, FlowStatus, SalesIngestServiceGetSyncStatusRequest, ShippingStatusServiceGetSyncStatusRequest,
    sales_ingest_service_client::SalesIngestServiceClient, shipping_status_service_client::ShippingStatusServiceClient,
};

/// How long the tab waits for another service.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub(crate) struct OtherFlows {
    sales: SalesIngestServiceClient<TracedChannel>,
    shipping: ShippingStatusServiceClient<TracedChannel>,
}

/// The lines of `flows`, each saying why its service could not tell.
fn unanswered(flows: &[Flow], service: &str, status: &tonic::Status) -> Vec<FlowStatus> {
    flows
        .iter()
        .map(|flow| FlowStatus {
            flow: *flow as i32,
            last_error: format!("{service} could not tell: {:?}: {}", status.code(), status.message()),
            last_error_time: Some(ponte_core::time::to_timestamp(now_millis())),
            ..FlowStatus::default()
        })
        .collect()
}

fn request<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(ASK_TIMEOUT);
    r
}

impl OtherFlows {
    pub fn new(sales: TracedChannel, shipping: TracedChannel) -> Self {
        Self { sales: SalesIngestServiceClient::new(sales), shipping: ShippingStatusServiceClient::new(shipping) }
    }

    /// The sales flow's line, then the shipping flows', asked of their services at once.
    pub async fn of(&self, tenant: &TenantId) -> Vec<FlowStatus> {
        let (mut sales, mut shipping) = (self.sales.clone(), self.shipping.clone());
        let tenant_id = tenant.to_string();
        let (s, h) = tokio::join!(
            sales.get_sync_status(request(SalesIngestServiceGetSyncStatusRequest { tenant_id: tenant_id.clone() })),
            shipping.get_sync_status(request(ShippingStatusServiceGetSyncStatusRequest { tenant_id })),
        );
        let mut flows = match s {
            Ok(r) => r.into_inner().status.into_iter().collect(),
            Err(e) => unanswered(&[Flow::CplugSalesToBling], "sales-ingest", &e),
        };
        flows.extend(match h {
            Ok(r) => r.into_inner().flows,
            Err(e) => unanswered(&[Flow::BlingToEnvios360Orders, Flow::Envios360ToBlingStatus], "shipping-status", &e),
        });
        flows
    }
}
