//! The shipped alerts and dashboard: the PrometheusRule's groups pass `promtool check rules`,
//! fire on the metric shapes ponte exports (`promtool test rules` with series as ponte writes
//! them), and every query of the rules and of the Grafana dashboard names a metric some ponte
//! process registers ([`ponte::metric_names`]) or a rule the file records.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("k8s/components/monitoring")
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian's prometheus package; scripts/k8s-validate.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {}: {text}", args.join(" "));
    text
}

/// The `ponte_*` metrics and `ponte:*` recorded series a PromQL expression names.
fn names_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("ponte").map(|a| a + i) {
        let starts_word = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = expr[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(expr.len(), |e| e + at);
        if starts_word && matches!(bytes.get(at + 5), Some(b'_' | b':')) {
            names.insert(expr[at..end].to_owned());
        }
        i = end.max(at + 1);
    }
    names
}

/// A metric a series name belongs to (`_total`, `_bucket`, `_sum`, `_count` are its samples').
fn family(series: &str) -> &str {
    ["_total", "_bucket", "_sum", "_count"].iter().find_map(|s| series.strip_suffix(s)).unwrap_or(series)
}

#[test]
fn the_alerts_pass_promtool_fire_on_ponte_series_and_name_only_what_ponte_exports() {
    let rule: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(monitoring().join("prometheusrule.yaml")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ponte.rules.yaml"), serde_yaml_ng::to_string(&rule["spec"]).unwrap()).unwrap();
    let checked = promtool(&["check", "rules", "ponte.rules.yaml"], dir.path());
    assert!(checked.contains("SUCCESS"), "{checked}");

    let exported: BTreeSet<String> = ponte::metric_names().into_iter().collect();
    let rules: Vec<&Value> =
        rule["spec"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    let recorded: BTreeSet<String> = rules.iter().filter_map(|r| r["record"].as_str().map(str::to_owned)).collect();
    let mut alerts = 0;
    for r in &rules {
        let expr = r["expr"].as_str().unwrap();
        let what = r["alert"].as_str().or(r["record"].as_str()).unwrap();
        let names = names_in(expr);
        assert!(!names.is_empty(), "{what} names no ponte metric: {expr}");
        for name in names {
            let known = if name.contains(':') { recorded.contains(&name) } else { exported.contains(family(&name)) };
            assert!(known, "{what} names {name}, which ponte does not export (exported: {exported:?})");
        }
        if r.get("alert").is_some() {
            alerts += 1;
            let runbook = r["annotations"]["runbook"].as_str().unwrap_or_else(|| panic!("{what} has no runbook"));
            let anchor = runbook.split_once('#').map(|(_, a)| a).unwrap();
            let doc = std::fs::read_to_string(monitoring().join("../../../docs/runbook.md")).unwrap();
            let heading = doc.lines().filter_map(|l| l.strip_prefix("## ")).any(|h| {
                h.to_lowercase()
                    .replace(' ', "-")
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '-')
                    .collect::<String>()
                    == anchor
            });
            assert!(heading, "{what}: docs/runbook.md has no section #{anchor}");
        }
    }
    assert!(alerts >= 6, "{alerts} alerts");

    // The alerts fire on series shaped as ponte writes them.
    let tests = r#"
rule_files: [ponte.rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ponte_inbox_oldest_pending_age_seconds{subscriber="catalog-sync", pod="gw-1"}'
        values: '0 300 660 720 780 840 900 960 1020 1080'
      - series: 'ponte_ratelimit_refused_total{budget="bling", reason="daily_exhausted"}'
        values: '0 0 1 2 3 4 5 6 7 8'
      - series: 'ponte_sync_latency_seconds_bucket{flow="bling_to_bitrix24_products", le="51.2"}'
        values: '0+1x80'
      - series: 'ponte_sync_latency_seconds_count{flow="bling_to_bitrix24_products"}'
        values: '0+10x80'
      - series: 'ponte_gateway_events_received_total{source="bling"}'
        values: '0+100x20'
      - series: 'ponte_gateway_events_rejected_total{source="bling", status="503"}'
        values: '0+50x20'
    alert_rule_test:
      - eval_time: 9m
        alertname: PonteInboxBacklog
        exp_alerts:
          - exp_labels: { severity: warning, subscriber: catalog-sync }
            exp_annotations:
              summary: "catalog-sync has events waiting for over 10 minutes"
              description: "The oldest delivery to catalog-sync is 18m 0s old."
              runbook: docs/runbook.md#inbox-backlog
      - eval_time: 5m
        alertname: PonteBlingBudgetExhausted
        exp_alerts:
          - exp_labels: { severity: critical, budget: bling }
            exp_annotations:
              summary: "An account's 120,000 daily Bling requests are spent"
              description: "Calls to Bling are refused until the day renews (midnight in Brasília); syncs wait in the inbox."
              runbook: docs/runbook.md#bling-budget-exhausted
      - eval_time: 70m
        alertname: PonteSyncLatencySLOFastBurn
        exp_alerts:
          - exp_labels: { severity: critical, flow: bling_to_bitrix24_products }
            exp_annotations:
              summary: "Syncs of bling_to_bitrix24_products are slow: the month's latency budget burns 14x too fast"
              description: "90% of bling_to_bitrix24_products syncs took over 51.2 s in the last hour (SLO: 1%)."
              runbook: docs/runbook.md#sync-latency-slo-burn
      - eval_time: 12m
        alertname: PonteWebhooksFailing
        exp_alerts:
          - exp_labels: { severity: critical, source: bling }
            exp_annotations:
              summary: "bling webhooks are answered 5xx (50%)"
              description: "The gateways cannot store bling webhooks; the sender retries, then may switch its webhooks off."
              runbook: docs/runbook.md#webhooks-failing
"#;
    std::fs::write(dir.path().join("ponte.tests.yaml"), tests).unwrap();
    promtool(&["test", "rules", "ponte.tests.yaml"], dir.path());

    // The dashboard's queries too.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(monitoring().join("grafana-dashboard.json")).unwrap()).unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            queries += 1;
            for name in names_in(expr) {
                let known =
                    if name.contains(':') { recorded.contains(&name) } else { exported.contains(family(&name)) };
                assert!(known, "the dashboard's '{}' names {name}, which ponte does not export", panel["title"]);
            }
        }
    }
    assert!(queries >= 15, "{queries} dashboard queries");
    let exemplars =
        dashboard["panels"].as_array().unwrap().iter().flat_map(|p| p["targets"].as_array().into_iter().flatten());
    assert!(exemplars.filter(|t| t["exemplar"] == true).count() >= 1, "no panel shows the sync latency's exemplars");
}
