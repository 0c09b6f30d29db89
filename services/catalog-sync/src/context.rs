//! What every flow and backfill works with, built once per service: the database, the
//! tenants' access tokens, the mapping service, the outside systems' clients, the leases that
//! keep replicas apart, and the caches shared by flows (sync settings, the portals' "Bling ID"
//! keys, CPLUG upserts waiting for a bulk call). Flows take it by reference and never import
//! each other.

use std::sync::Arc;

use ponte_connectors::{bitrix24::Bitrix24Client, bling::BlingApi};
use ponte_core::{access::AccessTokens, background::Background, db::Database, lock::Locks};

use crate::{cplug_bulks::CplugBulks, mapping::Mapping, portal::BlingIdKeys, settings::SettingsCache};

#[derive(Clone)]
pub(crate) struct Context {
    pub db: Database,
    pub tokens: AccessTokens,
    pub mapping: Mapping,
    pub bling: BlingApi,
    pub bitrix24: Bitrix24Client,
    /// For CPLUG, whose address comes with each tenant's token.
    pub http: reqwest::Client,
    pub locks: Arc<dyn Locks>,
    /// The tenants' sync settings as live events read them.
    pub settings: SettingsCache,
    pub bling_id_keys: BlingIdKeys,
    pub cplug_bulks: CplugBulks,
    /// The process's background work (backfill runners), stopped with it.
    pub background: Background,
}
