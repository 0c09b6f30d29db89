//! `ponte tenants delete`: refused without a terminal to confirm on unless `--yes`, before
//! anything is asked of auth-token; with `--yes`, the tenant is offboarded across the mesh and
//! the audit record's counts are printed.

use std::process::Stdio;

use ponte_proto::v1::{CreateTenantRequest, GetTenantRequest, auth_token_service_client::AuthTokenServiceClient};
use ponte_tests::Mesh;

use crate::support::ponte;

#[test]
fn deleting_a_tenant_without_a_terminal_is_refused_unless_confirmed_with_yes() {
    // auth-token's address answers nothing: the refusal comes before any call.
    let out = ponte()
        .args(["tenants", "delete", "--tenant", "loja", "--auth-token-url", "http://127.0.0.1:1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to delete tenant 'loja'") && stderr.contains("--yes"), "{stderr}");
    assert!(!stderr.contains("cannot reach"), "{stderr}");
}

// The command runs as a child process the test waits for: the in-process services need threads
// of their own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_deletion_offboards_the_tenant_across_the_mesh() {
    let mesh = Mesh::start_with(
        &[
            &ponte_auth_token::SPEC,
            &ponte_mapping::SPEC,
            &ponte_catalog_sync::SPEC,
            &ponte_sales_ingest::SPEC,
            &ponte_shipping_status::SPEC,
            &ponte_gateway::SPEC,
        ],
        &ponte_tests::redis_url(),
        ponte_core::config::Env::from_pairs(crate::support::api_env()),
    )
    .await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: "Loja".into() }).await.unwrap();
    let url = format!("http://{}", mesh.addr("auth-token"));
    let out = tokio::task::spawn_blocking(move || {
        ponte()
            .args(["tenants", "delete", "--tenant", "loja", "--yes", "--by", "ops-ana", "--auth-token-url", &url])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("deleted tenant loja") && stdout.contains("by ops-ana"), "{stdout}");
    assert!(stdout.contains("auth_token.tenants"), "{stdout}");
    let gone = auth.get_tenant(GetTenantRequest { tenant_id: "loja".into() }).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    mesh.shutdown().await;
}

// As above, the command runs as a child process while the in-process auth-token serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_licence_is_switched_off_and_on_and_shown_in_the_list() {
    let mesh = Mesh::start_with(
        &[&ponte_auth_token::SPEC],
        &ponte_tests::redis_url(),
        ponte_core::config::Env::from_pairs(crate::support::api_env()),
    )
    .await;
    let mut auth = AuthTokenServiceClient::new(mesh.channel("auth-token").await);
    auth.create_tenant(CreateTenantRequest { tenant_id: "loja".into(), display_name: "Loja".into() }).await.unwrap();
    let url = format!("http://{}", mesh.addr("auth-token"));
    let run = move |args: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let out = ponte().args(args).args(["--auth-token-url", &url]).output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let (code, out, err) =
        run(&["tenants", "license", "--tenant", "loja", "--active", "false", "--reason", "fatura em atraso"])
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "tenant loja: licence inactive: fatura em atraso");
    let (_, out, _) = run(&["tenants", "list"]).await.unwrap();
    assert_eq!(out.trim(), "loja\tLoja\tinactive: fatura em atraso");
    let (code, out, err) =
        run(&["tenants", "license", "--tenant", "loja", "--active", "true", "--output", "json"]).await.unwrap();
    assert_eq!(code, Some(0), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((json["tenant_id"].as_str(), json["license_active"].as_bool()), (Some("loja"), Some(true)));
    let (code, _, err) = run(&["tenants", "license", "--tenant", "nenhuma", "--active", "false"]).await.unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("NotFound") && err.contains("nenhuma"), "{err}");
    let (code, _, err) = run(&["tenants", "license", "--tenant", "loja", "--active", "talvez"]).await.unwrap();
    assert_eq!(code, Some(2), "{err}");
    mesh.shutdown().await;
}
