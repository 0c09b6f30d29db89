//! The Kubernetes overlays as a platform team applies them: each is rendered with kustomize,
//! and every Deployment and Job is checked against what its process reads at start
//! ([`ponte::config_check::start_reads`], the code's own reads): each variable read without a
//! default is set (literally, from the ConfigMap it mounts, or from a Secret), no `PONTE_*`
//! variable set for it is one ponte does not read (a misspelling), and the values set parse.
//! Also: every Deployment has an autoscaler that owns its replica count, and every
//! PodDisruptionBudget lets a node drain at the smallest replica count.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::Command,
};

use ponte::{
    ServiceName,
    config_check::{Process, start_reads},
};
use ponte_core::config::{Env, Need};
use serde::Deserialize;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Every object of `overlay`, as kustomize renders it.
fn render(overlay: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", &overlay.display().to_string()])
        .output()
        .expect("kubectl (the manifests are rendered with `kubectl kustomize`; see scripts/k8s-validate.sh)");
    assert!(out.status.success(), "rendering {}: {}", overlay.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).collect()
}

fn overlays() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join("k8s/overlays"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("kustomization.yaml").exists())
        .collect();
    found.sort();
    assert!(found.len() >= 2, "overlays: {found:?}");
    found
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// A stand-in a Secret would hold, valid for the variable it feeds.
fn secret_value(var: &str) -> String {
    match var {
        "DATABASE_URL" => "postgres://ponte:secret@db:5432/ponte".into(),
        "REDIS_URL" => "redis://redis:6379".into(),
        "PONTE_SEALING_KEYS" => ponte_core::crypto::generate_key_entry("k8s"),
        _ => "from-a-secret".into(),
    }
}

/// The environment of `container` in `objects`: its ConfigMaps, then its own entries.
fn container_env(objects: &[Value], container: &Value, what: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let name = from["configMapRef"]["name"].as_str().unwrap_or_else(|| panic!("{what}: envFrom {from}"));
        let cm =
            named(objects, "ConfigMap", name).unwrap_or_else(|| panic!("{what} mounts a missing ConfigMap {name}"));
        for (k, v) in cm["data"].as_object().into_iter().flatten() {
            env.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let var = e["name"].as_str().unwrap().to_owned();
        let value = if let Some(v) = e.get("value") {
            v.as_str().unwrap_or_default().to_owned()
        } else {
            let secret = &e["valueFrom"]["secretKeyRef"];
            assert!(secret["name"].is_string() && secret["key"].is_string(), "{what}: {var} is from {e}");
            secret_value(&var)
        };
        env.retain(|(k, _)| *k != var);
        env.push((var, value));
    }
    env
}

/// The process a container's arguments run.
fn process_of(args: &[String], what: &str) -> Process {
    match args {
        [serve, service] if serve == "serve" => {
            Process::Serve(<ServiceName as clap::ValueEnum>::from_str(service, false).unwrap_or_else(|e| {
                panic!("{what} runs an unknown service {service}: {e}");
            }))
        }
        [migrate] if migrate == "migrate" => Process::Migrate,
        other => panic!("{what} runs `ponte {}`, which the test does not know", other.join(" ")),
    }
}

