#!/usr/bin/env bash
# Starts the local control plane (if needed) and installs the CRDs in crds/,
# waiting until the apiserver serves them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash e2e/cluster.sh up --quiet
eval "$(bash e2e/cluster.sh env)"
echo "[cluster] installing CRDs from crds/" >&2
kubectl apply -f crds/ >/dev/null
kubectl wait --for condition=Established --timeout=60s \
  $(for f in crds/*.yaml; do printf 'crd/%s.releasepassport.io ' "$(basename "$f" .yaml)"; done) >/dev/null
bash e2e/cluster.sh env
