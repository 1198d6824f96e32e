#!/usr/bin/env bash
# Checks charts/release-passport with the real tools, against the local
# control plane (started if needed):
#   1. the chart's crds/ are identical to crds/, its files/ to the admission
#      policies and persona roles under config/;
#   2. helm lint --strict, and values.schema.json refuses bad values;
#   3. helm template | kubeconform -strict, with JSON schemas generated from
#      the control plane's own OpenAPI (our CRDs installed, so the examples'
#      custom resources are validated against their CRD schemas too);
#   4. the chart's RBAC equals config/rbac/operator.yaml + personas.yaml;
#   5. the rendered chart is server-side applied into the control plane (the
#      webhook variant as a server-side dry run).
# helm and kubeconform are built from the Go module proxy (e2e/tools/tools.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf '[chart] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

chart=charts/release-passport
helm=$(bash e2e/tools/tools.sh path helm)
kubeconform=$(bash e2e/tools/tools.sh path kubeconform)
bash e2e/cluster.sh --control-plane-only up --quiet
export KUBECONFIG
eval "$(bash e2e/cluster.sh --control-plane-only env | grep '^export ')"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say "1. chart CRDs identical to crds/"
diff -r crds "$chart/crds" >/dev/null || die "$chart/crds differs from crds/ (cp crds/*.yaml $chart/crds/)"
cmp -s config/admission/policies.yaml "$chart/files/admission-policies.yaml" \
  || die "$chart/files/admission-policies.yaml differs from config/admission/policies.yaml (cp config/admission/policies.yaml $chart/files/admission-policies.yaml)"
cmp -s config/rbac/personas.yaml "$chart/files/personas.yaml" \
  || die "$chart/files/personas.yaml differs from config/rbac/personas.yaml (cp config/rbac/personas.yaml $chart/files/personas.yaml)"

say "2. helm lint and values.schema.json"
"$helm" lint --strict "$chart" >"$work/lint.txt" 2>&1 || { cat "$work/lint.txt" >&2; die "helm lint failed"; }
for bad in replicas=0 rbac.readerServiceAccounts=null image.pullPolicy=Sometimes controller.logFormat=xml \
  attestations.attach.enabled=yes 'attestations.attach.plainHTTPRegistries[0]=http://x' \
  console.llm.endpoint=llm.example.com console.llm.timeoutSeconds=0; do
  if "$helm" template rp "$chart" --set "$bad" >/dev/null 2>&1; then
    die "values.schema.json accepts $bad"
  fi
done

say "3. helm template | kubeconform -strict"
"$helm" template rp-chart "$chart" --namespace rp-chart-test --include-crds \
  --set priorityClassName=system-cluster-critical >"$work/rendered.yaml"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s -f crds/ >/dev/null
kubectl get --raw /openapi/v2 | python3 e2e/tools/openapi-schemas.py "$work/schemas"
# The webhook variants too (rendered, not applied: a webhook without a
# serving replica would refuse the gated workloads of other tests). The
# cert-manager kinds and the ServiceMonitor have no schema in a cluster
# without cert-manager and the Prometheus Operator.
"$helm" template rp-chart "$chart" --namespace rp-chart-test --set webhook.enabled=true \
  --set webhook.certificate.mode=secret --set-string webhook.certificate.caBundle="-----BEGIN CERTIFICATE-----test-----END CERTIFICATE-----" \
  >"$work/webhook-secret.yaml"
"$helm" template rp-chart "$chart" --namespace rp-chart-test --set webhook.enabled=true \
  --set webhook.failurePolicy=Ignore --set webhook.timeoutSeconds=10 --set serviceMonitor.enabled=true \
  >"$work/webhook-cert-manager.yaml"
# The chart's own certificate: a Secret and the same CA in the caBundle.
"$helm" template rp-chart "$chart" --namespace rp-chart-test --set webhook.enabled=true \
  --set webhook.certificate.mode=helm >"$work/webhook-helm.yaml"
python3 - "$work/webhook-helm.yaml" <<'PY' || die "the helm certificate variant's caBundle is not the CA of its Secret"
import re, sys
text = open(sys.argv[1]).read()
ca = re.search(r"^  ca\.crt: (\S+)$", text, re.M)
bundle = re.search(r"^      caBundle: (\S+)$", text, re.M)
sys.exit(0 if ca and bundle and ca.group(1) == bundle.group(1) else 1)
PY
grep -q 'cert-manager.io/inject-ca-from: rp-chart-test/rp-chart-release-passport-webhook' "$work/webhook-cert-manager.yaml" \
  || die "the cert-manager variant does not inject the CA"
# Attaching attestations: the flags, and `get` on the credentials Secret alone.
"$helm" template rp-chart "$chart" --namespace rp-chart-test --set attestations.attach.enabled=true \
  --set attestations.attach.credentialsSecret=registry-push >"$work/attach.yaml"
