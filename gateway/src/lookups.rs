//! What the gateway asks auth-token, cached: which tenant connected a sender's account (Bling
//! `companyId`) and a tenant's webhook secret. A burst of webhooks makes one call per key
//! (concurrent callers wait for the first), answers are kept briefly, and an unreachable
//! auth-token is remembered for a second so a burst does not queue up behind it. A secret can
//! change (a Bitrix24 re-install, new credentials): a caller whose request did not verify may
//! ask for a fresher answer, which costs at most one call a second per key.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use ponte_core::{error::retry_after, grpc::TracedChannel};
use ponte_proto::v1::{
    GetWebhookSecretRequest, Provider, ResolveTenantRequest, auth_token_service_client::AuthTokenServiceClient,
};
use tokio::{sync::OnceCell, time::Instant};
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

const FOUND_TTL: Duration = Duration::from_secs(60);
const MISSING_TTL: Duration = Duration::from_secs(10);
const UNAVAILABLE_TTL: Duration = Duration::from_secs(1);
/// Keys come from the outside (a tenant in a URL): past this many the cache is emptied, so
/// probing random names cannot grow it without bound.
const MAX_KEYS: usize = 10_000;

/// How long an answer is kept.
fn ttl<T>(answer: &Lookup<T>) -> Duration {
    match answer {
        Lookup::Found(_) => FOUND_TTL,
        Lookup::Missing(_) => MISSING_TTL,
        Lookup::Unavailable { .. } => UNAVAILABLE_TTL,
    }
}

/// The answer and when it was fetched.
type Cell<T> = Arc<OnceCell<(Lookup<T>, Instant)>>;

struct Cache<T> {
    cells: Mutex<HashMap<String, Cell<T>>>,
}

impl<T: Clone> Cache<T> {
    fn new() -> Self {
        Self { cells: Mutex::new(HashMap::new()) }
    }

