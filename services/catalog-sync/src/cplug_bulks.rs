//! CPLUG upserts that arrive together share one bulk call: the first change of a tenant waits
//! a moment ([`GATHER`]) for others (the gateway delivers many entities at once), then sends
//! up to [`BULK_LIMIT`] in one `PUT /bulks/products` and hands each caller its own item's
//! result. Each caller still answers only after its own product was written.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use ponte_connectors::{
    ConnectorError,
    cplug::{BULK_LIMIT, CplugClient, client::bulk_outcomes, types::Product},
};
use ponte_core::TenantId;
use tokio::sync::oneshot;

/// How long the first change of a tenant waits for others to share its bulk call.
pub(crate) const GATHER: Duration = Duration::from_millis(25);

type Reply = oneshot::Sender<Result<(), ConnectorError>>;
/// A tenant's upserts waiting for the next bulk call, each with whom to tell.
type Queue = Vec<(Product, Reply)>;

/// Upserts waiting to share a bulk call, per tenant.
#[derive(Clone, Default)]
pub(crate) struct CplugBulks {
    pending: Arc<Mutex<HashMap<TenantId, Queue>>>,
}

impl CplugBulks {
    /// Upserts `product` for `tenant_id`, sharing a bulk call with whatever arrives meanwhile.
    pub async fn upsert(
        &self,
        client: &CplugClient,
        token: &str,
        tenant_id: &TenantId,
        product: Product,
    ) -> Result<(), ConnectorError> {
        let (reply, answer) = oneshot::channel();
        let leader = {
            let mut pending = self.pending.lock();
            let queue = pending.entry(tenant_id.clone()).or_default();
            queue.push((product, reply));
            queue.len() == 1
        };
        if leader {
            tokio::time::sleep(GATHER).await;
            loop {
                let batch: Vec<(Product, Reply)> = {
                    let mut pending = self.pending.lock();
                    let Some(queue) = pending.get_mut(tenant_id) else { break };
                    let n = queue.len().min(BULK_LIMIT);
                    let batch: Vec<_> = queue.drain(..n).collect();
                    if queue.is_empty() {
                        pending.remove(tenant_id);
                    }
                    batch
                };
                if batch.is_empty() {
                    break;
                }
                send(client, token, batch).await;
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(ConnectorError::Unavailable { system: "CPLUG", message: "the bulk call was dropped".into() })
        })
    }
}

/// One bulk call (a plain upsert for one product); every caller gets its own item's answer.
async fn send(client: &CplugClient, token: &str, batch: Vec<(Product, Reply)>) {
    let (products, replies): (Vec<Product>, Vec<Reply>) = batch.into_iter().unzip();
    if products.len() == 1 {
        let r = client.upsert(token, &products[0]).await.map(|_| ());
        let _ = replies.into_iter().next().map(|reply| reply.send(r));
        return;
    }
    match client.upsert_bulk(token, &products).await {
        Ok(results) => {
            for (outcome, reply) in bulk_outcomes(&products, &results).into_iter().zip(replies) {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
