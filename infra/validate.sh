#!/usr/bin/env bash
# Validates the deployment files without needing a cluster or a docker engine, for each overlay
# (infra/k8s/overlays/prod, then dev):
#   1. `kubectl kustomize` builds the manifests (kustomize's own checks);
#   2. with a reachable cluster, `kubectl apply --dry-run=client` also validates
#      them against the cluster's API schemas (skipped, and said so, without one);
#   3. infra/check-manifests.ts checks the built objects, the Secret template and
#      docker-compose.yml for the fields and cross-references the runtime needs.
# Prints what it checked; exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

built=$(mktemp)
trap 'rm -f "$built"' EXIT

for overlay in prod dev; do
  dir="infra/k8s/overlays/$overlay"
  if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$dir" > "$built"
    echo "ok  kubectl kustomize $dir: $(grep -c '^kind:' "$built") objects built"
    # Only a configured context counts as a cluster: without one kubectl falls back
    # to localhost:8080, where the ingress may be listening.
    if kubectl config current-context >/dev/null 2>&1 &&
      kubectl version --request-timeout=5s 2>/dev/null | grep -q '^Server Version'; then
      kubectl apply --dry-run=client -f "$built" >/dev/null
      echo "ok  kubectl apply --dry-run=client ($overlay) against $(kubectl config current-context)"
    else
      echo "--  kubectl apply --dry-run: skipped (no cluster configured; client dry-run needs API discovery)"
    fi
    source_args=(--built "$built")
  else
    echo "--  kubectl not found: building $dir with the minimal built-in kustomize"
    source_args=(--kustomization infra/k8s/base)
  fi
  node --conditions=source --import tsx infra/check-manifests.ts "${source_args[@]}" --overlay "$overlay" \
    --secret infra/k8s/secret.example.yaml --compose docker-compose.yml | sed "s/^ok  kubernetes:/ok  kubernetes ($overlay):/"
done
