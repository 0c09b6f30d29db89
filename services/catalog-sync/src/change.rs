//! What one sync of one record did, as every flow reports it to the event ledger, the gateway
//! and the backfills.

use ponte_proto::v1::EventOutcome;

/// What syncing one record did; the ids are the target's, as its system writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Created(String),
    Updated(String),
    /// The target already held exactly this.
    Unchanged(String),
    /// Deleted or excluded in the source: deactivated in the target.
    Deactivated(String),
    /// A switch is off, or there was nothing to do; the reason says which.
    Skipped(&'static str),
}

impl Change {
    /// The change to `what` (e.g. "Bitrix24 product") as the ledger and the gateway keep it.
    pub fn describe(self, what: &str) -> (EventOutcome, String) {
        match self {
            Change::Created(id) => (EventOutcome::Applied, format!("created {what} {id}")),
            Change::Updated(id) => (EventOutcome::Applied, format!("updated {what} {id}")),
            Change::Deactivated(id) => (EventOutcome::Applied, format!("deactivated {what} {id}")),
            Change::Unchanged(id) => (EventOutcome::Skipped, format!("{what} {id} already up to date")),
            Change::Skipped(why) => (EventOutcome::Skipped, why.to_owned()),
        }
    }
}
