#!/usr/bin/env bash
# `make demo`: the seed's payment-api release on a local control plane, decided
# by the real operator from real evidence:
#   - Kubernetes: the payment-api Deployment, read as the namespace's reader ServiceAccount;
#   - Prometheus: a local Prometheus server scraping a small exporter (2.7% errors
#     in production, 0.3% in staging);
#   - Argo CD: an Application resource (synced, with history);
#   - CI (ingest): incident and change-approval facts pushed into the gate.
# Production ends HOLD (error rate, rollback image, change approval), staging ALLOW.
# The CRDs and the operator's RBAC come from the Helm chart, and the operator
# runs with a token of the chart's ServiceAccount: exactly the rights an
# install gets.
#
#   hack/demo.sh         run it (idempotent; processes keep running)
#   hack/demo.sh stop    stop the operator, Prometheus and the exporter
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=env.sh
. hack/env.sh
cache=$rp_cache
dir=${RP_CLUSTER_DIR:-$cache/cluster}
run=$dir/demo
ns=payments
prom_port=${RP_DEMO_PROMETHEUS_PORT:-9090}
exporter_port=${RP_DEMO_EXPORTER_PORT:-9101}
bin=${CARGO_TARGET_DIR:-target}/debug/releasepassport

say() { printf '[demo] %s\n' "$*" >&2; }

stop() {
  for name in controller prometheus exporter; do
    if [ -f "$run/$name.pid" ]; then
      kill "$(cat "$run/$name.pid")" 2>/dev/null || true
      rm -f "$run/$name.pid"
    fi
  done
}

running() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

if [ "${1:-}" = "stop" ]; then
  stop
  say "stopped the operator, Prometheus and the exporter"
  exit 0
fi

bash hack/install-deps.sh prometheus
[ -x "$bin" ] || { say "building releasepassport"; cargo build --locked; }
bash e2e/cluster.sh up --quiet
eval "$(bash e2e/cluster.sh env)"
mkdir -p "$run"

