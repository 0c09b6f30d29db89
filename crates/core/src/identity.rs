//! Who may call ponte's gRPC APIs: every caller presents a bearer token
//! (`authorization: Bearer <token>`), checked by one tower layer ([`IdentityLayer`]) that
//! [`crate::grpc::serve`] puts in front of every service, so no service can forget it.
//!
//! Tokens are listed in the file named by `PONTE_API_TOKENS_FILE` (YAML or JSON, a list of
//! `{name, token_sha256 | token, scope}`); only their SHA-256 digests are kept in memory, and a
//! presented token is compared with every digest in constant time. Scopes:
//!
//! - `service`: the mesh's own calls (services calling each other, the gateway's dispatcher);
//!   everything.
//! - `operator`: everything except the internal methods that hand out secrets or take events
//!   from the gateway ([`INTERNAL`]).
//! - `tenant:<tenant_id>`: only requests for that tenant; anything else is PERMISSION_DENIED.
//!
//! Health checks and reflection stay open. A missing or unknown token is UNAUTHENTICATED, and the
//! token itself never appears in an answer or a log line.
//!
//! The tenant check reads the request's `tenant_id` generically, from the descriptors ponte's
//! protos are compiled with: for each method, the input message's own `tenant_id` field or that
//! of one of its message fields (e.g. `filter.tenant_id`). Only the top level of the protobuf
//! wire format is walked (two levels for a nested filter), so there is no per-RPC code to keep in
//! step with the protos, and no dependency on a reflection library: a new RPC with a `tenant_id`
//! is covered as soon as it is compiled. The body is buffered only for tenant-scoped callers.
//! Methods addressing a resource by its own id (the inbox's `GetEvent`, `Replay` of one event)
//! carry no tenant; they are let through for a tenant caller with its [`Caller`] in the request
//! extensions, and the service answers NOT_FOUND for another tenant's resource.

use std::{
    collections::HashMap,
    future::Future,
    path::Path,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use prost::Message;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;

use crate::{config::ConfigError, ids::TenantId};

pub use crate::{
    bearer::BearerToken,
    config::{ENV_AUTH, ENV_TOKEN, ENV_TOKENS_FILE, tokens_file},
};

/// What a caller may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Service,
    Operator,
    Tenant(TenantId),
}

impl Scope {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "service" => Ok(Self::Service),
            "operator" => Ok(Self::Operator),
            _ => match raw.strip_prefix("tenant:") {
                Some(t) => TenantId::parse(t).map(Self::Tenant).map_err(|e| format!("tenant {e}")),
                None => Err("must be service, operator or tenant:<tenant_id>".into()),
            },
        }
    }
}

/// The caller of a request, put in its extensions by [`IdentityLayer`].
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

impl Caller {
    /// Whether the caller may see `tenant`'s data (absent: identity is disabled).
    pub fn may_see(caller: Option<&Caller>, tenant: &str) -> bool {
        match caller.map(|c| &c.scope) {
            Some(Scope::Tenant(t)) => t.as_str() == tenant,
            _ => true,
        }
    }
}

/// The largest request body a tenant's call may have (tonic's default message limit).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Methods only the mesh itself calls: they hand out secrets or take the gateway's events.
/// `EraseTenantData` is one step of `DeleteTenant`, which auth-token orchestrates and audits.
pub const INTERNAL: &[&str] = &["GetAccessToken", "GetWebhookSecret", "HandleEvent", "EraseTenantData"];

/// Methods an operator may call but a tenant's own token may not: a merchant's token cannot
/// erase the merchant (offboarding is an operator's act, recorded with who asked), nor switch its
/// own licence back on.
pub const OPERATOR_ONLY: &[&str] = &["DeleteTenant", "SetTenantLicense"];

/// Methods without a tenant field whose service checks the [`Caller`] itself.
const SELF_CHECKED: &[&str] = &["/ponte.v1.InboxService/GetEvent", "/ponte.v1.InboxService/Replay"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    token_sha256: Option<String>,
    #[serde(default)]
    token: Option<String>,
    scope: String,
}

