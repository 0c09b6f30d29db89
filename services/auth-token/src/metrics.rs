//! auth-token's metrics: token renewals by provider and outcome, the signal behind the "token
//! refresh failing" alert (a refused grant means a merchant must connect again; failures are
//! the provider or the network).

use std::sync::LazyLock;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    provider: &'static str,
    /// `renewed`, `refused` (the merchant must connect again) or `failed` (to be retried).
    outcome: &'static str,
}

static REFRESHES: LazyLock<Family<RefreshLabels, Counter>> = LazyLock::new(|| {
    let family = Family::default();
    ponte_core::metrics::global().register(
        "ponte_token_refreshes",
        "Access token renewals, by provider and outcome (renewed, refused, failed)",
        family.clone(),
    );
    family
});

/// Registers auth-token's metrics (they are exported from the start, before any renewal).
pub fn register() {
    LazyLock::force(&REFRESHES);
}

/// One renewal of a `provider` token and how it ended.
pub(crate) fn refreshed(provider: &'static str, outcome: &'static str) {
    REFRESHES.get_or_create(&RefreshLabels { provider, outcome }).inc();
}
