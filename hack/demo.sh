#!/usr/bin/env bash
# `make demo`: the seed's payment-api release on the one-node cluster, gated
# by the operator as a platform engineer installs it (its image, its Helm
# chart, the webhook in enforce mode), from real evidence:
#   - Kubernetes: the payment-api Deployment's real Pods (test workload
#     image, release v2.17.9), read as the namespace's reader ServiceAccount;
#   - Prometheus: a local Prometheus server scraping those Pods' /metrics
#     (their addresses listed from the apiserver every 2 seconds);
#   - Argo CD: an Application resource (synced, with history);
#   - CI (ingest): incident and change-approval facts pushed into the gate.
# Production is held (no rollback image attached, change approval not
# linked) and `kubectl set image` is denied; CI attaches both, the gate
# allows v2.18.4, and the rollout happens for real.
#
#   hack/demo.sh         run it (idempotent; the cluster and Prometheus keep running)
#   hack/demo.sh stop    stop Prometheus and its target list (make cluster-down stops the rest)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=env.sh
. hack/env.sh
cache=$rp_cache
dir=${RP_CLUSTER_DIR:-$cache/cluster}
run=$dir/demo
ns=payments
release_ns=release-passport-system
prom_port=${RP_DEMO_PROMETHEUS_PORT:-9090}

say() { printf '[demo] %s\n' "$*" >&2; }
show() { printf '\n$ %s\n' "$*"; "$@"; }

running() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

if [ "${1:-}" = "stop" ]; then
  for name in prometheus discovery; do
    if running "$name"; then kill "$(cat "$run/$name.pid")" 2>/dev/null || true; fi
    rm -f "$run/$name.pid"
  done
  say "stopped Prometheus and its target discovery"
  exit 0
fi

bash hack/install-deps.sh prometheus node
bash e2e/cluster.sh up --quiet
eval "$(bash e2e/cluster.sh env)"
env_json=$(bash e2e/cluster.sh env --json)
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$env_json" "$1"; }
host_ip=$(field hostIP)
mkdir -p "$run"

say "building the operator image (static binary, the Dockerfile's runtime layout) and loading it into the node"
archive=$(bash e2e/image.sh operator)
bash e2e/image.sh load "$(field containerdSocket)" "$archive"
operator=$(bash e2e/image.sh ref operator)
v1=$(bash e2e/image.sh ref workload-v1)
v2=$(bash e2e/image.sh ref workload-v2)

say "helm install release-passport charts/release-passport (2 replicas, webhook on, console on)"
helm=$(bash e2e/tools/tools.sh path helm)
"$helm" upgrade --install release-passport charts/release-passport --namespace "$release_ns" --create-namespace \
  --set image.repository="${operator%@*}" --set image.digest="${operator#*@}" \
  --set webhook.enabled=true --set webhook.certificate.mode=helm \
  --set controller.resyncSeconds=30 --wait --timeout 5m >/dev/null

# Argo CD's Application CRD and the payment-api Application.
kubectl apply -f e2e/crds/argocd-application-crd.yaml >/dev/null
kubectl wait --for condition=Established crd/applications.argoproj.io --timeout=60s >/dev/null
kubectl apply -f examples/demo/argocd.yaml >/dev/null

say "payment-api v2.17.9 runs in namespace $ns (2 Pods of the test workload)"
# A second run starts the story again.
kubectl delete namespace "$ns" --ignore-not-found --timeout=120s >/dev/null
kubectl create namespace "$ns" >/dev/null
kubectl apply -n "$ns" -f config/rbac/namespace-reader.yaml >/dev/null
sed "s#image: PAYMENT_API_IMAGE#image: $v1#" examples/demo/workloads.yaml | kubectl apply -n "$ns" -f - >/dev/null
kubectl -n "$ns" rollout status deployment/payment-api --timeout=180s >/dev/null

# Debian's Prometheus is built without Kubernetes service discovery: a small
# loop writes the payments Pods (IP, labels) as file_sd targets instead.
if ! running discovery; then
  cat >"$run/discover.sh" <<EOF
while true; do
  "$(bash e2e/cluster.sh kubectl-path)" --kubeconfig "$dir/kubeconfig" -n $ns get pods -l app=payment-api -o json |
    python3 -c 'import json, sys
pods = [p for p in json.load(sys.stdin)["items"] if p["status"].get("podIP") and p["status"].get("phase") == "Running"]
print(json.dumps([{"targets": [p["status"]["podIP"] + ":8080"], "labels": {"service": p["metadata"]["labels"]["app"],
  "environment": p["metadata"]["labels"].get("environment", ""), "pod": p["metadata"]["name"]}} for p in pods]))' >"$run/targets.json.tmp" &&
    mv "$run/targets.json.tmp" "$run/targets.json"
  sleep 2
done
EOF
  setsid bash "$run/discover.sh" >"$run/discovery.log" 2>&1 </dev/null &
  echo $! >"$run/discovery.pid"
fi
if ! running prometheus; then
  say "starting Prometheus on http://$host_ip:$prom_port, scraping the payments Pods"
  cat >"$run/prometheus.yml" <<EOF
global: {scrape_interval: 2s, evaluation_interval: 2s}
scrape_configs:
  - job_name: payment-api
    file_sd_configs: [{files: ["$run/targets.json"], refresh_interval: 5s}]
