//! `GetSyncStatus`: the shipping flows' lines of the merchant's "data sync" tab, from
//! shipping-status's own records. Per flow, the last success is the newest event that changed
//! something and the last error the newest problem the history kept (a failure, a refusal, an
//! event about an order or status ponte does not know); both flows show where the tenant's
//! shipments stand. Both are listed even before the tenant ships anything, so the rows are stable.

use ponte_core::{TenantId, db::Database, error::ServiceError, time::to_timestamp};
use ponte_proto::v1::{Flow as FlowProto, FlowStatus};

use crate::{
    history::{self, Flow},
    shipments,
};

pub(crate) async fn flows(db: &Database, tenant: &TenantId) -> Result<Vec<FlowStatus>, ServiceError> {
    let counts = shipments::counts(db, tenant).await?;
    let mut out = Vec::new();
    for (flow, proto) in
        [(Flow::Orders, FlowProto::BlingToEnvios360Orders), (Flow::Status, FlowProto::Envios360ToBlingStatus)]
    {
        let summary = history::summary(db, tenant, flow).await?;
        out.push(FlowStatus {
            flow: proto as i32,
            last_success_time: summary.last_success.map(to_timestamp),
            last_error: summary.last_error.as_ref().map(|(_, e)| e.clone()).unwrap_or_default(),
            last_error_time: summary.last_error.map(|(at, _)| to_timestamp(at)),
            shipping: Some(counts),
            ..Default::default()
        });
    }
    Ok(out)
}
