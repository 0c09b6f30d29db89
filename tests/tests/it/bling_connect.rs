//! Connecting a merchant's Bling account and keeping it connected, against the Bling sandbox:
//! the code is exchanged exactly once, refresh tokens rotate and are never sent twice, one
//! refresh happens however many callers (and replicas) need a token, and a refused grant
//! stops the token calls.

use std::time::Duration;

use ponte_core::{config::Env, crypto::generate_key_entry};
use ponte_proto::v1::{
    CompleteAuthorizationRequest, ConnectionState, CreateTenantRequest, GetAccessTokenRequest, GetConnectionRequest,
    Provider, ResolveTenantRequest, StartAuthorizationRequest, auth_token_service_client::AuthTokenServiceClient,
};
use ponte_sandbox::bling::{Bling, Config, Handle};
use ponte_tests::Channel;
use ponte_tests::{Mesh, redis_url};
use sqlx::Row;
use tonic::Code;

struct World {
    bling: Handle,
    mesh: Mesh,
    auth: AuthTokenServiceClient<Channel>,
    env: Env,
}

fn env_for(bling: &Handle) -> Env {
    let cfg = bling.bling.config();
    Env::default()
        .with("PONTE_BLING_CLIENT_ID", &cfg.client_id)
        .with("PONTE_BLING_CLIENT_SECRET", &cfg.client_secret)
        .with("PONTE_BLING_API_URL", &bling.base_url)
        .with("PONTE_BLING_AUTHORIZE_URL", &format!("{}/oauth/authorize", bling.base_url))
        .with("PONTE_BLING_TOKEN_URL", &format!("{}/oauth/token", bling.base_url))
        .with("PONTE_SEALING_KEYS", &generate_key_entry("test"))
        .with("PONTE_TOKEN_REFRESH_MARGIN_SECONDS", "1")
}

/// Tokens live 4 s here, so a test sees them expire in real time, as auth-token does.
const TOKEN_TTL: Duration = Duration::from_secs(4);

async fn until_stale() {
    tokio::time::sleep(TOKEN_TTL - Duration::from_millis(700)).await;
}

async fn world() -> World {
    let bling = Bling::new(Config { access_ttl: TOKEN_TTL, ..Config::default() }).spawn(None).await.unwrap();
    let env = env_for(&bling);
    let mesh = Mesh::start_with(&[&ponte_auth_token::SPEC], &redis_url(), env.clone()).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: String::new() }).await.unwrap();
    World { bling, mesh, auth, env }
}