say "installing the CRDs, the operator's ServiceAccount and RBAC, the persona roles and the admission policies from charts/release-passport"
helm=$(bash e2e/tools/tools.sh path helm)
kubectl create namespace release-passport-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply --server-side --force-conflicts -f charts/release-passport/crds/ >/dev/null
kubectl wait --for condition=Established --timeout=60s \
  $(for f in charts/release-passport/crds/*.yaml; do printf 'crd/%s.releasepassport.io ' "$(basename "$f" .yaml)"; done) >/dev/null
"$helm" template release-passport charts/release-passport --namespace release-passport-system \
  --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml \
  --show-only templates/personas.yaml --show-only templates/admission-policies.yaml |
  kubectl apply --server-side --force-conflicts -f - >/dev/null

# The metrics source and the Prometheus server scraping it.
if ! running exporter; then
  say "starting the demo exporter on 127.0.0.1:$exporter_port"
  setsid python3 hack/demo-exporter.py "$exporter_port" >"$run/exporter.log" 2>&1 </dev/null &
  echo $! >"$run/exporter.pid"
fi
if ! running prometheus; then
  say "starting Prometheus on 127.0.0.1:$prom_port"
  cat >"$run/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: payment-api
    static_configs: [{targets: ["127.0.0.1:$exporter_port"]}]
EOF
  setsid prometheus --config.file "$run/prometheus.yml" --storage.tsdb.path "$run/prometheus-data" \
    --web.listen-address "127.0.0.1:$prom_port" >"$run/prometheus.log" 2>&1 </dev/null &
  echo $! >"$run/prometheus.pid"
fi

# Argo CD's Application CRD and the payment-api Application.
kubectl apply -f e2e/crds/argocd-application-crd.yaml >/dev/null
kubectl wait --for condition=Established crd/applications.argoproj.io --timeout=60s >/dev/null
kubectl apply -f examples/demo/argocd.yaml >/dev/null

# The team namespace: reader ServiceAccount, the running Deployment, the
# release passport objects.
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n "$ns" -f config/rbac/namespace-reader.yaml >/dev/null
kubectl apply -n "$ns" -f examples/demo/workloads.yaml >/dev/null
# No kubelet runs here: report the Deployment ready, as its controller would.
generation=$(kubectl get -n "$ns" deployment/payment-api -o jsonpath='{.metadata.generation}')
kubectl patch -n "$ns" deployment/payment-api --subresource=status --type=merge -p "{\"status\":{\"observedGeneration\":$generation,\"replicas\":2,\"readyReplicas\":2,\"availableReplicas\":2,\"updatedReplicas\":2}}" >/dev/null
say "applying examples/ (the payment-api release of the sample passport) in namespace $ns"
kubectl apply -n "$ns" -f examples/policy.yaml -f examples/releasegate.yaml -f examples/demo/staging.yaml \
  -f examples/connectorscope-prometheus.yaml -f examples/connectorscope-kubernetes.yaml -f examples/connectorscope-argocd.yaml >/dev/null

# CI pushes what only it knows: no Sev-1 incident; the change approval is
# linked for staging but not (yet) for production.
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ingest() {
  printf '{"spec":{"evidence":[{"connector":"ingest","scope":{"source":"ci"},"freshness":{"observedAt":"%s","maxAgeSeconds":86400},"facts":[{"name":"active_sev1_incidents","value":0},{"name":"change_approval_linked","value":%s}]}]}}' "$now" "$1"
}
kubectl patch -n "$ns" releasegate/payment-api-production --type=merge -p "$(ingest false)" >/dev/null
kubectl patch -n "$ns" releasegate/payment-api-staging --type=merge -p "$(ingest true)" >/dev/null

say "waiting for Prometheus to have two scrapes of the exporter"
for _ in $(seq 1 60); do
  if curl -s "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode 'query=count_over_time(http_requests_total[1m])' | grep -q '"value":\[[0-9.]*,"[2-9]'; then
    break
  fi
  sleep 1
done

if ! running controller; then
  # The operator runs here, outside the cluster, as the chart's ServiceAccount.
  token=$(kubectl create token release-passport -n release-passport-system --duration 24h)
  ca=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  server=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
  cat >"$run/operator.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: release-passport, user: {token: "$token"}}]
contexts: [{name: local, context: {cluster: local, user: release-passport}}]
current-context: local
EOF
  chmod 600 "$run/operator.kubeconfig"
  say "starting the operator as system:serviceaccount:release-passport-system:release-passport (log: $run/controller.log)"
  setsid "$bin" controller --kubeconfig "$run/operator.kubeconfig" --generate-key --admin-addr 127.0.0.1:18080 \
    >"$run/controller.log" 2>&1 </dev/null &
  echo $! >"$run/controller.pid"
else
  # Re-evaluate now with fresh evidence (a spec change triggers a reconcile).
  kubectl annotate -n "$ns" releasegate --all releasepassport.io/demo-run="$now" --overwrite >/dev/null
fi

say "waiting for both decisions"
for _ in $(seq 1 120); do
  prod=$(kubectl get -n "$ns" releasegate/payment-api-production -o jsonpath='{.status.decision}')
  staging=$(kubectl get -n "$ns" releasegate/payment-api-staging -o jsonpath='{.status.decision}')
  [ "$prod" = "HOLD" ] && [ "$staging" = "ALLOW" ] && break
  sleep 1
done

echo
echo "\$ kubectl get releasegates,passports -n $ns"
kubectl get releasegates,passports -n "$ns"
echo
echo "\$ kubectl get connectorscopes -n $ns"
kubectl get connectorscopes -n "$ns"
echo
echo "\$ kubectl get releasegate payment-api-production -n $ns -o jsonpath='{.status.failingChecks}{\"\\n\"}{.status.nextActions}'"
kubectl get releasegate payment-api-production -n "$ns" -o jsonpath='{.status.failingChecks}{"\n"}{.status.nextActions}{"\n"}'
echo
if [ "$prod" != "HOLD" ] || [ "$staging" != "ALLOW" ]; then
  say "expected production HOLD and staging ALLOW, got '$prod' and '$staging' (operator log: $run/controller.log)"
  exit 1
fi
say "the operator, Prometheus and the exporter keep running; the cluster is at:"
bash e2e/cluster.sh env
say "stop everything with: make cluster-down"
