//! One trace spans a gRPC call from one ponte process to another: `ponte serve mapping` asks
//! `ponte serve auth-token` whether a tenant exists, and both export their spans over OTLP to
//! a collector this test runs.

use crate::support::{Collector, Killed, free_addr};
use std::{
    process::{Command, Stdio},
    time::Duration,
};

use ponte_proto::v1::{
    CreateTenantRequest, ListPaymentMethodMapsRequest, auth_token_service_client::AuthTokenServiceClient,
    mapping_service_client::MappingServiceClient,
};

#[tokio::test]
async fn one_trace_spans_a_call_between_two_ponte_processes() {
    let (collector, otlp) = Collector::start().await;

    let database_url = ponte_tests::fresh_database().await;
    let sealing_keys = ponte_core::crypto::generate_key_entry("test");
    let (auth_addr, mapping_addr) = (free_addr(), free_addr());
    let mapping_metrics = free_addr();
    let logs = std::env::temp_dir().join(format!("ponte-trace-{}.log", std::process::id()));
    let start = |service: &str, addr: std::net::SocketAddr, stdout: Stdio| {
        let metrics = if service == "mapping" { mapping_metrics } else { free_addr() };
        let child = Command::new(env!("CARGO_BIN_EXE_ponte"))
            .args(["serve", service])
            .env("DATABASE_URL", database_url.url())
            .env("REDIS_URL", ponte_tests::redis_url())
            .env("PONTE_REDIS_PREFIX", ponte_tests::unique_prefix())
            .env("PONTE_GRPC_ADDR", addr.to_string())
            .env("PONTE_METRICS_ADDR", metrics.to_string())
            .env("PONTE_AUTH_TOKEN_URL", format!("http://{auth_addr}"))
            .env("PONTE_SEALING_KEYS", &sealing_keys)
            .envs(crate::support::api_env())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("PONTE_LOG", "info")
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Killed::new(child)
    };
    let _auth = start("auth-token", auth_addr, Stdio::from(std::fs::File::create(&logs).unwrap()));
    let _mapping = start("mapping", mapping_addr, Stdio::null());

    let connect = |addr: std::net::SocketAddr| async move {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
        for _ in 0..100 {
            if let Ok(ch) = endpoint.connect().await {
                return crate::support::with_token(ch);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{addr} never accepted a connection");
    };
    let mut auth = AuthTokenServiceClient::new(connect(auth_addr).await);
    let mut mapping = MappingServiceClient::new(connect(mapping_addr).await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: String::new() }).await.unwrap();
    mapping.list_payment_method_maps(ListPaymentMethodMapsRequest { tenant_id: "loja".into() }).await.unwrap();

    // The mapping server span and, as its child in another process, the auth-token server span.
    let found = ponte_tests::eventually(Duration::from_secs(10), || {
        let collector = collector.clone();
        async move {
            let spans = collector.0.lock().await;
            let parent =
                spans.iter().find(|(svc, s)| svc == "ponte-mapping" && s.name.ends_with("ListPaymentMethodMaps"));
            let Some((_, parent)) = parent else { return false };
            spans.iter().any(|(svc, s)| {
                svc == "ponte-auth-token"
                    && s.name.ends_with("GetTenant")
                    && s.trace_id == parent.trace_id
                    && s.parent_span_id == parent.span_id
            })
        }
    })
    .await;
    let seen: Vec<String> = collector.0.lock().await.iter().map(|(svc, s)| format!("{svc}: {}", s.name)).collect();
    assert!(found, "no trace from mapping to auth-token; spans seen: {seen:?}");

    // auth-token's JSON log line for the tenant it created carries that call's trace id.
    let create_trace = collector
        .0
        .lock()
        .await
        .iter()
        .find(|(svc, s)| svc == "ponte-auth-token" && s.name.ends_with("CreateTenant"))
        .map(|(_, s)| s.trace_id.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .expect("CreateTenant span");
    let text = std::fs::read_to_string(&logs).unwrap();
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "tenant created")
        .unwrap_or_else(|| panic!("no 'tenant created' JSON line in: {text}"));
    assert_eq!(line["trace_id"], create_trace.as_str(), "{line}");
    assert_eq!(line["service"], "ponte-auth-token");
    let _ = std::fs::remove_file(logs);

    // The mapping process counts its calls by method and status code.
    let ghost = mapping.list_payment_method_maps(ListPaymentMethodMapsRequest { tenant_id: "ghost".into() }).await;
    assert_eq!(ghost.unwrap_err().code(), tonic::Code::NotFound);
    let text = reqwest::get(format!("http://{mapping_metrics}/metrics")).await.unwrap().text().await.unwrap();
    for want in [
        r#"ponte_grpc_server_requests_total{service="ponte.v1.MappingService",method="ListPaymentMethodMaps",code="OK"} 1"#,
        r#"ponte_grpc_server_requests_total{service="ponte.v1.MappingService",method="ListPaymentMethodMaps",code="NOT_FOUND"} 1"#,
        r#"ponte_grpc_server_latency_seconds_count{service="ponte.v1.MappingService",method="ListPaymentMethodMaps"} 2"#,
    ] {
        assert!(text.contains(want), "missing {want} in:\n{text}");
    }
}