EOF
  # On the host end of the node's veth: the operator's Pods query it there.
  setsid prometheus --config.file "$run/prometheus.yml" --storage.tsdb.path "$run/prometheus-data" \
    --web.listen-address "$host_ip:$prom_port" >"$run/prometheus.log" 2>&1 </dev/null &
  echo $! >"$run/prometheus.pid"
fi
say "waiting for Prometheus to scrape the Pods"
for _ in $(seq 1 90); do
  if curl -s "http://$host_ip:$prom_port/api/v1/query" --data-urlencode 'query=count(count_over_time(http_requests_total{service="payment-api"}[1m]) > 2)' |
    grep -q '"value":\[[0-9.]*,"[1-9]'; then
    break
  fi
  sleep 1
done

say "applying the payment-api gate (enforce mode, release v2.18.4) and labelling the Deployment with it"
kubectl apply -n "$ns" -f examples/policy.yaml -f examples/connectorscope-kubernetes.yaml -f examples/connectorscope-argocd.yaml >/dev/null
sed "s#http://127.0.0.1:9090#http://$host_ip:$prom_port#" examples/connectorscope-prometheus.yaml | kubectl apply -n "$ns" -f - >/dev/null
gate() { # gate ROLLBACK_IMAGE
  sed -e "s#image: registry.example.com/payment-api@sha256:[0-9a-f]*#image: $v2#" -e 's#mode: shadow#mode: enforce#' \
    -e "s#^    release: v2.17.9\$#    release: v2.17.9${1:+\\n    image: $1}#" examples/releasegate.yaml
}
gate "" | kubectl apply -n "$ns" --server-side --field-manager ci -f - >/dev/null
kubectl -n "$ns" label deployment/payment-api releasepassport.io/gate=payment-api-production --overwrite >/dev/null
ingest() { # ingest CHANGE_APPROVAL_LINKED
  printf '{"spec":{"evidence":[{"connector":"ingest","scope":{"source":"ci"},"freshness":{"observedAt":"%s","maxAgeSeconds":86400},"facts":[{"name":"active_sev1_incidents","value":0},{"name":"change_approval_linked","value":%s}]}]}}' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1"
}
kubectl patch -n "$ns" releasegate/payment-api-production --type=merge -p "$(ingest false)" >/dev/null

wait_decision() { # wait_decision DECISION
  local g o d
  for _ in $(seq 1 120); do
    g=$(kubectl get -n "$ns" releasegate/payment-api-production -o jsonpath='{.metadata.generation}')
    o=$(kubectl get -n "$ns" releasegate/payment-api-production -o jsonpath='{.status.observedGeneration}')
    d=$(kubectl get -n "$ns" releasegate/payment-api-production -o jsonpath='{.status.decision}')
    [ "$g" = "$o" ] && [ "$d" = "$1" ] && return 0
    sleep 1
  done
  say "expected $1, the gate says '$d' (operator logs: kubectl -n $release_ns logs deployment/release-passport)"
  exit 1
}
wait_decision HOLD
show kubectl get releasegates,passports -n "$ns"
show kubectl get releasegate payment-api-production -n "$ns" -o jsonpath='{.status.failingChecks}{"\n"}{.status.nextActions}{"\n"}'
printf '\n$ kubectl -n %s set image deployment/payment-api api=%s\n' "$ns" "$v2"
if kubectl -n "$ns" set image deployment/payment-api "api=$v2"; then
  say "the webhook admitted a promotion under HOLD"
  exit 1
fi

say "CI attaches the rollback image and links the change approval"
gate "$v1" | kubectl apply -n "$ns" --server-side --field-manager ci -f - >/dev/null
kubectl patch -n "$ns" releasegate/payment-api-production --type=merge -p "$(ingest true)" >/dev/null
wait_decision ALLOW
show kubectl get releasegates -n "$ns"
show kubectl -n "$ns" set image deployment/payment-api "api=$v2"
show kubectl -n "$ns" rollout status deployment/payment-api --timeout=180s
for _ in $(seq 1 60); do
  [ "$(kubectl -n "$ns" get pods -l app=payment-api -o name | wc -l)" -eq 2 ] && break
  sleep 1
done
show kubectl -n "$ns" get pods -l app=payment-api -o 'custom-columns=POD:.metadata.name,READY:.status.containerStatuses[0].ready,RUNNING:.status.containerStatuses[0].imageID'

console=$(kubectl -n "$release_ns" get service release-passport-console -o jsonpath='{.spec.clusterIP}:{.spec.ports[0].port}')
curl -sf -o /dev/null "http://$console/console" || { say "the console does not answer at http://$console/console"; exit 1; }
kubectl -n "$ns" create serviceaccount demo-viewer --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create role demo-viewer --verb get,list,watch \
  --resource releasegates.releasepassport.io,passports.releasepassport.io,policies.releasepassport.io,connectorscopes.releasepassport.io,events \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create rolebinding demo-viewer --role demo-viewer --serviceaccount "$ns:demo-viewer" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
cat <<EOF

The console: http://$console/console (the Service's ClusterIP, routed from this
machine into the node), or kubectl -n $release_ns port-forward svc/release-passport-console 8081
and http://127.0.0.1:8081/console. Sign in with a token:
  kubectl create token demo-viewer -n $ns
Prometheus: http://$host_ip:$prom_port
EOF
bash e2e/cluster.sh env
say "stop everything with: make cluster-down"
