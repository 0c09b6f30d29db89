//! The malformed-input corpus: every gRPC method of the mesh (enumerated from the descriptors
//! ponte's protos are compiled with, so a new RPC is covered as soon as it exists) and every
//! HTTP route of the gateway get bytes that are not protobuf, empty messages, huge strings,
//! invalid UTF-8, bad, unknown and other tenants' ids, numbers out of range, wrong JSON, wrong
//! content types and oversize bodies. Each answer is one ponte designed for a caller's mistake:
//! a permanent gRPC status with a short message naming the field, or a 4xx problem body; never
//! INTERNAL, UNKNOWN, a retryable status or a 5xx, and every process keeps answering.

use std::{collections::HashMap, time::Duration};

use bytes::{Buf, BufMut, Bytes};
use ponte_core::{
    config::Env,
    identity::{INTERNAL, OPERATOR_ONLY},
    service::ServiceSpec,
};
use ponte_proto::v1::CreateTenantRequest;
use ponte_tests::{Mesh, api_tokens_file, webhooks};
use prost::Message;
use prost_types::{DescriptorProto, FieldDescriptorProto, field_descriptor_proto::Type};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

const SERVICE: &str = "svc-malformed-0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5";
const TENANT_A: &str = "ta-malformed-9f8e7d6c5b4a43928170f6e5d4c3b2a1";

fn all() -> Vec<&'static ServiceSpec> {
    vec![
        &ponte_auth_token::SPEC,
        &ponte_mapping::SPEC,
        &ponte_catalog_sync::SPEC,
        &ponte_sales_ingest::SPEC,
        &ponte_shipping_status::SPEC,
        &ponte_gateway::SPEC,
    ]
}

/// The mesh services serving a gRPC service, as their specs declare.
fn served_by(service: &str) -> Vec<&'static str> {
    let on: Vec<_> = all().into_iter().filter(|s| s.grpc_services.contains(&service)).map(|s| s.name).collect();
    assert!(!on.is_empty(), "no service of the mesh serves {service}");
    on
}

// ---------------------------------------------------------------------------------------------
// Raw gRPC: a pass-through codec sending and receiving bytes as they are.

#[derive(Clone, Default)]
struct Raw;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// Calls `path` with `body` as it is; the answer's status (OK for a message or a stream that
/// starts with one).
async fn call_raw(channel: &ponte_tests::Channel, path: &str, streaming: bool, body: Bytes) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("the service is ready");
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).expect("a method path");
    let answer = async {
        if streaming {
            let mut stream = grpc.server_streaming(tonic::Request::new(body), path, Raw).await?.into_inner();
            stream.message().await.map(drop)
        } else {
            grpc.unary(tonic::Request::new(body), path, Raw).await.map(drop)
        }
    };
    // A bound, not a measure: a call left hanging is a defect of its own.
    match tokio::time::timeout(Duration::from_secs(15), answer).await {
        Ok(Ok(())) => Status::ok(""),
        Ok(Err(s)) => s,
        Err(_) => Status::deadline_exceeded("the call did not end within 15 s"),
    }
}

// ---------------------------------------------------------------------------------------------
// Messages built from the descriptors.

struct Method {
    path: String,
    service: String,
    streaming: bool,
    input: String,
}

struct Protos {
    messages: HashMap<String, DescriptorProto>,
    methods: Vec<Method>,
}

fn protos() -> Protos {
    let set = prost_types::FileDescriptorSet::decode(ponte_proto::FILE_DESCRIPTOR_SET).expect("ponte's descriptors");
    fn collect(prefix: &str, list: &[DescriptorProto], out: &mut HashMap<String, DescriptorProto>) {
        for m in list {
            let name = format!("{prefix}.{}", m.name());
            collect(&name, &m.nested_type, out);
            out.insert(name, m.clone());
        }
    }
    let mut messages = HashMap::new();
    let mut methods = Vec::new();
    for f in &set.file {
        collect(&format!(".{}", f.package()), &f.message_type, &mut messages);
        for s in &f.service {
            for m in &s.method {
                methods.push(Method {
                    path: format!("/{}.{}/{}", f.package(), s.name(), m.name()),
                    service: format!("{}.{}", f.package(), s.name()),
                    streaming: m.server_streaming(),
                    input: m.input_type().to_owned(),
                });
            }
        }
    }
    // The acts that remove a tenant run last, so that every other method meets the tenants.
    methods.sort_by_key(|m| m.path.ends_with("/DeleteTenant") || m.path.ends_with("/EraseTenantData"));
    Protos { messages, methods }
}

fn key(out: &mut Vec<u8>, number: i32, wire: u64) {
    prost::encoding::encode_varint(((number as u64) << 3) | wire, out);
}