/// The known tokens, by digest.
pub struct ApiTokens {
    entries: Vec<([u8; 32], Caller)>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokens").field("count", &self.entries.len()).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hex SHA-256 of a token, as `token_sha256` in a tokens file.
pub fn token_sha256(token: &str) -> String {
    hex::encode(digest(token))
}

/// A random token (256 bits, hex).
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl ApiTokens {
    /// Parses a tokens file's text (YAML, or JSON, which YAML reads too).
    pub fn parse(text: &str) -> Result<Self, String> {
        let list: Vec<Entry> = serde_yaml_ng::from_str(text).map_err(|e| format!("not a list of tokens: {e}"))?;
        let mut entries = Vec::with_capacity(list.len());
        for (i, e) in list.into_iter().enumerate() {
            let at = format!("entry {i} ({})", crate::error::quote(&e.name));
            let d = match (&e.token_sha256, &e.token) {
                (Some(h), None) => {
                    let raw = hex::decode(h.trim()).map_err(|_| format!("{at}: token_sha256 is not hex"))?;
                    <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| format!("{at}: token_sha256 is not 32 bytes"))?
                }
                (None, Some(t)) if !t.is_empty() => digest(t),
                _ => return Err(format!("{at}: give exactly one of token_sha256 or token")),
            };
            let scope = Scope::parse(&e.scope).map_err(|m| format!("{at}: scope {m}"))?;
            entries.push((d, Caller { name: e.name, scope }));
        }
        if entries.is_empty() {
            return Err("lists no token".into());
        }
        Ok(Self { entries })
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(ENV_TOKENS_FILE, format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|m| ConfigError::new(ENV_TOKENS_FILE, format!("{}: {m}", path.display())))
    }

    /// The caller presenting `token`; every digest is compared, in constant time.
    pub fn find(&self, token: &str) -> Option<&Caller> {
        let d = digest(token);
        let mut found = None;
        for (known, caller) in &self.entries {
            if bool::from(known.ct_eq(&d)) {
                found = Some(caller);
            }
        }
        found
    }
}

/// The server side: the known tokens, or `None` when checks are disabled (`PONTE_API_AUTH=disabled`).
#[derive(Clone, Debug)]
pub struct Identity(Option<Arc<ApiTokens>>);

impl Identity {
    pub fn disabled() -> Self {
        Self(None)
    }

    pub fn tokens(tokens: ApiTokens) -> Self {
        Self(Some(Arc::new(tokens)))
    }

    /// `PONTE_API_TOKENS_FILE` loaded, required unless `PONTE_API_AUTH=disabled`.
    pub fn from_env(env: &crate::Env) -> Result<Self, ConfigError> {
        Ok(match tokens_file(env)? {
            Some(path) => Self::tokens(ApiTokens::load(&path)?),
            None => Self::disabled(),
        })
    }
}

/// Where a method's tenant id sits in its request: field numbers from the top.
type TenantPath = Vec<u32>;

/// Every ponte method's tenant path (`None`: the request names no tenant).
fn tenant_paths() -> &'static HashMap<String, Option<TenantPath>> {
    static PATHS: OnceLock<HashMap<String, Option<TenantPath>>> = OnceLock::new();
    PATHS.get_or_init(|| {
        use prost_types::field_descriptor_proto::Type;
        let set =
            prost_types::FileDescriptorSet::decode(ponte_proto::FILE_DESCRIPTOR_SET).expect("ponte's descriptors");
        let mut messages = HashMap::new();
        fn collect<'a>(
            prefix: &str,
            list: &'a [prost_types::DescriptorProto],
            out: &mut HashMap<String, &'a prost_types::DescriptorProto>,
        ) {
            for m in list {
                let name = format!("{prefix}.{}", m.name());
                collect(&name, &m.nested_type, out);
                out.insert(name, m);
            }
        }
        for f in &set.file {
            collect(&format!(".{}", f.package()), &f.message_type, &mut messages);
        }
        let direct = |m: &prost_types::DescriptorProto| {
            m.field.iter().find(|f| f.name() == "tenant_id" && f.r#type() == Type::String).map(|f| f.number() as u32)
        };
        let mut paths = HashMap::new();
        for f in &set.file {
            for s in &f.service {
                for m in &s.method {
                    let path = format!("/{}.{}/{}", f.package(), s.name(), m.name());
                    let tenant = messages.get(m.input_type()).and_then(|input| {
                        direct(input).map(|n| vec![n]).or_else(|| {
                            input.field.iter().filter(|f| f.r#type() == Type::Message).find_map(|f| {
                                messages
                                    .get(f.type_name())
                                    .and_then(|inner| direct(inner))
                                    .map(|n| vec![f.number() as u32, n])
                            })
                        })
                    });
                    paths.insert(path, tenant);
                }
            }
        }
        paths
    })
}