    /// The cached answer for `key` if it was fetched less than `max_age` ago (and is within its
    /// TTL), else `fetch`'s.
    async fn get<F, Fut>(&self, key: &str, max_age: Duration, fetch: F) -> Lookup<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Lookup<T>>,
    {
        let now = Instant::now();
        let within = |(answer, fetched): &(Lookup<T>, Instant), age: Duration| *fetched + ttl(answer).min(age) > now;
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            match cells.get(key) {
                Some(c) if c.get().is_none_or(|entry| within(entry, max_age)) => c.clone(),
                _ => {
                    if cells.len() >= MAX_KEYS {
                        cells.retain(|_, c| c.get().is_some_and(|entry| within(entry, Duration::MAX)));
                        if cells.len() >= MAX_KEYS {
                            cells.clear();
                        }
                    }
                    let c: Cell<T> = Arc::default();
                    cells.insert(key.to_owned(), c.clone());
                    c
                }
            }
        };
        let (answer, _) = cell.get_or_init(|| async { (fetch().await, Instant::now()) }).await;
        answer.clone()
    }

    fn forget(&self, key: &str) {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// Cached auth-token lookups; clone freely.
#[derive(Clone)]
pub struct Lookups {
    client: AuthTokenServiceClient<TracedChannel>,
    tenants: Arc<Cache<String>>,
    secrets: Arc<Cache<Secret>>,
}

/// How long one call to auth-token may take: a webhook is waiting on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How old a cached secret may be for a request that did not verify with it.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

fn classify<T>(status: tonic::Status) -> Lookup<T> {
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
            tenants: Arc::new(Cache::new()),
            secrets: Arc::new(Cache::new()),
        }
    }

    /// The tenant that connected `account` of `provider`.
    pub async fn tenant(&self, provider: Provider, account: &str) -> Lookup<String> {
        let key = format!("{}:{account}", provider as i32);
        self.tenants
            .get(&key, Duration::MAX, || async {
                let mut req = tonic::Request::new(ResolveTenantRequest {
                    provider: provider as i32,
                    external_account_id: account.to_owned(),
                });
                req.set_timeout(CALL_TIMEOUT);
                match self.client.clone().resolve_tenant(req).await {
                    Ok(r) => Lookup::Found(r.into_inner().tenant_id),
                    Err(s) => classify(s),
                }
            })
            .await
    }

    /// The secret `tenant`'s `provider` webhooks are signed with.
    pub async fn webhook_secret(&self, tenant: &str, provider: Provider) -> Lookup<Secret> {
        self.secret_within(tenant, provider, Duration::MAX).await
    }

    /// As [`Lookups::webhook_secret`], for a request that did not verify with the cached
    /// answer: asked of auth-token again unless that answer is under a second old.
    pub async fn recheck_webhook_secret(&self, tenant: &str, provider: Provider) -> Lookup<Secret> {
        self.secret_within(tenant, provider, RECHECK_AFTER).await
    }

    /// Drops the cached secret of `tenant` (it was just replaced through this gateway).
    pub fn forget_webhook_secret(&self, tenant: &str, provider: Provider) {
        self.secrets.forget(&Self::secret_key(tenant, provider));
    }

    fn secret_key(tenant: &str, provider: Provider) -> String {
        format!("{}:{tenant}", provider as i32)
    }

    async fn secret_within(&self, tenant: &str, provider: Provider, max_age: Duration) -> Lookup<Secret> {
        self.secrets
            .get(&Self::secret_key(tenant, provider), max_age, || async {
                let mut req = tonic::Request::new(GetWebhookSecretRequest {
                    tenant_id: tenant.to_owned(),
                    provider: provider as i32,
                });
                req.set_timeout(CALL_TIMEOUT);
                match self.client.clone().get_webhook_secret(req).await {
                    Ok(r) => Lookup::Found(Secret::new(r.into_inner().secret.as_bytes())),
                    Err(s) => classify(s),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_and_answers_expire() {
        let cache: Arc<Cache<String>> = Arc::new(Cache::new());
        let calls = Arc::new(AtomicU32::new(0));
        let fetch = |calls: Arc<AtomicU32>| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Lookup::Found("loja".to_owned())
        };
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move { cache.get("k", Duration::MAX, || fetch(calls)).await })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Lookup::Found(ref t) if t == "loja"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(FOUND_TTL + Duration::from_secs(1)).await;
        cache.get("k", Duration::MAX, || fetch(calls.clone())).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_answer_is_kept_for_a_second_only() {
        let cache: Cache<String> = Cache::new();
        let down = || async { Lookup::Unavailable { message: "down".into(), retry_after: None } };
        assert!(matches!(cache.get("k", Duration::MAX, down).await, Lookup::Unavailable { .. }));
        assert!(matches!(
            cache.get("k", Duration::MAX, || async { Lookup::Found("x".into()) }).await,
            Lookup::Unavailable { .. }
        ));
        tokio::time::advance(Duration::from_millis(1100)).await;
        assert!(matches!(
            cache.get("k", Duration::MAX, || async { Lookup::Found("x".into()) }).await,
            Lookup::Found(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_recheck_refetches_answers_over_its_age_and_forget_drops_them() {
        let cache: Cache<String> = Cache::new();
        let answer = |v: &'static str| move || async move { Lookup::Found(v.to_owned()) };
        assert!(matches!(cache.get("k", Duration::MAX, answer("old")).await, Lookup::Found(ref v) if v == "old"));
        // Under the age: the cached answer, without a call.
        let recheck = Duration::from_secs(1);
        assert!(matches!(cache.get("k", recheck, answer("new")).await, Lookup::Found(ref v) if v == "old"));
        tokio::time::advance(Duration::from_millis(1100)).await;
        assert!(matches!(cache.get("k", Duration::MAX, answer("new")).await, Lookup::Found(ref v) if v == "old"));
        assert!(matches!(cache.get("k", recheck, answer("new")).await, Lookup::Found(ref v) if v == "new"));
        cache.forget("k");
        assert!(matches!(cache.get("k", Duration::MAX, answer("newer")).await, Lookup::Found(ref v) if v == "newer"));
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new(b"hunter2")), "Secret(***)");
    }
}