fn put_len(out: &mut Vec<u8>, number: i32, value: &[u8]) {
    key(out, number, 2);
    prost::encoding::encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

fn put_varint(out: &mut Vec<u8>, number: i32, value: u64) {
    key(out, number, 0);
    prost::encoding::encode_varint(value, out);
}

fn is_varint(t: Type) -> bool {
    matches!(t, Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Sint32 | Type::Sint64 | Type::Enum)
}

/// A field's value in one corpus case.
#[derive(Clone)]
enum Value {
    Bytes(Vec<u8>),
    Varint(u64),
}

/// Where a field sits: field numbers from the top, with each one's descriptor.
type Path = Vec<FieldDescriptorProto>;

/// Every field of `message` and of its message fields (one level down), by path.
fn fields(protos: &Protos, message: &str) -> Vec<Path> {
    let mut out = Vec::new();
    let Some(m) = protos.messages.get(message) else { return out };
    for f in &m.field {
        out.push(vec![f.clone()]);
        if f.r#type() == Type::Message
            && let Some(inner) = protos.messages.get(f.type_name())
        {
            for g in &inner.field {
                if g.r#type() != Type::Message {
                    out.push(vec![f.clone(), g.clone()]);
                }
            }
        }
    }
    out
}

/// A message setting each `(path, value)` (paths sharing their first field share its message).
fn encode(set: &[(Path, Value)]) -> Bytes {
    let mut top = Vec::new();
    let mut nested: Vec<(i32, Vec<u8>)> = Vec::new();
    for (path, value) in set {
        let (out, field) = match path.as_slice() {
            [f] => (&mut top, f),
            [parent, f] => {
                let i = match nested.iter().position(|(n, _)| *n == parent.number()) {
                    Some(i) => i,
                    None => {
                        nested.push((parent.number(), Vec::new()));
                        nested.len() - 1
                    }
                };
                (&mut nested[i].1, f)
            }
            _ => unreachable!("paths are one or two fields long"),
        };
        match value {
            Value::Bytes(b) => put_len(out, field.number(), b),
            Value::Varint(v) => put_varint(out, field.number(), *v),
        }
    }
    for (n, inner) in nested {
        put_len(&mut top, n, &inner);
    }
    Bytes::from(top)
}

fn name(path: &Path) -> String {
    path.iter().map(|f| f.name()).collect::<Vec<_>>().join(".")
}

/// Who sends a corpus case.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    /// The mesh's service token (every method).
    Service,
    /// loja-a's own token, whose answer must be this code.
    Tenant(Code),
}

