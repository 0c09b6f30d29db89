#!/usr/bin/env bash
# Checks the Kubernetes manifests offline, as CI does:
#   1. renders every overlay with kustomize;
#   2. validates every object strictly against the Kubernetes 1.30 schemas (kubernetes-validate
#      --strict: a misspelt field fails); the Prometheus Operator's ServiceMonitor and
#      PrometheusRule, which those schemas do not know, against the operator's own models
#      (@kubernetes-models/prometheus-operator);
#   3. lints them with checkov's Kubernetes policies (security and reliability), minus the few
#      skipped below with their reason;
#   4. checks the alerting rules with promtool (Debian's `prometheus` package).
# Missing tools are installed (pip, npm into a cache folder, apt). Whether every variable a
# service reads is set for it is a cargo test (cli/tests/it/ops_manifests.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${PONTE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ponte-tools}"
mkdir -p "$TOOLS"
pip_install() { python3 -m pip install -q "$@" >/dev/null 2>&1 || pip install -q "$@"; }
command -v kubernetes-validate >/dev/null 2>&1 || pip_install kubernetes-validate
command -v checkov >/dev/null 2>&1 || pip_install checkov
if [ ! -d "$TOOLS/node/node_modules/@kubernetes-models/prometheus-operator" ]; then
  mkdir -p "$TOOLS/node"
  (cd "$TOOLS/node" && npm install --silent --no-audit --no-fund --no-save \
    @kubernetes-models/prometheus-operator@6.0.0 js-yaml@4.1.0 >/dev/null)
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "k8s: installing promtool (Debian's prometheus package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# checkov policies that do not fit, and why:
#   CKV_K8S_43 image by digest: the overlay's `images:` pins a release tag; a platform that
#              pins digests sets `digest:` there.
#   CKV_K8S_15 imagePullPolicy Always: release tags are immutable, so IfNotPresent spares a
#              registry round trip on every start.
#   CKV_K8S_35 secrets as files: ponte reads all of its configuration from the environment
#              (validated at start, never logged).
CHECKOV_SKIP="CKV_K8S_43,CKV_K8S_15,CKV_K8S_35"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat > "$out/crds.mjs" <<'JS'
import yaml from 'js-yaml';
import fs from 'node:fs';
import { ServiceMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
const kinds = { ServiceMonitor, PrometheusRule };
let n = 0;
for (const doc of yaml.loadAll(fs.readFileSync(process.argv[2], 'utf8'))) {
  if (!doc || !kinds[doc.kind]) continue;
  try { new kinds[doc.kind](doc).validate(); n++; }
  catch (e) { console.error(`${doc.kind}/${doc.metadata?.name}: ${e.message}`); process.exitCode = 1; }
  if (doc.kind === 'PrometheusRule') {
    fs.writeFileSync(`${process.argv[3]}-${doc.metadata.name}.rules.yaml`, yaml.dump(doc.spec));
  }
}
console.log(n);
JS
cp "$out/crds.mjs" "$TOOLS/node/crds.mjs"

for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  file="$out/$name.yaml"
  kubectl kustomize "$overlay" > "$file"
  # kubernetes-validate only warns about kinds it has no schema for: any kind other than the
  # operator's two must be known.
  report=$(kubernetes-validate --strict -k 1.30.0 "$file" 2>&1) || { echo "$report" >&2; exit 1; }
  if echo "$report" | grep "Couldn't find schema" | grep -vE "kind (ServiceMonitor|PrometheusRule) with api version monitoring.coreos.com/v1" >&2; then
    echo "k8s: $name has objects of unknown kinds" >&2
    exit 1
  fi
  crds=$(node "$TOOLS/node/crds.mjs" "$file" "$out/$name")
  checkov -f "$file" --framework kubernetes --skip-check "$CHECKOV_SKIP" --skip-download --quiet --compact \
    > "$out/$name.checkov" 2>/dev/null || { cat "$out/$name.checkov" >&2; echo "k8s: $name fails checkov" >&2; exit 1; }
  rules=0
  for r in "$out/$name"-*.rules.yaml; do
    [ -e "$r" ] || continue
    promtool check rules "$r" > "$out/promtool.log" 2>&1 || { cat "$out/promtool.log" >&2; exit 1; }
    rules=$((rules + $(sed -n "s/.*SUCCESS: \([0-9]*\) rules found.*/\1/p" "$out/promtool.log")))
  done
  echo "k8s: $name renders $(grep -c '^kind:' "$file") objects, all valid ($crds operator objects); checkov clean; $rules rules pass promtool"
done
