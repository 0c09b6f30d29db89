//! The operations tests' mesh of `ponte serve` processes ([`ponte_tests::procs`]) running this
//! package's `ponte` binary: auth-token, mapping, catalog-sync and the gateways against one
//! fresh database and the tests' Redis, with the sandboxes of Bling, Bitrix24 and CPLUG.

use ponte_tests::procs::MeshOptions;
pub use ponte_tests::procs::{Proc, ProcessMesh};

/// auth-token, mapping, catalog-sync and `gateways` gateways, with `extra` settings for every
/// process; tenant `loja` connected to Bling, the Bitrix24 portal and the CPLUG store.
pub async fn start(gateways: usize, extra: &[(&str, String)]) -> ProcessMesh {
    let mut opts = MeshOptions::new(env!("CARGO_BIN_EXE_ponte"), gateways);
    opts.extra = extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    ProcessMesh::start(opts).await
}

/// Starts `ponte serve <service>` with `env` and waits until it is ready.
pub async fn start_proc(service: &'static str, env: &[(String, String)]) -> Proc {
    let mut env = env.to_vec();
    env.extend(crate::support::api_env());
    Proc::start(std::path::Path::new(env!("CARGO_BIN_EXE_ponte")), service, &env).await
}

/// As [`start`], with every service: sales-ingest and shipping-status too.
pub async fn start_all(gateways: usize, extra: &[(&str, String)]) -> ProcessMesh {
    let mut opts = MeshOptions::new(env!("CARGO_BIN_EXE_ponte"), gateways);
    opts.services = ponte_tests::procs::ALL_SERVICES.to_vec();
    opts.extra = extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    ProcessMesh::start(opts).await
}