/// Every value of the length-delimited field at `path` in protobuf `msg` (each occurrence, in
/// every element of a repeated parent: all must be the caller's tenant); `Err` when the bytes
/// are not protobuf.
fn fields_at(mut msg: &[u8], path: &[u32], found: &mut Vec<Bytes>) -> Result<(), ()> {
    let Some((&want, rest)) = path.split_first() else { return Ok(()) };
    while msg.has_remaining() {
        let key = prost::encoding::decode_varint(&mut msg).map_err(|_| ())?;
        let (number, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => {
                prost::encoding::decode_varint(&mut msg).map_err(|_| ())?;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if msg.len() < n {
                    return Err(());
                }
                msg.advance(n);
            }
            2 => {
                let len = prost::encoding::decode_varint(&mut msg).map_err(|_| ())? as usize;
                if msg.len() < len {
                    return Err(());
                }
                let value = &msg[..len];
                if number == want {
                    if rest.is_empty() {
                        found.push(Bytes::copy_from_slice(value));
                    } else {
                        fields_at(value, rest, found)?;
                    }
                }
                msg.advance(len);
            }
            _ => return Err(()),
        }
    }
    Ok(())
}

/// The tenant ids of a buffered gRPC request body (its first, uncompressed message).
fn tenants_of(body: &[u8], path: &[u32]) -> Result<Vec<String>, Status> {
    let bad = || Status::invalid_argument("request: not a gRPC message ponte can read");
    if body.len() < 5 || body[0] != 0 {
        return Err(bad());
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let msg = body.get(5..5 + len).ok_or_else(bad)?;
    let mut found = Vec::new();
    fields_at(msg, path, &mut found).map_err(|()| bad())?;
    found.into_iter().map(|v| String::from_utf8(v.to_vec()).map_err(|_| bad())).collect()
}

/// Who may call what, before the request reaches a service.
enum Verdict {
    Pass(Caller),
    /// A tenant caller: its request must be for its tenant (checked on the buffered body);
    /// `bool`: a request naming no tenant goes on to a service that checks the caller itself.
    Tenant(Caller, TenantPath, bool),
    /// A tenant caller on a method the service checks itself.
    SelfChecked(Caller),
    Refuse(Status),
}

fn judge(tokens: &ApiTokens, path: &str, authorization: Option<&[u8]>) -> Verdict {
    let token = authorization
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Verdict::Refuse(Status::unauthenticated(
            "no API token: send 'authorization: Bearer <token>' (see PONTE_API_TOKEN)",
        ));
    };
    let Some(caller) = tokens.find(token) else {
        return Verdict::Refuse(Status::unauthenticated("the API token is not known to this deployment"));
    };
    let method = path.rsplit('/').next().unwrap_or("");
    match &caller.scope {
        Scope::Service => Verdict::Pass(caller.clone()),
        _ if INTERNAL.contains(&method) => Verdict::Refuse(Status::permission_denied(format!(
            "{method} is internal to the mesh: '{}' may not call it",
            caller.name
        ))),
        Scope::Operator => Verdict::Pass(caller.clone()),
        Scope::Tenant(t) if OPERATOR_ONLY.contains(&method) => Verdict::Refuse(Status::permission_denied(format!(
            "{method} is an operator's act: a token for tenant '{t}' may not call it"
        ))),
        Scope::Tenant(t) => match tenant_paths().get(path) {
            Some(Some(p)) => Verdict::Tenant(caller.clone(), p.clone(), SELF_CHECKED.contains(&path)),
            _ if SELF_CHECKED.contains(&path) => Verdict::SelfChecked(caller.clone()),
            _ => Verdict::Refuse(Status::permission_denied(format!(
                "{method} is not scoped to a tenant: a token for tenant '{t}' may not call it"
            ))),
        },
    }
}

/// Checks every request's identity; see the module documentation.
#[derive(Clone, Debug)]
pub struct IdentityLayer(pub Identity);

impl<S> tower::Layer<S> for IdentityLayer {
    type Service = IdentityService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        IdentityService { inner, identity: self.0.clone() }
    }
}

#[derive(Clone, Debug)]
pub struct IdentityService<S> {
    inner: S,
    identity: Identity,
}

type Body = tonic::body::Body;