#[tokio::test]
async fn every_variable_a_process_reads_at_start_is_set_in_every_overlay() {
    // Every PONTE_* variable any process reads, to tell a misspelt ConfigMap key.
    let mut read_anywhere: BTreeMap<String, Need> = BTreeMap::new();
    let mut ran = 0;
    let mut configmap_keys = Vec::new();
    for overlay in overlays() {
        let objects = render(&overlay);
        let oname = overlay.file_name().unwrap().to_string_lossy().into_owned();
        // The ConfigMaps a container takes its environment from (not, e.g., the dashboard's).
        let mounted: std::collections::BTreeSet<&str> = objects
            .iter()
            .flat_map(|o| o["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten())
            .flat_map(|c| c["envFrom"].as_array().into_iter().flatten())
            .filter_map(|f| f["configMapRef"]["name"].as_str())
            .collect();
        for o in objects
            .iter()
            .filter(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"].as_str().is_some_and(|n| mounted.contains(n)))
        {
            configmap_keys.extend(o["data"].as_object().into_iter().flatten().map(|(k, _)| (oname.clone(), k.clone())));
        }
        for o in objects.iter().filter(|o| o["kind"] == "Deployment" || o["kind"] == "Job") {
            let what = format!("{oname}: {} {}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap());
            for c in o["spec"]["template"]["spec"]["containers"].as_array().unwrap() {
                let args: Vec<String> =
                    c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
                let process = process_of(&args, &what);
                let env = container_env(&objects, c, &what);
                let reads = start_reads(process, Env::from_pairs(env.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: the process would not start: {e:#}"));
                let set: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                for (var, need) in &reads {
                    if *need == Need::Wanted {
                        assert!(
                            set.get(var.as_str()).is_some_and(|v| !v.trim().is_empty()),
                            "{what}: {var} is read without a default at start but the manifest does not set it"
                        );
                    }
                }
                for e in c["env"].as_array().into_iter().flatten() {
                    let var = e["name"].as_str().unwrap();
                    if var.starts_with("PONTE_") || var.starts_with("OTEL_") || var.ends_with("_URL") {
                        assert!(reads.contains_key(var), "{what} sets {var}, which `ponte {}` never reads", args[0]);
                    }
                }
                for (var, need) in reads {
                    let seen = read_anywhere.entry(var).or_insert(need);
                    *seen = (*seen).max(need);
                }
                ran += 1;
            }
        }
    }
    assert!(ran >= 13, "checked {ran} containers");
    for (overlay, key) in configmap_keys {
        assert!(read_anywhere.contains_key(&key), "{overlay}: the ConfigMap sets {key}, which no ponte process reads");
    }
}

#[test]
fn autoscalers_own_every_deployment_and_drains_are_never_blocked() {
    for overlay in overlays() {
        let objects = render(&overlay);
        let oname = overlay.file_name().unwrap().to_string_lossy().into_owned();
        let deployments: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Deployment").collect();
        assert_eq!(deployments.len(), 6, "{oname}");
        for d in deployments {
            let name = d["metadata"]["name"].as_str().unwrap();
            assert!(d["spec"].get("replicas").is_none(), "{oname}: {name} sets replicas, which its autoscaler owns");
            let hpa = objects
                .iter()
                .find(|o| o["kind"] == "HorizontalPodAutoscaler" && o["spec"]["scaleTargetRef"]["name"] == name)
                .unwrap_or_else(|| panic!("{oname}: no autoscaler for {name}"));
            let min = hpa["spec"]["minReplicas"].as_i64().unwrap();
            assert!(min >= 1 && hpa["spec"]["maxReplicas"].as_i64().unwrap() >= min, "{oname}: {hpa}");
            let labels = &d["spec"]["selector"]["matchLabels"];
            let pdb = objects
                .iter()
                .find(|o| o["kind"] == "PodDisruptionBudget" && o["spec"]["selector"]["matchLabels"] == *labels)
                .unwrap_or_else(|| panic!("{oname}: no PodDisruptionBudget for {name}"));
            // At the autoscaler's floor a drain must still be allowed to evict one pod.
            let allowed = match (&pdb["spec"]["maxUnavailable"], &pdb["spec"]["minAvailable"]) {
                (Value::Number(n), _) => n.as_i64().unwrap() >= 1,
                (Value::String(p), _) => p.trim_end_matches('%').parse::<u32>().unwrap() > 0,
                (_, Value::Number(n)) => n.as_i64().unwrap() < min,
                other => panic!("{oname}: {name}'s budget is {other:?}"),
            };
            assert!(allowed, "{oname}: {name}'s PodDisruptionBudget blocks every drain at {min} replicas");
        }
    }
}