grep -q -- '--registry-credentials-secret=registry-push' "$work/attach.yaml" \
  && grep -q 'resourceNames: \[registry-push\]' "$work/attach.yaml" \
  || die "the attach variant lacks its flags or its Secret rule"
# The language-model summary: its flags and the key's Secret mounted; no model, refused.
"$helm" template rp-chart "$chart" --namespace rp-chart-test --set console.llm.endpoint=https://llm.example.com/v1 \
  --set console.llm.model=summary-model --set console.llm.apiKeySecret.name=llm-key >"$work/llm.yaml"
grep -q -- '--console-llm-key-file=/console-llm/api-key' "$work/llm.yaml" \
  && grep -q 'secretName: llm-key' "$work/llm.yaml" \
  || die "the language-model variant lacks its flags or its Secret volume"
# OpenID Connect sign-in: the flags, the client secret and the CA mounted.
"$helm" template rp-chart "$chart" --namespace rp-chart-test --set console.url=https://rp.example.com \
  --set console.oidc.issuer=https://login.example.com/realms/acme --set console.oidc.clientSecret.name=console-oidc \
  --set console.oidc.caConfigMap.name=corp-ca >"$work/oidc.yaml"
for want in '--console-oidc-issuer=https://login.example.com/realms/acme' '--console-url=https://rp.example.com' \
  '--console-oidc-scope=groups' '--console-oidc-client-secret-file=/console-oidc-secret/client-secret' \
  '--console-oidc-ca-file=/console-oidc-ca/ca.crt' 'secretName: console-oidc' 'name: corp-ca'; do
  grep -q -- "$want" "$work/oidc.yaml" || die "console.oidc: the rendered Deployment lacks $want"
done
if "$helm" template rp-chart "$chart" --set console.oidc.issuer=https://login.example.com >/dev/null 2>&1; then
  die "console.oidc.issuer without console.url is accepted"
fi
if "$helm" template rp-chart "$chart" --set console.url=https://rp.example.com --set console.oidc.issuer=http://login.example.com >/dev/null 2>&1; then
  die "a plain-http console.oidc.issuer is accepted"
fi
if "$helm" template rp-chart "$chart" --set console.llm.endpoint=https://llm.example.com/v1 >/dev/null 2>&1; then
  die "console.llm.endpoint without console.llm.model is accepted"
fi
"$kubeconform" -strict -summary -skip Certificate,Issuer,ServiceMonitor \
  -schema-location "$work/schemas/{{ .ResourceKind }}-{{ .Group }}-{{ .ResourceAPIVersion }}.json" \
  "$work/rendered.yaml" "$work/webhook-secret.yaml" "$work/webhook-cert-manager.yaml" "$work/webhook-helm.yaml" "$work/attach.yaml" "$work/llm.yaml" "$work/oidc.yaml" \
  examples/*.yaml examples/argocd/manifests/*.yaml config/rbac/*.yaml config/admission/*.yaml >&2

say "4. chart RBAC equals config/rbac/operator.yaml and config/rbac/personas.yaml"
"$helm" template release-passport "$chart" --namespace release-passport-system >"$work/default.yaml"
# YAML to JSON through kubectl (no Python YAML module needed).
kubectl create --dry-run=client -o json -f "$work/default.yaml" >"$work/default.json"
kubectl create --dry-run=client -o json -f config/rbac/operator.yaml -f config/rbac/personas.yaml >"$work/operator.json"
python3 - "$work/default.json" "$work/operator.json" <<'PY'
import json, sys
def rbac(path):
    out = {}
    text, docs, i = open(path).read(), [], 0
    decoder = json.JSONDecoder()
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        d, i = decoder.raw_decode(text, i)
        docs.extend(d.get("items", [d]))
    for d in docs:
        if d and d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
            key = (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))
            out[key] = {k: d.get(k) for k in ("rules", "roleRef", "subjects")}
    return out
chart, plain = rbac(sys.argv[1]), rbac(sys.argv[2])
if chart != plain:
    for key in sorted(set(chart) | set(plain), key=str):
        if chart.get(key) != plain.get(key):
            print(f"[chart] differs: {key}: chart={chart.get(key)} operator.yaml={plain.get(key)}", file=sys.stderr)
    sys.exit("[chart] error: the chart's RBAC and config/rbac/operator.yaml differ")
PY

say "5. server-side apply of the rendered chart"
kubectl create namespace rp-chart-test --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
kubectl apply --server-side --force-conflicts --field-manager=release-passport-chart-test -f "$work/rendered.yaml" >&2
# The webhook variant is checked by the apiserver without being stored.
kubectl apply --server-side --dry-run=server --field-manager=release-passport-chart-test \
  -f "$work/webhook-secret.yaml" -f "$work/webhook-helm.yaml" >/dev/null
kubectl -n rp-chart-test get deployment/rp-chart-release-passport poddisruptionbudget/rp-chart-release-passport \
  service/rp-chart-release-passport serviceaccount/rp-chart-release-passport >/dev/null
say "ok: lint, schema, kubeconform, RBAC and apply"
