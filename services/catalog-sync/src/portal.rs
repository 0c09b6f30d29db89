//! The "Bling ID" product property of each tenant's Bitrix24 portal: the merchant-facing fixed
//! mapping keeps a product's Bling id in a string property (code `BLING_ID`) whose
//! `PROPERTY_<n>` differs per portal. The mapping service names it `PROPERTY_BLING_ID`; flows
//! swap in the portal's key, discovered (or created, by one replica at a time, under a lease)
//! and kept per portal.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;
use ponte_connectors::{
    CallError,
    bitrix24::{Portal, PropertyKey},
};
use ponte_core::{
    error::ServiceError,
    lock::{Locks, acquire_within},
};

/// The symbolic code and name of the "Bling ID" property on a portal.
pub(crate) const BLING_ID_CODE: &str = "BLING_ID";
pub(crate) const BLING_ID_NAME: &str = "Bling ID";

/// How long a portal's key is trusted: it changes only if a person deletes the property.
const KEY_TTL: Duration = Duration::from_secs(3600);
/// How long a replica waits for another that is setting the property up.
const SETUP_WAIT: Duration = Duration::from_secs(10);

/// Portal → the key of its "Bling ID" property. A burst of first syncs on one portal looks it
/// up once (moka's single-flight); the lease keeps two replicas from creating it twice.
#[derive(Clone)]
pub(crate) struct BlingIdKeys {
    keys: Cache<String, PropertyKey>,
    locks: Arc<dyn Locks>,
}

impl BlingIdKeys {
    pub fn new(locks: Arc<dyn Locks>) -> Self {
        Self { keys: Cache::builder().max_capacity(100_000).time_to_live(KEY_TTL).build(), locks }
    }

    /// The portal's key for "Bling ID".
    pub async fn get(&self, portal: &Portal) -> Result<PropertyKey, CallError> {
        self.keys
            .try_get_with_by_ref(portal.domain(), self.discover(portal))
            .await
            .map_err(|shared: Arc<CallError>| (*shared).clone())
    }

    /// Found, or created, while holding the portal's lease.
    async fn discover(&self, portal: &Portal) -> Result<PropertyKey, CallError> {
        let lock_key = format!("bitrix24-property:{}:{BLING_ID_CODE}", portal.domain());
        let lease = match acquire_within(&*self.locks, &lock_key, Duration::from_secs(30), SETUP_WAIT).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                return Err(ServiceError::unavailable(
                    format!("another replica is setting up the {BLING_ID_NAME} property of {}", portal.domain()),
                    Some(Duration::from_secs(1)),
                )
                .into());
            }
            Err(e) => return Err(ServiceError::unavailable(e.to_string(), None).into()),
        };
        let found = portal.property_key(BLING_ID_CODE, BLING_ID_NAME).await;
        let _ = self.locks.release(lease).await;
        Ok(found?)
    }
}
