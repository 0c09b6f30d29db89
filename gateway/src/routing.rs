//! From a verified event to what happens to it: its tenant, whether it can be delivered, and
//! to whom. Used on arrival, and again by the dispatcher for events whose tenant could not be
//! resolved then and for replayed dead letters.

use ponte_core::TenantId;

use crate::{
    inbox::EventState,
    lookups::{Lookup, Lookups},
    sources::{Event, SourceKind, Tenancy},
    subscribers::Route,
};

/// The verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its tenant is known: deliver it to each subscription of its type.
    Deliver { tenant: TenantId, routes: &'static [Route] },
    /// It cannot be delivered; its tenant when known.
    Dead { tenant: Option<TenantId>, reason: String },
    /// No ponte service subscribes to its type: kept, visible, and not alarming.
    Ignored { tenant: Option<TenantId>, reason: String },
    /// Its tenant could not be resolved now (auth-token did not answer): stored as received
    /// and classified again later.
    Unresolved,
}

impl Verdict {
    /// The state its event is stored in.
    pub fn state(&self) -> EventState {
        match self {
            Self::Deliver { .. } => EventState::Pending,
            Self::Dead { .. } => EventState::Dead,
            Self::Ignored { .. } => EventState::Ignored,
            Self::Unresolved => EventState::Received,
        }
    }

    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Deliver { tenant, .. } => Some(tenant),
            Self::Dead { tenant, .. } | Self::Ignored { tenant, .. } => tenant.as_ref(),
            Self::Unresolved => None,
        }
    }

    /// Why it is dead or ignored; empty otherwise.
    pub fn dead_reason(&self) -> &str {
        match self {
            Self::Dead { reason, .. } | Self::Ignored { reason, .. } => reason,
            _ => "",
        }
    }

    pub fn routes(&self) -> &'static [Route] {
        match self {
            Self::Deliver { routes, .. } => routes,
            _ => &[],
        }
    }
}

/// Classifies `event` from `kind`; `path_tenant` is the tenant the URL named (path sources).
pub async fn classify(kind: SourceKind, event: &Event, path_tenant: Option<&TenantId>, lookups: &Lookups) -> Verdict {
    let tenant = match kind.tenancy() {
        Tenancy::Path => path_tenant.cloned().map_or(Lookup::Missing(String::new()), Lookup::Found),
        Tenancy::Account if event.account.is_empty() => Lookup::Missing(String::new()),
        Tenancy::Account => lookups.tenant(kind.provider(), &event.account).await,
    };
    if let Some(why) = &event.unusable {
        let tenant = if let Lookup::Found(t) = tenant { Some(t) } else { None };
        if event.unsubscribed {
            return Verdict::Ignored { tenant, reason: why.clone() };
        }
        return Verdict::Dead { tenant, reason: why.clone() };
    }
    match tenant {
        Lookup::Found(tenant) => Verdict::Deliver { tenant, routes: kind.routes(&event.event_type) },
        Lookup::Missing(_) => Verdict::Dead {
            tenant: None,
            reason: match kind.tenancy() {
                Tenancy::Path => format!("the {} event was stored without the tenant its URL named", kind.name()),
                Tenancy::Account => {
                    format!("{} account '{}' is not connected to any ponte tenant", kind.name(), event.account)
                }
            },
        },
        Lookup::Unavailable { .. } => Verdict::Unresolved,
    }
}