/// The corpus for one method: `(case, who sends it, request)`.
fn cases(protos: &Protos, method: &Method) -> Vec<(String, Who, Bytes)> {
    use Who::Service;
    let mut out: Vec<(String, Who, Bytes)> = vec![
        ("bytes that are not protobuf".into(), Service, Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])),
        ("a truncated field".into(), Service, Bytes::from_static(&[0x0a, 0xff, 0x01, b'x'])),
        ("an unknown wire type".into(), Service, Bytes::from_static(&[0x0f, 0x00])),
        ("an empty message".into(), Service, Bytes::new()),
    ];
    let paths = fields(protos, &method.input);
    let tenant_paths: Vec<&Path> = paths
        .iter()
        .filter(|p| p.last().is_some_and(|f| f.name() == "tenant_id" && f.r#type() == Type::String))
        .collect();
    // The tenant every other field's case is made for: an existing one, so checks go past it.
    let base: Vec<(Path, Value)> =
        tenant_paths.iter().map(|p| ((*p).clone(), Value::Bytes(b"loja-a".to_vec()))).collect();
    let with = |path: &Path, value: Value| {
        let mut set: Vec<(Path, Value)> = base.iter().filter(|(p, _)| name(p) != name(path)).cloned().collect();
        set.push((path.clone(), value));
        encode(&set)
    };
    for path in &paths {
        let field = path.last().expect("a field");
        let n = name(path);
        match field.r#type() {
            Type::String | Type::Bytes => {
                out.push((format!("{n} of 20,000 chars"), Service, with(path, Value::Bytes(vec![b'a'; 20_000]))));
                out.push((format!("{n} not UTF-8"), Service, with(path, Value::Bytes(vec![b'x', 0xff, 0xfe]))));
                out.push((format!("{n} with a NUL"), Service, with(path, Value::Bytes(b"loja\0a".to_vec()))));
            }
            t if is_varint(t) => {
                out.push((format!("{n} = -1"), Service, with(path, Value::Varint(u64::MAX))));
                out.push((format!("{n} = i64::MAX"), Service, with(path, Value::Varint(i64::MAX as u64))));
                out.push((format!("{n} = 2^31"), Service, with(path, Value::Varint(1 << 31))));
                out.push((format!("{n} = 999"), Service, with(path, Value::Varint(999))));
            }
            Type::Bool => out.push((format!("{n} = 7"), Service, with(path, Value::Varint(7)))),
            Type::Message => {
                out.push((format!("{n} not protobuf"), Service, with(path, Value::Bytes(vec![0xff, 0xff, 0xff]))))
            }
            _ => {}
        }
    }
    for path in &tenant_paths {
        let n = name(path);
        for (what, value) in [
            ("invalid", "Loja A/../b"),
            ("upper case", "LOJA-A"),
            ("a tenant that does not exist", "nao-existe"),
            ("empty", ""),
        ] {
            out.push((format!("{n} {what}"), Service, with(path, Value::Bytes(value.as_bytes().to_vec()))));
        }
        // A message over the 4 MiB limit, for loja-a's own tenant.
        let mut big = vec![((*path).clone(), Value::Bytes(b"loja-a".to_vec()))];
        big.extend(
            paths
                .iter()
                .filter(|p| name(p) != n && p.last().is_some_and(|f| f.r#type() == Type::String))
                .take(1)
                .map(|p| (p.clone(), Value::Bytes(vec![b'a'; 5 << 20]))),
        );
        if big.len() == 2 {
            // A method a tenant may not call at all is refused before its body is read.
            let method_name = method.path.rsplit('/').next().unwrap_or_default();
            let refused = INTERNAL.contains(&method_name) || OPERATOR_ONLY.contains(&method_name);
            let code = if refused { Code::PermissionDenied } else { Code::OutOfRange };
            out.push((format!("{n} with a 5 MiB field, as its tenant"), Who::Tenant(code), encode(&big)));
            out.push((format!("{n} with a 5 MiB field"), Service, encode(&big)));
        }
        // Another tenant's id, under loja-a's own token.
        out.push((
            format!("{n} of another tenant"),
            Who::Tenant(Code::PermissionDenied),
            with(path, Value::Bytes(b"loja-b".to_vec())),
        ));
    }
    out
}

/// The codes ponte answers a caller's mistake with.
const DESIGNED: &[Code] = &[
    Code::Ok,
    Code::InvalidArgument,
    Code::NotFound,
    Code::FailedPrecondition,
    Code::PermissionDenied,
    Code::Unauthenticated,
    Code::AlreadyExists,
    Code::OutOfRange,
];

/// Whether `message` starts by naming a field (`tenant_id: …`, `filter.tenant_id: …`).
fn names_a_field(message: &str) -> bool {
    let named = message.split(": ").next().unwrap_or_default();
    message.contains(": ")
        && !named.is_empty()
        && named.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.[]".contains(&b))
}

/// What is wrong with `status` as the answer to a malformed request (empty: nothing).
fn defects(status: &Status) -> Vec<String> {
    let mut out = Vec::new();
    let message = status.message();
    if !DESIGNED.contains(&status.code()) {
        out.push(format!("answered {:?}", status.code()));
    }
    if ponte_core::error::retry_after(status).is_some() {
        out.push("asks for a retry".into());
    }
    if message.chars().count() >= 300 {
        out.push(format!("a message of {} chars", message.chars().count()));
    }
    if message.contains(&"a".repeat(40)) {
        out.push("quotes too much of the input".into());
    }
    if status.code() == Code::InvalidArgument && !names_a_field(message) {
        out.push("names no field".into());
    }
    out
}

#[tokio::test]
async fn every_grpc_method_answers_malformed_requests_as_designed() {
    let file = api_tokens_file(&[("mesh", SERVICE, "service"), ("loja-a", TENANT_A, "tenant:loja-a")]);
    let env = Env::default()
        .with("PONTE_API_TOKENS_FILE", &file)
        .with("PONTE_API_TOKEN", SERVICE)
        // No outside system is reached: a call that would is refused at once by a closed port.
        .with("PONTE_BLING_API_URL", "http://127.0.0.1:1")
        .with("PONTE_BLING_TOKEN_URL", "http://127.0.0.1:1/oauth/token")
        .with("PONTE_BITRIX24_TOKEN_URL", "http://127.0.0.1:1/oauth/token")
        .with("PONTE_CPLUG_API_URL", "http://127.0.0.1:1")
        .with("PONTE_ENVIOS360_API_URL", "http://127.0.0.1:1");
    let mesh = Mesh::start_with(&all(), &ponte_tests::redis_url(), env).await;
    let mut auth =
        ponte_proto::v1::auth_token_service_client::AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    for t in ["loja-a", "loja-b"] {
        auth.create_tenant(CreateTenantRequest { tenant_id: t.into(), display_name: t.into() }).await.unwrap();
    }
    let mut channels = HashMap::new();
    for spec in all() {
        let service = mesh.channel_as(spec.name, SERVICE).await;
        let tenant = mesh.channel_as(spec.name, TENANT_A).await;
        channels.insert(spec.name, (service, tenant));
    }

    let protos = protos();
    assert!(protos.methods.len() > 50, "{} methods: the descriptors were not read", protos.methods.len());
    let (mut calls, mut failures) = (0, Vec::new());
    for method in &protos.methods {
        let corpus = cases(&protos, method);
        for target in served_by(&method.service) {
            let (service, tenant) = &channels[target];
            for (case, who, body) in &corpus {
                let channel = if *who == Who::Service { service } else { tenant };
                let status = call_raw(channel, &method.path, method.streaming, body.clone()).await;
                calls += 1;
                let mut wrong = defects(&status);
                if let Who::Tenant(code) = *who
                    && status.code() != code
                {
                    wrong.push(format!("loja-a's token was answered {:?}, not {code:?}", status.code()));
                }
                if !wrong.is_empty() {
                    let shown: String = status.message().chars().take(200).collect();
                    failures.push(format!(
                        "{} on {target}, {case}: {} ({:?} {shown})",
                        method.path,
                        wrong.join(", "),
                        status.code()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} answers are not designed ones:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every service still answers.
    for spec in all() {
        let (service, _) = &channels[spec.name];
        let health = tonic_health::pb::health_client::HealthClient::new(service.clone())
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .unwrap_or_else(|s| panic!("{} after the corpus: {s:?}", spec.name));
        assert_eq!(health.into_inner().status, 1, "{} after the corpus is not serving", spec.name);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP: every route of the gateway.

/// One request of the HTTP corpus.
struct Req {
    what: String,
    method: reqwest::Method,
    path: String,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Signed with the sender's real key: stored (or a dead letter) with a 2xx is designed too.
    signed: bool,
}

impl Req {
    fn new(what: impl Into<String>, method: reqwest::Method, path: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            method,
            path: path.into(),
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            signed: false,
        }
    }

    fn post(what: impl Into<String>, path: impl Into<String>, content_type: &'static str, body: Vec<u8>) -> Self {
        Self { content_type: Some(content_type), body, ..Self::new(what, reqwest::Method::POST, path) }
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn signed(mut self) -> Self {
        self.signed = true;
        self
    }
}

/// Bodies no sender should send: `(what, body)`.
fn bad_bodies(genuine: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    use serde_json::json;
    let mut extra = genuine.clone();
    extra["unexpected"] = json!({"nested": [1, 2, 3]});
    let mut missing = genuine.clone();
    if let Some(o) = missing.as_object_mut() {
        let first = o.keys().next().cloned().unwrap_or_default();
        o.remove(&first);
    }
    let retyped: serde_json::Map<String, serde_json::Value> = genuine
        .as_object()
        .map(|o| {
            o.keys()
                .enumerate()
                .map(|(i, k)| (k.clone(), [json!(true), json!([1]), json!({"x": null}), json!(1.5)][i % 4].clone()))
                .collect()
        })
        .unwrap_or_default();
    let huge: serde_json::Map<String, serde_json::Value> = genuine
        .as_object()
        .map(|o| o.keys().map(|k| (k.clone(), json!("a".repeat(20_000)))).collect())
        .unwrap_or_default();
    let big_numbers =
        genuine.to_string().replace("\"V-1\"", "1e400").replace(":1}", ":123456789012345678901234567890}");
    vec![
        ("not JSON".into(), b"{not json".to_vec()),
        ("invalid UTF-8".into(), b"{\"eventId\": \"\xff\xfe\xfd\", \"event\": \"\xc3\x28\"}".to_vec()),
        ("100,000 nested arrays".into(), format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
        (
            "100,000 nested objects".into(),
            format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)).into_bytes(),
        ),
        ("an empty body".into(), Vec::new()),
        ("null".into(), b"null".to_vec()),
        ("an array".into(), b"[1, \"two\", null]".to_vec()),
        ("wrong types".into(), serde_json::Value::Object(retyped).to_string().into_bytes()),
        ("a missing field".into(), missing.to_string().into_bytes()),
        ("an extra field".into(), extra.to_string().into_bytes()),
        ("every field 20,000 chars".into(), serde_json::Value::Object(huge).to_string().into_bytes()),
        ("numbers out of range".into(), big_numbers.into_bytes()),
        ("a number of 5,000 digits".into(), format!("{{\"eventId\": {}}}", "9".repeat(5_000)).into_bytes()),
    ]
}

/// What is wrong with an HTTP answer to a malformed request (empty: nothing).
async fn http_defects(req: &Req, resp: reqwest::Response, stored: &mut i64) -> Vec<String> {
    let status = resp.status();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = resp.bytes().await.unwrap_or_default();
    let mut out = Vec::new();
    if status.is_server_error() {
        out.push(format!("answered {status}"));
    } else if status.is_success() {
        if !req.signed {
            out.push(format!("answered {status} to an unsigned request"));
        } else {
            let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match answer["status"].as_str() {
                Some("stored" | "dead_letter" | "ignored") => *stored += 1,
                Some("duplicate") => {}
                other => out.push(format!("answered {status} with status {other:?}")),
            }
        }
    } else if status.is_client_error() {
        // The OAuth callbacks answer a merchant's browser with a page.
        let page = req.path.starts_with("/oauth/") && req.method == reqwest::Method::GET;
        let designed =
            if page { content_type.starts_with("text/html") } else { content_type == "application/problem+json" };
        if !designed {
            out.push(format!("a {status} with content type '{content_type}'"));
        } else if !page {
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if problem["status"] != status.as_u16() || problem["detail"].as_str().is_none_or(str::is_empty) {
                out.push(format!("a {status} whose problem body is {}", String::from_utf8_lossy(&body)));
            }
        }
    } else {
        out.push(format!("answered {status}"));
    }
    if body.len() > 1024 && !status.is_success() {
        out.push(format!("an answer of {} bytes", body.len()));
    }
    if String::from_utf8_lossy(&body).contains(&"a".repeat(40)) {
        out.push("quotes too much of the input".into());
    }
    out
}

#[tokio::test]
async fn every_gateway_route_answers_malformed_requests_as_designed() {
    use serde_json::json;
    use webhooks::{BlingWorld, bling_body, date, sign};

    let cplug = ponte_sandbox::cplug::Cplug::new(ponte_sandbox::cplug::Config::default())
        .spawn(None)
        .await
        .expect("CPLUG sandbox");
    let env = Env::default().with("PONTE_CPLUG_API_URL", &cplug.base_url);
    let w = BlingWorld::start_with_env(&all(), ponte_sandbox::bling::Config::default(), &ponte_tests::redis_url(), env)
        .await;
    BlingWorld::connect_cplug(&w.mesh, &cplug).await;
    let mut auth =
        ponte_proto::v1::auth_token_service_client::AuthTokenServiceClient::new(w.mesh.channel("auth-token").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "outra".into(), display_name: "Outra".into() }).await.unwrap();
    let gw = w.mesh.start_gateway_http(w.mesh.env.clone()).await;
    let bling_secret = w.client_secret();
    let cplug_secret = cplug.cplug.config().webhook_secret.clone();

    let bling_genuine: serde_json::Value = serde_json::from_str(&bling_body(
        "corpus-1",
        "product.updated",
        &w.company_id(),
        &date(0),
        json!({"id": 1, "nome": "Copo"}),
    ))
    .unwrap();
    let cplug_genuine =
        json!({"event_id": "corpus-c1", "event": "sale.completed", "occurred_at": date(0), "sale": {"id": "V-1"}});
    let bitrix_genuine = "event=ONCRMPRODUCTUPDATE&data%5BFIELDS%5D%5BID%5D=1&ts=1&auth%5Bapplication_token%5D=x";

    let mut reqs = Vec::new();
    // The genuine events first: stored with a 2xx.
    let body = bling_genuine.to_string().into_bytes();
    reqs.push(
        Req::post("a genuine Bling event", "/webhooks/bling", "application/json", body.clone())
            .header("X-Bling-Signature-256", sign(&bling_secret, &body))
            .signed(),
    );
    let body = cplug_genuine.to_string().into_bytes();
    reqs.push(
        Req::post("a genuine CPLUG event", "/webhooks/cplug/loja", "application/json", body.clone())
            .header("X-Cplug-Signature", sign(&cplug_secret, &body))
            .signed(),
    );
    // Another tenant's path with this tenant's signature, and unknown or malformed tenants.
    let tenants = ["outra", "nao-existe", "LOJA", "%FF%FE", "a%00b", "..%2F..%2Fetc", &"a".repeat(20_000)];
    for tenant in tenants {
        let short: String = tenant.chars().take(12).collect();
        for (source, header) in [("cplug", "X-Cplug-Signature"), ("envios360", "X-360-Signature")] {
            reqs.push(
                Req::post(
                    format!("loja's {source} event on tenant {short}"),
                    format!("/webhooks/{source}/{tenant}"),
                    "application/json",
                    body.clone(),
                )
                .header(header, sign(&cplug_secret, &body)),
            );
        }
        reqs.push(Req::post(
            format!("a Bitrix24 event on tenant {short}"),
            format!("/webhooks/bitrix24/{tenant}"),
            "application/x-www-form-urlencoded",
            bitrix_genuine.as_bytes().to_vec(),
        ));
    }
    // Every bad body on every webhook route: signed with the sender's real key where there is
    // one (so the body itself is what is judged), and unsigned.
    let routes = [
        ("/webhooks/bling", "X-Bling-Signature-256", Some(&bling_secret), &bling_genuine),
        ("/webhooks/cplug/loja", "X-Cplug-Signature", Some(&cplug_secret), &cplug_genuine),
        ("/webhooks/envios360/loja", "X-360-Signature", None, &cplug_genuine),
    ];
    for (path, header, secret, genuine) in routes {
        for (what, body) in bad_bodies(genuine) {
            if let Some(secret) = secret {
                reqs.push(
                    Req::post(format!("{what}, signed"), path, "application/json", body.clone())
                        .header(header, sign(secret, &body))
                        .signed(),
                );
            }
            reqs.push(Req::post(format!("{what}, unsigned"), path, "application/json", body.clone()));
            reqs.push(
                Req::post(format!("{what}, a garbage signature"), path, "application/json", body.clone())
                    .header(header, format!("sha256={}", "zz".repeat(5_000))),
            );
        }
        let body = genuine.to_string().into_bytes();
        let sig = secret.map(|s| sign(s, &body)).unwrap_or_default();
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/jsonx",
            "application/json; charset=latin1",
        ] {
            reqs.push(
                Req::post(format!("content type {ct:?}"), path, ct, body.clone()).header(header, sig.clone()).signed(),
            );
        }
        let mut no_type = Req::new("no content type", reqwest::Method::POST, path).header(header, sig.clone());
        no_type.body = body.clone();
        reqs.push(no_type);
        let big = vec![b' '; ponte_gateway::MAX_BODY + 1];
        reqs.push(Req::post("an oversize body", path, "application/json", big.clone()).header(header, sign("x", &big)));
        for m in [reqwest::Method::GET, reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
            reqs.push(Req::new(format!("{m}"), m, path));
        }
    }
    // The Bitrix24 form routes: bad forms, bad types.
    for path in ["/webhooks/bitrix24/loja", "/install/bitrix24"] {
        let forms: Vec<(&str, Vec<u8>)> = vec![
            ("an empty form", Vec::new()),
            ("a form not UTF-8", b"event=\xff\xfe&auth%5Bapplication_token%5D=\xc3\x28".to_vec()),
            ("a form of bad escapes", b"event=%ZZ%&data%5B=%%%&=&&&=".to_vec()),
            ("a form of huge fields", format!("event={}&auth%5Bdomain%5D={}", "a".repeat(20_000), "a".repeat(20_000)).into_bytes()),
            ("a form of 100,000 brackets", format!("data{}=1", "%5B".repeat(100_000)).into_bytes()),
            (
                "an installation of bad values",
                b"event=ONAPPINSTALL&auth%5Bdomain%5D=..%2F..&auth%5Bmember_id%5D=%00&auth%5Bexpires_in%5D=-99999999999999999999&auth%5Bapplication_token%5D=".to_vec(),
            ),
            ("JSON", bling_genuine.to_string().into_bytes()),
        ];
        for (what, body) in forms {
            reqs.push(Req::post(what, path, "application/x-www-form-urlencoded", body.clone()));
            reqs.push(Req::post(format!("{what} as JSON"), path, "application/json", body));
        }
        let big = vec![b'a'; ponte_gateway::MAX_BODY + 1];
        reqs.push(Req::post("an oversize form", path, "application/x-www-form-urlencoded", big));
    }
    // The OAuth callbacks.
    let huge = "a".repeat(20_000);
    for provider in ["bling", "bitrix24", "nao-existe", "%FF%FE", huge.as_str()] {
        for query in [
            String::new(),
            "?code=x".into(),
            "?state=forged&code=x".into(),
            format!("?state={huge}&code={huge}"),
            "?state=%FF%FE&code=%C3%28".into(),
            "?error=access_denied&state=x".into(),
            "?state=x&state=y&code[]=1&domain=..%2F..&member_id=%00".into(),
        ] {
            let short: String = provider.chars().take(12).collect();
            let q: String = query.chars().take(40).collect();
            reqs.push(Req::new(
                format!("callback of {short} with {q}"),
                reqwest::Method::GET,
                format!("/oauth/{provider}/callback{query}"),
            ));
        }
        reqs.push(Req::post(
            "a POSTed callback",
            format!("/oauth/{provider}/callback"),
            "application/json",
            b"{}".to_vec(),
        ));
    }
    // Health, readiness, metrics with the wrong method; unknown and huge paths.
    for path in ["/healthz", "/readyz", "/metrics"] {
        reqs.push(Req::post("a POST", path, "application/json", b"[[[[".to_vec()));
        reqs.push(Req::new("a DELETE", reqwest::Method::DELETE, path));
    }
    reqs.push(Req::new("an unknown path", reqwest::Method::GET, "/nao/existe"));
    reqs.push(Req::new("a huge unknown path", reqwest::Method::GET, format!("/{huge}")));
    reqs.push(Req::new("an unknown path not UTF-8", reqwest::Method::GET, "/%FF%FE/x"));
    reqs.push(Req::post("a POST to an unknown path", format!("/webhooks/{huge}"), "application/json", b"{}".to_vec()));

    let http = reqwest::Client::new();
    let (mut stored, mut failures) = (0_i64, Vec::new());
    for req in &reqs {
        let mut r = http.request(req.method.clone(), gw.url(&req.path));
        if let Some(ct) = req.content_type {
            r = r.header("content-type", ct);
        }
        for (name, value) in &req.headers {
            r = r.header(*name, value.as_str());
        }
        if !req.body.is_empty() || req.method == reqwest::Method::POST {
            r = r.body(req.body.clone());
        }
        let path: String = req.path.chars().take(40).collect();
        match r.send().await {
            Ok(resp) => {
                let wrong = http_defects(req, resp, &mut stored).await;
                if !wrong.is_empty() {
                    failures.push(format!("{} {path}, {}: {}", req.method, req.what, wrong.join(", ")));
                }
            }
            // An oversize body may be cut off by the answer that refuses it.
            Err(e) if req.body.len() > ponte_gateway::MAX_BODY => {
                let _ = e;
            }
            Err(e) => failures.push(format!("{} {path}, {}: no answer ({e})", req.method, req.what)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} answers are not designed ones:\n{}",
        failures.len(),
        reqs.len(),
        failures.join("\n")
    );
    // What was answered as stored is stored; the gateway keeps answering.
    assert!(stored >= 2, "the genuine events were not stored");
    assert_eq!(ponte_tests::count(&gw.db, "SELECT COUNT(*) FROM inbox_events").await, stored);
    let health = http.get(gw.url("/healthz")).send().await.expect("the gateway answers after the corpus");
    assert_eq!(health.status().as_u16(), 200);
}

// ---------------------------------------------------------------------------------------------
// Another tenant's real resource ids, asked for with loja-a's own token and tenant.

const TENANT_B: &str = "tb-malformed-5a4b3c2d1e0f47a8b9c0d1e2f3a4b5c6";

/// A sale, a shipment, an inbox event and a backfill of loja-b (each a real row of its
/// tenant), each asked for by id with loja-a's token: NOT_FOUND where the request names
/// loja-a (the id is looked up in loja-a's data only), PERMISSION_DENIED where it names no
/// tenant; never loja-b's data, and loja-b's resources are left as they were.
#[tokio::test]
async fn another_tenant_s_real_resource_ids_are_not_found_or_denied() {
    use ponte_proto::v1::{
        CancelBackfillRequest, CancelSaleRequest, GetBackfillRequest, GetEventRequest, GetSaleRequest,
        GetShipmentRequest, IngestSaleRequest, MoveSaleRequest, Payment, ReplayParkedRequest, ReplayRequest, Sale,
        SaleItem, SaleState, WatchBackfillRequest, auth_token_service_client::AuthTokenServiceClient,
        catalog_sync_service_client::CatalogSyncServiceClient, inbox_service_client::InboxServiceClient,
        replay_request::Target, sales_ingest_service_client::SalesIngestServiceClient,
        shipping_status_service_client::ShippingStatusServiceClient,
    };

    let file = api_tokens_file(&[
        ("mesh", SERVICE, "service"),
        ("loja-a", TENANT_A, "tenant:loja-a"),
        ("loja-b", TENANT_B, "tenant:loja-b"),
    ]);
    let env = Env::default()
        .with("PONTE_API_TOKENS_FILE", &file)
        .with("PONTE_API_TOKEN", SERVICE)
        .with("PONTE_BLING_API_URL", "http://127.0.0.1:1")
        .with("PONTE_ENVIOS360_API_URL", "http://127.0.0.1:1");
    let mesh = Mesh::start_with(&all(), &ponte_tests::redis_url(), env).await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    for t in ["loja-a", "loja-b"] {
        auth.create_tenant(CreateTenantRequest { tenant_id: t.into(), display_name: t.into() }).await.unwrap();
    }

    // loja-b's resources: a sale through its own token (parked: its store has no map), the
    // others as their services store them.
    let sale = Sale {
        sale_id: "VB-1".into(),
        store_id: "loja-b-centro".into(),
        items: vec![SaleItem { sku: "B-1".into(), quantity: "1".into(), unit_price_cents: 990, ..Default::default() }],
        payments: vec![Payment { method: "PIX".into(), amount_cents: 990, installments: 1, ..Default::default() }],
        total_cents: 990,
        ..Default::default()
    };
    SalesIngestServiceClient::new(mesh.channel_as("sales-ingest", TENANT_B).await)
        .ingest_sale(IngestSaleRequest { tenant_id: "loja-b".into(), sale: Some(sale) })
        .await
        .unwrap();
    let b_order: i64 = 16_000_000_777;
    sqlx::query(
        "INSERT INTO shipments (tenant_id, bling_order_id, bling_numero, envios360_order_id, status, \
         bling_situacao_id, create_time, update_time) VALUES ('loja-b', $1, '777', 'o_b777', 'received', 15, 1, 1)",
    )
    .bind(b_order)
    .execute(mesh.db("shipping_status").await.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO inbox_events (event_id, source, source_event_id, tenant_id, event_type, entity_key, state, \
         dead_reason, payload, receive_time) VALUES ('ev-b-1', 'bling', 'ev-b-1', 'loja-b', 'order.created', \
         'ev-b-1', 'dead', 'test', $1, 1)",
    )
    .bind(b"{\"cliente\":\"Maria da loja-b\"}".to_vec())
    .execute(mesh.db("gateway").await.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO backfills (backfill_id, tenant_id, target, scope, state, pages_done, products, variations, \
         active, inactive, created, updated, unchanged, failed, failures, inflight_page, inflight, reason, \
         start_time, end_time, update_time) VALUES ('bf-b-1', 'loja-b', 'bitrix24', 'products', 'succeeded', \
         3, 250, 0, 250, 0, 250, 0, 0, 0, '[]', 0, '{}', '', 1, 2, 2)",
    )
    .execute(mesh.db("catalog_sync").await.pool())
    .await
    .unwrap();

    let leaks = |s: &Status| s.message().contains("loja-b") || s.message().contains("Maria");
    let not_found = |what: &str, r: Result<(), Status>| match r {
        Err(s) if s.code() == Code::NotFound && !leaks(&s) => None,
        other => Some(format!("{what}: {other:?}, not a NOT_FOUND naming nothing of loja-b")),
    };
    let denied = |what: &str, r: Result<(), Status>| match r {
        Err(s) if s.code() == Code::PermissionDenied && !leaks(&s) => None,
        other => Some(format!("{what}: {other:?}, not a PERMISSION_DENIED naming nothing of loja-b")),
    };
    let mut wrong: Vec<Option<String>> = Vec::new();

    let mut sales = SalesIngestServiceClient::new(mesh.channel_as("sales-ingest", TENANT_A).await);
    let a = || "loja-a".to_owned();
    wrong.push(not_found(
        "GetSale of loja-b's sale",
        sales.get_sale(GetSaleRequest { tenant_id: a(), sale_id: "VB-1".into() }).await.map(drop),
    ));
    wrong.push(not_found(
        "MoveSale of loja-b's sale",
        sales
            .move_sale(MoveSaleRequest { tenant_id: a(), sale_id: "VB-1".into(), to_store_id: "x".into() })
            .await
            .map(drop),
    ));
    let replayed = sales
        .replay_parked(ReplayParkedRequest { tenant_id: a(), sale_ids: vec!["VB-1".into()] })
        .await
        .unwrap()
        .into_inner()
        .records;
    if replayed.iter().any(|r| r.tenant_id != "loja-a") {
        wrong.push(Some(format!("ReplayParked of loja-b's sale answered loja-b's records: {replayed:?}")));
    }
    // A cancellation of an unknown sale is remembered for loja-a's own sale of that id, if it
    // ever comes (a cancellation may overtake its sale); loja-b's sale is not touched.
    let cancelled = sales
        .cancel_sale(CancelSaleRequest { tenant_id: a(), sale_id: "VB-1".into(), reason: "x".into() })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    if cancelled.tenant_id != "loja-a" || cancelled.sale.as_ref().is_some_and(|s| !s.items.is_empty()) {
        wrong.push(Some(format!("CancelSale of loja-b's sale answered loja-b's sale: {cancelled:?}")));
    }
    let b_sale = SalesIngestServiceClient::new(mesh.channel_as("sales-ingest", TENANT_B).await)
        .get_sale(GetSaleRequest { tenant_id: "loja-b".into(), sale_id: "VB-1".into() })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    if b_sale.state() != SaleState::Parked {
        wrong.push(Some(format!("loja-b's sale was changed through loja-a: {b_sale:?}")));
    }

    let mut shipping = ShippingStatusServiceClient::new(mesh.channel_as("shipping-status", TENANT_A).await);
    wrong.push(not_found(
        "GetShipment of loja-b's order",
        shipping.get_shipment(GetShipmentRequest { tenant_id: a(), bling_order_id: b_order }).await.map(drop),
    ));

    let mut inbox = InboxServiceClient::new(mesh.channel_as("gateway", TENANT_A).await);
    wrong.push(not_found(
        "GetEvent of loja-b's event",
        inbox.get_event(GetEventRequest { event_id: "ev-b-1".into() }).await.map(drop),
    ));
    wrong.push(not_found(
        "Replay of loja-b's event",
        inbox.replay(ReplayRequest { target: Some(Target::EventId("ev-b-1".into())) }).await.map(drop),
    ));
    let state: String = sqlx::query_scalar("SELECT state FROM inbox_events WHERE event_id = 'ev-b-1'")
        .fetch_one(mesh.db("gateway").await.pool())
        .await
        .unwrap();
    if state != "dead" {
        wrong.push(Some(format!("loja-b's event was replayed through loja-a: {state}")));
    }

    let mut catalog = CatalogSyncServiceClient::new(mesh.channel_as("catalog-sync", TENANT_A).await);
    wrong.push(denied(
        "GetBackfill of loja-b's backfill",
        catalog.get_backfill(GetBackfillRequest { backfill_id: "bf-b-1".into() }).await.map(drop),
    ));
    wrong.push(denied(
        "WatchBackfill of loja-b's backfill",
        catalog.watch_backfill(WatchBackfillRequest { backfill_id: "bf-b-1".into() }).await.map(drop),
    ));
    wrong.push(denied(
        "CancelBackfill of loja-b's backfill",
        catalog.cancel_backfill(CancelBackfillRequest { backfill_id: "bf-b-1".into() }).await.map(drop),
    ));

    let wrong: Vec<String> = wrong.into_iter().flatten().collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    mesh.shutdown().await;
}
