//! What the gateway asks auth-token, cached: which tenant connected a sender's account (Bling
//! `companyId`) and a tenant's webhook secret. The cache is moka's: each answer is kept as long
//! as its kind deserves (an unreachable auth-token only a second, so a burst does not queue up
//! behind it), a burst of callers for one key shares one call (its single-flight load), and the
//! size is bounded, as keys come from the outside (a tenant in a URL). A secret can change (a
//! Bitrix24 re-install, new credentials): a caller whose request did not verify may ask for a
//! fresher answer, which costs at most one call a second per key.
//!
//! A tenant's licence is kept [`LICENSE_RECHECK`] (2 s) only: a suspension or a
//! reactivation reaches the dispatcher within that time, for one `GetTenant` per tenant every two
//! seconds at most.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;
use ponte_core::{TenantId, error::retry_after, grpc::TracedChannel};
use ponte_proto::v1::{
    GetTenantRequest, GetWebhookSecretRequest, Provider, ResolveTenantRequest,
    auth_token_service_client::AuthTokenServiceClient,
};
use tokio::time::Instant;
use tonic::Code;

/// A signing key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An answer from auth-token.
#[derive(Debug, Clone)]
pub enum Lookup<T> {
    Found(T),
    /// auth-token knows of no such thing; the text says what is missing.
    Missing(String),
    /// auth-token could not answer; try again later.
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
}

/// How long each kind of answer is kept, and how old a cached answer may be for a caller that
/// asks for a fresher one.
#[derive(Debug, Clone, Copy)]
struct Ttls {
    found: Duration,
    missing: Duration,
    unavailable: Duration,
    recheck: Duration,
}

const TTLS: Ttls = Ttls {
    found: Duration::from_secs(60),
    missing: Duration::from_secs(10),
    unavailable: Duration::from_secs(1),
    recheck: Duration::from_secs(1),
};

/// How long a tenant's licence is kept: the bound on how late a switch takes effect.
pub const LICENSE_RECHECK: Duration = Duration::from_secs(2);

const LICENSE_TTLS: Ttls = Ttls { found: LICENSE_RECHECK, ..TTLS };

/// Keys kept at most per cache.
const MAX_KEYS: u64 = 10_000;

impl Ttls {
    fn of<T>(&self, answer: &Lookup<T>) -> Duration {
        match answer {
            Lookup::Found(_) => self.found,
            Lookup::Missing(_) => self.missing,
            Lookup::Unavailable { .. } => self.unavailable,
        }
    }
}

/// An answer and when it was fetched (on the runtime's clock; moka expires it on its own).
#[derive(Clone)]
struct Answer<T> {
    lookup: Lookup<T>,
    fetched: Instant,
}

impl<T> moka::Expiry<String, Answer<T>> for Ttls {
    fn expire_after_create(&self, _: &String, answer: &Answer<T>, _: std::time::Instant) -> Option<Duration> {
        Some(self.of(&answer.lookup))
    }

    fn expire_after_update(
        &self,
        _: &String,
        answer: &Answer<T>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.of(&answer.lookup))
    }
}

/// Answers by key.
struct Answers<T> {
    cache: Cache<String, Answer<T>>,
    recheck: Duration,
}

impl<T: Clone + Send + Sync + 'static> Answers<T> {
    fn new(ttls: Ttls) -> Self {
        Self { cache: Cache::builder().max_capacity(MAX_KEYS).expire_after(ttls).build(), recheck: ttls.recheck }
    }

    /// The cached answer for `key`, or `fetch`'s (one fetch for concurrent callers).
    async fn get(&self, key: String, fetch: impl Future<Output = Lookup<T>>) -> Lookup<T> {
        self.cache.get_with(key, stamped(fetch)).await.lookup
    }

    /// As [`Answers::get`], but an answer older than the recheck age is fetched again.
    async fn recheck(&self, key: String, fetch: impl Future<Output = Lookup<T>>) -> Lookup<T> {
        let recheck = self.recheck;
        let entry = self.cache.entry(key).or_insert_with_if(stamped(fetch), |a| a.fetched.elapsed() >= recheck).await;
        entry.into_value().lookup
    }

    async fn forget(&self, key: &str) {
        self.cache.invalidate(key).await;
    }
}

async fn stamped<T>(fetch: impl Future<Output = Lookup<T>>) -> Answer<T> {
    let lookup = fetch.await;
    Answer { lookup, fetched: Instant::now() }
}

