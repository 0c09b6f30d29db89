//! CPLUG point of sale, as ponte's contract defines it (`contracts/cplug.md`): the password
//! grant, products served to the point of sale (upsert, bulk of up to 500, list, delete), and
//! the sale webhooks it pushes. Wire types in [`types`]; the HTTP glue in [`client`]; a Bling
//! product as CPLUG's in [`transformers`]; a pushed sale as ponte's in [`sales`].

pub mod client;
pub mod sales;
pub mod transformers;
pub mod types;
pub mod webhooks;

pub use client::{CplugClient, CplugCredentials, CplugToken};

pub(crate) const SYSTEM: &str = "CPLUG";

/// The most products one bulk upsert may carry.
pub const BULK_LIMIT: usize = 500;
