//! The YAML form of a tenant's mapping tables, as `ponte mapping export|import` moves them: the
//! document, reading it from a running mapping service over gRPC, the changes an import makes
//! (shown as a diff, and all a dry run does), and applying them.
//!
//! A document holds payment methods, stores, situações and the tenant's own field mappings (the
//! builtin set is fixed, so it is not exported; an imported entry equal to a builtin is accepted
//! and changes nothing). The link registry is data, not configuration, and is not part of it.
//! A section present in the file is the whole table: entries missing from it are deleted. A
//! section left out is not touched. The service has no update calls, so a changed entry is
//! deleted and created again. The whole file is checked before anything is changed (the Bling
//! ids of payment methods, stores and situações by the service, against the tenant's Bling
//! account); the changes are then made one call at a time (deletes first), and the first refusal
//! stops the import.

mod check;
mod format;
mod plan;
mod remote;
#[cfg(test)]
mod tests;

pub use check::validate;
pub use format::{Document, PaymentMethod, Situacao, Status, Store, VERSION, from_yaml, to_yaml};
pub use plan::{Change, Current, plan};
pub use remote::{apply, check, read};
