#!/usr/bin/env bash
# Renders every overlay with kustomize and checks the objects against the Kubernetes 1.30
# schemas offline (strict: a misspelt field fails).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install -q kubernetes-validate >/dev/null 2>&1 || pip install -q kubernetes-validate
fi
out=$(mktemp -d)
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" > "$out/$name.yaml"
  kubernetes-validate --quiet --strict -k 1.30.0 "$out/$name.yaml"
  echo "k8s: $name renders $(grep -c '^kind:' "$out/$name.yaml") objects, all valid"
done