impl World {
    async fn start(&mut self) -> String {
        let r = self
            .auth
            .start_authorization(StartAuthorizationRequest {
                tenant_id: "loja".into(),
                provider: Provider::Bling as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        r.authorize_url
    }

    async fn complete(&mut self, code: &str, state: &str, error: &str) -> Result<ConnectionState, tonic::Status> {
        self.auth
            .complete_authorization(CompleteAuthorizationRequest {
                provider: Provider::Bling as i32,
                code: code.into(),
                state: state.into(),
                error: error.into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().connection.unwrap().state())
    }

    async fn connect(&mut self) {
        let url = self.start().await;
        let (code, state) = self.bling.authorize(&url).await.unwrap();
        assert_eq!(self.complete(&code, &state, "").await.unwrap(), ConnectionState::Connected);
    }

    async fn token(&mut self) -> Result<(String, i64), tonic::Status> {
        get_token(&mut self.auth, 0).await
    }

    async fn connection(&mut self) -> ponte_proto::v1::Connection {
        self.auth
            .get_connection(GetConnectionRequest { tenant_id: "loja".into(), provider: Provider::Bling as i32 })
            .await
            .unwrap()
            .into_inner()
            .connection
            .unwrap()
    }
}

async fn get_token(auth: &mut AuthTokenServiceClient<Channel>, rejected: i64) -> Result<(String, i64), tonic::Status> {
    auth.get_access_token(GetAccessTokenRequest {
        tenant_id: "loja".into(),
        provider: Provider::Bling as i32,
        rejected_token_version: rejected,
    })
    .await
    .map(|r| {
        let r = r.into_inner();
        (r.access_token, r.token_version)
    })
}

#[tokio::test]
async fn a_merchant_connects_and_the_account_resolves_to_the_tenant() {
    let mut w = world().await;
    w.connect().await;
    let c = w.connection().await;
    assert_eq!(c.external_account_id, w.bling.bling.config().company_id);
    let resolved = w
        .auth
        .resolve_tenant(ResolveTenantRequest {
            provider: Provider::Bling as i32,
            external_account_id: w.bling.bling.config().company_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.tenant_id, "loja");
    let (token, _) = w.token().await.unwrap();
    assert!(!token.is_empty());
    // Neither token is stored in plaintext.
    let db = w.mesh.db("auth_token").await;
    let row = sqlx::query("SELECT access_token, refresh_token FROM connections").fetch_one(db.pool()).await.unwrap();
    let (a, r): (String, String) = (row.get(0), row.get(1));
    assert!(a.starts_with("v1.") && r.starts_with("v1.") && !a.contains(&token));
    assert_eq!(w.bling.bling.stats().code_exchanges, 1);
}

#[tokio::test]
async fn denial_bad_and_reused_states_and_reused_codes_end_clearly() {
    let mut w = world().await;
    // Denied: Bling redirects with error=access_denied.
    let url = w.start().await;
    let state = url::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    w.bling.bling.deny_next_authorization();
    assert_eq!(w.bling.authorize(&url).await.unwrap_err(), "access_denied");
    let denied = w.complete("", &state, "access_denied").await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let unknown = w.complete("whatever", "forged-state", "").await.unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert!(unknown.message().contains("unknown"), "{}", unknown.message());

    let url = w.start().await;
    let (code, state) = w.bling.authorize(&url).await.unwrap();
    w.complete(&code, &state, "").await.unwrap();
    let reused_state = w.complete(&code, &state, "").await.unwrap_err();
    assert_eq!(reused_state.code(), Code::FailedPrecondition);
    assert!(reused_state.message().contains("already used"), "{}", reused_state.message());
    assert_eq!(w.bling.bling.stats().code_exchanges, 1, "a reused state never reaches Bling");

    // The same code with a fresh state: Bling refuses it (and revokes the grant); ponte says so.
    let url = w.start().await;
    let state2 = url::Url::parse(&url).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let reused_code = w.complete(&code, &state2, "").await.unwrap_err();
    assert_eq!(reused_code.code(), Code::FailedPrecondition);
    assert!(reused_code.message().contains("start the connection again"), "{}", reused_code.message());
}

#[tokio::test]
async fn an_expired_code_is_refused_and_never_retried() {
    let mut w = world().await;
    let url = w.start().await;
    let (code, state) = w.bling.authorize(&url).await.unwrap();
    w.bling.bling.advance(Duration::from_secs(61));
    let err = w.complete(&code, &state, "").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(w.bling.bling.stats().code_exchanges, 1);
}

#[tokio::test]
async fn expiry_triggers_one_refresh_across_many_callers_and_two_replicas() {
    let mut w = world().await;
    w.connect().await;
    let (before, v1) = w.token().await.unwrap();
    let replica = w.mesh.replica(&[&ponte_auth_token::SPEC], w.env.clone()).await;
    let other = AuthTokenServiceClient::new(replica.channel("auth-token").await);

    until_stale().await;
    let calls = (0..40).map(|i| {
        let mut c = if i % 2 == 0 { w.auth.clone() } else { other.clone() };
        async move { get_token(&mut c, 0).await }
    });
    let results = futures::future::join_all(calls).await;
    let tokens: std::collections::HashSet<String> = results.into_iter().map(|r| r.unwrap().0).collect();
    assert_eq!(tokens.len(), 1, "every caller got the same renewed token");
    assert!(!tokens.contains(&before));
    let stats = w.bling.bling.stats();
    assert_eq!(stats.refreshes, 1, "exactly one refresh");
    assert_eq!(stats.stale_refresh_tokens, 0, "a rotated-out refresh token was sent");
    let (_, v2) = w.token().await.unwrap();
    assert!(v2 > v1);

    // A caller whose token Bling refused gets one forced refresh; a second report of the same
    // version does not refresh again.
    let (_, v3) = get_token(&mut w.auth.clone(), v2).await.unwrap();
    assert!(v3 > v2);
    let (_, v4) = get_token(&mut w.auth.clone(), v2).await.unwrap();
    assert_eq!(v4, v3);
    assert_eq!(w.bling.bling.stats().refreshes, 2);
    replica.shutdown().await;
}

#[tokio::test]
async fn a_refused_grant_marks_the_connection_and_stops_token_calls() {
    let mut w = world().await;
    w.connect().await;
    w.bling.bling.revoke_all();
    until_stale().await;
    let err = w.token().await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let c = w.connection().await;
    assert_eq!(c.state(), ConnectionState::NeedsReauthorization);
    assert!(c.reason.contains("connect again"), "{}", c.reason);
    let calls = w.bling.bling.stats().token_calls;
    for _ in 0..5 {
        assert_eq!(w.token().await.unwrap_err().code(), Code::FailedPrecondition);
    }
    assert_eq!(w.bling.bling.stats().token_calls, calls, "no token calls after the grant was refused");
    // Connecting again restores it.
    w.connect().await;
    assert!(w.token().await.is_ok());
}
