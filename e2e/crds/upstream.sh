#!/usr/bin/env bash
# Fetches other projects' CustomResourceDefinitions, as they publish them in
# their Go modules, into the project cache (once per version) and prints the
# paths of the CRD files; the tests apply them to the local control plane:
#   bash e2e/crds/upstream.sh path argo-rollouts|flagger|flux|flux-helm|prometheus-operator
# Each module is downloaded with `go mod download` from the Go module proxy at
# the version pinned below, and its checksum must equal the pinned one.
# Versions are the newest whose go.mod the pinned Go toolchain accepts.
# Environment: RP_CACHE_DIR (default ~/.cache/release-passport).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../hack/env.sh
. "$here/../../hack/env.sh"
say() { printf '[crds] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# name -> "module version go.sum-hash file..."
spec_of() {
  case "$1" in
    argo-rollouts) echo "github.com/argoproj/argo-rollouts v1.10.1 h1:6oyVPGiHHxu3ixkT6mngemh88HLPDoTX1IwO6KNR1Y4= manifests/crds/rollout-crd.yaml manifests/crds/analysis-run-crd.yaml" ;;
    flagger) echo "github.com/fluxcd/flagger v1.36.1 h1:X2PumtNwZz9YSGaOtZLFm2zAKLgHhFkbNv8beg7ifyc= artifacts/flagger/crd.yaml" ;;
    flux) echo "github.com/fluxcd/kustomize-controller v1.9.0 h1:WfM+bQUGUGW2qyrrTgh2bIVSZSPmc3JC7234K8NiTWQ= config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" ;;
    flux-helm) echo "github.com/fluxcd/helm-controller v1.6.0 h1:jlS5X11SG26gspubB5aLrdVSCm0q0tA4ULsY+vwSkL0= config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml" ;;
    prometheus-operator) echo "github.com/prometheus-operator/prometheus-operator v0.85.0 h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s= example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" ;;
    *) die "unknown CRD set: $1 (argo-rollouts, flagger, flux, flux-helm, prometheus-operator)" ;;
  esac
}

fetch() {
  local name=$1 module version sum files dir info got start
  read -r module version sum files <<<"$(spec_of "$name")"
  dir=$GOMODCACHE/$module@$version
  if [ ! -d "$dir" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to fetch $module (https://go.dev/doc/install)"
    mkdir -p "$GOMODCACHE"
    exec 8>"$rp_cache/.crds-$name.lock"
    flock 8
    if [ ! -d "$dir" ]; then
      start=$(date +%s)
      say "downloading $module $version from the Go module proxy (once per version)..."
      info=$(cd "$rp_cache" && go mod download -json "$module@$version") \
        || die "go mod download $module@$version failed: $info"
      got=$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$/\1/p')
      [ "$got" = "$sum" ] || die "$module@$version has checksum ${got:-none}, expected $sum"
      say "downloaded $module $version in $(( $(date +%s) - start ))s -> $dir"
    fi
  fi
  for f in $files; do
    [ -f "$dir/$f" ] || die "$module@$version has no $f"
    printf '%s\n' "$dir/$f"
  done
}

case "${1:-}" in
  path)
    [ $# -eq 2 ] || die "usage: $0 path argo-rollouts|flagger|flux|flux-helm|prometheus-operator"
    fetch "$2" ;;
  *) die "usage: $0 path argo-rollouts|flagger|flux|flux-helm|prometheus-operator" ;;
esac
