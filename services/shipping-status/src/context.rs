//! What every flow works with, built once per service: the database, the tenants' access
//! tokens, the mapping service (with its situação maps kept briefly), and the clients of Bling
//! and 360Envios. Flows take it by reference and never import each other's state.

use ponte_connectors::{bling::BlingApi, envios360::Envios360Client};
use ponte_core::{access::AccessTokens, db::Database};

use crate::mapping::Mapping;

#[derive(Clone)]
pub(crate) struct Context {
    pub db: Database,
    pub tokens: AccessTokens,
    pub mapping: Mapping,
    pub bling: BlingApi,
    pub hub: Envios360Client,
}
