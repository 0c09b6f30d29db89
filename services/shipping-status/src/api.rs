//! shipping-status's gRPC API (`ShippingStatusService`): each RPC checks its request (tenants
//! parsed and known, ids positive), then hands it to the module that owns the work: events,
//! shipments and their history, the sync status, setup.

use ponte_core::{BlingId, error::ServiceError, tenants::TenantCheck};
use ponte_proto::v1::{
    GetShipmentRequest, GetShipmentResponse, ListShipmentsRequest, ListShipmentsResponse, SetUpShippingRequest,
    SetUpShippingResponse, ShippingStatus as Status_, ShippingStatusServiceGetSyncStatusRequest,
    ShippingStatusServiceGetSyncStatusResponse, ShippingStatusServiceHandleEventRequest,
    ShippingStatusServiceHandleEventResponse, shipping_status_service_server::ShippingStatusService,
};
use tonic::{Request, Response, Status};

use crate::{context::Context, events, history, setup, shipments, sync_status};

/// The gRPC implementation.
#[derive(Clone)]
pub(crate) struct ShippingStatus {
    ctx: Context,
    tenants: TenantCheck,
}

impl ShippingStatus {
    pub fn new(ctx: Context, tenants: TenantCheck) -> Self {
        Self { ctx, tenants }
    }
}

#[tonic::async_trait]
impl ShippingStatusService for ShippingStatus {
    async fn handle_event(
        &self,
        req: Request<ShippingStatusServiceHandleEventRequest>,
    ) -> Result<Response<ShippingStatusServiceHandleEventResponse>, Status> {
        Ok(Response::new(events::handle(&self.ctx, req.into_inner()).await?))
    }

    async fn get_shipment(&self, req: Request<GetShipmentRequest>) -> Result<Response<GetShipmentResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let order = BlingId::new(req.bling_order_id)
            .ok_or_else(|| ServiceError::invalid("bling_order_id", "must be a Bling order id (a positive number)"))?;
        let db = &self.ctx.db;
        let s = shipments::get(db, &tenant, order).await?.ok_or_else(|| {
            ServiceError::NotFound(format!("Bling order {order} of tenant '{tenant}' has no shipment"))
        })?;
        let mut shipment = s.to_proto(shipments::products(db, &tenant, order).await?);
        shipment.history = history::of(db, &tenant, order).await?;
        Ok(Response::new(GetShipmentResponse { shipment: Some(shipment) }))
    }

    async fn list_shipments(
        &self,
        req: Request<ListShipmentsRequest>,
    ) -> Result<Response<ListShipmentsResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let status = match Status_::try_from(req.status) {
            Ok(Status_::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => {
                return Err(ServiceError::invalid("status", format!("{} is not a shipping status", req.status)).into());
            }
        };
        let filter = shipments::Filter { status, stuck: req.stuck, last_error_contains: req.last_error_contains };
        let db = &self.ctx.db;
        let (page, next_page_token) = shipments::list(db, &tenant, &filter, req.page_size, &req.page_token).await?;
        let mut out = Vec::with_capacity(page.len());
        for s in page {
            let products = shipments::products(db, &tenant, s.order).await?;
            out.push(s.to_proto(products));
        }
        Ok(Response::new(ListShipmentsResponse { shipments: out, next_page_token }))
    }

    async fn get_sync_status(
        &self,
        req: Request<ShippingStatusServiceGetSyncStatusRequest>,
    ) -> Result<Response<ShippingStatusServiceGetSyncStatusResponse>, Status> {
        let tenant = self.tenants.require_field("tenant_id", &req.into_inner().tenant_id).await?;
        let flows = sync_status::flows(&self.ctx.db, &tenant).await?;
        Ok(Response::new(ShippingStatusServiceGetSyncStatusResponse { flows }))
    }

    async fn set_up_shipping(
        &self,
        req: Request<SetUpShippingRequest>,
    ) -> Result<Response<SetUpShippingResponse>, Status> {
        let req = req.into_inner();
        let tenant = self.tenants.require_field("tenant_id", &req.tenant_id).await?;
        let steps = setup::set_up(&self.ctx, &tenant, &req).await?;
        Ok(Response::new(SetUpShippingResponse { steps }))
    }
}
