//! One refresh however many callers and replicas, black-box: two `ponte serve auth-token`
//! processes on one PostgreSQL database and one Redis, a merchant connected to the Bling
//! sandbox, and fifty callers (ponte's own token cache, as every service uses it) split across
//! the two processes. When Bling's access token expires (the sandbox's clock moved past its six
//! hours), every caller is refused by Bling at once and reports it: Bling sees exactly one
//! refresh, never the rotated-out refresh token again, and every caller ends up with the same
//! new token, which Bling accepts.

use crate::ops_mesh::{self, Proc};
use std::{sync::Arc, time::Duration};

use ponte_connectors::{ConnectorError, bling::BlingApi};
use ponte_core::{
    TenantId,
    access::AccessTokens,
    ratelimit::{MemoryRateLimiter, Quota},
};
use ponte_proto::v1::Provider;
use ponte_sandbox::bling::{Bling, Config};
use tokio::sync::Barrier;

/// Callers per process.
const CALLERS: usize = 25;
/// How long Bling's access tokens live.
const SIX_HOURS: Duration = Duration::from_secs(6 * 3600);

/// One `ponte serve auth-token` process.
struct Replica(Proc);

impl Replica {
    /// Starts a replica sharing `env` (database, Redis and its prefix, keys, the Bling app) on
    /// ports of its own, and waits until it serves.
    async fn start(env: &[(&str, String)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .chain([("PONTE_LOG".to_owned(), "warn".to_owned())])
            .collect();
        Self(ops_mesh::start_proc("auth-token", &env).await)
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.grpc)
    }

    /// `GetAccessToken` calls this process answered OK, from its own `/metrics`.
    async fn tokens_handed_out(&self) -> u64 {
        let text = self.0.metrics(false).await;
        let series = r#"ponte_grpc_server_requests_total{service="ponte.v1.AuthTokenService",method="GetAccessToken",code="OK"} "#;
        text.lines().find_map(|l| l.strip_prefix(series)).map_or(0, |n| n.trim().parse().unwrap())
    }
}

#[tokio::test]
async fn two_processes_refresh_an_expired_token_once_for_fifty_concurrent_callers() {
    // Bling's real token lifetimes and token-endpoint limits; an API budget wide enough that
    // a hundred calls in a burst are not throttled.
    let bling = Bling::new(Config { per_second: 1000, ..Config::default() }).spawn(None).await.unwrap();
    let cfg = bling.bling.config().clone();
    let database = ponte_tests::fresh_database().await;
    let env = vec![
        ("DATABASE_URL", database.url().to_owned()),
        ("REDIS_URL", ponte_tests::redis_url()),
        ("PONTE_REDIS_PREFIX", ponte_tests::unique_prefix()),
        ("PONTE_SEALING_KEYS", ponte_core::crypto::generate_key_entry("test")),
        ("PONTE_BLING_CLIENT_ID", cfg.client_id.clone()),
        ("PONTE_BLING_CLIENT_SECRET", cfg.client_secret.clone()),
        ("PONTE_BLING_API_URL", bling.base_url.clone()),
        ("PONTE_BLING_AUTHORIZE_URL", format!("{}/oauth/authorize", bling.base_url)),
        ("PONTE_BLING_TOKEN_URL", format!("{}/oauth/token", bling.base_url)),
    ];
    let (a, b) = tokio::join!(Replica::start(&env), Replica::start(&env));

    // The merchant connects through the first process.
    let channel = tonic::transport::Endpoint::from_shared(a.url()).unwrap().connect().await.unwrap();
    ponte_tests::webhooks::create_tenant_with_bling(crate::support::with_token(channel), &bling).await;

    // Fifty callers, each with its own token cache, half on each process; each reads the
    // account with its token.
    let api = BlingApi::new(
        ponte_connectors::http::client(),
        &bling.base_url,
        Arc::new(MemoryRateLimiter::default()),
        Quota::per_second(1000.0, 1000),
    );
    let callers: Vec<AccessTokens> = (0..2 * CALLERS)
        .map(|i| {
            let replica = if i % 2 == 0 { &a } else { &b };
            let token = ponte_core::identity::BearerToken::new("caller", crate::support::API_TOKEN).unwrap();
            AccessTokens::new(ponte_core::grpc::channel("caller", &replica.url(), &token).unwrap())
        })
        .collect();
    let loja = TenantId::parse("loja").unwrap();
    let mut first = None;
    for tokens in &callers {
        let t = tokens.get(&loja, Provider::Bling).await.unwrap();
        api.dados_basicos(&t.account, t.secret()).await.unwrap();
        assert_eq!(*first.get_or_insert_with(|| t.secret().to_owned()), t.secret());
    }
    let old = first.unwrap();
    let before = bling.bling.stats();
    assert_eq!((before.refreshes, before.code_exchanges), (0, 1));

    // Six hours later Bling refuses the token; every caller finds out at once and reports it.
    bling.bling.advance(SIX_HOURS + Duration::from_secs(1));
    let barrier = Arc::new(Barrier::new(callers.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for tokens in callers {
        let (api, barrier, loja) = (api.clone(), barrier.clone(), loja.clone());
        tasks.spawn(async move {
            let stale = tokens.get(&loja, Provider::Bling).await.unwrap();
            let refused = api.dados_basicos(&stale.account, stale.secret()).await.unwrap_err();
            assert!(matches!(refused, ConnectorError::InvalidToken { .. }), "{refused:?}");
            barrier.wait().await;
            let fresh = tokens.refused(&loja, Provider::Bling, &stale).await.unwrap();
            api.dados_basicos(&fresh.account, fresh.secret()).await.unwrap();
            (stale.secret().to_owned(), fresh.secret().to_owned())
        });
    }
    let mut renewed = std::collections::HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let (stale, fresh) = done.unwrap();
        assert_eq!(stale, old);
        renewed.insert(fresh);
    }
    assert_eq!(renewed.len(), 1, "callers got different tokens: {renewed:?}");
    assert!(!renewed.contains(&old));

    let after = bling.bling.stats();
    assert_eq!(after.refreshes, 1, "exactly one refresh for both processes");
    assert_eq!(after.token_calls - before.token_calls, 1);
    assert_eq!(after.stale_refresh_tokens, 0, "the rotated-out refresh token was sent again");
    // Both processes took part: each handed out tokens to its half of the callers, twice.
    for (name, replica) in [("first", &a), ("second", &b)] {
        let served = replica.tokens_handed_out().await;
        assert!(served >= 2 * CALLERS as u64, "the {name} process answered {served} GetAccessToken calls");
    }
}
