//! What each process reads from the environment at start, found by starting it: the service is
//! built (configuration, clients, routes) against a recording [`Env`] and a throwaway SQLite
//! database, without listening or reaching PostgreSQL and Redis. `ponte check-config` prints it
//! for the running environment; the manifests' test checks every rendered Deployment and Job
//! against it, so the list of what a Deployment must set is the code's, never one kept by hand.

use std::collections::BTreeMap;

use ponte_core::{
    config::{Env, Need, ServeConfig},
    service::Shared,
    telemetry::{LogFormat, TelemetryConfig},
};

use crate::{ServiceName, run};

/// The process a Deployment or Job runs: `ponte serve <service>` or `ponte migrate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    Serve(ServiceName),
    Migrate,
}

/// Every variable `process` reads at start under `env`, with how it is needed. Fails as the
/// process would (naming the variable) when a value is malformed or a required one missing.
pub async fn start_reads(process: Process, env: Env) -> anyhow::Result<BTreeMap<String, Need>> {
    let env = env.recording();
    let name = match process {
        Process::Migrate => {
            run::MigrateConfig::from_env(&env)?;
            return Ok(env.reads());
        }
        Process::Serve(name) => name,
    };
    let spec = run::spec(name);
    TelemetryConfig::from_env(&env, &format!("ponte-{}", spec.name), LogFormat::Json)?;
    let cfg = ServeConfig::from_env(&env)?;
    let dir = tempfile::tempdir()?;
    let db = ponte_core::db::Database::sqlite_in(dir.path(), spec.schema).await?;
    let deps = Shared::memory().deps(db, cfg.peers, env.clone());
    if name == ServiceName::Gateway {
        let gateway = ponte_gateway::Gateway::new();
        gateway.routes(&deps)?;
        // Built and dropped at once: its inbox writers and dispatcher stop with it.
        drop(gateway.build(&deps, deps.readiness())?);
    } else {
        (spec.routes)(&deps)?;
    }
    Ok(env.reads())
}

/// `ponte check-config <service>`: each variable the service reads at start, whether it is set,
/// and an error when one read without a default is unset.
pub async fn check(name: ServiceName) -> anyhow::Result<()> {
    let env = Env::from_process();
    let reads = start_reads(Process::Serve(name), env.clone()).await?;
    let set: std::collections::HashSet<&str> = env.names().collect();
    let mut unset = Vec::new();
    for (var, need) in &reads {
        let state = match (set.contains(var.as_str()), need) {
            (true, _) => "set",
            (false, Need::Defaulted) => "unset (default)",
            (false, Need::Wanted) => {
                unset.push(var.as_str());
                "UNSET (read without a default)"
            }
        };
        println!("{var:<40} {state}");
    }
    if unset.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} read without a default but unset: {}", run::spec(name).name, unset.join(", "))
    }
}