impl<S> tower::Service<http::Request<Body>> for IdentityService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let open = path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.");
        let Some(tokens) = self.identity.0.clone().filter(|_| !open) else {
            return Box::pin(self.inner.call(req));
        };
        let auth = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        let verdict = judge(&tokens, &path, auth);
        // The token is not needed past this point: the services never see it.
        req.headers_mut().remove(http::header::AUTHORIZATION);
        let refuse = |s: Status| -> Self::Future { Box::pin(async move { Ok(s.into_http()) }) };
        match verdict {
            Verdict::Refuse(s) => refuse(s),
            Verdict::Pass(caller) | Verdict::SelfChecked(caller) => {
                req.extensions_mut().insert(caller);
                Box::pin(self.inner.call(req))
            }
            Verdict::Tenant(caller, tenant_path, self_checked) => {
                let mut inner = self.inner.clone();
                std::mem::swap(&mut inner, &mut self.inner);
                Box::pin(async move {
                    let (mut parts, body) = req.into_parts();
                    // Bounded as tonic bounds a message it decodes (4 MiB).
                    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
                        Ok(c) => c.to_bytes(),
                        // As tonic answers a message over its limit: a caller's mistake, for good.
                        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                            return Ok(Status::out_of_range("request: over the 4 MiB a message may have").into_http());
                        }
                        Err(_) => return Ok(Status::cancelled("the request body ended early").into_http()),
                    };
                    let Scope::Tenant(own) = &caller.scope else { unreachable!("a tenant verdict") };
                    let asked = match tenants_of(&bytes, &tenant_path) {
                        Err(s) => return Ok(s.into_http()),
                        Ok(asked) => asked,
                    };
                    if let Some(other) = asked.iter().find(|t| *t != own.as_str()) {
                        let m =
                            format!("a token for tenant '{own}' may not act for tenant {}", crate::error::quote(other));
                        return Ok(Status::permission_denied(m).into_http());
                    }
                    if asked.is_empty() && !self_checked {
                        let m = format!("a token for tenant '{own}' must name it: set tenant_id to '{own}'");
                        return Ok(Status::permission_denied(m).into_http());
                    }
                    parts.extensions.insert(caller);
                    inner.call(http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes)))).await
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tenant_rpc_has_a_path() {
        let p = tenant_paths();
        assert_eq!(p["/ponte.v1.SalesIngestService/ListSales"], Some(vec![1]));
        assert_eq!(p["/ponte.v1.MappingService/Link"], Some(vec![1, 1]));
        assert_eq!(p["/ponte.v1.MappingService/BatchLink"], Some(vec![1, 1]));
        assert_eq!(p["/ponte.v1.InboxService/Replay"], Some(vec![2, 1]));
        assert_eq!(p["/ponte.v1.InboxService/ListDeadLetters"], Some(vec![1, 1]));
        assert_eq!(p["/ponte.v1.InboxService/GetEvent"], None);
    }

    #[test]
    fn reads_nested_tenant() {
        // filter { tenant_id: "a" } page_size: 3
        let msg = [0x0a, 0x03, 0x0a, 0x01, b'a', 0x10, 0x03];
        let mut body = vec![0, 0, 0, 0, msg.len() as u8];
        body.extend_from_slice(&msg);
        assert_eq!(tenants_of(&body, &[1, 1]).unwrap(), ["a"]);
        assert!(tenants_of(&body, &[2]).unwrap().is_empty());
        assert!(tenants_of(&[1, 2], &[1]).is_err());
        // links { tenant_id: "b" } links { tenant_id: "a" }: every element counts.
        let msg = [0x0a, 0x03, 0x0a, 0x01, b'b', 0x0a, 0x03, 0x0a, 0x01, b'a'];
        let mut body = vec![0, 0, 0, 0, msg.len() as u8];
        body.extend_from_slice(&msg);
        assert_eq!(tenants_of(&body, &[1, 1]).unwrap(), ["b", "a"]);
    }

    #[test]
    fn offboarding_is_an_operators_act_and_erasure_the_meshs() {
        let t = ApiTokens::parse(
            "- {name: ops, token: o, scope: operator}\n- {name: shop, token: t, scope: 'tenant:acme'}\n\
             - {name: mesh, token: m, scope: service}\n",
        )
        .unwrap();
        let denied = |token: &str, path: &str| match judge(&t, path, Some(format!("Bearer {token}").as_bytes())) {
            Verdict::Refuse(s) => s.code() == tonic::Code::PermissionDenied,
            _ => false,
        };
        let delete = "/ponte.v1.AuthTokenService/DeleteTenant";
        let erase = "/ponte.v1.TenantDataService/EraseTenantData";
        assert!(denied("t", delete), "a tenant's token deleted its tenant");
        assert!(!denied("o", delete));
        assert!(denied("o", erase) && denied("t", erase), "erasure outside DeleteTenant");
        assert!(!denied("m", erase));
    }

    #[test]
    fn tokens_file() {
        let t = ApiTokens::parse(&format!(
            "- {{name: a, token: s3cret, scope: operator}}\n- {{name: b, token_sha256: {}, scope: 'tenant:acme'}}\n",
            token_sha256("x")
        ))
        .unwrap();
        assert_eq!(t.find("s3cret").unwrap().scope, Scope::Operator);
        assert_eq!(t.find("x").unwrap().scope, Scope::Tenant(TenantId::parse("acme").unwrap()));
        assert!(t.find("nope").is_none());
        assert!(ApiTokens::parse("- {name: a, token: s, scope: admin}").unwrap_err().contains("scope"));
        assert!(format!("{t:?}").contains("count"));
    }
}
