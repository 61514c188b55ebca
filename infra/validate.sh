#!/usr/bin/env bash
# Validates the deployment files without a cluster: `kubectl kustomize` builds
# the manifests, then infra/check-manifests.ts checks every object against a
# schema of the fields this runtime relies on; docker-compose.yml is parsed too.
# With a cluster at hand, also run: kubectl apply --dry-run=server -k infra/k8s
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize infra/k8s > "$out"
else
  echo "kubectl not found: checking the raw manifests without kustomize"
  for f in infra/k8s/namespace.yaml infra/k8s/config.yaml infra/k8s/{ingress,orchestrator,model-proxy,tool-executor,memory}.yaml; do
    cat "$f"; echo "---"
  done > "$out"
fi
node --conditions=source --import tsx infra/check-manifests.ts "$out" docker-compose.yml