/// Cached auth-token lookups; clone freely.
#[derive(Clone)]
pub struct Lookups {
    client: AuthTokenServiceClient<TracedChannel>,
    tenants: Arc<Answers<TenantId>>,
    secrets: Arc<Answers<Secret>>,
    licenses: Arc<Answers<License>>,
}

/// A tenant's licence as the dispatcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum License {
    Active,
    /// Suspended, with the operator's reason.
    Inactive(String),
}

/// How long one call to auth-token may take: a webhook is waiting on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

fn from_status<T>(status: tonic::Status) -> Lookup<T> {
    match status.code() {
        Code::NotFound | Code::FailedPrecondition | Code::InvalidArgument | Code::PermissionDenied => {
            Lookup::Missing(status.message().to_owned())
        }
        _ => Lookup::Unavailable {
            message: format!("auth-token did not answer ({:?}: {})", status.code(), status.message()),
            retry_after: retry_after(&status),
        },
    }
}

impl Lookups {
    pub fn new(channel: TracedChannel) -> Self {
        Self {
            client: AuthTokenServiceClient::new(channel),
            tenants: Arc::new(Answers::new(TTLS)),
            secrets: Arc::new(Answers::new(TTLS)),
            licenses: Arc::new(Answers::new(LICENSE_TTLS)),
        }
    }

    /// The tenant that connected `account` of `provider`.
    pub async fn tenant(&self, provider: Provider, account: &str) -> Lookup<TenantId> {
        let fetch = async {
            let mut req = tonic::Request::new(ResolveTenantRequest {
                provider: provider as i32,
                external_account_id: account.to_owned(),
            });
            req.set_timeout(CALL_TIMEOUT);
            match self.client.clone().resolve_tenant(req).await {
                Ok(r) => match TenantId::parse(&r.into_inner().tenant_id) {
                    Ok(tenant) => Lookup::Found(tenant),
                    Err(e) => Lookup::Unavailable {
                        message: format!("auth-token answered a tenant id that {e}"),
                        retry_after: None,
                    },
                },
                Err(s) => from_status(s),
            }
        };
        self.tenants.get(format!("{}:{account}", provider as i32), fetch).await
    }

    /// The secret `tenant`'s `provider` webhooks are signed with.
    pub async fn webhook_secret(&self, tenant: &TenantId, provider: Provider) -> Lookup<Secret> {
        self.secrets.get(Self::secret_key(tenant, provider), self.fetch_secret(tenant, provider)).await
    }

    /// As [`Lookups::webhook_secret`], for a request that did not verify with the cached
    /// answer: asked of auth-token again unless that answer is under a second old.
    pub async fn recheck_webhook_secret(&self, tenant: &TenantId, provider: Provider) -> Lookup<Secret> {
        self.secrets.recheck(Self::secret_key(tenant, provider), self.fetch_secret(tenant, provider)).await
    }

    /// Drops the cached secret of `tenant` (it was just replaced through this gateway).
    pub async fn forget_webhook_secret(&self, tenant: &TenantId, provider: Provider) {
        self.secrets.forget(&Self::secret_key(tenant, provider)).await;
    }

    /// `tenant`'s licence (a tenant without a licence record reads as active).
    pub async fn license(&self, tenant: &TenantId) -> Lookup<License> {
        let fetch = async {
            let mut req = tonic::Request::new(GetTenantRequest { tenant_id: tenant.to_string() });
            req.set_timeout(CALL_TIMEOUT);
            match self.client.clone().get_tenant(req).await {
                Ok(r) => match r.into_inner().tenant.and_then(|t| t.license) {
                    Some(l) if !l.active => Lookup::Found(License::Inactive(l.reason)),
                    _ => Lookup::Found(License::Active),
                },
                Err(s) => from_status(s),
            }
        };
        self.licenses.get(tenant.to_string(), fetch).await
    }

    fn secret_key(tenant: &TenantId, provider: Provider) -> String {
        format!("{}:{tenant}", provider as i32)
    }

    async fn fetch_secret(&self, tenant: &TenantId, provider: Provider) -> Lookup<Secret> {
        let mut req =
            tonic::Request::new(GetWebhookSecretRequest { tenant_id: tenant.to_string(), provider: provider as i32 });
        req.set_timeout(CALL_TIMEOUT);
        match self.client.clone().get_webhook_secret(req).await {
            Ok(r) => Lookup::Found(Secret::new(r.into_inner().secret.as_bytes())),
            Err(s) => from_status(s),
        }
    }
}

#[cfg(test)]
mod tests;
