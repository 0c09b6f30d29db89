//! From a verified event to what happens to it: its tenant, whether it can be delivered, and
//! to whom. Used on arrival, and again by the dispatcher for events whose tenant could not be
//! resolved then and for replayed dead letters.

use crate::{
    inbox::state,
    lookups::{Lookup, Lookups},
    sources::{Event, Route, SourceKind, Tenancy},
};

/// The verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// Empty when unknown.
    pub tenant_id: String,
    /// `pending` (route it), `dead` (with a reason), or `received` (try again later).
    pub state: &'static str,
    pub dead_reason: String,
    pub routes: &'static [Route],
}

/// Classifies `event` from `kind`; `path_tenant` is the tenant the URL named (path sources).
pub async fn classify(kind: SourceKind, event: &Event, path_tenant: &str, lookups: &Lookups) -> Classified {
    let dead = |tenant_id: String, reason: String| Classified {
        tenant_id,
        state: state::DEAD,
        dead_reason: reason,
        routes: &[],
    };
    let tenant = match kind.tenancy() {
        Tenancy::Path => Lookup::Found(path_tenant.to_owned()),
        Tenancy::Account if event.account.is_empty() => Lookup::Missing(String::new()),
        Tenancy::Account => lookups.tenant(kind.provider(), &event.account).await,
    };
    if let Some(why) = &event.unusable {
        let tenant_id = if let Lookup::Found(t) = tenant { t } else { String::new() };
        return dead(tenant_id, why.clone());
    }
    match tenant {
        Lookup::Found(tenant_id) => Classified {
            tenant_id,
            state: state::PENDING,
            dead_reason: String::new(),
            routes: kind.routes(&event.event_type),
        },
        Lookup::Missing(_) => dead(
            String::new(),
            format!("{} account '{}' is not connected to any ponte tenant", kind.name(), event.account),
        ),
        Lookup::Unavailable { .. } => {
            Classified { tenant_id: String::new(), state: state::RECEIVED, dead_reason: String::new(), routes: &[] }
        }
    }
}
