//! The subscribing services as the dispatcher calls them: one `HandleEvent` per service, each
//! with the delivery's deadline.

use std::time::Duration;

use ponte_core::{config::ConfigError, grpc::TracedChannel, service::Deps};
use ponte_proto::v1::{
    CatalogSyncServiceHandleEventRequest, EventOutcome, InboundEvent, SalesIngestServiceHandleEventRequest,
    ShippingStatusServiceHandleEventRequest, catalog_sync_service_client::CatalogSyncServiceClient,
    sales_ingest_service_client::SalesIngestServiceClient, shipping_status_service_client::ShippingStatusServiceClient,
};

use crate::subscribers::Subscriber;

/// The subscribing services' clients.
#[derive(Clone)]
pub struct Clients {
    catalog_sync: CatalogSyncServiceClient<TracedChannel>,
    sales_ingest: SalesIngestServiceClient<TracedChannel>,
    shipping_status: ShippingStatusServiceClient<TracedChannel>,
}

impl Clients {
    pub fn new(deps: &Deps) -> Result<Self, ConfigError> {
        Ok(Self {
            catalog_sync: CatalogSyncServiceClient::new(deps.catalog_sync_channel()?),
            sales_ingest: SalesIngestServiceClient::new(deps.sales_ingest_channel()?),
            shipping_status: ShippingStatusServiceClient::new(deps.shipping_status_channel()?),
        })
    }

    /// Hands `event` to `to`; its outcome and detail, or the status it failed with.
    pub async fn handle(
        &self,
        to: Subscriber,
        event: InboundEvent,
        deadline: Duration,
    ) -> Result<(EventOutcome, String), tonic::Status> {
        fn req<T>(msg: T, deadline: Duration) -> tonic::Request<T> {
            let mut r = tonic::Request::new(msg);
            r.set_timeout(deadline);
            r
        }
        let (outcome, detail) = match to {
            Subscriber::CatalogSync => {
                let r = self
                    .catalog_sync
                    .clone()
                    .handle_event(req(CatalogSyncServiceHandleEventRequest { event: Some(event) }, deadline))
                    .await?
                    .into_inner();
                (r.outcome, r.detail)
            }
            Subscriber::SalesIngest => {
                let r = self
                    .sales_ingest
                    .clone()
                    .handle_event(req(SalesIngestServiceHandleEventRequest { event: Some(event) }, deadline))
                    .await?
                    .into_inner();
                (r.outcome, r.detail)
            }
            Subscriber::ShippingStatus => {
                let r = self
                    .shipping_status
                    .clone()
                    .handle_event(req(ShippingStatusServiceHandleEventRequest { event: Some(event) }, deadline))
                    .await?
                    .into_inner();
                (r.outcome, r.detail)
            }
        };
        Ok((EventOutcome::try_from(outcome).unwrap_or(EventOutcome::Unspecified), detail))
    }
}
