#!/usr/bin/env bash
# `make demo`: a local control plane with Release Passport's CRDs and the
# payment-api example applied, listed the way a user sees it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/install-deps.sh
bash hack/cluster-crds.sh
eval "$(bash e2e/cluster.sh env)"

echo "[demo] applying examples/ (the payment-api release from the sample passport)"
kubectl apply --server-side -f examples/

echo
echo "[demo] kubectl get releasepassport"
kubectl get releasepassport
echo
echo "[demo] the control plane keeps running; use it with:"
bash e2e/cluster.sh env
echo "[demo] stop it with: make cluster-down"
