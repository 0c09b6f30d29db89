//! The portal's CRM data and the `crm.*` methods over it: legacy products (`crm.product.*`,
//! with `XML_ID` and `PROPERTY_<n>` values), product properties, the product catalog, deals
//! (`crm.deal.*`, `ORIGINATOR_ID`/`ORIGIN_ID`, `UF_CRM_*` user fields) and their product rows.
//! Every number a `crm.*` method returns is a string, as Bitrix24's PHP core writes them.

mod deals;
mod list;
mod methods;
mod model;
mod products;

pub use deals::STAGES;
pub use model::{Crm, MethodError, Property, Reply, stamp};

#[cfg(test)]
mod tests;
